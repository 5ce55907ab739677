//! Domain records: what upstream sends, what we store, and what travels on the delivery queue.
//! Past 400 lines because the stored records and the task share their serde helpers (secrets,
//! filters as text) and each type is small: one file reads as the data model; its tests are the
//! wire formats of the task and the statuses.

use crate::ids::{ApiKeyId, DeliveryId, SubscriptionId, TenantId};
use crate::filter::Filter;
use crate::signing::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

pub use crate::envelope::EventIn;

/// An event published over HTTP, kept for `POST /v1/events`'s idempotency and for
/// `GET /v1/events/{id}`: `body` holds the exact bytes its deliveries POST and sign.
/// (Events from the queue are not stored apart: each delivery carries its event.)
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StoredEvent {
    pub tenant_id: TenantId,
    pub event_id: String,
    pub event_type: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub body: String,
    pub expires_at: i64,
}

impl StoredEvent {
    pub fn from_event(event: &EventIn, expires_at: i64) -> Self {
        Self {
            tenant_id: event.tenant_id.clone(),
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            occurred_at: event.occurred_at,
            body: event.body(),
            expires_at,
        }
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
    /// Selects events by their content as well (see [`crate::filter`]); stored as JSON text.
    #[serde(default, with = "filter_text", skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// What a delivery POSTs: the whole envelope, or its thin form.
    #[serde(default)]
    pub payload: PayloadMode,
    /// Its own retry schedule and timeout, within the stack's (`None`: the stack's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySettings>,
    pub enabled: bool,
    /// `false` once soft-deleted.
    pub active: bool,
    /// Static headers sent with every delivery (validated against reserved names).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub auth: EndpointAuth,
    /// The body-signature header and event header its receiver expects (absent: the standard ones).
    #[serde(default, skip_serializing_if = "SignatureSettings::is_default")]
    pub signature: SignatureSettings,
    /// A client certificate for mutual TLS, and CAs pinning the endpoint's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSettings>,
    /// At most this many POSTs per second to the endpoint, held across every worker
    /// (`delivery::limit`); `None`: no limit, and no cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_second: Option<u32>,
    /// `fifo`: its deliveries go one at a time, in publish order, through the ordered queue.
    #[serde(default, skip_serializing_if = "Ordering::is_unordered")]
    pub ordering: Ordering,
    /// The endpoint's circuit breaker (`delivery::circuit`): `open` defers deliveries without
    /// POSTing until a probe at `circuit_probe_at` succeeds.
    #[serde(default, skip_serializing_if = "CircuitState::is_closed")]
    pub circuit_state: CircuitState,
    /// When the circuit entered its state (absent: never opened).
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub circuit_since: Option<OffsetDateTime>,
    /// Open: when the next probe may go; half-open: until when the probe holds its lease.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub circuit_probe_at: Option<OffsetDateTime>,
    /// Failed probes since the circuit opened (each doubles the wait before the next).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub circuit_probes: u32,
    /// An HMAC secret (`v1`) or an ed25519 signing key (`v1a`).
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
    /// When the current run of failures began (cleared by a success). Absent, not null, when
    /// none: the health update's `if_not_exists` treats a stored null as a value.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
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
    /// Incremented by every change made through the API (the ETag). Delivery tasks carry the
    /// version fan-out saw, so a worker whose cached copy is older reloads it.
    #[serde(default)]
    pub version: u64,
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
            filter: None,
            payload: PayloadMode::Full,
            retry: None,
            enabled: true,
            active: true,
            headers: BTreeMap::new(),
            auth: EndpointAuth::None,
            signature: SignatureSettings::default(),
            tls: None,
            rate_limit_per_second: None,
            ordering: Ordering::Unordered,
            circuit_state: CircuitState::Closed,
            circuit_since: None,
            circuit_probe_at: None,
            circuit_probes: 0,
            secret: Secret::generate(),
            previous_secret: None,
            previous_secret_expires_at: None,
            failure_count: 0,
            first_failure_at: None,
            last_delivered_at: None,
            disabled_reason: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }


    /// The retry schedule its deliveries follow: its own, or the stack's.
    pub fn retry_policy<'a>(&self, stack: &'a crate::retry::RetryPolicy) -> std::borrow::Cow<'a, crate::retry::RetryPolicy> {
        match self.retry.as_ref().and_then(|r| r.schedule.as_ref()) {
            Some(waits) => std::borrow::Cow::Owned(crate::retry::RetryPolicy::new(waits.iter().map(|s| std::time::Duration::from_secs(*s)).collect())),
            None => std::borrow::Cow::Borrowed(stack),
        }
    }

    /// How long a delivery waits for the endpoint: its own timeout, or the stack's.
    pub fn delivery_timeout(&self, stack: std::time::Duration) -> std::time::Duration {
        self.retry.as_ref().and_then(|r| r.timeout_ms).map(std::time::Duration::from_millis).map_or(stack, |t| t.min(stack))
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

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Whether a subscription's deliveries keep publish order.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    #[default]
    Unordered,
    /// One at a time in publish order: its tasks go to the FIFO delivery queue with the
    /// subscription as message group (docs/architecture.md, "Ordered delivery").
    Fifo,
}

impl Ordering {
    pub fn is_unordered(&self) -> bool {
        *self == Self::Unordered
    }
}

/// A circuit breaker's state.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    #[default]
    Closed,
    /// Deliveries are deferred without a POST until the next probe.
    Open,
    /// One probe is in flight.
    HalfOpen,
}

impl CircuitState {
    pub fn is_closed(&self) -> bool {
        *self == Self::Closed
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// A subscription's own retry policy (TRST retries for 14 days and waits 20 s): the waits after
/// each failed attempt and the endpoint timeout, each bounded by the stack's own (the queue is
/// sized for those; see `api::validate::retry`). Absent parts are the stack's.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetrySettings {
    /// Seconds to wait after failed attempt 1, 2, …; `[]`: a single attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Vec<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// What a subscription's deliveries POST (TrustPager's "include trigger data"): the event's whole
/// envelope (`full`, the default), or its thin form (`thin`: the envelope without `data`, with
/// the delivery's id, by which the receiver fetches the event: `GET /v1/deliveries/{id}`).
/// Signatures cover what is sent.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PayloadMode {
    #[default]
    Full,
    Thin,
}

impl PayloadMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Thin => "thin",
        }
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
    /// OAuth2 client credentials (RFC 6749 section 4.4): a bearer token from `token_url`, cached
    /// per process until shortly before it expires (see `delivery::oauth`).
    #[serde(rename = "oauth2")]
    OAuth2 {
        token_url: String,
        client_id: String,
        client_secret: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        audience: Option<String>,
        #[serde(default)]
        client_auth: ClientAuth,
    },
}

/// How the client authenticates to an OAuth2 token endpoint (RFC 6749 section 2.3.1).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret (`client_secret_basic`).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    Body,
}

/// The body-only signature a subscription's receiver checks, beside Standard Webhooks' headers
/// (always sent), and the name of the event-type header. The exact bytes of each are in
/// docs/receiving-webhooks.md.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SignatureSettings {
    #[serde(default)]
    pub profile: Profile,
    /// The body signature's header (`sha256_hex` and `hex`; default `x-webhook-signature`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// The event-type header (default `x-webhook-event`; TRUST+ names it `X-TrustPlus-Event`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_header: Option<String>,
}

/// The fixed set of body-signature forms (the source documents' receivers).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Standard Webhooks plus `x-webhook-signature: sha256=<hex>`.
    #[default]
    Standard,
    /// `sha256=<hex>` in a named header (TRST).
    Sha256Hex,
    /// Bare `<hex>` in a named header (TrustPager).
    Hex,
}

pub const DEFAULT_SIGNATURE_HEADER: &str = "x-webhook-signature";
pub const DEFAULT_EVENT_HEADER: &str = "x-webhook-event";

impl SignatureSettings {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The body signature's header (lower-case) and whether its values carry `sha256=`.
    pub fn body_header(&self) -> (String, bool) {
        let name = || self.header.as_deref().unwrap_or(DEFAULT_SIGNATURE_HEADER).to_ascii_lowercase();
        match self.profile {
            Profile::Standard => (DEFAULT_SIGNATURE_HEADER.to_owned(), true),
            Profile::Sha256Hex => (name(), true),
            Profile::Hex => (name(), false),
        }
    }

    /// The event-type header (lower-case).
    pub fn event_header(&self) -> String {
        self.event_header.as_deref().unwrap_or(DEFAULT_EVENT_HEADER).to_ascii_lowercase()
    }
}

/// Mutual TLS to the endpoint: our client certificate and key (PEM), and the CAs (PEM) that alone
/// may issue the endpoint's certificate. The key is write-only in the API; `Debug` hides it.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificates: Option<String>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings").field("client_certificate", &self.client_certificate.is_some()).field("client_key", &"<redacted>").field("ca_certificates", &self.ca_certificates.is_some()).finish()
    }
}

/// A filter as its JSON text: one string attribute in DynamoDB, read back exactly.
pub(crate) mod filter_text {
    use crate::filter::Filter;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(f: &Option<Filter>, ser: S) -> Result<S::Ok, S::Error> {
        match f {
            Some(f) => ser.serialize_some(&f.to_text()),
            None => ser.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Filter>, D::Error> {
        Option::<String>::deserialize(de)?.map(|t| Filter::from_text(&t).map_err(serde::de::Error::custom)).transpose()
    }
}

mod secret_text_opt {
    use super::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(s: &Option<Secret>, ser: S) -> Result<S::Ok, S::Error> {
        match s {
            Some(s) => ser.serialize_some(&s.stored()),
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
        ser.serialize_str(&s.stored())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Secret, D::Error> {
        let text = String::deserialize(de)?;
        Secret::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A delivery's state as the API shows it (see the state machine in docs/architecture.md).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its first attempt, or reopened by a redelivery and waiting for it.
    Queued,
    /// An attempt failed; the next is at `next_attempt_at`.
    Retrying,
    Delivered,
    /// Retries exhausted, or the endpoint answered 410 Gone.
    Failed,
    /// Not attempted (any more): the subscription was deleted or disabled.
    Cancelled,
    /// Its queue message reached the delivery DLQ (our infrastructure failed it): resumed by a
    /// redrive of the DLQ or by the API's redeliver / recover.
    DeadLettered,
}

impl DeliveryStatus {
    /// Settled for good unless someone redelivers it.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Delivered | Self::Failed | Self::Cancelled)
    }

    /// What redeliver and recover reopen.
    pub fn is_recoverable(self) -> bool {
        matches!(self, Self::Failed | Self::Cancelled | Self::DeadLettered)
    }
}

/// A record's status: the API's, plus the moment a worker has claimed a redelivery.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    Queued,
    /// A worker claimed a queued redelivery and is attempting it (shown as `queued`).
    Attempting,
    Retrying,
    Delivered,
    Failed,
    Cancelled,
    DeadLettered,
}

impl RecordStatus {
    pub fn public(self) -> DeliveryStatus {
        match self {
            Self::Queued | Self::Attempting => DeliveryStatus::Queued,
            Self::Retrying => DeliveryStatus::Retrying,
            Self::Delivered => DeliveryStatus::Delivered,
            Self::Failed => DeliveryStatus::Failed,
            Self::Cancelled => DeliveryStatus::Cancelled,
            Self::DeadLettered => DeliveryStatus::DeadLettered,
        }
    }
}

/// One entry of a delivery's ledger: every write to a delivery appends one (an attempt and the
/// state after it, or a state change without an attempt), conditionally on its sequence number
/// being free, so writers never overwrite each other. The newest record is the delivery's head.
/// Record 1 also holds the event (its body, tenant and type), so the ledger alone can redeliver.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub delivery_id: DeliveryId,
    /// 1, 2, … within the delivery.
    pub seq: u32,
    pub event_id: String,
    pub event_type: String,
    pub status: RecordStatus,
    /// POSTs made so far, this record's included.
    pub attempts: u32,
    /// POSTs in the current run (a redelivery starts a new run with the whole schedule).
    pub run: u32,
    /// The queue message that owns a `retrying` or `attempting` delivery (its SQS message id).
    pub owner: Option<String>,
    pub next_attempt_at: Option<OffsetDateTime>,
    /// A queued redelivery's token: only the task that carries it may claim the delivery.
    pub token: Option<String>,
    /// When the API queued it (kept until a worker claims it; the sweeper's index).
    pub queued_at: Option<OffsetDateTime>,
    /// The POST this record reports, if it reports one.
    pub attempt: Option<Attempt>,
    /// Why it failed, was cancelled or dead-lettered (no payload text).
    pub reason: Option<String>,
    /// Record 1 only: the event's tenant and body.
    pub event: Option<RecordedEvent>,
    pub written_at: OffsetDateTime,
    pub expires_at: i64,
}

/// The event, as the first record of each of its deliveries keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    pub tenant_id: TenantId,
    pub body: String,
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
    /// The endpoint's credentials failed: its OAuth2 token endpoint refused us or was unreachable,
    /// or the endpoint refused a freshly fetched token.
    Auth,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    #[default]
    Live,
    Test,
    Redeliver,
}

/// One HTTP attempt of a delivery (a POST and what came back).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Attempt {
    /// 1, 2, … across all runs of the delivery.
    pub attempt: u32,
    pub url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    pub duration_ms: u64,
    pub status_code: Option<u16>,
    pub error_class: Option<FailureClass>,
    pub error_message: Option<String>,
    /// The response headers, within bounds and with credentials redacted (see `delivery::http`).
    #[serde(default)]
    pub response_headers: BTreeMap<String, String>,
    /// The first bytes of the response body (lossy UTF-8).
    pub response_body: Option<String>,
    pub trigger: Trigger,
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
    /// Publish events (`POST /v1/events`): for the platform's own services, never in a key
    /// handed to a customer (its events are signed with the customers' real secrets).
    #[serde(rename = "events:publish")]
    Publish,
}

impl Scope {
    pub const ALL: [Scope; 5] = [Scope::Read, Scope::Write, Scope::Delete, Scope::Admin, Scope::Publish];
    /// What a key gets when no scopes are named: what a customer needs to manage its
    /// subscriptions (not key management, not publishing).
    pub const DEFAULT: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "webhooks:read",
            Scope::Write => "webhooks:write",
            Scope::Delete => "webhooks:delete",
            Scope::Admin => "webhooks:admin",
            Scope::Publish => "events:publish",
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

/// Messages on the delivery queue. Tagged (`type`) and versioned so the format can evolve while
/// old messages drain. Read with [`DeliveryTask::parse`]: serde's internally tagged enums buffer
/// their input, which the verbatim body ([`serde_json::value::RawValue`]) cannot go through.
#[derive(Clone, Debug)]
pub enum DeliveryTask {
    /// One event to one subscription, with the event itself: the worker reads nothing that the
    /// task or its caches can answer.
    Deliver(Box<Deliver>),
}

const DELIVER_V2: &str = "deliver.v2";

impl Serialize for DeliveryTask {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Tagged<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            #[serde(flatten)]
            task: &'a Deliver,
        }
        match self {
            Self::Deliver(d) => Tagged { kind: DELIVER_V2, task: d }.serialize(ser),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Deliver {
    pub delivery_id: DeliveryId,
    pub tenant_id: TenantId,
    pub event_id: String,
    pub event_type: String,
    pub trigger: Trigger,
    /// Read the delivery's ledger before POSTing (the task may duplicate one already handled:
    /// fan-out ran the event again, or the sweeper re-sent it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub check: bool,
    /// A redelivery's claim token (see [`Record::token`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The subscription's version when fan-out matched it.
    #[serde(default)]
    pub subscription_version: u64,
    /// The exact bytes to POST: the event envelope, embedded verbatim.
    pub body: Box<serde_json::value::RawValue>,
    /// Where the sender puts it: the FIFO delivery queue (group: the subscription) when its
    /// subscription is ordered. Not part of the message: the queue it arrives on says it.
    #[serde(skip)]
    pub ordered: bool,
}

impl Deliver {
    /// The task that delivers `event` (whose envelope is `body`, the bytes it POSTs) as
    /// `delivery_id`, to the subscription at `subscription_version`; `check`: read the ledger first.
    pub fn of_event(event: &EventIn, delivery_id: DeliveryId, trigger: Trigger, check: bool, subscription_version: u64, body: Box<serde_json::value::RawValue>) -> Self {
        Self { delivery_id, tenant_id: event.tenant_id.clone(), event_id: event.event_id.clone(), event_type: event.event_type.clone(), trigger, check, token: None, subscription_version, body, ordered: false }
    }
}

impl DeliveryTask {
    /// Reads a task by its `type` tag.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        struct Tag<'a> {
            #[serde(rename = "type", borrow)]
            kind: std::borrow::Cow<'a, str>,
        }
        let tag: Tag = serde_json::from_str(text)?;
        match tag.kind.as_ref() {
            DELIVER_V2 => Ok(Self::Deliver(Box::new(serde_json::from_str(text)?))),
            other => Err(serde::de::Error::custom(format!("unknown task type {other}"))),
        }
    }

    pub fn new(d: Deliver) -> Self {
        Self::Deliver(Box::new(d))
    }

    pub fn deliver(&self) -> &Deliver {
        let Self::Deliver(d) = self;
        d
    }

    pub fn delivery_id(&self) -> &DeliveryId {
        &self.deliver().delivery_id
    }

    /// Sends it to the ordered (FIFO) queue, or not.
    pub fn set_ordered(&mut self, ordered: bool) {
        let Self::Deliver(d) = self;
        d.ordered = ordered;
    }
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
    use crate::ids::{EventSource, SubscriptionId};

    #[test]
    fn delivery_task_wire_format_is_tagged_versioned_and_embeds_the_body_verbatim() {
        let body = r#"{"event_id":"e1","data":{"b":[1, 2]}}"#;
        let id = DeliveryId::derive(EventSource::Queue, &TenantId::parse("acme").unwrap(), "e1", OffsetDateTime::UNIX_EPOCH, &SubscriptionId::parse("sub_1").unwrap());
        let t = DeliveryTask::new(Deliver {
            delivery_id: id.clone(),
            tenant_id: TenantId::parse("acme").unwrap(),
            event_id: "e1".into(),
            event_type: "a.b".into(),
            trigger: Trigger::Live,
            check: false,
            token: None,
            subscription_version: 3,
            body: serde_json::value::RawValue::from_string(body.into()).unwrap(),
            ordered: false,
        });
        let text = serde_json::to_string(&t).unwrap();
        assert!(text.contains(body), "the body's bytes are kept: {text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["type"], "deliver.v2");
        assert_eq!(json["delivery_id"], id.as_str());
        assert!(json.get("check").is_none() && json.get("token").is_none(), "defaults are not sent");
        let back = DeliveryTask::parse(&text).unwrap();
        assert_eq!(back.deliver().body.get(), body);
        assert_eq!(back.delivery_id(), &id);
        assert!(DeliveryTask::parse(&text.replace("deliver.v2", "deliver.v9")).is_err(), "an unknown version is refused");
    }

    #[test]
    fn statuses_split_into_terminal_and_recoverable() {
        use DeliveryStatus::*;
        assert!(Delivered.is_terminal() && Failed.is_terminal() && Cancelled.is_terminal());
        assert!(!Queued.is_terminal() && !Retrying.is_terminal() && !DeadLettered.is_terminal());
        assert_eq!([Failed, Cancelled, DeadLettered].map(DeliveryStatus::is_recoverable), [true; 3]);
        assert!(!Delivered.is_recoverable() && !Retrying.is_recoverable());
        assert_eq!(RecordStatus::Attempting.public(), Queued);
    }
}
