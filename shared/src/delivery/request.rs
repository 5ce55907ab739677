//! The request a delivery sends: the subscription's own headers and endpoint auth, then
//! Standard Webhooks, the legacy signature and the event name (ours win over custom ones of the
//! same name). Built here for the worker and the test route; the API shows the same list with
//! every secret-bearing value redacted.

use crate::ids::DeliveryId;
use crate::model::{EndpointAuth, PayloadMode, Subscription};
use std::borrow::Cow;
use crate::signing;
use base64::Engine;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use std::collections::BTreeMap;
use time::OffsetDateTime;

pub const REDACTED: &str = "<redacted>";

/// The body a delivery of `envelope` POSTs to `sub`: the envelope itself, or its thin form.
pub fn payload<'a>(sub: &Subscription, delivery: &DeliveryId, envelope: &'a str) -> Cow<'a, str> {
    match sub.payload {
        PayloadMode::Full => Cow::Borrowed(envelope),
        PayloadMode::Thin => Cow::Owned(crate::envelope::thin_body(envelope, delivery)),
    }
}

/// The headers of a POST of `body` for `delivery` at `at`.
pub fn signed_headers(delivery: &DeliveryId, sub: &Subscription, event_type: &str, body: &[u8], at: OffsetDateTime) -> HeaderMap {
    let ts = at.unix_timestamp();
    let msg_id = delivery.as_str();
    let mut map = HeaderMap::new();
    for (name, value) in &sub.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name.as_str()), HeaderValue::from_str(value)) {
            map.insert(n, v);
        }
    }
    match &sub.auth {
        EndpointAuth::None => {}
        EndpointAuth::Basic { username, password } => {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            if let Ok(mut v) = HeaderValue::from_str(&format!("Basic {token}")) {
                v.set_sensitive(true);
                map.insert(AUTHORIZATION, v);
            }
        }
        EndpointAuth::ApiKey { header, value } => {
            if let (Ok(n), Ok(mut v)) = (HeaderName::try_from(header.as_str()), HeaderValue::from_str(value)) {
                v.set_sensitive(true);
                map.insert(n, v);
            }
        }
    }
    let pairs = [
        ("webhook-id", msg_id.to_owned()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", signing::signature_header(&sub.signing_secrets(at), msg_id, ts, body)),
        ("x-webhook-signature", sub.secret.sign_body_hex(body)),
        ("x-webhook-event", event_type.to_owned()),
    ];
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in pairs {
        if let Ok(v) = HeaderValue::from_str(&value) {
            map.insert(HeaderName::from_static(name), v);
        }
    }
    map
}

/// The same header names, as the API shows them: signatures, custom values and credentials
/// redacted, the timestamp described.
pub fn shown_headers(delivery: &DeliveryId, sub: Option<&Subscription>, event_type: &str) -> BTreeMap<String, String> {
    let mut headers = BTreeMap::new();
    if let Some(s) = sub {
        headers.extend(s.headers.keys().map(|k| (k.to_ascii_lowercase(), REDACTED.to_owned())));
        match &s.auth {
            EndpointAuth::None => {}
            EndpointAuth::Basic { .. } => {
                headers.insert("authorization".into(), REDACTED.into());
            }
            EndpointAuth::ApiKey { header, .. } => {
                headers.insert(header.to_ascii_lowercase(), REDACTED.into());
            }
        }
    }
    headers.extend([
        ("content-type".to_owned(), "application/json".to_owned()),
        ("webhook-id".to_owned(), delivery.to_string()),
        ("webhook-timestamp".to_owned(), "<time of each attempt>".to_owned()),
        ("webhook-signature".to_owned(), REDACTED.to_owned()),
        ("x-webhook-signature".to_owned(), REDACTED.to_owned()),
        ("x-webhook-event".to_owned(), event_type.to_owned()),
    ]);
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{EventSource, TenantId};

    #[test]
    fn the_shown_list_names_every_header_sent_and_no_secret() {
        let mut sub = Subscription::new(TenantId::parse("acme").unwrap(), "https://example.com".into(), vec!["*".into()], OffsetDateTime::now_utc());
        sub.headers.insert("X-Tag".into(), "secret-tag".into());
        sub.auth = EndpointAuth::ApiKey { header: "X-Api-Key".into(), value: "secret-key".into() };
        let id = DeliveryId::derive(EventSource::Queue, &sub.tenant_id, "e1", OffsetDateTime::UNIX_EPOCH, &sub.subscription_id);
        let sent = signed_headers(&id, &sub, "a.b", b"{}", OffsetDateTime::now_utc());
        let shown = shown_headers(&id, Some(&sub), "a.b");
        let sent_names: Vec<&str> = sent.keys().map(|k| k.as_str()).collect();
        let mut shown_names: Vec<&str> = shown.keys().map(String::as_str).collect();
        shown_names.sort();
        let mut sorted = sent_names.clone();
        sorted.sort();
        assert_eq!(sorted, shown_names);
        let text = format!("{shown:?}");
        assert!(!text.contains("secret") && !text.contains(sub.secret.expose()), "{text}");
        assert_eq!(sent["x-tag"], "secret-tag");
    }
}
