//! Fixtures for tests of this crate and of the end-to-end crate (`features = ["testing"]`).

use crate::config::Config;
use crate::deps::Deps;
use crate::ids::TenantId;
use crate::model::{EventIn, Subscription, TenantRecord};
use std::collections::HashMap;
use time::OffsetDateTime;

/// A configuration whose tables and queues are named `test-<VARIABLE>`, with `extra` settings.
pub fn config(extra: &[(&str, &str)]) -> Config {
    let extra: HashMap<String, String> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_lookup(|k| match extra.get(k) {
        Some(v) => Some(v.clone()),
        None if k.ends_with("_TABLE") || k.ends_with("_URL") => Some(format!("test-{k}")),
        None => None,
    })
    .expect("test configuration")
}

pub async fn tenant(deps: &Deps, tenant: &str) {
    let record = TenantRecord { tenant_id: TenantId::parse(tenant).unwrap(), created_at: OffsetDateTime::now_utc() };
    deps.tenants.register(&record).await.unwrap();
}

pub async fn subscribe(deps: &Deps, tenant: &str, url: &str, events: &[&str], enabled: bool) -> Subscription {
    let mut sub = Subscription::new(TenantId::parse(tenant).unwrap(), url.into(), events.iter().map(|e| e.to_string()).collect(), OffsetDateTime::now_utc());
    sub.enabled = enabled;
    deps.subscriptions.create(&sub, usize::MAX).await.unwrap();
    sub
}

/// An event of tenant `acme`.
pub fn event(id: &str, event_type: &str) -> EventIn {
    serde_json::from_value(serde_json::json!({
        "event_id": id, "event_type": event_type, "tenant_id": "acme",
        "occurred_at": "2026-11-22T10:00:00Z", "data": {"k": 1}
    }))
    .unwrap()
}
