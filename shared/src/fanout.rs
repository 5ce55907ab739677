//! Fan-out: one upstream event → one delivery per matching subscription of its tenant.
//!
//! Idempotent: the event body is stored once under (tenant, event_id); each delivery id is
//! derived from (tenant, event_id, subscription) and created with a conditional write, so an
//! event that SQS hands us twice creates no second delivery. Poison events (unparseable, invalid,
//! of an unknown tenant) go to the event DLQ with their reason and never block their batch.

use crate::deps::Deps;
use crate::ids::{is_token, TenantId};
use crate::matching::is_valid_event_type;
use crate::metrics::{self, Metric};
use crate::model::{Delivery, DeliveryStatus, DeliveryTask, EventIn, StoredEvent, Subscription, Trigger};
use crate::ports::{Created, StoreError, SubscriptionStore, TenantStore};
use crate::sqs_batch::{self, Ack};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tracing::Instrument;

/// Largest accepted envelope: SQS's message limit (256 KiB). The stored body must also fit a
/// DynamoDB item (400 KB).
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// Conditional delivery writes in flight at once for one event.
const CREATE_CONCURRENCY: usize = 16;

/// Handles a batch of upstream events: each is parsed, matched and its deliveries created
/// concurrently; then the delivery tasks of the whole batch are enqueued together (10 per
/// `SendMessageBatch`, so ten events of one subscription each cost one call, not ten). An event
/// whose tasks could not all be enqueued is a batch item failure: SQS hands it back, and its
/// second run enqueues again the deliveries that were never attempted.
pub async fn handle_batch(event: SqsEvent, deps: &Deps) -> SqsBatchResponse {
    let figures = metrics::Batch::new("fanout");
    let results = sqs_batch::run(event, |msg| handle_message(msg, deps, &figures)).await;

    let mut acks = Vec::with_capacity(results.len());
    let mut tasks = Vec::new();
    let mut owners = Vec::new(); // tasks[i] belongs to results[owners[i]]
    for (i, (id, outcome)) in results.into_iter().enumerate() {
        match outcome {
            Outcome::Ack(ack) => acks.push((id, ack)),
            Outcome::Enqueue(mine) => {
                owners.extend(std::iter::repeat(i).take(mine.len()));
                tasks.extend(mine);
                acks.push((id, Ack::Done));
            }
        }
    }
    for failed in enqueue_batch(deps, &tasks).await {
        let (id, ack) = &mut acks[owners[failed]];
        if *ack == Ack::Done {
            tracing::error!(message_id = %id, "delivery tasks not enqueued; event will be retried");
        }
        *ack = Ack::Retry;
    }
    figures.emit();
    crate::telemetry::flush();
    sqs_batch::response(acks)
}

/// What one upstream message came to: acknowledged (or to retry) as it is, or done once its
/// delivery tasks are on the queue.
enum Outcome {
    Ack(Ack),
    Enqueue(Vec<DeliveryTask>),
}

/// Why an event is refused. It goes to the event DLQ with `code(): detail` as its `reason`.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Rejection {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("body is not a valid event envelope: {0}")]
    Invalid(String),
    #[error("body exceeds {MAX_EVENT_BYTES} bytes")]
    TooLarge,
    #[error("tenant {0} is not known to this service")]
    UnknownTenant(TenantId),
}

impl Rejection {
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::NotJson(_) => "not_json",
            Rejection::Invalid(_) => "invalid_envelope",
            Rejection::TooLarge => "too_large",
            Rejection::UnknownTenant(_) => "unknown_tenant",
        }
    }
}

/// Parses and checks an upstream envelope.
pub fn parse_event(body: &str) -> Result<EventIn, Rejection> {
    if body.len() > MAX_EVENT_BYTES {
        return Err(Rejection::TooLarge);
    }
    let value: serde_json::Value = serde_json::from_str(body).map_err(|e| Rejection::NotJson(e.to_string()))?;
    let event: EventIn = serde_json::from_value(value).map_err(|e| Rejection::Invalid(e.to_string()))?;
    if !is_token(&event.event_id, 128) {
        return Err(Rejection::Invalid("event_id must be 1-128 of [A-Za-z0-9_.:-]".into()));
    }
    if !is_valid_event_type(&event.event_type) {
        return Err(Rejection::Invalid("event_type must be dotted lowercase segments, e.g. project.created".into()));
    }
    Ok(event)
}

#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error(transparent)]
    Store(#[from] StoreError),
}

async fn handle_message(msg: SqsMessage, deps: &Deps, figures: &metrics::Batch) -> Outcome {
    let body = msg.body.as_deref().unwrap_or_default();
    let message_id = msg.message_id.as_deref().unwrap_or_default();
    let event = match parse_event(body) {
        Ok(e) => e,
        Err(rejection) => return Outcome::Ack(reject(body, message_id, rejection, deps, figures).await),
    };
    let span = tracing::info_span!("fanout", tenant = %event.tenant_id, event_id = %event.event_id, event_type = %event.event_type);
    let redelivered = msg.attributes.get("ApproximateReceiveCount").is_some_and(|c| c != "1");
    let result = create_deliveries(&event, redelivered, deps).instrument(span.clone()).await;
    match result {
        Ok((matched, tasks)) => {
            span.in_scope(|| tracing::info!(matched, "fanned out"));
            figures.add(&[Metric { name: "Events", value: 1.0, unit: "Count" }, Metric { name: "Matched", value: matched as f64, unit: "Count" }]);
            Outcome::Enqueue(tasks)
        }
        Err(FanoutError::Rejected(rejection)) => Outcome::Ack(reject(body, message_id, rejection, deps, figures).instrument(span).await),
        Err(FanoutError::Store(e)) => {
            span.in_scope(|| tracing::error!(error = %e, "fan-out failed; event will be retried"));
            Outcome::Ack(Ack::Retry)
        }
    }
}

/// Moves a poison event to the event DLQ with its reason; if even that fails, leaves it to SQS
/// (retried, then redriven to the same DLQ).
async fn reject(body: &str, message_id: &str, rejection: Rejection, deps: &Deps, figures: &metrics::Batch) -> Ack {
    let reason = format!("{}: {rejection}", rejection.code());
    tracing::warn!(%reason, "rejected event; moving it to the event DLQ");
    figures.add(&[Metric { name: "Rejected", value: 1.0, unit: "Count" }]);
    match deps.queues.dead_letter_event(body, &reason, message_id).await {
        Ok(()) => Ack::Done,
        Err(e) => {
            tracing::error!(error = %e, "cannot move the rejected event to the DLQ; leaving it on the queue");
            Ack::Retry
        }
    }
}

/// Per warm process: each tenant's known-ness and subscriptions, reused for a short TTL so a
/// burst of events for one tenant costs one Query. A miss loads once per tenant: the messages of
/// a batch that arrive meanwhile wait for that load instead of issuing their own.
/// When a tenant's subscriptions were loaded, and the list.
type CacheEntry = (Instant, Arc<Vec<Subscription>>);

pub struct SubscriptionCache {
    ttl: Duration,
    entries: Mutex<HashMap<TenantId, CacheEntry>>,
    /// One load at a time per tenant (an entry lives while someone holds or waits for it).
    loading: Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<()>>>>,
}

impl SubscriptionCache {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()), loading: Mutex::new(HashMap::new()) }
    }

    fn fresh(&self, tenant: &TenantId) -> Option<Arc<Vec<Subscription>>> {
        let entries = self.entries.lock().unwrap();
        let (at, list) = entries.get(tenant)?;
        (at.elapsed() < self.ttl).then(|| list.clone())
    }

    /// The tenant's subscriptions, or `None` if the tenant is unknown (not cached).
    pub async fn get(&self, tenant: &TenantId, tenants: &dyn TenantStore, subs: &dyn SubscriptionStore) -> Result<Option<Arc<Vec<Subscription>>>, StoreError> {
        if self.ttl.is_zero() {
            return self.load(tenant, tenants, subs).await;
        }
        if let Some(list) = self.fresh(tenant) {
            return Ok(Some(list));
        }
        let gate = self.loading.lock().unwrap().entry(tenant.clone()).or_default().clone();
        let result = {
            let _turn = gate.lock().await;
            match self.fresh(tenant) {
                Some(list) => Ok(Some(list)), // loaded while this one waited
                None => self.load(tenant, tenants, subs).await,
            }
        };
        let mut loading = self.loading.lock().unwrap();
        drop(gate);
        loading.retain(|_, g| Arc::strong_count(g) > 1);
        result
    }

    async fn load(&self, tenant: &TenantId, tenants: &dyn TenantStore, subs: &dyn SubscriptionStore) -> Result<Option<Arc<Vec<Subscription>>>, StoreError> {
        if !tenants.exists(tenant).await? {
            return Ok(None);
        }
        let list = Arc::new(subs.list(tenant).await?);
        if !self.ttl.is_zero() {
            let mut entries = self.entries.lock().unwrap();
            // Expired entries go when new ones come, so a warm process holds at most a TTL's worth.
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            entries.insert(tenant.clone(), (Instant::now(), list.clone()));
        }
        Ok(Some(list))
    }
}

/// Creates and enqueues the deliveries of one event; returns how many subscriptions matched.
pub async fn fan_out(event: &EventIn, redelivered: bool, deps: &Deps) -> Result<usize, FanoutError> {
    let (matched, tasks) = create_deliveries(event, redelivered, deps).await?;
    enqueue_all(deps, &tasks).await?;
    Ok(matched)
}

/// Stores the event and creates its deliveries; returns how many subscriptions matched and the
/// tasks to enqueue.
///
/// A delivery that already exists is enqueued again only when `redelivered` (SQS handed us this
/// message before, so an earlier run may have stopped between creating it and enqueuing it) and it
/// was never attempted. The same event published twice by upstream enqueues nothing new.
async fn create_deliveries(event: &EventIn, redelivered: bool, deps: &Deps) -> Result<(usize, Vec<DeliveryTask>), FanoutError> {
    let subs = deps
        .subscription_cache
        .get(&event.tenant_id, deps.tenants.as_ref(), deps.subscriptions.as_ref())
        .await?
        .ok_or_else(|| Rejection::UnknownTenant(event.tenant_id.clone()))?;
    let now = OffsetDateTime::now_utc();
    let expires_at = (now + deps.config.retention).unix_timestamp();
    deps.deliveries.put_event(&StoredEvent::from_event(event, expires_at)).await?;

    let matching: Vec<&Subscription> = subs.iter().filter(|s| s.wants(&event.event_type)).collect();
    // Boxed as `Send` futures: a borrowing closure inside the stream trips rustc's higher-ranked
    // Send inference when the caller spawns the handler.
    type Create<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<DeliveryTask>, StoreError>> + Send + 'a>>;
    let creates: Vec<Create<'_>> = matching.iter().map(|sub| Box::pin(create_delivery(event, sub, now, expires_at, redelivered, deps)) as _).collect();
    let created = futures::stream::iter(creates)
        .buffer_unordered(CREATE_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let tasks: Vec<DeliveryTask> = created.into_iter().collect::<Result<Vec<_>, _>>()?.into_iter().flatten().collect();
    Ok((matching.len(), tasks))
}

/// Creates one delivery; returns its task if it must be enqueued.
async fn create_delivery(
    event: &EventIn,
    sub: &Subscription,
    now: OffsetDateTime,
    expires_at: i64,
    redelivered: bool,
    deps: &Deps,
) -> Result<Option<DeliveryTask>, StoreError> {
    let delivery = Delivery::pending(event, &sub.subscription_id, now, expires_at);
    let enqueue = match deps.deliveries.create_delivery(&delivery).await? {
        Created::New => true,
        // The worker drops a task whose delivery is already settled.
        Created::Existed if redelivered => matches!(
            deps.deliveries.get_delivery(&delivery.delivery_id).await?,
            Some(d) if d.status == DeliveryStatus::Pending && d.attempts == 0
        ),
        Created::Existed => false,
    };
    Ok(enqueue.then_some(DeliveryTask::Deliver {
        delivery_id: delivery.delivery_id,
        tenant_id: delivery.tenant_id,
        subscription_id: delivery.subscription_id,
        event_id: delivery.event_id,
        trigger: Trigger::Live,
    }))
}

/// Enqueues tasks, retrying once the entries SQS refused; returns the indices of those still not
/// enqueued (all of them after an error of the call itself).
async fn enqueue_batch(deps: &Deps, tasks: &[DeliveryTask]) -> Vec<usize> {
    if tasks.is_empty() {
        return Vec::new();
    }
    match enqueue_all(deps, tasks).await {
        Ok(()) => Vec::new(),
        Err(StoreError::Unsent(indices)) => indices,
        Err(e) => {
            tracing::error!(error = %e, tasks = tasks.len(), "cannot enqueue delivery tasks");
            (0..tasks.len()).collect()
        }
    }
}

/// Enqueues tasks, retrying once the entries SQS refused; an error if some still fail.
pub async fn enqueue_all(deps: &Deps, tasks: &[DeliveryTask]) -> Result<(), StoreError> {
    let failed = deps.queues.enqueue_deliveries(tasks).await?;
    if failed.is_empty() {
        return Ok(());
    }
    let again: Vec<_> = failed.iter().map(|&i| tasks[i].clone()).collect();
    let still = deps.queues.enqueue_deliveries(&again).await?;
    if !still.is_empty() {
        return Err(StoreError::Unsent(still.iter().map(|&j| failed[j]).collect()));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::Config;
    use crate::ids::SubscriptionId;
    use crate::model::TenantRecord;
    use serde_json::json;

    pub(crate) fn config(extra: &[(&str, &str)]) -> Config {
        let extra: HashMap<String, String> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| match extra.get(k) {
            Some(v) => Some(v.clone()),
            None if k.ends_with("_TABLE") || k.ends_with("_URL") => Some(format!("test-{k}")),
            None => None,
        })
        .unwrap()
    }

    pub(crate) async fn tenant(deps: &Deps, tenant: &str) {
        let record = TenantRecord { tenant_id: TenantId::parse(tenant).unwrap(), created_at: OffsetDateTime::now_utc() };
        deps.tenants.register(&record).await.unwrap();
    }

    pub(crate) async fn subscribe(deps: &Deps, tenant: &str, url: &str, events: &[&str], enabled: bool) -> Subscription {
        let mut sub = Subscription::new(TenantId::parse(tenant).unwrap(), url.into(), events.iter().map(|e| e.to_string()).collect(), OffsetDateTime::now_utc());
        sub.enabled = enabled;
        deps.subscriptions.create(&sub).await.unwrap();
        sub
    }

    pub(crate) fn event(id: &str, event_type: &str) -> EventIn {
        serde_json::from_value(json!({
            "event_id": id, "event_type": event_type, "tenant_id": "acme",
            "occurred_at": "2026-11-22T10:00:00Z", "data": {"k": 1}
        }))
        .unwrap()
    }

    const URL: &str = "https://example.com/hook";

    #[tokio::test]
    async fn one_delivery_per_matching_subscription_and_none_on_repeat() {
        // GIVEN three matching and three non-matching subscriptions (one of another tenant)
        let (deps, queues) = Deps::memory(config(&[]));
        tenant(&deps, "acme").await;
        tenant(&deps, "other").await;
        let mut matching: Vec<SubscriptionId> = vec![
            subscribe(&deps, "acme", URL, &["project.created"], true).await.subscription_id,
            subscribe(&deps, "acme", URL, &["project.*"], true).await.subscription_id,
            subscribe(&deps, "acme", URL, &["*"], true).await.subscription_id,
        ];
        subscribe(&deps, "acme", URL, &["project.created"], false).await;
        subscribe(&deps, "other", URL, &["*"], true).await;
        subscribe(&deps, "acme", URL, &["enrollment.completed"], true).await;

        // WHEN the event is fanned out, then published again by upstream
        assert_eq!(fan_out(&event("e1", "project.created"), false, &deps).await.unwrap(), 3);
        assert_eq!(fan_out(&event("e1", "project.created"), false, &deps).await.unwrap(), 3);

        // THEN exactly three tasks were enqueued, one per matching subscription
        let sent = queues.deliveries.lock().unwrap().clone();
        let mut subs: Vec<_> = sent.iter().map(|DeliveryTask::Deliver { subscription_id, .. }| subscription_id.clone()).collect();
        subs.sort();
        matching.sort();
        assert_eq!(subs, matching);
        let stored = deps.deliveries.get_event(&TenantId::parse("acme").unwrap(), "e1").await.unwrap().unwrap();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&stored.body).unwrap()["data"]["k"], 1);
    }

    #[tokio::test]
    async fn a_redelivered_event_re_enqueues_only_unattempted_deliveries() {
        let (deps, queues) = Deps::memory(config(&[]));
        tenant(&deps, "acme").await;
        subscribe(&deps, "acme", URL, &["*"], true).await;
        fan_out(&event("e2", "a.b"), false, &deps).await.unwrap();
        fan_out(&event("e2", "a.b"), true, &deps).await.unwrap();
        assert_eq!(queues.deliveries.lock().unwrap().len(), 2, "never attempted: sent again, nothing lost");
    }

    #[tokio::test]
    async fn poison_and_unknown_tenants_go_to_the_dlq_without_failing_the_batch() {
        let (deps, queues) = Deps::memory(config(&[]));
        tenant(&deps, "acme").await;
        subscribe(&deps, "acme", URL, &["*"], true).await;
        let good = serde_json::to_string(&event("ok1", "a.b")).unwrap();
        let unknown = good.replace("\"acme\"", "\"nobody\"").replace("ok1", "ok2");
        let mut batch = SqsEvent::default();
        for (i, body) in [good.as_str(), "{not json", r#"{"event_id":"x"}"#, unknown.as_str()].iter().enumerate() {
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("m{i}"));
            m.body = Some(body.to_string());
            batch.records.push(m);
        }
        let resp = handle_batch(batch, &deps).await;
        assert!(resp.batch_item_failures.is_empty(), "poison is moved, not failed");
        let dead = queues.dead_events.lock().unwrap().clone();
        let reasons: Vec<_> = dead.iter().map(|(_, r)| r.split(':').next().unwrap().to_owned()).collect();
        assert_eq!(reasons, vec!["not_json", "invalid_envelope", "unknown_tenant"]);
        assert_eq!(queues.deliveries.lock().unwrap().len(), 1);
    }

    fn batch_of(events: &[EventIn]) -> SqsEvent {
        let mut batch = SqsEvent::default();
        for (i, e) in events.iter().enumerate() {
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("m{i}"));
            m.body = Some(serde_json::to_string(e).unwrap());
            batch.records.push(m);
        }
        batch
    }

    #[tokio::test]
    async fn a_batch_of_events_enqueues_its_tasks_together() {
        // GIVEN one subscription and a batch of ten events
        let (deps, queues) = Deps::memory(config(&[]));
        tenant(&deps, "acme").await;
        subscribe(&deps, "acme", URL, &["*"], true).await;
        let events: Vec<EventIn> = (0..10).map(|i| event(&format!("b{i}"), "a.b")).collect();

        // WHEN the batch is handled
        let resp = handle_batch(batch_of(&events), &deps).await;

        // THEN the ten tasks went out in one SendMessageBatch, not ten
        assert!(resp.batch_item_failures.is_empty());
        assert_eq!(*queues.batches.lock().unwrap(), vec![10]);
        assert_eq!(queues.deliveries.lock().unwrap().len(), 10);
    }

    #[tokio::test]
    async fn only_the_events_whose_tasks_were_not_enqueued_are_retried() {
        // GIVEN two subscriptions, one whose tasks SQS keeps refusing
        let (deps, queues) = Deps::memory(config(&[]));
        tenant(&deps, "acme").await;
        subscribe(&deps, "acme", URL, &["a.*"], true).await;
        let refused = subscribe(&deps, "acme", URL, &["x.*"], true).await;
        *queues.refuse.lock().unwrap() = Some(refused.subscription_id.clone());

        // WHEN a batch has events for each, and one for both
        let events = [event("r0", "a.b"), event("r1", "x.y"), event("r2", "a.c"), event("r3", "x.z")];
        let resp = handle_batch(batch_of(&events), &deps).await;

        // THEN the events with refused tasks are the batch item failures, the others are done
        let mut failed: Vec<_> = resp.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        failed.sort();
        assert_eq!(failed, ["m1", "m3"]);
        assert_eq!(queues.deliveries.lock().unwrap().len(), 2);

        // AND once SQS takes them, their redelivery enqueues the never-attempted deliveries
        *queues.refuse.lock().unwrap() = None;
        let mut again = batch_of(&[events[1].clone(), events[3].clone()]);
        for m in &mut again.records {
            m.attributes.insert("ApproximateReceiveCount".into(), "2".into());
        }
        assert!(handle_batch(again, &deps).await.batch_item_failures.is_empty());
        assert_eq!(queues.deliveries.lock().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn the_cache_serves_a_tenant_from_memory_within_its_ttl() {
        let (deps, queues) = Deps::memory(config(&[("SUBSCRIPTION_CACHE_TTL_MS", "60000")]));
        tenant(&deps, "acme").await;
        subscribe(&deps, "acme", URL, &["*"], true).await;
        fan_out(&event("c1", "a.b"), false, &deps).await.unwrap();
        // A subscription created now is not seen until the entry expires.
        subscribe(&deps, "acme", URL, &["*"], true).await;
        assert_eq!(fan_out(&event("c2", "a.b"), false, &deps).await.unwrap(), 1);
        assert_eq!(queues.deliveries.lock().unwrap().len(), 2);
    }

    /// A store that counts its loads and takes a while to answer.
    #[derive(Default)]
    struct SlowStore {
        exists: std::sync::atomic::AtomicUsize,
        lists: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl TenantStore for SlowStore {
        async fn register(&self, _: &TenantRecord) -> Result<(), StoreError> {
            unreachable!("the cache only reads")
        }
        async fn exists(&self, _: &TenantId) -> Result<bool, StoreError> {
            self.exists.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(true)
        }
    }

    #[async_trait::async_trait]
    impl SubscriptionStore for SlowStore {
        async fn create(&self, _: &Subscription) -> Result<(), StoreError> {
            unreachable!("the cache only reads")
        }
        async fn get(&self, _: &TenantId, _: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
            unreachable!("the cache lists")
        }
        async fn list(&self, tenant: &TenantId) -> Result<Vec<Subscription>, StoreError> {
            self.lists.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(vec![Subscription::new(tenant.clone(), URL.into(), vec!["*".into()], OffsetDateTime::now_utc())])
        }
        async fn list_page(&self, _: &TenantId, _: Option<&str>, _: usize) -> Result<crate::ports::Page<Subscription>, StoreError> {
            unreachable!("the cache lists")
        }
        async fn replace(&self, _: &Subscription) -> Result<(), StoreError> {
            unreachable!("the cache only reads")
        }
        async fn record_health(&self, _: &TenantId, _: &SubscriptionId, _: crate::ports::HealthChange) -> Result<Option<Subscription>, StoreError> {
            unreachable!("the cache only reads")
        }
    }

    #[tokio::test]
    async fn concurrent_misses_for_one_tenant_load_once() {
        // GIVEN a cold cache and a slow store
        let cache = SubscriptionCache::new(Duration::from_secs(60));
        let store = SlowStore::default();
        let (acme, other) = (TenantId::parse("acme").unwrap(), TenantId::parse("other").unwrap());
        // WHEN ten messages of one tenant and one of another ask at once
        let asks = (0..10).map(|_| &acme).chain([&other]).map(|t| cache.get(t, &store, &store));
        let lists = futures::future::join_all(asks).await;
        // THEN each tenant was loaded once, and everyone got the list
        assert!(lists.iter().all(|l| matches!(l, Ok(Some(v)) if v.len() == 1)));
        assert_eq!(store.exists.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(store.lists.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert!(cache.loading.lock().unwrap().is_empty(), "no gate outlives its load");
        // AND with no TTL nothing is shared
        let uncached = SubscriptionCache::new(Duration::ZERO);
        futures::future::join_all((0..3).map(|_| uncached.get(&acme, &store, &store))).await;
        assert_eq!(store.lists.load(std::sync::atomic::Ordering::SeqCst), 5);
    }

    #[test]
    fn rejects_malformed_envelopes() {
        assert!(matches!(parse_event("not json"), Err(Rejection::NotJson(_))));
        assert!(matches!(parse_event(&"x".repeat(MAX_EVENT_BYTES + 1)), Err(Rejection::TooLarge)));
        let bad_id = r#"{"event_id":"a b","event_type":"a.b","tenant_id":"t","occurred_at":"2026-11-22T10:00:00Z","data":{}}"#;
        assert!(matches!(parse_event(bad_id), Err(Rejection::Invalid(_))));
        let bad_type = bad_id.replace("a b", "ab").replace("a.b", "A.B");
        assert!(matches!(parse_event(&bad_type), Err(Rejection::Invalid(_))));
        assert!(parse_event(&bad_type.replace("A.B", "a.b")).is_ok());
        assert!(matches!(parse_event(&bad_type.replace("\"t\"", "5")), Err(Rejection::Invalid(_))));
    }
}

#[cfg(test)]
mod schema_tests {
    /// The published JSON Schema of the envelope says what `EventIn` and `parse_event` do.
    #[test]
    fn the_envelope_schema_matches_the_parser() {
        let schema: serde_json::Value = serde_json::from_str(include_str!("../../docs/event-envelope.schema.json")).unwrap();
        let required: Vec<&str> = schema["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(required, ["event_id", "event_type", "tenant_id", "occurred_at", "data"]);
        let mut props: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        props.sort();
        assert_eq!(props, ["data", "event_id", "event_type", "occurred_at", "tenant_id"]);
        assert_eq!(schema["additionalProperties"], false);
        assert!(schema["description"].as_str().unwrap().contains(&super::MAX_EVENT_BYTES.to_string()));
        // Every field is required by the parser too.
        let full = serde_json::json!({"event_id": "e", "event_type": "a.b", "tenant_id": "t", "occurred_at": "2026-11-22T10:00:00Z", "data": {}});
        for field in required {
            let mut partial = full.clone();
            partial.as_object_mut().unwrap().remove(field);
            assert!(super::parse_event(&partial.to_string()).is_err(), "{field} is required");
        }
    }
}
