//! The ports domain code talks to. Each has a DynamoDB/SQS adapter and an in-memory one; one
//! contract suite (`ports::contract`) runs against both. Past 400 lines because every port and
//! the value types of its calls (changes, marks, the circuit's moves) are here together: adapters
//! and handlers import one module, and a change's `apply` (the in-memory semantics) sits by it.

use crate::ids::{DeliveryId, SubscriptionId, TenantId};
use crate::model::{ApiKeyRecord, DeliveryStatus, DeliveryTask, EndpointAuth, Record, RecordStatus, StoredEvent, Subscription, TenantRecord};
use crate::signing::Secret;
use std::collections::BTreeMap;
use async_trait::async_trait;
use std::time::Duration;
use time::OffsetDateTime;

#[cfg(any(test, feature = "testing"))]
pub mod contract;

/// Our own infrastructure failing, or a conditional write losing (never a customer endpoint
/// failing: that is an outcome).
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// A conditional write found the item missing, already there, or in another state.
    #[error("conditional check failed")]
    Conflict,
    /// A pagination cursor that this store did not issue.
    #[error("invalid cursor")]
    BadCursor,
    /// An item that must exist does not.
    #[error("{0} not found")]
    Missing(String),
    /// A limit held by a conditional counter is reached.
    #[error("limit reached")]
    LimitReached,
    #[error("{context}: {source}")]
    Backend {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An item that exists but cannot be read as the domain record.
    #[error("stored item is unreadable: {0}")]
    Corrupt(String),
}

impl PortError {
    pub fn backend(context: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend { context, source: Box::new(source) }
    }
}

pub type PortResult<T> = Result<T, PortError>;

/// One page of a listing; `next` is an opaque cursor for the following page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    /// Creates it within the tenant's limit of `max_active` active subscriptions (one transaction
    /// with the tenant's counter, so racing creates cannot exceed it): `Conflict` if the id
    /// exists, `LimitReached` if the tenant is at its limit.
    async fn create(&self, sub: &Subscription, max_active: usize) -> PortResult<()>;
    /// Strongly consistent.
    async fn get(&self, tenant: &TenantId, id: &SubscriptionId) -> PortResult<Option<Subscription>>;
    /// Up to `limit` subscriptions after `cursor` (a subscription id), deleted ones included, in
    /// id (= creation) order: Query, never a Scan.
    async fn list_page(&self, tenant: &TenantId, cursor: Option<&SubscriptionId>, limit: usize) -> PortResult<Page<Subscription>>;
    /// What fan-out matches: the tenant's active subscriptions only (a sparse index: deleted ones
    /// are never read, however many a tenant keeps), eventually consistent.
    async fn subscribers(&self, tenant: &TenantId) -> PortResult<Vec<Subscriber>>;
    /// Changes the named fields only, and the version (+1). With `expect`, only if the version is
    /// that one: `Conflict` if it is another, `Missing` if there is no such subscription.
    async fn update(&self, tenant: &TenantId, id: &SubscriptionId, change: &SubscriptionChange, expect: Option<u64>) -> PortResult<Subscription>;
    /// Soft delete (`active` false, purged after `purge_at`) or restore (within `max_active`),
    /// moving the tenant's counter in the same transaction. `Missing`, `Conflict` (version) or
    /// `LimitReached`; a subscription already in that state is returned as it is.
    async fn set_active(&self, tenant: &TenantId, id: &SubscriptionId, change: ActiveChange, expect: Option<u64>) -> PortResult<Subscription>;
    /// Applies a delivery's effect on the subscription's health; writes only the health fields
    /// (the delivery function's IAM policy allows no others). Returns the run of failures after
    /// it (`None` if the subscription is gone).
    async fn record_health(&self, tenant: &TenantId, id: &SubscriptionId, change: HealthChange) -> PortResult<Option<HealthAfter>>;
    /// Moves the endpoint's circuit breaker, if it is in the state the move starts from
    /// (`Conflict` otherwise, or if the subscription is gone); writes only the `circuit_*` fields.
    async fn move_circuit(&self, tenant: &TenantId, id: &SubscriptionId, change: &CircuitChange) -> PortResult<()>;
}

/// The moves of a circuit breaker (`delivery::circuit`), each conditional on the state it starts
/// from, so of racing workers exactly one makes it.
#[derive(Debug, Clone, PartialEq)]
pub enum CircuitChange {
    /// closed → open: the run of failures reached the threshold; the first probe at `probe_at`.
    Open { at: OffsetDateTime, probe_at: OffsetDateTime },
    /// open (probe due at or before `at`) or half-open (lease expired) → half-open: this worker
    /// probes, holding the lease until `lease_until`.
    Probe { at: OffsetDateTime, lease_until: OffsetDateTime },
    /// half-open → open: the probe failed; the next at `probe_at`, one more failed probe counted.
    Reopen { probe_at: OffsetDateTime },
    /// open or half-open → closed: a delivery succeeded.
    Close { at: OffsetDateTime },
}

impl CircuitChange {
    /// What the move does to a subscription that is in the state it starts from; `false` if not.
    pub fn apply(&self, s: &mut Subscription) -> bool {
        use crate::model::CircuitState::*;
        match (self, s.circuit_state) {
            (Self::Open { at, probe_at }, Closed) => {
                (s.circuit_state, s.circuit_since, s.circuit_probe_at, s.circuit_probes) = (Open, Some(*at), Some(*probe_at), 0);
            }
            (Self::Probe { at, lease_until }, Open | HalfOpen) if s.circuit_probe_at.is_some_and(|p| p <= *at) => {
                if s.circuit_state == Open {
                    s.circuit_since = Some(*at);
                }
                (s.circuit_state, s.circuit_probe_at) = (HalfOpen, Some(*lease_until));
            }
            (Self::Reopen { probe_at }, HalfOpen) => {
                (s.circuit_state, s.circuit_probe_at) = (Open, Some(*probe_at));
                s.circuit_probes += 1;
            }
            (Self::Close { at }, Open | HalfOpen) => {
                (s.circuit_state, s.circuit_since, s.circuit_probe_at, s.circuit_probes) = (Closed, Some(*at), None, 0);
            }
            _ => return false,
        }
        true
    }
}

/// What fan-out needs of a subscription to match events and address its tasks (the attributes
/// the sparse `active` index projects).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Subscriber {
    pub subscription_id: SubscriptionId,
    pub events: Vec<String>,
    #[serde(default, with = "crate::model::filter_text", skip_serializing_if = "Option::is_none")]
    pub filter: Option<crate::filter::Filter>,
    pub enabled: bool,
    #[serde(default)]
    pub version: u64,
    /// Its tasks go to the FIFO delivery queue.
    #[serde(default, skip_serializing_if = "crate::model::Ordering::is_unordered")]
    pub ordering: crate::model::Ordering,
}

impl Subscriber {
    /// Whether an event of this type passes the subscription's patterns (only). Operational
    /// events (`endpoint.*`, `message.*`) must be named: `*` does not take them.
    pub fn wants_type(&self, event_type: &str) -> bool {
        let operational = crate::operational::is_operational(event_type);
        self.enabled && self.events.iter().any(|p| crate::matching::matches(p, event_type) && !(operational && p == "*"))
    }

    /// Whether the subscription gets this event: its patterns, then its filter on `data`.
    /// Never an operational event about itself (no loops).
    pub fn wants(&self, event_type: &str, data: &serde_json::Value) -> bool {
        self.wants_type(event_type)
            && crate::operational::subject(event_type, data) != Some(self.subscription_id.as_str())
            && self.filter.as_ref().is_none_or(|f| f.matches(event_type, data))
    }
}

impl From<&Subscription> for Subscriber {
    fn from(s: &Subscription) -> Self {
        Self { subscription_id: s.subscription_id.clone(), events: s.events.clone(), filter: s.filter.clone(), enabled: s.enabled, version: s.version, ordering: s.ordering }
    }
}

/// A change of a subscription's own fields (`None`: unchanged). Each write touches only these.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionChange {
    pub url: Option<String>,
    /// `Some(None)` clears it.
    pub name: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub events: Option<Vec<String>>,
    /// `Some(None)` removes it.
    pub filter: Option<Option<crate::filter::Filter>>,
    pub payload: Option<crate::model::PayloadMode>,
    /// `Some(None)` returns to the stack's policy.
    pub retry: Option<Option<crate::model::RetrySettings>>,
    /// `true` also starts a fresh health record (no failures, no `disabled_reason`); `false`
    /// clears `disabled_reason` (a user disabled it).
    pub enabled: Option<bool>,
    pub headers: Option<BTreeMap<String, String>>,
    pub auth: Option<EndpointAuth>,
    pub signature: Option<crate::model::SignatureSettings>,
    /// `Some(None)` removes the client certificate.
    pub tls: Option<Option<crate::model::TlsSettings>>,
    /// `Some(None)` removes the limit.
    pub rate_limit_per_second: Option<Option<u32>>,
    pub ordering: Option<crate::model::Ordering>,
    /// A rotation: the new secret, and until when the current one keeps signing beside it.
    pub rotate: Option<(Secret, OffsetDateTime)>,
    pub at: Option<OffsetDateTime>,
}

impl SubscriptionChange {
    /// What the change does to a subscription (the in-memory store applies it so; the DynamoDB
    /// adapter's update expression does the same), version included.
    pub fn apply(&self, s: &mut Subscription) {
        if let Some(v) = &self.url {
            s.url = v.clone();
        }
        if let Some(v) = &self.name {
            s.name = v.clone();
        }
        if let Some(v) = &self.description {
            s.description = v.clone();
        }
        if let Some(v) = &self.events {
            s.events = v.clone();
        }
        if let Some(v) = &self.filter {
            s.filter = v.clone();
        }
        if let Some(v) = self.payload {
            s.payload = v;
        }
        if let Some(v) = &self.retry {
            s.retry = v.clone();
        }
        if let Some(v) = &self.headers {
            s.headers = v.clone();
        }
        if let Some(v) = &self.auth {
            s.auth = v.clone();
        }
        if let Some(v) = &self.signature {
            s.signature = v.clone();
        }
        if let Some(v) = &self.tls {
            s.tls = v.clone();
        }
        if let Some(v) = self.rate_limit_per_second {
            s.rate_limit_per_second = v;
        }
        if let Some(v) = self.ordering {
            s.ordering = v;
        }
        match self.enabled {
            Some(true) => {
                s.enabled = true;
                s.disabled_reason = None;
                s.failure_count = 0;
                s.first_failure_at = None;
            }
            Some(false) => {
                s.enabled = false;
                s.disabled_reason = None;
            }
            None => {}
        }
        if let Some((secret, until)) = &self.rotate {
            s.previous_secret = Some(std::mem::replace(&mut s.secret, secret.clone()));
            s.previous_secret_expires_at = Some(*until);
        }
        if let Some(at) = self.at {
            s.updated_at = at;
        }
        s.version += 1;
    }
}

/// Delete or restore.
#[derive(Debug, Clone, PartialEq)]
pub enum ActiveChange {
    Delete { at: OffsetDateTime, purge_at: i64 },
    Restore { at: OffsetDateTime, max_active: usize },
}

/// A subscription's run of failures after a health change.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthAfter {
    pub failure_count: u32,
    pub first_failure_at: Option<OffsetDateTime>,
    /// A success that ended a run of failures (the count was above zero before it).
    pub ended_run: bool,
}

/// What deliveries do to a subscription's health.
#[derive(Debug, Clone, PartialEq)]
pub enum HealthChange {
    /// `failure_count` = 0, `last_delivered_at` = at, the run of failures ends.
    Delivered { at: OffsetDateTime },
    /// `failure_count` + `count`; a run of failures starts at `since` unless one is running.
    Failed { count: u32, since: OffsetDateTime },
    /// `enabled` = false with the reason.
    Disable { reason: String, at: OffsetDateTime },
}

#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Stores a new key (`Conflict` if its hash exists).
    async fn put(&self, key: &ApiKeyRecord) -> PortResult<()>;
    async fn get(&self, key_hash: &str) -> PortResult<Option<ApiKeyRecord>>;
    async fn list_for_tenant(&self, tenant: &TenantId) -> PortResult<Vec<ApiKeyRecord>>;
    async fn delete(&self, key_hash: &str) -> PortResult<()>;
}

#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Registers a tenant (no-op if known).
    async fn register(&self, tenant: &TenantRecord) -> PortResult<()>;
    async fn exists(&self, tenant: &TenantId) -> PortResult<bool>;
}

/// Whether a conditional create wrote the item or found it already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    Existed,
}

/// Events published over HTTP (idempotency of `POST /v1/events`, and `GET /v1/events/{id}`).
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores the event once; a second put of the same (tenant, id) is `Existed`.
    async fn put(&self, event: &StoredEvent) -> PortResult<Created>;
    async fn get(&self, tenant: &TenantId, event_id: &str) -> PortResult<Option<StoredEvent>>;
}

/// How a read of the ledger reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    Strong,
    /// Half the read units; may miss a write of the last second or so.
    Eventual,
}

/// Which deliveries of a subscription to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryFilter {
    /// Any of these (empty: all).
    pub status: Vec<DeliveryStatus>,
    pub event_type: Option<String>,
    /// By the event's `occurred_at`.
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}

/// A delivery as its records show it: the head, and every record oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub records: Vec<Record>,
}

impl Delivery {
    pub fn head(&self) -> &Record {
        self.records.last().expect("a delivery has at least one record")
    }

    pub fn id(&self) -> &DeliveryId {
        &self.head().delivery_id
    }

    pub fn status(&self) -> DeliveryStatus {
        self.head().status.public()
    }

    /// The latest record that reports a POST.
    pub fn last_attempt(&self) -> Option<&crate::model::Attempt> {
        self.records.iter().rev().find_map(|r| r.attempt.as_ref())
    }

    /// Record 1's event (tenant and body), if the ledger holds record 1.
    pub fn event(&self) -> Option<&crate::model::RecordedEvent> {
        self.records.first().and_then(|r| r.event.as_ref())
    }
}

/// What a conditional change of a delivery's head requires.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    /// The head's status is one of these.
    pub status: Vec<RecordStatus>,
    /// And its token is this one (`None`: any).
    pub token: Option<String>,
}

/// A change of a delivery's head record in place (API and sweeper actions; workers append).
#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    /// Reopened for a redelivery that the task with `token` performs.
    Queue { token: String, at: OffsetDateTime },
    /// A worker (queue message `owner`) claims the queued redelivery.
    Claim { owner: String },
    /// The sweeper re-sent its task at `at`.
    Resent { at: OffsetDateTime },
    /// No longer queued (a newer record superseded it).
    Unqueue,
}

/// The delivery ledger: per subscription, every delivery's records (see docs/architecture.md).
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Writes `record` unless its (delivery, seq) exists: `Conflict` then.
    async fn append(&self, record: &Record) -> PortResult<()>;
    /// The newest record of a delivery.
    async fn head(&self, id: &DeliveryId, read: Read) -> PortResult<Option<Record>>;
    /// Every record of a delivery (strongly consistent); `None` if it has none.
    async fn delivery(&self, id: &DeliveryId) -> PortResult<Option<Delivery>>;
    /// Changes record `seq` if it meets `expect` (`Conflict` otherwise).
    async fn mark(&self, id: &DeliveryId, seq: u32, expect: &Expect, mark: &Mark) -> PortResult<()>;
    /// A subscription's deliveries, newest event first, filtered.
    async fn list(&self, sub: &SubscriptionId, filter: &DeliveryFilter, cursor: Option<&str>, limit: usize) -> PortResult<Page<Delivery>>;
    /// Records the API queued before `before` that no worker has claimed (the sweeper's input).
    async fn queued_before(&self, before: OffsetDateTime, limit: usize) -> PortResult<Vec<(DeliveryId, u32)>>;
    /// The rate limiter's admission counter (`delivery::limit`): the next ticket of `sub`'s
    /// one-second window `second` (Unix seconds), 1 for its first taker, 2 for the next, … (one
    /// atomic counter write, in an item of its own beside the ledger's).
    async fn ticket(&self, sub: &SubscriptionId, second: i64) -> PortResult<u64>;
}

/// Opaque handle of a received queue message (an SQS receipt handle in the adapter).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageHandle(pub String);

/// The queues a handler changes messages of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueName {
    Events,
    Deliveries,
    DeliveryDlq,
    /// The FIFO event queue (events whose order matters), the FIFO delivery queue (ordered
    /// subscriptions) and its DLQ.
    OrderedEvents,
    OrderedDeliveries,
    OrderedDeliveryDlq,
}

/// A message received for inspection (the sweeper's view of the delivery DLQ).
#[derive(Debug, Clone)]
pub struct Peeked {
    /// Which DLQ it is in.
    pub queue: QueueName,
    pub handle: MessageHandle,
    pub message_id: String,
    pub body: String,
}

#[async_trait]
pub trait Queues: Send + Sync {
    /// Enqueues delivery tasks (batched); returns the indices of those not sent.
    async fn send_tasks(&self, tasks: &[DeliveryTask]) -> PortResult<Vec<usize>>;
    /// Hides received messages of `queue` for the given times (batched; zero makes one visible
    /// again); returns the indices of the changes that failed.
    async fn set_visibility(&self, queue: QueueName, changes: &[(MessageHandle, Duration)]) -> PortResult<Vec<usize>>;
    /// Puts an event on the event queue: `POST /v1/events` (`Http`), the service's own
    /// operational events (`Operational`), or `webhooks-local publish` (`Queue`, as upstream
    /// services send); its `source` attribute says which.
    async fn publish_event(&self, body: &str, source: crate::ids::EventSource) -> PortResult<()>;
    /// Sends a rejected event's body to the event dead-letter queue, with the reason.
    async fn dead_letter_event(&self, body: &str, reason: &str, source_message_id: &str) -> PortResult<()>;
    /// Receives up to `max` messages of the delivery DLQs (standard, then FIFO), hidden for `hide` (they stay there).
    async fn peek_dead_tasks(&self, max: usize, hide: Duration) -> PortResult<Vec<Peeked>>;
}
