//! Validation of subscription input: every rejection names its field.

use super::catalogue;
use super::problem::ApiError;
use crate::config::Config;
use crate::matching::is_valid_pattern;
use crate::model::EndpointAuth;
use crate::ssrf;
use std::collections::BTreeMap;

pub const MAX_NAME: usize = 128;
pub const MAX_DESCRIPTION: usize = 1024;
pub const MAX_HEADERS: usize = 20;
pub const MAX_HEADER_VALUE: usize = 1024;

/// Headers a subscription may not set: hop-by-hop ones, framing, and ours.
const RESERVED: &[&str] = &[
    "host", "content-length", "content-type", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
    "trailer", "proxy-authorization", "proxy-authenticate", "proxy-connection", "user-agent",
];

pub fn url(config: &Config, url: &str) -> Result<(), ApiError> {
    ssrf::validate_url(url, config.allow_http, config.allow_private_targets).map(|_| ()).map_err(|e| ApiError::invalid("url", e.to_string()))
}

pub fn text(field: &str, value: &Option<String>, max: usize) -> Result<(), ApiError> {
    match value {
        Some(v) if v.chars().count() > max => Err(ApiError::invalid(field, format!("must be at most {max} characters"))),
        Some(v) if v.chars().any(|c| c.is_control() && c != '\n') => Err(ApiError::invalid(field, "must not contain control characters")),
        _ => Ok(()),
    }
}

/// A signing secret the customer chose (create, rotate): `whsec_` + standard base64 of 24-64
/// random bytes, as Standard Webhooks defines it and its libraries read it; or a raw secret of
/// 16-256 visible ASCII characters whose bytes are the key (TrustPager's form).
pub fn secret(text: &str) -> Result<crate::signing::Secret, ApiError> {
    const RULE: &str = "must be whsec_ followed by the standard base64 of 24-64 random bytes (Standard Webhooks), or a raw secret of 16-256 visible ASCII characters";
    let Some(b64) = text.strip_prefix("whsec_") else {
        let visible = text.bytes().all(|b| (0x21..=0x7e).contains(&b));
        if !visible || !(16..=256).contains(&text.len()) || crate::signing::RESERVED_PREFIXES.iter().any(|p| text.starts_with(p)) {
            return Err(ApiError::invalid("secret", RULE));
        }
        return Ok(crate::signing::Secret::raw(text));
    };
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).map_err(|_| ApiError::invalid("secret", RULE))?;
    if !(24..=64).contains(&bytes.len()) {
        return Err(ApiError::invalid("secret", format!("{RULE}; this one has {} bytes", bytes.len())));
    }
    crate::signing::Secret::parse(text).map_err(|_| ApiError::invalid("secret", RULE))
}

/// A payload filter: the error names the place at fault (`filter.$or[1].data.amount.$gt`).
pub fn filter(value: serde_json::Value) -> Result<crate::filter::Filter, ApiError> {
    crate::filter::Filter::parse(value).map_err(|e| ApiError::invalid(e.path, e.message))
}

/// A subscription's own retry policy, within the stack's: at most as many retries as the stack's
/// schedule, each wait 1 s to 12 h, adding up to no more than the stack's (the delivery queue's
/// receive count and retention are checked against those at every cold start), and a timeout of
/// 1 s up to the stack's `DELIVERY_TIMEOUT_MS`.
pub fn retry(config: &Config, r: &crate::model::RetrySettings) -> Result<(), ApiError> {
    let max_visibility = crate::retry::MAX_VISIBILITY.as_secs();
    if let Some(waits) = &r.schedule {
        let most = config.retry.max_attempts() - 1;
        if waits.len() as u32 > most {
            return Err(ApiError::invalid("retry.schedule", format!("at most {most} waits (the stack's schedule has {most}; raise the stack's RetrySchedule for more)")));
        }
        if let Some(i) = waits.iter().position(|w| *w < 1 || *w > max_visibility) {
            return Err(ApiError::invalid(format!("retry.schedule[{i}]"), format!("must be 1-{max_visibility} seconds (SQS hides a message for at most 12 h)")));
        }
        let (total, stack) = (waits.iter().sum::<u64>(), config.retry.total_delay().as_secs());
        if total > stack {
            return Err(ApiError::invalid("retry.schedule", format!("adds up to {total} s; the stack allows at most {stack} s (its own schedule's total)")));
        }
    }
    if let Some(ms) = r.timeout_ms {
        let stack = config.delivery_timeout.as_millis() as u64;
        if !(1000..=stack).contains(&ms) {
            return Err(ApiError::invalid("retry.timeout_ms", format!("must be 1000-{stack} ms (the stack's DELIVERY_TIMEOUT_MS is the most)")));
        }
    }
    Ok(())
}

/// Patterns: non-empty, well-formed, and each covering a catalogue type.
pub fn events(events: &[String]) -> Result<(), ApiError> {
    if events.is_empty() {
        return Err(ApiError::invalid("events", "must name at least one event type (omit it to receive all)"));
    }
    for (i, e) in events.iter().enumerate() {
        if !is_valid_pattern(e) || !catalogue::is_known_pattern(e) {
            let valid = catalogue::names().join(", ");
            return Err(ApiError::invalid(format!("events[{i}]"), format!("`{e}` is not a known event type or pattern; valid types: {valid} (or `prefix.*`, `*`)")));
        }
    }
    Ok(())
}

fn reserved(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    RESERVED.contains(&n.as_str()) || n.starts_with("webhook-") || n.starts_with("x-webhook-") || n.starts_with("proxy-")
}

fn header_name(field: &str, name: &str) -> Result<(), ApiError> {
    if axum::http::HeaderName::try_from(name).is_err() {
        return Err(ApiError::invalid(field, "is not a valid header name"));
    }
    if reserved(name) {
        return Err(ApiError::invalid(field, format!("`{name}` is reserved and cannot be set")));
    }
    Ok(())
}

fn header_value(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > MAX_HEADER_VALUE || axum::http::HeaderValue::from_str(value).is_err() {
        return Err(ApiError::invalid(field, format!("must be 1-{MAX_HEADER_VALUE} visible ASCII characters")));
    }
    Ok(())
}

pub fn headers(headers: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if headers.len() > MAX_HEADERS {
        return Err(ApiError::invalid("headers", format!("at most {MAX_HEADERS} headers")));
    }
    for (name, value) in headers {
        header_name(&format!("headers.{name}"), name)?;
        header_value(&format!("headers.{name}"), value)?;
    }
    Ok(())
}

pub fn auth(config: &Config, auth: &EndpointAuth) -> Result<(), ApiError> {
    match auth {
        EndpointAuth::None => Ok(()),
        EndpointAuth::Basic { username, password } => {
            if username.is_empty() || username.len() > 256 || username.contains(':') || username.chars().any(char::is_control) {
                return Err(ApiError::invalid("auth.username", "must be 1-256 characters without `:`"));
            }
            if password.is_empty() || password.len() > 256 || password.chars().any(char::is_control) {
                return Err(ApiError::invalid("auth.password", "must be 1-256 characters"));
            }
            Ok(())
        }
        EndpointAuth::ApiKey { header, value } => {
            header_name("auth.header", header)?;
            header_value("auth.value", value)
        }
        EndpointAuth::OAuth2 { token_url, client_id, client_secret, scope, audience, .. } => {
            ssrf::validate_url(token_url, config.allow_http, config.allow_private_targets).map_err(|e| ApiError::invalid("auth.token_url", e.to_string()))?;
            for (field, value, required) in [("auth.client_id", Some(client_id), true), ("auth.client_secret", Some(client_secret), true), ("auth.scope", scope.as_ref(), false), ("auth.audience", audience.as_ref(), false)] {
                match value {
                    Some(v) if v.is_empty() || v.len() > 1024 || v.chars().any(char::is_control) => return Err(ApiError::invalid(field, "must be 1-1024 characters without control characters")),
                    None if required => return Err(ApiError::invalid(field, "is required")),
                    _ => {}
                }
            }
            Ok(())
        }
    }
}

/// A header name a signature profile may use: a valid name, not hop-by-hop or framing, not
/// Standard Webhooks' own (`webhook-*`), not `authorization`; ours (`x-webhook-…`) only as `ours`.
fn profile_header(field: &str, name: &str, ours: &str) -> Result<(), ApiError> {
    let n = name.to_ascii_lowercase();
    if n == ours {
        return Ok(());
    }
    if n == "authorization" {
        return Err(ApiError::invalid(field, "`authorization` is reserved and cannot be set"));
    }
    header_name(field, name)
}

/// The signature settings: named headers valid and distinct, and a body signature only where
/// there is a shared secret (`v1a` keys are ed25519: the receiver holds no secret to check one).
pub fn signature(s: &crate::model::SignatureSettings, scheme: crate::signing::Scheme) -> Result<(), ApiError> {
    use crate::model::{Profile, DEFAULT_EVENT_HEADER, DEFAULT_SIGNATURE_HEADER};
    match (s.profile, &s.header) {
        (Profile::Standard, Some(_)) => return Err(ApiError::invalid("signature.header", "is only for the profiles `sha256_hex` and `hex` (`standard` uses x-webhook-signature)")),
        (_, Some(h)) => profile_header("signature.header", h, DEFAULT_SIGNATURE_HEADER)?,
        _ => {}
    }
    if let Some(h) = &s.event_header {
        profile_header("signature.event_header", h, DEFAULT_EVENT_HEADER)?;
    }
    if s.body_header().0 == s.event_header() {
        return Err(ApiError::invalid("signature.event_header", "must differ from the signature's header"));
    }
    if scheme == crate::signing::Scheme::V1a && s.profile != Profile::Standard {
        return Err(ApiError::invalid("signature.profile", "`sha256_hex` and `hex` are HMACs with a shared secret; a `v1a` (ed25519) subscription has none: use `standard`"));
    }
    Ok(())
}

/// PEM text of at most this many bytes (a chain of a few certificates).
const MAX_PEM: usize = 16 * 1024;

/// mTLS settings: certificate and key together, every part PEM, and a client that can be built
/// from them (the key matches the certificate, the CAs parse).
pub fn tls(sender: &crate::delivery::http::HttpSender, t: &crate::model::TlsSettings) -> Result<(), ApiError> {
    for (field, v) in [("tls.client_certificate", &t.client_certificate), ("tls.client_key", &t.client_key), ("tls.ca_certificates", &t.ca_certificates)] {
        if v.as_ref().is_some_and(|p| p.len() > MAX_PEM || !p.contains("-----BEGIN ")) {
            return Err(ApiError::invalid(field, format!("must be PEM text of at most {MAX_PEM} bytes")));
        }
    }
    match (&t.client_certificate, &t.client_key) {
        (Some(_), None) => return Err(ApiError::invalid("tls.client_key", "is required with a client certificate")),
        (None, Some(_)) => return Err(ApiError::invalid("tls.client_certificate", "is required with a client key")),
        (None, None) if t.ca_certificates.is_none() => return Err(ApiError::invalid("tls", "names a client certificate and key, CA certificates, or both (`null` removes them)")),
        _ => {}
    }
    sender.tls_client(t).map(|_| ()).map_err(|e| {
        let field = if e.starts_with("CA") { "tls.ca_certificates" } else { "tls.client_key" };
        ApiError::invalid(field, e)
    })
}

/// The SHA-256 (hex) of the first certificate's DER in PEM text: how the API names a client
/// certificate without returning it.
pub fn certificate_fingerprint(pem: &str) -> Option<String> {
    let start = pem.find("-----BEGIN CERTIFICATE-----")? + "-----BEGIN CERTIFICATE-----".len();
    let end = start + pem[start..].find("-----END CERTIFICATE-----")?;
    let b64: String = pem[start..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).ok()?;
    Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&der)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(r: Result<(), ApiError>) -> String {
        match r {
            Err(ApiError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reserved_and_malformed_headers_are_refused_by_name() {
        let h = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        assert!(headers(&h("X-Team", "blue")).is_ok());
        assert_eq!(field(headers(&h("Host", "x"))), "headers.Host");
        assert_eq!(field(headers(&h("webhook-id", "x"))), "headers.webhook-id");
        assert_eq!(field(headers(&h("X-Webhook-Signature", "x"))), "headers.X-Webhook-Signature");
        assert_eq!(field(headers(&h("Connection", "close"))), "headers.Connection");
        assert_eq!(field(headers(&h("bad header", "x"))), "headers.bad header");
        assert_eq!(field(headers(&h("X-A", "line\nbreak"))), "headers.X-A");
    }

    #[test]
    fn auth_credentials_are_checked() {
        let c = crate::testing::config(&[]);
        assert!(auth(&c, &EndpointAuth::Basic { username: "u".into(), password: "p".into() }).is_ok());
        assert_eq!(field(auth(&c, &EndpointAuth::Basic { username: "a:b".into(), password: "p".into() })), "auth.username");
        assert_eq!(field(auth(&c, &EndpointAuth::Basic { username: "u".into(), password: "".into() })), "auth.password");
        assert_eq!(field(auth(&c, &EndpointAuth::ApiKey { header: "Host".into(), value: "v".into() })), "auth.header");
        assert!(auth(&c, &EndpointAuth::ApiKey { header: "X-Api-Key".into(), value: "v".into() }).is_ok());
        let oauth = |url: &str, secret: &str| EndpointAuth::OAuth2 { token_url: url.into(), client_id: "c".into(), client_secret: secret.into(), scope: None, audience: None, client_auth: Default::default() };
        assert!(auth(&c, &oauth("https://auth.example.com/token", "s")).is_ok());
        assert_eq!(field(auth(&c, &oauth("https://169.254.169.254/token", "s"))), "auth.token_url");
        assert_eq!(field(auth(&c, &oauth("https://auth.example.com/token", ""))), "auth.client_secret");
    }

    #[test]
    fn unknown_event_types_list_the_valid_ones() {
        assert!(events(&["project.*".into(), "webhook.test".into()]).is_ok());
        let err = events(&["project.exploded".into()]).unwrap_err();
        assert!(err.to_string().contains("visit.media.available"), "{err}");
        assert_eq!(field(events(&[])), "events");
    }
}
