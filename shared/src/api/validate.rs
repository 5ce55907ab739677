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
/// random bytes, as Standard Webhooks defines it and its libraries read it.
pub fn secret(text: &str) -> Result<crate::signing::Secret, ApiError> {
    const RULE: &str = "must be whsec_ followed by the standard base64 of 24-64 random bytes (Standard Webhooks)";
    let Some(b64) = text.strip_prefix("whsec_") else { return Err(ApiError::invalid("secret", RULE)) };
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

pub fn auth(auth: &EndpointAuth) -> Result<(), ApiError> {
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
    }
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
        assert!(auth(&EndpointAuth::Basic { username: "u".into(), password: "p".into() }).is_ok());
        assert_eq!(field(auth(&EndpointAuth::Basic { username: "a:b".into(), password: "p".into() })), "auth.username");
        assert_eq!(field(auth(&EndpointAuth::Basic { username: "u".into(), password: "".into() })), "auth.password");
        assert_eq!(field(auth(&EndpointAuth::ApiKey { header: "Host".into(), value: "v".into() })), "auth.header");
        assert!(auth(&EndpointAuth::ApiKey { header: "X-Api-Key".into(), value: "v".into() }).is_ok());
    }

    #[test]
    fn unknown_event_types_list_the_valid_ones() {
        assert!(events(&["project.*".into(), "webhook.test".into()]).is_ok());
        let err = events(&["project.exploded".into()]).unwrap_err();
        assert!(err.to_string().contains("visit.media.available"), "{err}");
        assert_eq!(field(events(&[])), "events");
    }
}
