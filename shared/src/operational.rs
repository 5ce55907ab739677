//! Operational webhooks: events the service publishes about a tenant's own endpoints, in the
//! reserved namespaces `endpoint.` and `message.` (the names Svix and Standard Webhooks use), so
//! a customer learns that an endpoint was disabled or is failing without watching the console.
//!
//! They go through the normal pipeline: an envelope on the events queue (`source` attribute
//! `operational`), fanned out to the tenant's subscriptions that name them — a pattern such as
//! `endpoint.*` or `message.attempt.exhausted`; `*` does not include them — and never to the
//! subscription they are about (no loops), then signed and delivered like any webhook.
//! Publishing is best effort: a failure to publish is logged and counted, never fails the
//! delivery or the API call that caused it.
//!
//! | event | when | by |
//! |---|---|---|
//! | `endpoint.disabled` | a subscription was disabled: 410 Gone, or failing for `DISABLE_AFTER_SECS` | delivery worker |
//! | `endpoint.enabled` | a user enabled a disabled subscription again | API (`PATCH`) |
//! | `endpoint.circuit.opened` | an endpoint's circuit breaker opened after `CIRCUIT_FAILURES` consecutive failed attempts: its deliveries wait, probed | delivery worker |
//! | `endpoint.circuit.closed` | a delivery to an open (or half-open) endpoint succeeded: the circuit closed and its deliveries go again | delivery worker |
//! | `message.attempt.exhausted` | a delivery failed its last attempt (not one of an operational event: no ping-pong between two failing subscribers of each other's reports) | delivery worker |
//! | `message.attempt.failing` | an endpoint's first failed attempt after a success | delivery worker |
//! | `message.attempt.recovered` | an endpoint's first success after failures | delivery worker |

use crate::deps::Deps;
use crate::envelope::EventIn;
use crate::ids::{DeliveryId, EventSource, SubscriptionId, TenantId};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

pub const ENDPOINT_DISABLED: &str = "endpoint.disabled";
pub const ENDPOINT_ENABLED: &str = "endpoint.enabled";
pub const CIRCUIT_OPENED: &str = "endpoint.circuit.opened";
pub const CIRCUIT_CLOSED: &str = "endpoint.circuit.closed";
pub const ATTEMPT_EXHAUSTED: &str = "message.attempt.exhausted";
pub const ATTEMPT_FAILING: &str = "message.attempt.failing";
pub const ATTEMPT_RECOVERED: &str = "message.attempt.recovered";

/// Whether an event type is in a reserved namespace.
pub fn is_operational(event_type: &str) -> bool {
    event_type.starts_with("endpoint.") || event_type.starts_with("message.")
}

/// The subscription an operational event is about (its `data.subscription_id`), which never
/// receives it.
pub fn subject<'a>(event_type: &str, data: &'a Value) -> Option<&'a str> {
    if !is_operational(event_type) {
        return None;
    }
    data.get("subscription_id").and_then(Value::as_str)
}

/// What happened, with the ids that make its event id (one event per occurrence: the same
/// occurrence published twice fans out to the same deliveries).
pub enum Occurrence<'a> {
    Disabled { reason: &'a str },
    Enabled,
    Exhausted { delivery: &'a DeliveryId, event_id: &'a str, event_type: &'a str, attempts: u32, status_code: Option<u16> },
    Failing { failure_count: u32, status_code: Option<u16> },
    Recovered,
    CircuitOpened { failure_count: u32, next_probe_at: OffsetDateTime },
    CircuitClosed { opened_at: Option<OffsetDateTime> },
}

impl Occurrence<'_> {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Disabled { .. } => ENDPOINT_DISABLED,
            Self::Enabled => ENDPOINT_ENABLED,
            Self::Exhausted { .. } => ATTEMPT_EXHAUSTED,
            Self::Failing { .. } => ATTEMPT_FAILING,
            Self::Recovered => ATTEMPT_RECOVERED,
            Self::CircuitOpened { .. } => CIRCUIT_OPENED,
            Self::CircuitClosed { .. } => CIRCUIT_CLOSED,
        }
    }
}

/// The envelope of an occurrence about subscription `sub` at `at`.
pub fn envelope(tenant: &TenantId, sub: &SubscriptionId, what: &Occurrence<'_>, at: OffsetDateTime) -> EventIn {
    let event_type = what.event_type();
    let mut data = json!({"subscription_id": sub.as_str()});
    let (fields, unique) = match what {
        Occurrence::Disabled { reason } => (json!({"reason": reason}), at.unix_timestamp_nanos().to_string()),
        Occurrence::Enabled | Occurrence::Recovered => (json!({}), at.unix_timestamp_nanos().to_string()),
        Occurrence::Exhausted { delivery, event_id, event_type, attempts, status_code } => (
            json!({"delivery_id": delivery.as_str(), "event_id": event_id, "event_type": event_type, "attempts": attempts, "last_status_code": status_code}),
            format!("{delivery}#{attempts}"),
        ),
        Occurrence::CircuitOpened { failure_count, next_probe_at } => (json!({"failure_count": failure_count, "next_probe_at": crate::timefmt::format(*next_probe_at)}), at.unix_timestamp_nanos().to_string()),
        Occurrence::CircuitClosed { opened_at } => (json!({"opened_at": opened_at.map(crate::timefmt::format)}), at.unix_timestamp_nanos().to_string()),
        Occurrence::Failing { failure_count, status_code } => (json!({"failure_count": failure_count, "last_status_code": status_code}), at.unix_timestamp_nanos().to_string()),
    };
    if let (Value::Object(d), Value::Object(f)) = (&mut data, fields) {
        d.extend(f);
    }
    let digest = Sha256::digest(format!("{event_type}\n{sub}\n{unique}").as_bytes());
    EventIn {
        event_id: format!("op_{}", hex::encode(&digest[..12])),
        event_type: event_type.to_owned(),
        tenant_id: tenant.clone(),
        occurred_at: at,
        data,
    }
}

/// Publishes an occurrence (best effort: logged, never an error of the caller's).
pub async fn publish(deps: &Deps, tenant: &TenantId, sub: &SubscriptionId, what: Occurrence<'_>, at: OffsetDateTime) {
    let event = envelope(tenant, sub, &what, at);
    match deps.queues.publish_event(&event.body(), EventSource::Operational).await {
        Ok(()) => tracing::info!(operational_event = %event.event_type, event_id = %event.event_id, "operational event published"),
        Err(e) => tracing::error!(operational_event = %event.event_type, error = %e, "cannot publish the operational event"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_name_their_subject_and_repeat_their_id_for_one_occurrence() {
        let (t, s) = (TenantId::parse("acme").unwrap(), SubscriptionId::parse("sub_1").unwrap());
        let at = OffsetDateTime::UNIX_EPOCH;
        let d = DeliveryId::derive(EventSource::Queue, &t, "e1", at, &s);
        let what = || Occurrence::Exhausted { delivery: &d, event_id: "e1", event_type: "project.created", attempts: 3, status_code: Some(500) };
        let (a, b) = (envelope(&t, &s, &what(), at), envelope(&t, &s, &what(), at + time::Duration::SECOND));
        assert_eq!(a.event_id, b.event_id, "the same exhaustion is one event");
        assert_eq!((a.event_type.as_str(), subject(&a.event_type, &a.data)), (ATTEMPT_EXHAUSTED, Some("sub_1")));
        assert_eq!(a.data["delivery_id"], d.as_str());
        assert!(crate::envelope::parse_event(&a.body()).is_ok(), "a valid envelope");
        let (x, y) = (envelope(&t, &s, &Occurrence::Recovered, at), envelope(&t, &s, &Occurrence::Recovered, at + time::Duration::SECOND));
        assert_ne!(x.event_id, y.event_id, "two recoveries are two events");
        assert!(is_operational("endpoint.disabled") && !is_operational("project.created"));
        assert_eq!(subject("project.created", &json!({"subscription_id": "sub_1"})), None);
    }
}
