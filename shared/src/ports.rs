//! The ports domain code talks to. Each has a DynamoDB/SQS adapter and an in-memory one.

use crate::ids::{DeliveryId, SubscriptionId, TenantId};
use crate::model::{ApiKeyRecord, Attempt, Delivery, DeliveryStatus, DeliveryTask, StoredEvent, Subscription};
use async_trait::async_trait;
use std::time::Duration;

/// Our own infrastructure failing (never a customer endpoint failing: that is an outcome).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write found the item already there or changed.
    #[error("conditional check failed")]
    Conflict,
    #[error("{context}: {source}")]
    Backend {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("stored item is unreadable: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn backend(context: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend { context, source: Box::new(source) }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    async fn create(&self, sub: &Subscription) -> StoreResult<()>;
    async fn get(&self, tenant: &TenantId, id: &SubscriptionId) -> StoreResult<Option<Subscription>>;
    /// All subscriptions of a tenant, in id (= creation) order: one Query, never a Scan.
    async fn list(&self, tenant: &TenantId) -> StoreResult<Vec<Subscription>>;
}

#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    async fn put(&self, key: &ApiKeyRecord) -> StoreResult<()>;
    async fn get(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>>;
}

/// Whether a conditional create wrote the item or found it already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    Existed,
}

#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Stores the event body once; a second put of the same event is `Existed`.
    async fn put_event(&self, event: &StoredEvent) -> StoreResult<Created>;
    async fn get_event(&self, tenant: &TenantId, event_id: &str) -> StoreResult<Option<StoredEvent>>;
    /// Creates the delivery unless one with its id exists (fan-out idempotency).
    async fn create_delivery(&self, delivery: &Delivery) -> StoreResult<Created>;
    async fn get_delivery(&self, id: &DeliveryId) -> StoreResult<Option<Delivery>>;
    /// Writes the attempt and moves the delivery to `status` with `attempts` = this attempt's number.
    async fn record_attempt(&self, attempt: &Attempt, status: DeliveryStatus) -> StoreResult<()>;
    async fn list_attempts(&self, id: &DeliveryId) -> StoreResult<Vec<Attempt>>;
}

/// Opaque handle of a received queue message (an SQS receipt handle in the adapter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageHandle(pub String);

#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Enqueues the tasks (in batches of 10); returns the indices of those that could not be sent.
    async fn enqueue(&self, tasks: &[DeliveryTask]) -> StoreResult<Vec<usize>>;
    /// Makes a received message visible again after `delay` (the retry wait).
    async fn retry_after(&self, handle: &MessageHandle, delay: Duration) -> StoreResult<()>;
}
