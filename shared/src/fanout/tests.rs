use super::*;
use crate::ids::{SubscriptionId, TenantId};
use crate::testing::{config, event, subscribe, tenant};

const URL: &str = "https://example.com/hook";

fn batch_of(bodies: &[String], receive: u32) -> SqsEvent {
    let mut batch = SqsEvent::default();
    for (i, body) in bodies.iter().enumerate() {
        let mut m = SqsMessage::default();
        m.message_id = Some(format!("m{i}"));
        m.receipt_handle = Some(format!("rh{i}"));
        m.body = Some(body.clone());
        m.attributes.insert("ApproximateReceiveCount".into(), receive.to_string());
        batch.records.push(m);
    }
    batch
}

fn bodies(events: &[EventIn]) -> Vec<String> {
    events.iter().map(|e| serde_json::to_string(e).unwrap()).collect()
}

fn subscription_of(t: &DeliveryTask) -> SubscriptionId {
    t.delivery_id().subscription()
}

#[tokio::test]
async fn one_task_per_matching_subscription_and_the_same_deliveries_on_repeat() {
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
    let e = event("e1", "project.created");
    for _ in 0..2 {
        assert!(handle_batch(batch_of(&bodies(&[e.clone()]), 1), &deps).await.batch_item_failures.is_empty());
    }

    // THEN each run sent one task per matching subscription, with the same delivery ids
    let sent = queues.take_tasks();
    assert_eq!(sent.len(), 6);
    let mut subs: Vec<_> = sent[..3].iter().map(subscription_of).collect();
    subs.sort();
    matching.sort();
    assert_eq!(subs, matching);
    let ids = |ts: &[DeliveryTask]| ts.iter().map(|t| t.delivery_id().clone()).collect::<std::collections::BTreeSet<_>>();
    assert_eq!(ids(&sent[..3]), ids(&sent[3..]), "fan-out is idempotent: the same deliveries");
    // AND each task carries the event's exact bytes, and fan-out wrote nothing
    let body: serde_json::Value = serde_json::from_str(sent[0].deliver().body.get()).unwrap();
    assert_eq!(body["data"]["k"], 1);
    assert_eq!(sent[0].deliver().body.get(), e.body());
    assert!(!sent[0].deliver().check, "a first receive needs no ledger check");
}

#[tokio::test]
async fn poison_and_unknown_tenants_go_to_the_dlq_without_failing_the_batch() {
    let (deps, queues) = Deps::memory(config(&[]));
    tenant(&deps, "acme").await;
    subscribe(&deps, "acme", URL, &["*"], true).await;
    let good = serde_json::to_string(&event("ok1", "a.b")).unwrap();
    let unknown = good.replace("\"acme\"", "\"nobody\"").replace("ok1", "ok2");
    let bad_tenant = good.replace("\"acme\"", "\"has spaces: private text\"").replace("ok1", "ok3");
    let batch = batch_of(&[good, "{not json".into(), r#"{"event_id":"x"}"#.into(), unknown, bad_tenant], 1);
    let resp = handle_batch(batch, &deps).await;
    assert!(resp.batch_item_failures.is_empty(), "poison is moved, not failed");
    let dead = queues.dead_events.lock().unwrap().clone();
    let reasons: Vec<_> = dead.iter().map(|(_, r)| r.clone()).collect();
    assert_eq!(reasons, ["not_json: body is not JSON", "invalid_envelope: event_type", "unknown_tenant: tenant is not known to this service", "invalid_envelope: tenant_id"]);
    assert!(reasons.iter().all(|r| !r.contains("private")), "a reason never echoes payload text");
    assert_eq!(queues.take_tasks().len(), 1);
}

#[tokio::test]
async fn a_batch_of_events_enqueues_its_tasks_together() {
    let (deps, queues) = Deps::memory(config(&[]));
    tenant(&deps, "acme").await;
    subscribe(&deps, "acme", URL, &["*"], true).await;
    let events: Vec<EventIn> = (0..10).map(|i| event(&format!("b{i}"), "a.b")).collect();
    let resp = handle_batch(batch_of(&bodies(&events), 1), &deps).await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(*queues.batches.lock().unwrap(), vec![10], "one SendMessageBatch, not ten");
    assert_eq!(queues.take_tasks().len(), 10);
}

#[tokio::test]
async fn only_the_events_whose_tasks_were_not_sent_stay_and_their_rerun_checks_the_ledger() {
    // GIVEN two subscriptions, one whose tasks SQS keeps refusing
    let (deps, queues) = Deps::memory(config(&[("INFRA_BACKOFF_MS", "2000")]));
    tenant(&deps, "acme").await;
    subscribe(&deps, "acme", URL, &["a.*"], true).await;
    let refused = subscribe(&deps, "acme", URL, &["x.*"], true).await;
    *queues.refuse.lock().unwrap() = Some(refused.subscription_id.clone());

    // WHEN a batch has events for each
    let events = [event("r0", "a.b"), event("r1", "x.y"), event("r2", "a.c"), event("r3", "x.z")];
    let resp = handle_batch(batch_of(&bodies(&events), 1), &deps).await;

    // THEN the events with refused tasks stay, hidden for the infrastructure backoff
    let mut failed: Vec<_> = resp.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    failed.sort();
    assert_eq!(failed, ["m1", "m3"]);
    let waits = queues.visibility.lock().unwrap().clone();
    assert_eq!(waits.len(), 2);
    assert!(waits.iter().all(|(q, _, d)| *q == QueueName::Events && d.as_secs() == 2));
    assert_eq!(queues.take_tasks().len(), 2);

    // AND once SQS takes them, their second receive sends tasks that check the ledger first
    *queues.refuse.lock().unwrap() = None;
    let again = handle_batch(batch_of(&bodies(&[events[1].clone(), events[3].clone()]), 2), &deps).await;
    assert!(again.batch_item_failures.is_empty());
    let sent = queues.take_tasks();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|t| t.deliver().check));
}

#[tokio::test]
async fn an_infrastructure_error_keeps_the_event_with_a_growing_wait() {
    // GIVEN a tenant whose subscriptions cannot be read (the store is gone: no tenant registered
    // is a rejection, so use a failing sender of tasks instead: every send fails)
    let (deps, queues) = Deps::memory(config(&[("INFRA_BACKOFF_MS", "1000")]));
    tenant(&deps, "acme").await;
    let sub = subscribe(&deps, "acme", URL, &["*"], true).await;
    *queues.refuse.lock().unwrap() = Some(sub.subscription_id);
    // WHEN the same event comes a third time
    let resp = handle_batch(batch_of(&bodies(&[event("o1", "a.b")]), 3), &deps).await;
    // THEN it stays, hidden for 1 s x 2^(3-1)
    assert_eq!(resp.batch_item_failures.len(), 1);
    assert_eq!(queues.visibility.lock().unwrap()[0].2.as_secs(), 4);
}

#[tokio::test]
async fn the_cache_serves_a_tenant_from_memory_within_its_ttl() {
    let (deps, queues) = Deps::memory(config(&[("SUBSCRIPTION_CACHE_TTL_MS", "60000")]));
    tenant(&deps, "acme").await;
    subscribe(&deps, "acme", URL, &["*"], true).await;
    handle_batch(batch_of(&bodies(&[event("c1", "a.b")]), 1), &deps).await;
    // A subscription created now is not seen until the entry expires.
    subscribe(&deps, "acme", URL, &["*"], true).await;
    handle_batch(batch_of(&bodies(&[event("c2", "a.b")]), 1), &deps).await;
    assert_eq!(queues.take_tasks().len(), 2);
}

#[tokio::test]
async fn events_published_over_http_get_deliveries_of_their_own() {
    let (deps, queues) = Deps::memory(config(&[]));
    tenant(&deps, "acme").await;
    subscribe(&deps, "acme", URL, &["*"], true).await;
    let mut batch = batch_of(&bodies(&[event("same", "a.b"), event("same", "a.b")]), 1);
    let mut attr = aws_lambda_events::event::sqs::SqsMessageAttribute::default();
    attr.string_value = Some("http".into());
    attr.data_type = Some("String".into());
    batch.records[1].message_attributes.insert("source".into(), attr);
    handle_batch(batch, &deps).await;
    let sent = queues.take_tasks();
    assert_ne!(sent[0].delivery_id(), sent[1].delivery_id(), "one id on both paths: two events, neither suppresses the other");
    let _ = TenantId::parse("acme");
}
