//! In-memory adapters for unit tests: the same contracts as the DynamoDB/SQS ones (the contract
//! suite in `ports::contract` runs against both).

mod ledger;
mod queues;

pub use ledger::MemoryLedger;
pub use queues::MemoryQueues;

use crate::ids::{SubscriptionId, TenantId};
use crate::model::{ApiKeyRecord, StoredEvent, Subscription, TenantRecord};
use crate::ports::*;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// What a health change does to a subscription: the in-memory store's version of the DynamoDB
/// adapter's update expressions.
fn apply_health(sub: &mut Subscription, change: &HealthChange) {
    match change {
        HealthChange::Delivered { at } => {
            sub.failure_count = 0;
            sub.first_failure_at = None;
            sub.last_delivered_at = Some(*at);
        }
        HealthChange::Failed { count, since } => {
            sub.failure_count += count;
            sub.first_failure_at.get_or_insert(*since);
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

impl MemorySubscriptions {
    fn active_of(map: &BTreeMap<(TenantId, SubscriptionId), Subscription>, tenant: &TenantId) -> usize {
        map.iter().filter(|((t, _), s)| t == tenant && s.active).count()
    }

    fn expect(s: &Subscription, expect: Option<u64>) -> PortResult<()> {
        match expect {
            Some(v) if v != s.version => Err(PortError::Conflict),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl SubscriptionStore for MemorySubscriptions {
    async fn create(&self, sub: &Subscription, max_active: usize) -> PortResult<()> {
        let key = (sub.tenant_id.clone(), sub.subscription_id.clone());
        let mut map = self.0.lock().unwrap();
        if map.contains_key(&key) {
            return Err(PortError::Conflict);
        }
        if sub.active && Self::active_of(&map, &sub.tenant_id) >= max_active {
            return Err(PortError::LimitReached);
        }
        map.insert(key, sub.clone());
        Ok(())
    }

    async fn get(&self, tenant: &TenantId, id: &SubscriptionId) -> PortResult<Option<Subscription>> {
        Ok(self.0.lock().unwrap().get(&(tenant.clone(), id.clone())).cloned())
    }

    async fn list_page(&self, tenant: &TenantId, cursor: Option<&SubscriptionId>, limit: usize) -> PortResult<Page<Subscription>> {
        let map = self.0.lock().unwrap();
        let after: Vec<Subscription> = map.iter().filter(|((t, id), _)| t == tenant && cursor.is_none_or(|c| id > c)).map(|(_, s)| s.clone()).take(limit + 1).collect();
        let mut items = after;
        let next = (items.len() > limit).then(|| {
            items.truncate(limit);
            items.last().map(|s| s.subscription_id.to_string())
        });
        Ok(Page { items, next: next.flatten() })
    }

    async fn subscribers(&self, tenant: &TenantId) -> PortResult<Vec<Subscriber>> {
        let map = self.0.lock().unwrap();
        Ok(map.iter().filter(|((t, _), s)| t == tenant && s.active).map(|(_, s)| Subscriber::from(s)).collect())
    }

    async fn update(&self, tenant: &TenantId, id: &SubscriptionId, change: &SubscriptionChange, expect: Option<u64>) -> PortResult<Subscription> {
        let mut map = self.0.lock().unwrap();
        let s = map.get_mut(&(tenant.clone(), id.clone())).ok_or_else(|| PortError::Missing(format!("subscription {id}")))?;
        Self::expect(s, expect)?;
        change.apply(s);
        Ok(s.clone())
    }

    async fn set_active(&self, tenant: &TenantId, id: &SubscriptionId, change: ActiveChange, expect: Option<u64>) -> PortResult<Subscription> {
        let mut map = self.0.lock().unwrap();
        let active = Self::active_of(&map, tenant);
        let s = map.get_mut(&(tenant.clone(), id.clone())).ok_or_else(|| PortError::Missing(format!("subscription {id}")))?;
        Self::expect(s, expect)?;
        match change {
            ActiveChange::Delete { at, .. } if s.active => {
                s.active = false;
                s.updated_at = at;
                s.version += 1;
            }
            ActiveChange::Restore { at, max_active } if !s.active => {
                if active >= max_active {
                    return Err(PortError::LimitReached);
                }
                s.active = true;
                s.updated_at = at;
                s.version += 1;
            }
            _ => {}
        }
        Ok(s.clone())
    }

    async fn record_health(&self, tenant: &TenantId, id: &SubscriptionId, change: HealthChange) -> PortResult<Option<HealthAfter>> {
        let mut map = self.0.lock().unwrap();
        Ok(map.get_mut(&(tenant.clone(), id.clone())).map(|s| {
            let before = s.failure_count;
            apply_health(s, &change);
            let ended_run = matches!(change, HealthChange::Delivered { .. }) && before > 0;
            HealthAfter { failure_count: s.failure_count, first_failure_at: s.first_failure_at, ended_run }
        }))
    }

    async fn move_circuit(&self, tenant: &TenantId, id: &SubscriptionId, change: &CircuitChange) -> PortResult<()> {
        let mut map = self.0.lock().unwrap();
        match map.get_mut(&(tenant.clone(), id.clone())) {
            Some(s) => if change.apply(s) { Ok(()) } else { Err(PortError::Conflict) },
            None => Err(PortError::Conflict),
        }
    }
}

#[derive(Default)]
pub struct MemoryApiKeys(Mutex<HashMap<String, ApiKeyRecord>>);

#[async_trait]
impl ApiKeyStore for MemoryApiKeys {
    async fn put(&self, key: &ApiKeyRecord) -> PortResult<()> {
        let mut map = self.0.lock().unwrap();
        if map.contains_key(&key.key_hash) {
            return Err(PortError::Conflict);
        }
        map.insert(key.key_hash.clone(), key.clone());
        Ok(())
    }

    async fn get(&self, key_hash: &str) -> PortResult<Option<ApiKeyRecord>> {
        Ok(self.0.lock().unwrap().get(key_hash).cloned())
    }

    async fn list_for_tenant(&self, tenant: &TenantId) -> PortResult<Vec<ApiKeyRecord>> {
        let mut keys: Vec<_> = self.0.lock().unwrap().values().filter(|k| &k.tenant_id == tenant).cloned().collect();
        keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        Ok(keys)
    }

    async fn delete(&self, key_hash: &str) -> PortResult<()> {
        self.0.lock().unwrap().remove(key_hash);
        Ok(())
    }
}

#[derive(Default)]
pub struct MemoryTenants(Mutex<HashMap<TenantId, TenantRecord>>);

#[async_trait]
impl TenantStore for MemoryTenants {
    async fn register(&self, tenant: &TenantRecord) -> PortResult<()> {
        self.0.lock().unwrap().entry(tenant.tenant_id.clone()).or_insert_with(|| tenant.clone());
        Ok(())
    }

    async fn exists(&self, tenant: &TenantId) -> PortResult<bool> {
        Ok(self.0.lock().unwrap().contains_key(tenant))
    }
}

#[derive(Default)]
pub struct MemoryEvents(Mutex<HashMap<(TenantId, String), StoredEvent>>);

#[async_trait]
impl EventStore for MemoryEvents {
    async fn put(&self, event: &StoredEvent) -> PortResult<Created> {
        let mut map = self.0.lock().unwrap();
        let key = (event.tenant_id.clone(), event.event_id.clone());
        if map.contains_key(&key) {
            return Ok(Created::Existed);
        }
        map.insert(key, event.clone());
        Ok(Created::New)
    }

    async fn get(&self, tenant: &TenantId, event_id: &str) -> PortResult<Option<StoredEvent>> {
        Ok(self.0.lock().unwrap().get(&(tenant.clone(), event_id.to_owned())).cloned())
    }
}
