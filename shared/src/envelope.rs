//! The upstream contract: one event envelope per message on the events queue (or one
//! `POST /v1/events` body), and the checks every path applies to it. Published as a JSON Schema
//! in `docs/event-envelope.schema.json` (a test keeps the two in step).

use crate::ids::{is_token, TenantId};
use crate::matching::is_valid_event_type;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Largest accepted envelope: SQS's classic message limit (256 KiB). A delivery task carries the
/// envelope and a few hundred bytes more, which the delivery queue (1 MiB) takes.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// One event on the event queue (or `POST /v1/events`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    /// Upstream's id: 1–128 of `[A-Za-z0-9_.:-]`. Receivers dedupe by it.
    pub event_id: String,
    /// Dotted name, e.g. `project.created`.
    pub event_type: String,
    /// Checked by [`parse_event`] with the API's rule (1–64 of `[A-Za-z0-9_.:-]`): serde alone
    /// reads any string.
    pub tenant_id: TenantId,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub data: serde_json::Value,
}

impl EventIn {
    /// The exact bytes every delivery of this event POSTs and signs: serialised once, here, by
    /// every path (fan-out, `POST /v1/events`, the test route).
    pub fn body(&self) -> String {
        // SQS refuses U+FFFE and U+FFFF in a message; as JSON escapes they are the same value.
        serde_json::to_string(self).expect("an EventIn always serialises").replace('\u{fffe}', "\\ufffe").replace('\u{ffff}', "\\uffff")
    }
}

/// The thin form of an envelope (a subscription's `payload: thin`): its `event_id`,
/// `event_type`, `tenant_id` and `occurred_at`, the delivery's id (by which the receiver fetches
/// the event: `GET /v1/deliveries/{delivery_id}`, its `event`) and `"thin": true`; no `data`.
pub fn thin_body(envelope: &str, delivery: &crate::ids::DeliveryId) -> String {
    use std::borrow::Cow;
    #[derive(Default, serde::Deserialize, serde::Serialize)]
    struct Thin<'a> {
        #[serde(borrow)]
        event_id: Cow<'a, str>,
        #[serde(borrow)]
        event_type: Cow<'a, str>,
        #[serde(borrow)]
        tenant_id: Cow<'a, str>,
        #[serde(borrow)]
        occurred_at: Cow<'a, str>,
        #[serde(default, borrow)]
        delivery_id: Cow<'a, str>,
        #[serde(default)]
        thin: bool,
    }
    // The envelope is ours (EventIn::body); `data` is skipped, not read into values.
    let mut thin: Thin = serde_json::from_str(envelope).unwrap_or_default();
    thin.delivery_id = Cow::Borrowed(delivery.as_str());
    thin.thin = true;
    serde_json::to_string(&thin).expect("strings serialise")
}

/// Why an event is refused. It goes to the event DLQ with `code(): detail` as its `reason`; the
/// detail names a field, never a value (a reason must not echo payload text).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Rejection {
    #[error("body is not JSON")]
    NotJson,
    /// The field at fault (or `body`).
    #[error("{0}")]
    Invalid(String),
    #[error("body exceeds {MAX_EVENT_BYTES} bytes")]
    TooLarge,
    #[error("tenant is not known to this service")]
    UnknownTenant,
}

impl Rejection {
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::NotJson => "not_json",
            Rejection::Invalid(_) => "invalid_envelope",
            Rejection::TooLarge => "too_large",
            Rejection::UnknownTenant => "unknown_tenant",
        }
    }

    /// `code: detail`, the DLQ message's `reason` attribute.
    pub fn reason(&self) -> String {
        format!("{}: {self}", self.code())
    }
}

const FIELDS: [&str; 5] = ["event_id", "event_type", "tenant_id", "occurred_at", "data"];

/// The field a serde error is about, by name only (serde's messages quote values).
fn field_of(message: &str) -> String {
    for prefix in ["missing field `", "unknown field `"] {
        if let Some(name) = message.split(prefix).nth(1).and_then(|r| r.split('`').next()) {
            return if FIELDS.contains(&name) { name.to_owned() } else { "body (an unknown field)".to_owned() };
        }
    }
    "body".to_owned()
}

/// Parses and checks an upstream envelope: every field, the tenant id by the API's rule.
pub fn parse_event(body: &str) -> Result<EventIn, Rejection> {
    if body.len() > MAX_EVENT_BYTES {
        return Err(Rejection::TooLarge);
    }
    let value: serde_json::Value = serde_json::from_str(body).map_err(|_| Rejection::NotJson)?;
    let Some(object) = value.as_object() else {
        return Err(Rejection::Invalid("body (not an object)".into()));
    };
    // Name the first field of the wrong type before serde does (its message quotes the value).
    for (field, ok) in [
        ("event_id", object.get("event_id").is_none_or(|v| v.is_string())),
        ("event_type", object.get("event_type").is_none_or(|v| v.is_string())),
        ("tenant_id", object.get("tenant_id").is_none_or(|v| v.is_string())),
        ("occurred_at", object.get("occurred_at").is_none_or(|v| v.as_str().is_some_and(|s| crate::timefmt::parse(s).is_some()))),
    ] {
        if !ok {
            return Err(Rejection::Invalid(field.into()));
        }
    }
    let event: EventIn = serde_json::from_value(value).map_err(|e| Rejection::Invalid(field_of(&e.to_string())))?;
    if !is_token(&event.event_id, 128) {
        return Err(Rejection::Invalid("event_id".into()));
    }
    if !is_valid_event_type(&event.event_type) {
        return Err(Rejection::Invalid("event_type".into()));
    }
    if TenantId::parse(event.tenant_id.as_str()).is_none() {
        return Err(Rejection::Invalid("tenant_id".into()));
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"{"event_id":"e1","event_type":"project.created","tenant_id":"acme","occurred_at":"2026-11-22T10:00:00Z","data":{}}"#;

    #[test]
    fn rejects_malformed_envelopes_naming_the_field_never_the_value() {
        assert!(parse_event(OK).is_ok());
        assert_eq!(parse_event("not json").unwrap_err(), Rejection::NotJson);
        assert_eq!(parse_event(&"x".repeat(MAX_EVENT_BYTES + 1)).unwrap_err(), Rejection::TooLarge);
        let cases = [
            (OK.replace("\"e1\"", "\"a b\""), "event_id"),
            (OK.replace("project.created", "A.B"), "event_type"),
            (OK.replace("\"acme\"", "\"\""), "tenant_id"),
            (OK.replace("\"acme\"", &format!("\"{}\"", "t".repeat(2048))), "tenant_id"),
            (OK.replace("\"acme\"", "\"secret-customer-text with spaces\""), "tenant_id"),
            (OK.replace("\"acme\"", "5"), "tenant_id"),
            (OK.replace("\"2026-11-22T10:00:00Z\"", "\"yesterday, secret\""), "occurred_at"),
            (OK.replace("\"data\"", "\"extra\":\"secret\",\"data\""), "body (an unknown field)"),
            (OK.replace(",\"data\":{}", ""), "data"),
            ("[1,2]".to_owned(), "body (not an object)"),
        ];
        for (body, field) in cases {
            let err = parse_event(&body).unwrap_err();
            assert_eq!(err, Rejection::Invalid(field.into()), "{body}");
            assert!(!err.reason().contains("secret"), "{}", err.reason());
        }
        assert_eq!(Rejection::Invalid("tenant_id".into()).reason(), "invalid_envelope: tenant_id");
    }

    #[test]
    fn bodies_escape_what_sqs_refuses_and_keep_the_value() {
        let e: EventIn = serde_json::from_str(r#"{"event_id":"e","event_type":"a.b","tenant_id":"t","occurred_at":"2026-11-22T10:00:00Z","data":"x\uffffy\ufffe"}"#).unwrap();
        let body = e.body();
        assert!(!body.contains('\u{ffff}') && !body.contains('\u{fffe}'));
        let back: EventIn = serde_json::from_str(&body).unwrap();
        assert_eq!(back.data, e.data);
    }

    /// The published JSON Schema of the envelope says what `EventIn` and `parse_event` do.
    #[test]
    fn the_envelope_schema_matches_the_parser() {
        let schema: serde_json::Value = serde_json::from_str(include_str!("../../docs/event-envelope.schema.json")).unwrap();
        let required: Vec<&str> = schema["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(required, FIELDS);
        let mut props: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        props.sort();
        assert_eq!(props, ["data", "event_id", "event_type", "occurred_at", "tenant_id"]);
        assert_eq!(schema["additionalProperties"], false);
        assert!(schema["description"].as_str().unwrap().contains(&MAX_EVENT_BYTES.to_string()));
        let full: serde_json::Value = serde_json::from_str(OK).unwrap();
        for field in required {
            let mut partial = full.clone();
            partial.as_object_mut().unwrap().remove(field);
            assert_eq!(parse_event(&partial.to_string()).unwrap_err(), Rejection::Invalid(field.into()), "{field} is required");
        }
    }
}
