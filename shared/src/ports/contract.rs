//! One contract per port, generic over its trait: run against the in-memory adapters by this
//! crate's unit tests and against DynamoDB on LocalStack by `tests/tests/contract.rs`, so the two
//! adapters cannot disagree.

use super::*;
use crate::ids::{ApiKeyId, DeliveryId, EventSource, SubscriptionId, TenantId};
use crate::model::{ApiKeyRecord, Attempt, Record, RecordStatus, RecordedEvent, Scope, StoredEvent, Subscription, TenantRecord, Trigger};
use time::OffsetDateTime;

fn tenant() -> TenantId {
    TenantId::parse(&format!("t{}", ulid::Ulid::new().to_string().to_lowercase())).unwrap()
}

pub async fn subscriptions(store: &dyn SubscriptionStore, tenants: &dyn TenantStore) {
    let t = tenant();
    tenants.register(&TenantRecord { tenant_id: t.clone(), created_at: OffsetDateTime::now_utc() }).await.unwrap();
    let new = |url: &str| Subscription::new(t.clone(), url.into(), vec!["*".into()], OffsetDateTime::now_utc());
    let sub = new("https://example.com/h");
    store.create(&sub, 2).await.unwrap();
    assert!(matches!(store.create(&sub, 2).await, Err(PortError::Conflict)), "create of an existing id conflicts");
    assert_eq!(store.get(&t, &sub.subscription_id).await.unwrap().unwrap().url, sub.url);
    let other = new("https://example.com/2");
    store.create(&other, 2).await.unwrap();
    assert!(matches!(store.create(&new("https://example.com/3"), 2).await, Err(PortError::LimitReached)), "the limit counts active subscriptions");
    let page = store.list_page(&t, None, 10).await.unwrap();
    let mut want = vec![sub.subscription_id.clone(), other.subscription_id.clone()];
    want.sort();
    assert_eq!(page.items.iter().map(|s| s.subscription_id.clone()).collect::<Vec<_>>(), want, "in id order (= creation order, to the millisecond)");
    let first = store.list_page(&t, None, 1).await.unwrap();
    assert_eq!(first.items.len(), 1);
    let cursor = SubscriptionId::parse(first.next.as_deref().expect("a second page")).unwrap();
    let second = store.list_page(&t, Some(&cursor), 1).await.unwrap();
    assert_eq!((second.items[0].subscription_id.clone(), second.next), (want[1].clone(), None));

    // A change writes only its fields and the version; with an expected version, only if it holds.
    let v = store.get(&t, &sub.subscription_id).await.unwrap().unwrap().version;
    let rename = SubscriptionChange { name: Some(Some("renamed".into())), ..Default::default() };
    let after = store.update(&t, &sub.subscription_id, &rename, Some(v)).await.unwrap();
    assert_eq!((after.name.as_deref(), after.version, after.url.as_str()), (Some("renamed"), v + 1, sub.url.as_str()));
    assert!(matches!(store.update(&t, &sub.subscription_id, &rename, Some(v)).await, Err(PortError::Conflict)), "a stale version is refused");
    let ghost = new("https://example.com/g");
    assert!(matches!(store.update(&t, &ghost.subscription_id, &rename, None).await, Err(PortError::Missing(_))));
    let clear = SubscriptionChange { name: Some(None), events: Some(vec!["a.*".into()]), ..Default::default() };
    let after = store.update(&t, &sub.subscription_id, &clear, None).await.unwrap();
    assert_eq!((after.name, after.events.clone()), (None, vec!["a.*".to_owned()]));
    // A rotation keeps the secret it replaces as the previous one.
    let old_secret = after.secret.clone();
    let new_secret = crate::signing::Secret::generate();
    let until = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let rotated = store.update(&t, &sub.subscription_id, &SubscriptionChange { rotate: Some((new_secret.clone(), until)), ..Default::default() }, None).await.unwrap();
    assert_eq!((rotated.secret.clone(), rotated.previous_secret.clone()), (new_secret, Some(old_secret)));
    assert_eq!(rotated.previous_secret_expires_at.map(|x| x.unix_timestamp()), Some(until.unix_timestamp()));

    // Health: failures add up and start a run once; a success ends it; disable says why; none
    // of it moves the version.
    let at = OffsetDateTime::now_utc();
    let after = store.record_health(&t, &sub.subscription_id, HealthChange::Failed { count: 2, since: at }).await.unwrap().unwrap();
    assert_eq!((after.failure_count, after.first_failure_at.map(|x| x.unix_timestamp())), (2, Some(at.unix_timestamp())));
    let later = at + time::Duration::seconds(5);
    let after = store.record_health(&t, &sub.subscription_id, HealthChange::Failed { count: 1, since: later }).await.unwrap().unwrap();
    assert_eq!((after.failure_count, after.first_failure_at.map(|x| x.unix_timestamp())), (3, Some(at.unix_timestamp())));
    let after = store.record_health(&t, &sub.subscription_id, HealthChange::Delivered { at: later }).await.unwrap().unwrap();
    assert_eq!((after.failure_count, after.first_failure_at, after.ended_run), (0, None, true), "a success after failures ends the run");
    let after = store.record_health(&t, &sub.subscription_id, HealthChange::Delivered { at: later }).await.unwrap().unwrap();
    assert_eq!((after.failure_count, after.ended_run), (0, false), "a success after a success ends nothing");
    store.record_health(&t, &sub.subscription_id, HealthChange::Disable { reason: "gone".into(), at }).await.unwrap().unwrap();
    let now = store.get(&t, &sub.subscription_id).await.unwrap().unwrap();
    assert_eq!((now.enabled, now.disabled_reason.as_deref(), now.version), (false, Some("gone"), rotated.version));
    assert!(store.record_health(&t, &ghost.subscription_id, HealthChange::Delivered { at }).await.unwrap().is_none());
    // Re-enabling starts a fresh health record.
    let on = store.update(&t, &sub.subscription_id, &SubscriptionChange { enabled: Some(true), ..Default::default() }, None).await.unwrap();
    assert_eq!((on.enabled, on.disabled_reason, on.failure_count), (true, None, 0));

    // Delete and restore move the counter: a deleted one frees its place, restoring takes it back.
    let subscribers = |v: Vec<Subscriber>| v.into_iter().map(|s| s.subscription_id).collect::<Vec<_>>();
    assert_eq!(subscribers(store.subscribers(&t).await.unwrap()).len(), 2);
    let gone = store.set_active(&t, &other.subscription_id, ActiveChange::Delete { at, purge_at: 9 }, None).await.unwrap();
    assert!(!gone.active);
    assert_eq!(store.set_active(&t, &other.subscription_id, ActiveChange::Delete { at, purge_at: 9 }, None).await.unwrap().version, gone.version, "deleting twice changes nothing");
    assert_eq!(subscribers(store.subscribers(&t).await.unwrap()), [sub.subscription_id.clone()], "fan-out sees active ones only");
    let third = new("https://example.com/3");
    store.create(&third, 2).await.unwrap();
    assert!(matches!(store.set_active(&t, &other.subscription_id, ActiveChange::Restore { at, max_active: 2 }, None).await, Err(PortError::LimitReached)));
    store.set_active(&t, &third.subscription_id, ActiveChange::Delete { at, purge_at: 9 }, None).await.unwrap();
    assert!(matches!(store.set_active(&t, &other.subscription_id, ActiveChange::Restore { at, max_active: 2 }, Some(gone.version + 5)).await, Err(PortError::Conflict)));
    let back = store.set_active(&t, &other.subscription_id, ActiveChange::Restore { at, max_active: 2 }, Some(gone.version)).await.unwrap();
    assert!(back.active && back.version == gone.version + 1);
    assert!(matches!(store.set_active(&t, &ghost.subscription_id, ActiveChange::Restore { at, max_active: 2 }, None).await, Err(PortError::Missing(_))));
}

pub async fn api_keys(store: &dyn ApiKeyStore) {
    let t = tenant();
    let key = ApiKeyRecord { key_hash: format!("h-{t}"), key_id: ApiKeyId::generate(), tenant_id: t.clone(), scopes: vec![Scope::Read], created_at: OffsetDateTime::now_utc() };
    store.put(&key).await.unwrap();
    assert!(matches!(store.put(&key).await, Err(PortError::Conflict)), "a duplicate hash conflicts");
    assert_eq!(store.get(&key.key_hash).await.unwrap(), Some(key.clone()));
    assert_eq!(store.list_for_tenant(&t).await.unwrap(), vec![key.clone()]);
    store.delete(&key.key_hash).await.unwrap();
    assert_eq!(store.get(&key.key_hash).await.unwrap(), None);
}

pub async fn tenants(store: &dyn TenantStore) {
    let t = tenant();
    assert!(!store.exists(&t).await.unwrap());
    let r = TenantRecord { tenant_id: t.clone(), created_at: OffsetDateTime::now_utc() };
    store.register(&r).await.unwrap();
    store.register(&r).await.unwrap();
    assert!(store.exists(&t).await.unwrap());
}

pub async fn events(store: &dyn EventStore) {
    let t = tenant();
    let e = StoredEvent { tenant_id: t.clone(), event_id: "e1".into(), event_type: "a.b".into(), occurred_at: OffsetDateTime::UNIX_EPOCH, body: format!("{{\"pad\":\"{}\"}}", "x".repeat(900)), expires_at: 9 };
    assert_eq!(store.put(&e).await.unwrap(), Created::New);
    assert_eq!(store.put(&e).await.unwrap(), Created::Existed);
    assert_eq!(store.get(&t, "e1").await.unwrap(), Some(e));
    assert_eq!(store.get(&t, "e2").await.unwrap(), None);
}

fn record(id: &DeliveryId, seq: u32, status: RecordStatus, at: OffsetDateTime) -> Record {
    Record {
        delivery_id: id.clone(),
        seq,
        event_id: "e".into(),
        event_type: if seq % 2 == 0 { "b.x".into() } else { "a.x".into() },
        status,
        attempts: seq,
        run: seq,
        owner: None,
        next_attempt_at: None,
        token: None,
        queued_at: None,
        attempt: Some(Attempt { attempt: seq, url: "https://x".into(), started_at: at, duration_ms: 3, status_code: Some(500), error_class: None, error_message: None, response_headers: Default::default(), response_body: Some(String::new()), trigger: Trigger::Live }),
        reason: None,
        event: (seq == 1).then(|| RecordedEvent { tenant_id: TenantId::parse("acme").unwrap(), body: "{}".into() }),
        written_at: at,
        expires_at: 9,
    }
}

pub async fn ledger(store: &dyn Ledger) {
    let sub = SubscriptionId::generate();
    let t = TenantId::parse("acme").unwrap();
    let base = time::macros::datetime!(2026-11-22 10:00 UTC);
    let at = |i: i64| base + time::Duration::seconds(i);
    // 30 deliveries, one per second; delivery i has (i % 3) + 1 records; its head is delivered
    // for even i, failed for odd i.
    let ids: Vec<DeliveryId> = (0..30).map(|i| DeliveryId::derive(EventSource::Queue, &t, &format!("e{i}"), at(i), &sub)).collect();
    for (i, id) in ids.iter().enumerate() {
        let n = (i % 3) as u32 + 1;
        for seq in 1..=n {
            let st = if seq < n { RecordStatus::Retrying } else if i % 2 == 0 { RecordStatus::Delivered } else { RecordStatus::Failed };
            store.append(&record(id, seq, st, at(i as i64))).await.unwrap();
        }
    }
    // Appends are conditional on the sequence number being free.
    let dup = record(&ids[0], 1, RecordStatus::Delivered, at(0));
    assert!(matches!(store.append(&dup).await, Err(PortError::Conflict)));
    // Head and the whole delivery (oldest first), strong and eventual reads alike.
    let head = store.head(&ids[5], Read::Strong).await.unwrap().unwrap();
    assert_eq!((head.seq, head.status), (3, RecordStatus::Failed));
    assert_eq!(store.head(&ids[5], Read::Eventual).await.unwrap().map(|h| h.seq), Some(3));
    let d = store.delivery(&ids[5]).await.unwrap().unwrap();
    assert_eq!(d.records.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(d.records[0], record(&ids[5], 1, RecordStatus::Retrying, at(5)), "a record reads back as written");
    let never = DeliveryId::derive(EventSource::Queue, &t, "never", at(0), &sub);
    assert!(store.head(&never, Read::Strong).await.unwrap().is_none() && store.delivery(&never).await.unwrap().is_none());

    // Listing: newest event first, paged by cursor, every delivery once.
    let all = DeliveryFilter::default();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list(&sub, &all, cursor.as_deref(), 7).await.unwrap();
        assert!(page.items.len() <= 7);
        seen.extend(page.items.iter().map(|d| d.id().clone()));
        for d in &page.items {
            assert_eq!(d.records.len(), (ids.iter().position(|x| x == d.id()).unwrap() % 3) + 1, "each delivery with all its records");
        }
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let newest_first: Vec<DeliveryId> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
    // Filters: status of the head, event type of the head, the event time range.
    let failed = DeliveryFilter { status: vec![crate::model::DeliveryStatus::Failed], ..Default::default() };
    let page = store.list(&sub, &failed, None, 100).await.unwrap();
    assert_eq!(page.items.len(), 15);
    assert!(page.items.iter().all(|d| d.status() == crate::model::DeliveryStatus::Failed) && page.next.is_none());
    let window = DeliveryFilter { since: Some(at(10)), until: Some(at(20)), ..Default::default() };
    let page = store.list(&sub, &window, None, 100).await.unwrap();
    assert_eq!(page.items.iter().map(|d| d.id().clone()).collect::<Vec<_>>(), ids[10..20].iter().rev().cloned().collect::<Vec<_>>());
    let typed = DeliveryFilter { event_type: Some("a.x".into()), ..Default::default() };
    assert!(store.list(&sub, &typed, None, 100).await.unwrap().items.iter().all(|d| d.head().event_type == "a.x"));
    assert!(matches!(store.list(&sub, &all, Some("bogus"), 5).await, Err(PortError::BadCursor)));
    let inverted = DeliveryFilter { since: Some(at(20)), until: Some(at(10)), ..Default::default() };
    assert!(store.list(&sub, &inverted, None, 5).await.unwrap().items.is_empty());

    // Marks: conditional on status (and token); queued records are found by the sweeper's query.
    let id = &ids[1]; // failed, 2 records
    let queue = Mark::Queue { token: "tok".into(), at: at(100) };
    let reopenable = Expect { status: vec![RecordStatus::Failed], token: None };
    assert!(matches!(store.mark(id, 1, &reopenable, &queue).await, Err(PortError::Conflict)), "record 1 is not failed");
    store.mark(id, 2, &reopenable, &queue).await.unwrap();
    assert!(matches!(store.mark(id, 2, &reopenable, &queue).await, Err(PortError::Conflict)), "no longer failed");
    let h = store.head(id, Read::Strong).await.unwrap().unwrap();
    assert_eq!((h.status, h.token.as_deref(), h.queued_at), (RecordStatus::Queued, Some("tok"), Some(at(100))));
    let stale = store.queued_before(at(101), 10).await.unwrap();
    assert!(stale.contains(&(id.clone(), 2)), "{stale:?}");
    assert!(!store.queued_before(at(100), 10).await.unwrap().contains(&(id.clone(), 2)));
    let wrong = Expect { status: vec![RecordStatus::Queued], token: Some("other".into()) };
    assert!(matches!(store.mark(id, 2, &wrong, &Mark::Claim { owner: "m".into() }).await, Err(PortError::Conflict)));
    let right = Expect { status: vec![RecordStatus::Queued], token: Some("tok".into()) };
    store.mark(id, 2, &right, &Mark::Claim { owner: "m".into() }).await.unwrap();
    let h = store.head(id, Read::Strong).await.unwrap().unwrap();
    assert_eq!((h.status, h.owner.as_deref(), h.queued_at), (RecordStatus::Attempting, Some("m"), None));
    assert!(!store.queued_before(at(101), 10).await.unwrap().contains(&(id.clone(), 2)), "a claim leaves the index");
}

#[cfg(test)]
mod memory {
    use crate::adapters::memory::*;

    #[tokio::test]
    async fn the_in_memory_adapters_keep_the_contracts() {
        super::subscriptions(&MemorySubscriptions::default(), &MemoryTenants::default()).await;
        super::api_keys(&MemoryApiKeys::default()).await;
        super::tenants(&MemoryTenants::default()).await;
        super::events(&MemoryEvents::default()).await;
        super::ledger(&MemoryLedger::default()).await;
    }
}
