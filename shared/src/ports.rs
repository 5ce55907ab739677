//! The ports domain code talks to. Each has a DynamoDB/SQS adapter and an in-memory one.

use crate::ids::{DeliveryId, SubscriptionId, TenantId};
use crate::model::{ApiKeyRecord, Attempt, Delivery, DeliveryStatus, DeliveryTask, StoredEvent, Subscription, TenantRecord};
use async_trait::async_trait;
use std::time::Duration;
use time::OffsetDateTime;

/// Our own infrastructure failing (never a customer endpoint failing: that is an outcome).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write found the item missing, already there, or in another state.
    #[error("conditional check failed")]
    Conflict,
    /// A pagination cursor that this store did not issue.
    #[error("invalid cursor")]
    BadCursor,
    #[error("{context}: {source}")]
    Backend {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("stored item is unreadable: {0}")]
    Corrupt(String),
    /// Some entries of a batch send kept failing: their indices.
    #[error("{} delivery tasks could not be enqueued", .0.len())]
    Unsent(Vec<usize>),
}

impl StoreError {
    pub fn backend(context: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend { context, source: Box::new(source) }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One page of a listing; `next` is an opaque cursor for the following page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    /// Creates it (`Conflict` if the id exists).
    async fn create(&self, sub: &Subscription) -> StoreResult<()>;
    async fn get(&self, tenant: &TenantId, id: &SubscriptionId) -> StoreResult<Option<Subscription>>;
    /// All subscriptions of a tenant, in id (= creation) order: Query, never a Scan.
    async fn list(&self, tenant: &TenantId) -> StoreResult<Vec<Subscription>>;
    /// Up to `limit` subscriptions after `cursor`, in creation order.
    async fn list_page(&self, tenant: &TenantId, cursor: Option<&str>, limit: usize) -> StoreResult<Page<Subscription>>;
    /// Replaces an existing subscription (`Conflict` if it does not exist).
    async fn replace(&self, sub: &Subscription) -> StoreResult<()>;
    /// Applies a delivery's effect on the subscription's health and returns the updated record
    /// (`None` if the subscription is gone).
    async fn record_health(&self, tenant: &TenantId, id: &SubscriptionId, change: HealthChange) -> StoreResult<Option<Subscription>>;
}

/// What one delivery attempt does to a subscription's health.
#[derive(Debug, Clone, PartialEq)]
pub enum HealthChange {
    /// `failure_count` = 0, `last_delivered_at` = at, the run of failures ends.
    Delivered { at: OffsetDateTime },
    /// `failure_count` + 1; a run of failures starts at `at` unless one is running.
    Failed { at: OffsetDateTime },
    /// `enabled` = false with the reason.
    Disable { reason: String, at: OffsetDateTime },
}

#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    async fn put(&self, key: &ApiKeyRecord) -> StoreResult<()>;
    async fn get(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>>;
    async fn list_for_tenant(&self, tenant: &TenantId) -> StoreResult<Vec<ApiKeyRecord>>;
    async fn delete(&self, key_hash: &str) -> StoreResult<()>;
}

#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Registers a tenant (no-op if known).
    async fn register(&self, tenant: &TenantRecord) -> StoreResult<()>;
    async fn exists(&self, tenant: &TenantId) -> StoreResult<bool>;
}

/// Whether a conditional create wrote the item or found it already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    Existed,
}

/// Which deliveries of a subscription to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub event_type: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}

impl DeliveryFilter {
    pub fn accepts(&self, d: &Delivery) -> bool {
        self.status.is_none_or(|s| d.status == s)
            && self.event_type.as_deref().is_none_or(|t| d.event_type == t)
            && self.since.is_none_or(|t| d.created_at >= t)
            && self.until.is_none_or(|t| d.created_at < t)
    }
}

#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Stores the event body once; a second put of the same event is `Existed`.
    async fn put_event(&self, event: &StoredEvent) -> StoreResult<Created>;
    async fn get_event(&self, tenant: &TenantId, event_id: &str) -> StoreResult<Option<StoredEvent>>;
    /// Creates the delivery unless one with its id exists (fan-out idempotency).
    async fn create_delivery(&self, delivery: &Delivery) -> StoreResult<Created>;
    async fn get_delivery(&self, id: &DeliveryId) -> StoreResult<Option<Delivery>>;
    /// Writes the attempt and moves the delivery to `status`, with the attempt as its summary.
    async fn record_attempt(&self, attempt: &Attempt, status: DeliveryStatus) -> StoreResult<()>;
    async fn list_attempts(&self, id: &DeliveryId) -> StoreResult<Vec<Attempt>>;
    /// A subscription's deliveries, newest first, filtered.
    async fn list_deliveries(&self, sub: &SubscriptionId, filter: &DeliveryFilter, cursor: Option<&str>, limit: usize) -> StoreResult<Page<Delivery>>;
    /// Sets the status without an attempt (e.g. the subscription was deleted meanwhile).
    async fn set_status(&self, id: &DeliveryId, status: DeliveryStatus) -> StoreResult<()>;
    /// `failed` → `pending` for a redelivery; `Conflict` if the delivery is not `failed`.
    async fn reopen(&self, id: &DeliveryId) -> StoreResult<()>;
}

/// Opaque handle of a received queue message (an SQS receipt handle in the adapter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageHandle(pub String);

#[async_trait]
pub trait Queues: Send + Sync {
    /// Enqueues delivery tasks (in batches of 10); returns the indices of those not sent.
    async fn enqueue_deliveries(&self, tasks: &[DeliveryTask]) -> StoreResult<Vec<usize>>;
    /// Makes a received delivery message visible again after `delay` (the retry wait).
    async fn retry_after(&self, handle: &MessageHandle, delay: Duration) -> StoreResult<()>;
    /// Puts an upstream event on the event queue (the `POST /v1/events` path).
    async fn publish_event(&self, body: &str) -> StoreResult<()>;
    /// Sends a rejected event's body to the event dead-letter queue, with the reason.
    async fn dead_letter_event(&self, body: &str, reason: &str, source_message_id: &str) -> StoreResult<()>;
}
