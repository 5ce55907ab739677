//! In-memory adapters for unit tests: same contracts as the DynamoDB/SQS ones.

use crate::ids::{DeliveryId, SubscriptionId, TenantId};
use crate::model::{ApiKeyRecord, Attempt, Delivery, DeliveryStatus, DeliveryTask, StoredEvent, Subscription};
use crate::ports::*;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
pub struct MemorySubscriptions(Mutex<BTreeMap<(TenantId, SubscriptionId), Subscription>>);

#[async_trait]
impl SubscriptionStore for MemorySubscriptions {
    async fn create(&self, sub: &Subscription) -> StoreResult<()> {
        let key = (sub.tenant_id.clone(), sub.subscription_id.clone());
        let mut map = self.0.lock().unwrap();
        if map.contains_key(&key) {
            return Err(StoreError::Conflict);
        }
        map.insert(key, sub.clone());
        Ok(())
    }

    async fn get(&self, tenant: &TenantId, id: &SubscriptionId) -> StoreResult<Option<Subscription>> {
        Ok(self.0.lock().unwrap().get(&(tenant.clone(), id.clone())).cloned())
    }

    async fn list(&self, tenant: &TenantId) -> StoreResult<Vec<Subscription>> {
        let map = self.0.lock().unwrap();
        Ok(map.iter().filter(|((t, _), _)| t == tenant).map(|(_, s)| s.clone()).collect())
    }
}

#[derive(Default)]
pub struct MemoryApiKeys(Mutex<HashMap<String, ApiKeyRecord>>);

#[async_trait]
impl ApiKeyStore for MemoryApiKeys {
    async fn put(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        self.0.lock().unwrap().insert(key.key_hash.clone(), key.clone());
        Ok(())
    }

    async fn get(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        Ok(self.0.lock().unwrap().get(key_hash).cloned())
    }
}

#[derive(Default)]
pub struct MemoryDeliveries {
    events: Mutex<HashMap<(TenantId, String), StoredEvent>>,
    deliveries: Mutex<HashMap<DeliveryId, Delivery>>,
    attempts: Mutex<BTreeMap<(DeliveryId, u32), Attempt>>,
}

#[async_trait]
impl DeliveryStore for MemoryDeliveries {
    async fn put_event(&self, event: &StoredEvent) -> StoreResult<Created> {
        let mut map = self.events.lock().unwrap();
        let key = (event.tenant_id.clone(), event.event_id.clone());
        if map.contains_key(&key) {
            return Ok(Created::Existed);
        }
        map.insert(key, event.clone());
        Ok(Created::New)
    }

    async fn get_event(&self, tenant: &TenantId, event_id: &str) -> StoreResult<Option<StoredEvent>> {
        Ok(self.events.lock().unwrap().get(&(tenant.clone(), event_id.to_owned())).cloned())
    }

    async fn create_delivery(&self, delivery: &Delivery) -> StoreResult<Created> {
        let mut map = self.deliveries.lock().unwrap();
        if map.contains_key(&delivery.delivery_id) {
            return Ok(Created::Existed);
        }
        map.insert(delivery.delivery_id.clone(), delivery.clone());
        Ok(Created::New)
    }

    async fn get_delivery(&self, id: &DeliveryId) -> StoreResult<Option<Delivery>> {
        Ok(self.deliveries.lock().unwrap().get(id).cloned())
    }

    async fn record_attempt(&self, attempt: &Attempt, status: DeliveryStatus) -> StoreResult<()> {
        let mut deliveries = self.deliveries.lock().unwrap();
        let d = deliveries.get_mut(&attempt.delivery_id).ok_or(StoreError::Conflict)?;
        d.status = status;
        d.attempts = attempt.attempt;
        self.attempts.lock().unwrap().insert((attempt.delivery_id.clone(), attempt.attempt), attempt.clone());
        Ok(())
    }

    async fn list_attempts(&self, id: &DeliveryId) -> StoreResult<Vec<Attempt>> {
        let map = self.attempts.lock().unwrap();
        Ok(map.iter().filter(|((d, _), _)| d == id).map(|(_, a)| a.clone()).collect())
    }
}

/// Records what was enqueued and every retry wait requested.
#[derive(Default)]
pub struct MemoryQueue {
    pub sent: Mutex<Vec<DeliveryTask>>,
    pub retries: Mutex<Vec<(MessageHandle, Duration)>>,
}

#[async_trait]
impl DeliveryQueue for MemoryQueue {
    async fn enqueue(&self, tasks: &[DeliveryTask]) -> StoreResult<Vec<usize>> {
        self.sent.lock().unwrap().extend_from_slice(tasks);
        Ok(Vec::new())
    }

    async fn retry_after(&self, handle: &MessageHandle, delay: Duration) -> StoreResult<()> {
        self.retries.lock().unwrap().push((handle.clone(), delay));
        Ok(())
    }
}
