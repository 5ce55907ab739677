//! In-memory adapters for unit tests: same contracts as the DynamoDB/SQS ones.

use crate::ids::{DeliveryId, SubscriptionId, TenantId};
use crate::model::{ApiKeyRecord, Attempt, Delivery, DeliveryStatus, DeliveryTask, StoredEvent, Subscription, TenantRecord};
use crate::ports::*;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

/// Applies a health change to a subscription (shared with the DynamoDB adapter's tests).
pub fn apply_health(sub: &mut Subscription, change: &HealthChange) {
    match change {
        HealthChange::Delivered { at } => {
            sub.failure_count = 0;
            sub.first_failure_at = None;
            sub.last_delivered_at = Some(*at);
        }
        HealthChange::Failed { at } => {
            sub.failure_count += 1;
            sub.first_failure_at.get_or_insert(*at);
        }
        HealthChange::Disable { reason, at } => {
            sub.enabled = false;
            sub.disabled_reason = Some(reason.clone());
            sub.updated_at = *at;
        }
    }
}

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

    async fn list_page(&self, tenant: &TenantId, cursor: Option<&str>, limit: usize) -> StoreResult<Page<Subscription>> {
        let all = self.list(tenant).await?;
        let after: Vec<_> = all.into_iter().filter(|s| cursor.is_none_or(|c| s.subscription_id.as_str() > c)).collect();
        let more = after.len() > limit;
        let items: Vec<_> = after.into_iter().take(limit).collect();
        let next = more.then(|| items.last().map(|s| s.subscription_id.to_string())).flatten();
        Ok(Page { items, next })
    }

    async fn replace(&self, sub: &Subscription) -> StoreResult<()> {
        let key = (sub.tenant_id.clone(), sub.subscription_id.clone());
        let mut map = self.0.lock().unwrap();
        let slot = map.get_mut(&key).ok_or(StoreError::Conflict)?;
        *slot = sub.clone();
        Ok(())
    }

    async fn record_health(&self, tenant: &TenantId, id: &SubscriptionId, change: HealthChange) -> StoreResult<Option<Subscription>> {
        let mut map = self.0.lock().unwrap();
        Ok(map.get_mut(&(tenant.clone(), id.clone())).map(|s| {
            apply_health(s, &change);
            s.clone()
        }))
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

    async fn list_for_tenant(&self, tenant: &TenantId) -> StoreResult<Vec<ApiKeyRecord>> {
        let mut keys: Vec<_> = self.0.lock().unwrap().values().filter(|k| &k.tenant_id == tenant).cloned().collect();
        keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        Ok(keys)
    }

    async fn delete(&self, key_hash: &str) -> StoreResult<()> {
        self.0.lock().unwrap().remove(key_hash);
        Ok(())
    }
}

#[derive(Default)]
pub struct MemoryTenants(Mutex<HashMap<TenantId, TenantRecord>>);

#[async_trait]
impl TenantStore for MemoryTenants {
    async fn register(&self, tenant: &TenantRecord) -> StoreResult<()> {
        self.0.lock().unwrap().entry(tenant.tenant_id.clone()).or_insert_with(|| tenant.clone());
        Ok(())
    }

    async fn exists(&self, tenant: &TenantId) -> StoreResult<bool> {
        Ok(self.0.lock().unwrap().contains_key(tenant))
    }
}

/// Events by tenant then id, attempts by delivery: lookups borrow the caller's keys (no key is
/// built per call) and listing a delivery's attempts reads only its own.
#[derive(Default)]
pub struct MemoryDeliveries {
    events: Mutex<HashMap<TenantId, HashMap<String, StoredEvent>>>,
    deliveries: Mutex<HashMap<DeliveryId, Delivery>>,
    attempts: Mutex<HashMap<DeliveryId, BTreeMap<u32, Attempt>>>,
}

#[async_trait]
impl DeliveryStore for MemoryDeliveries {
    async fn put_event(&self, event: &StoredEvent) -> StoreResult<Created> {
        let mut map = self.events.lock().unwrap();
        let of_tenant = map.entry(event.tenant_id.clone()).or_default();
        if of_tenant.contains_key(&event.event_id) {
            return Ok(Created::Existed);
        }
        of_tenant.insert(event.event_id.clone(), event.clone());
        Ok(Created::New)
    }

    async fn get_event(&self, tenant: &TenantId, event_id: &str) -> StoreResult<Option<StoredEvent>> {
        Ok(self.events.lock().unwrap().get(tenant).and_then(|m| m.get(event_id)).cloned())
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
        d.last_status_code = attempt.status_code;
        d.last_error_class = attempt.error_class;
        d.last_attempt_at = Some(attempt.started_at);
        self.attempts.lock().unwrap().entry(attempt.delivery_id.clone()).or_default().insert(attempt.attempt, attempt.clone());
        Ok(())
    }

    async fn list_attempts(&self, id: &DeliveryId) -> StoreResult<Vec<Attempt>> {
        let map = self.attempts.lock().unwrap();
        Ok(map.get(id).map(|a| a.values().cloned().collect()).unwrap_or_default())
    }

    async fn list_deliveries(&self, sub: &SubscriptionId, filter: &DeliveryFilter, cursor: Option<&str>, limit: usize) -> StoreResult<Page<Delivery>> {
        let mut all: Vec<_> = self.deliveries.lock().unwrap().values().filter(|d| &d.subscription_id == sub).cloned().collect();
        // Newest first; ties by id. The cursor is the last id returned.
        all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.delivery_id.cmp(&a.delivery_id)));
        let start = match cursor {
            None => 0,
            Some(c) => all.iter().position(|d| d.delivery_id.as_str() == c).ok_or(StoreError::BadCursor)? + 1,
        };
        let matching: Vec<_> = all[start..].iter().filter(|d| filter.accepts(d)).cloned().collect();
        let more = matching.len() > limit;
        let items: Vec<_> = matching.into_iter().take(limit).collect();
        let next = more.then(|| items.last().map(|d| d.delivery_id.to_string())).flatten();
        Ok(Page { items, next })
    }

    async fn set_status(&self, id: &DeliveryId, status: DeliveryStatus) -> StoreResult<()> {
        let mut map = self.deliveries.lock().unwrap();
        map.get_mut(id).ok_or(StoreError::Conflict)?.status = status;
        Ok(())
    }

    async fn reopen(&self, id: &DeliveryId) -> StoreResult<()> {
        let mut map = self.deliveries.lock().unwrap();
        match map.get_mut(id) {
            Some(d) if d.status == DeliveryStatus::Failed => {
                d.status = DeliveryStatus::Pending;
                Ok(())
            }
            _ => Err(StoreError::Conflict),
        }
    }
}

/// Records what was sent and every retry wait requested.
#[derive(Default)]
pub struct MemoryQueues {
    pub deliveries: Mutex<Vec<DeliveryTask>>,
    pub retries: Mutex<Vec<(MessageHandle, Duration)>>,
    pub events: Mutex<Vec<String>>,
    pub dead_events: Mutex<Vec<(String, String)>>,
    /// Entries per `SendMessageBatch` call that SQS would have received (at most 10 each).
    pub batches: Mutex<Vec<usize>>,
    /// Tasks of this subscription are refused, as SQS may refuse single entries of a batch.
    pub refuse: Mutex<Option<SubscriptionId>>,
}

#[async_trait]
impl Queues for MemoryQueues {
    async fn enqueue_deliveries(&self, tasks: &[DeliveryTask]) -> StoreResult<Vec<usize>> {
        self.batches.lock().unwrap().extend(tasks.chunks(10).map(<[_]>::len));
        let refuse = self.refuse.lock().unwrap().clone();
        let mut failed = Vec::new();
        for (i, task) in tasks.iter().enumerate() {
            let DeliveryTask::Deliver { subscription_id, .. } = task;
            if refuse.as_ref() == Some(subscription_id) {
                failed.push(i);
            } else {
                self.deliveries.lock().unwrap().push(task.clone());
            }
        }
        Ok(failed)
    }

    async fn retry_after(&self, handle: &MessageHandle, delay: Duration) -> StoreResult<()> {
        self.retries.lock().unwrap().push((handle.clone(), delay));
        Ok(())
    }

    async fn publish_event(&self, body: &str) -> StoreResult<()> {
        self.events.lock().unwrap().push(body.to_owned());
        Ok(())
    }

    async fn dead_letter_event(&self, body: &str, reason: &str, _source_message_id: &str) -> StoreResult<()> {
        self.dead_events.lock().unwrap().push((body.to_owned(), reason.to_owned()));
        Ok(())
    }
}
