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
        // The bearer token is added when sending (`delivery::oauth`): it is fetched, not stored.
        EndpointAuth::OAuth2 { .. } => {}
    }
    let secrets = sub.signing_secrets(at);
    let (body_header, prefixed) = sub.signature.body_header();
    // One value per active HMAC secret, newest first (a rotation's overlap); none for ed25519.
    let body_signatures: Vec<String> = secrets.iter().filter_map(|s| s.body_hex(body)).map(|h| if prefixed { format!("sha256={h}") } else { h }).collect();
    let mut pairs = vec![
        ("webhook-id".to_owned(), msg_id.to_owned()),
        ("webhook-timestamp".to_owned(), ts.to_string()),
        ("webhook-signature".to_owned(), signing::signature_header(&secrets, msg_id, ts, body)),
        (sub.signature.event_header(), event_type.to_owned()),
    ];
    if !body_signatures.is_empty() {
        pairs.push((body_header, body_signatures.join(", ")));
    }
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in pairs {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::from_str(&value)) {
            map.insert(n, v);
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
            EndpointAuth::OAuth2 { .. } => {
                headers.insert("authorization".into(), "Bearer <redacted>".into());
            }
        }
    }
    let signature = sub.map(|s| s.signature.clone()).unwrap_or_default();
    headers.extend([
        ("content-type".to_owned(), "application/json".to_owned()),
        ("webhook-id".to_owned(), delivery.to_string()),
        ("webhook-timestamp".to_owned(), "<time of each attempt>".to_owned()),
        ("webhook-signature".to_owned(), REDACTED.to_owned()),
        (signature.event_header(), event_type.to_owned()),
    ]);
    if sub.is_none_or(|s| s.secret.scheme() == signing::Scheme::V1) {
        headers.insert(signature.body_header().0, REDACTED.to_owned());
    }
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

    fn sub() -> Subscription {
        Subscription::new(TenantId::parse("acme").unwrap(), "https://example.com".into(), vec!["*".into()], OffsetDateTime::now_utc())
    }

    #[test]
    fn profiles_name_the_body_signature_and_event_headers_and_sign_the_body_alone() {
        use crate::model::{Profile, SignatureSettings};
        let mut s = sub();
        s.secret = crate::signing::Secret::raw("my-trustpager-secret-1");
        s.signature = SignatureSettings { profile: Profile::Hex, header: Some("X-TrustPager-Signature".into()), event_header: Some("X-TrustPlus-Event".into()) };
        let id = DeliveryId::derive(EventSource::Queue, &s.tenant_id, "e1", OffsetDateTime::UNIX_EPOCH, &s.subscription_id);
        let sent = signed_headers(&id, &s, "a.b", b"{}", OffsetDateTime::now_utc());
        assert_eq!(sent["x-trustpager-signature"], s.secret.body_hex(b"{}").unwrap());
        assert_eq!(sent["x-trustplus-event"], "a.b");
        assert!(sent.get("x-webhook-signature").is_none() && sent.get("x-webhook-event").is_none());
        assert!(sent.get("webhook-signature").is_some(), "Standard Webhooks headers are always sent");
        let shown = shown_headers(&id, Some(&s), "a.b");
        assert!(shown.contains_key("x-trustpager-signature") && shown.contains_key("x-trustplus-event"));

        s.signature = SignatureSettings { profile: Profile::Sha256Hex, header: None, event_header: None };
        let old = s.secret.clone();
        s.previous_secret = Some(std::mem::replace(&mut s.secret, crate::signing::Secret::generate()));
        s.previous_secret_expires_at = Some(OffsetDateTime::now_utc() + time::Duration::hours(1));
        let sent = signed_headers(&id, &s, "a.b", b"{}", OffsetDateTime::now_utc());
        let want = format!("{}, {}", s.secret.sign_body_hex(b"{}"), old.sign_body_hex(b"{}"));
        assert_eq!(sent["x-webhook-signature"], want.as_str(), "one value per active secret, newest first");
    }

    #[test]
    fn an_ed25519_subscription_sends_v1a_and_no_body_signature() {
        let mut s = sub();
        s.secret = crate::signing::Secret::generate_ed25519();
        let id = DeliveryId::derive(EventSource::Queue, &s.tenant_id, "e1", OffsetDateTime::UNIX_EPOCH, &s.subscription_id);
        let sent = signed_headers(&id, &s, "a.b", b"{}", OffsetDateTime::now_utc());
        assert!(sent["webhook-signature"].to_str().unwrap().starts_with("v1a,"));
        assert!(sent.get("x-webhook-signature").is_none());
        assert!(!shown_headers(&id, Some(&s), "a.b").contains_key("x-webhook-signature"));
    }
}
