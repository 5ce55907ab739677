//! Domain records: what upstream sends, what we store, and what travels on the delivery queue.

use crate::ids::{ApiKeyId, DeliveryId, SubscriptionId, TenantId};
use crate::signing::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The upstream contract: one event on the event queue (or `POST /v1/events`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    /// Upstream's id: 1–128 of `[A-Za-z0-9_.:-]`. Receivers dedupe by it.
    pub event_id: String,
    /// Dotted name, e.g. `project.created`.
    pub event_type: String,
    pub tenant_id: TenantId,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub data: serde_json::Value,
}

/// An event as fanned out: `body` holds the exact bytes every delivery of it POSTs and signs.
/// Stored once per event, referenced by its deliveries.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StoredEvent {
    pub tenant_id: TenantId,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
    pub expires_at: i64,
}

impl StoredEvent {
    /// The event with its body serialised once: fan-out, `POST /v1/events` and the test route all
    /// build it here, so the bytes are the same whichever path stored it first.
    pub fn from_event(event: &EventIn, expires_at: i64) -> Self {
        // SQS refuses U+FFFE and U+FFFF in a message; as JSON escapes they are the same value.
        let body = serde_json::to_string(event).expect("an EventIn always serialises").replace('\u{fffe}', "\\ufffe").replace('\u{ffff}', "\\uffff");
        Self { tenant_id: event.tenant_id.clone(), event_id: event.event_id.clone(), event_type: event.event_type.clone(), body, expires_at }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Subscription {
    pub tenant_id: TenantId,
    pub subscription_id: SubscriptionId,
    pub url: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub events: Vec<String>,
    pub enabled: bool,
    /// `false` once soft-deleted.
    pub active: bool,
    /// Static headers sent with every delivery (validated against reserved names).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub auth: EndpointAuth,
    #[serde(with = "secret_text")]
    pub secret: Secret,
    /// The secret before the last rotation, still signing until `previous_secret_expires_at`.
    #[serde(default, with = "secret_text_opt")]
    pub previous_secret: Option<Secret>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub previous_secret_expires_at: Option<OffsetDateTime>,
    /// Consecutive failed attempts since the last success.
    #[serde(default)]
    pub failure_count: u32,
    /// When the current run of failures began (cleared by a success).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub first_failure_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_delivered_at: Option<OffsetDateTime>,
    /// Why the service disabled it (e.g. `410 Gone`, or failing for days); `None` if a user did.
    #[serde(default)]
    pub disabled_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Subscription {
    /// A new, enabled subscription with a fresh secret and no history.
    pub fn new(tenant_id: TenantId, url: String, events: Vec<String>, now: OffsetDateTime) -> Self {
        Self {
            tenant_id,
            subscription_id: SubscriptionId::generate(),
            url,
            name: None,
            description: None,
            events,
            enabled: true,
            active: true,
            headers: BTreeMap::new(),
            auth: EndpointAuth::None,
            secret: Secret::generate(),
            previous_secret: None,
            previous_secret_expires_at: None,
            failure_count: 0,
            first_failure_at: None,
            last_delivered_at: None,
            disabled_reason: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Whether this subscription should receive an event of this type.
    pub fn wants(&self, event_type: &str) -> bool {
        self.enabled && self.active && self.events.iter().any(|p| crate::matching::matches(p, event_type))
    }

    /// The secrets that sign a delivery at `now`: the current one, plus the previous one during
    /// a rotation's overlap.
    pub fn signing_secrets(&self, now: OffsetDateTime) -> Vec<&Secret> {
        let mut out = vec![&self.secret];
        if let (Some(prev), Some(until)) = (&self.previous_secret, self.previous_secret_expires_at) {
            if now < until {
                out.push(prev);
            }
        }
        out
    }
}

/// How a delivery authenticates to the customer's endpoint. Credentials are write-only in the API.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EndpointAuth {
    #[default]
    None,
    Basic { username: String, password: String },
    ApiKey { header: String, value: String },
}

mod secret_text_opt {
    use super::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(s: &Option<Secret>, ser: S) -> Result<S::Ok, S::Error> {
        match s {
            Some(s) => ser.serialize_some(s.expose()),
            None => ser.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Secret>, D::Error> {
        Option::<String>::deserialize(de)?.map(|t| Secret::parse(&t).map_err(serde::de::Error::custom)).transpose()
    }
}

mod secret_text {
    use super::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(s: &Secret, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Secret, D::Error> {
        let text = String::deserialize(de)?;
        Secret::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

/// One event to one subscription. Its id is the `webhook-id` header.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Delivery {
    pub delivery_id: DeliveryId,
    pub tenant_id: TenantId,
    pub subscription_id: SubscriptionId,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// Summary of the latest attempt.
    #[serde(default)]
    pub last_status_code: Option<u16>,
    #[serde(default)]
    pub last_error_class: Option<FailureClass>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_attempt_at: Option<OffsetDateTime>,
    /// Fixed-width (the `by_subscription` index sorts by it).
    #[serde(with = "crate::timefmt")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub expires_at: i64,
}

impl Delivery {
    /// A new, never attempted delivery of `event` to `subscription`, with its derived id.
    pub fn pending(event: &EventIn, subscription: &SubscriptionId, now: OffsetDateTime, expires_at: i64) -> Self {
        Self {
            delivery_id: DeliveryId::derive(&event.tenant_id, &event.event_id, subscription),
            tenant_id: event.tenant_id.clone(),
            subscription_id: subscription.clone(),
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            last_status_code: None,
            last_error_class: None,
            last_attempt_at: None,
            created_at: now,
            updated_at: now,
            expires_at,
        }
    }
}

/// Why an attempt failed. A failing endpoint is an outcome, not an error of ours.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    Timeout,
    Dns,
    Connect,
    Tls,
    Http,
    Redirect,
    Blocked,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    #[default]
    Live,
    Test,
    Redeliver,
}

/// One HTTP attempt of a delivery.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Attempt {
    pub delivery_id: DeliveryId,
    pub attempt: u32,
    pub url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    pub duration_ms: u64,
    pub status_code: Option<u16>,
    pub error_class: Option<FailureClass>,
    pub error_message: Option<String>,
    /// A subset of the response headers (see `delivery::http::KEPT_RESPONSE_HEADERS`).
    #[serde(default)]
    pub response_headers: BTreeMap<String, String>,
    /// The first bytes of the response body (lossy UTF-8).
    pub response_body: Option<String>,
    pub trigger: Trigger,
    pub expires_at: i64,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.error_class.is_none()
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum Scope {
    #[serde(rename = "webhooks:read")]
    Read,
    #[serde(rename = "webhooks:write")]
    Write,
    #[serde(rename = "webhooks:delete")]
    Delete,
    /// Manage the tenant's API keys.
    #[serde(rename = "webhooks:admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Write, Scope::Delete, Scope::Admin];
    /// What a key gets when no scopes are named: everything but key management.
    pub const DEFAULT: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "webhooks:read",
            Scope::Write => "webhooks:write",
            Scope::Delete => "webhooks:delete",
            Scope::Admin => "webhooks:admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// An API key as stored: only the SHA-256 of the key, never the key.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ApiKeyRecord {
    pub key_hash: String,
    pub key_id: ApiKeyId,
    pub tenant_id: TenantId,
    pub scopes: Vec<Scope>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Messages on the delivery queue. Tagged and versioned so the format can evolve while old
/// messages drain.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type")]
pub enum DeliveryTask {
    #[serde(rename = "deliver.v1")]
    Deliver {
        delivery_id: DeliveryId,
        tenant_id: TenantId,
        subscription_id: SubscriptionId,
        event_id: String,
        /// Why this attempt happens; absent in messages of older producers (= live).
        #[serde(default)]
        trigger: Trigger,
    },
}

/// A tenant known to the service (created with its first API key). Events of unknown tenants
/// are rejected by fan-out.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TenantRecord {
    pub tenant_id: TenantId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_task_wire_format_is_tagged_and_versioned() {
        let t = DeliveryTask::Deliver {
            delivery_id: DeliveryId::parse("dlv_1").unwrap(),
            tenant_id: TenantId::parse("acme").unwrap(),
            subscription_id: SubscriptionId::parse("sub_1").unwrap(),
            event_id: "e1".into(),
            trigger: Trigger::Live,
        };
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["type"], "deliver.v1");
        assert_eq!(json["delivery_id"], "dlv_1");
        assert_eq!(serde_json::from_value::<DeliveryTask>(json.clone()).unwrap(), t);
        // Messages written before `trigger` existed still read (as live).
        let mut old = json;
        old.as_object_mut().unwrap().remove("trigger");
        assert_eq!(serde_json::from_value::<DeliveryTask>(old).unwrap(), t);
    }

    #[test]
    fn stored_bodies_escape_what_sqs_refuses_and_keep_the_value() {
        let e: EventIn = serde_json::from_str(r#"{"event_id":"e","event_type":"a.b","tenant_id":"t","occurred_at":"2026-11-22T10:00:00Z","data":"x\uffffy\ufffe"}"#).unwrap();
        let stored = StoredEvent::from_event(&e, 0);
        assert!(!stored.body.contains('\u{ffff}') && !stored.body.contains('\u{fffe}'));
        let back: EventIn = serde_json::from_str(&stored.body).unwrap();
        assert_eq!(back.data, e.data);
    }

    #[test]
    fn event_envelope_rejects_unknown_fields() {
        let ok = r#"{"event_id":"e1","event_type":"project.created","tenant_id":"acme","occurred_at":"2026-11-22T10:00:00Z","data":{}}"#;
        assert!(serde_json::from_str::<EventIn>(ok).is_ok());
        let extra = ok.replace("\"data\"", "\"extra\":1,\"data\"");
        assert!(serde_json::from_str::<EventIn>(&extra).is_err());
    }
}
