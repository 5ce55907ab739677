//! The worker on in-memory adapters with real HTTP receivers on loopback.

use super::*;
use crate::adapters::memory::MemoryQueues;
use crate::ids::DeliveryId;
use crate::model::{DeliveryStatus, EndpointAuth};
use crate::ports::Delivery;
use crate::testing::{config, event, subscribe, tenant};
use axum::http::StatusCode;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A loopback receiver answering with whatever status `code` holds (and `extra` headers); it
/// records the request headers it saw.
pub(crate) async fn receiver(code: Arc<AtomicU16>, extra: &'static [(&'static str, &'static str)]) -> (String, Arc<Mutex<Vec<axum::http::HeaderMap>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let code = code.clone();
            let seen = seen2.clone();
            async move {
                seen.lock().unwrap().push(headers);
                let mut resp = axum::response::IntoResponse::into_response(StatusCode::from_u16(code.load(Ordering::SeqCst)).unwrap());
                for (k, v) in extra {
                    resp.headers_mut().insert(*k, v.parse().unwrap());
                }
                resp
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

thread_local! {
    static LEDGER: std::cell::RefCell<Option<Arc<crate::adapters::memory::MemoryLedger>>> = const { std::cell::RefCell::new(None) };
}

pub(crate) async fn setup(url: &str, env: &[(&str, &str)]) -> (Deps, Arc<MemoryQueues>, DeliveryTask, Subscription) {
    let mut all = vec![("RETRY_SCHEDULE", "10,20"), ("ALLOW_HTTP", "true"), ("ALLOW_PRIVATE_TARGETS", "true"), ("MIN_THROTTLE_DELAY_SECS", "60"), ("HEALTH_FLUSH_SECS", "0")];
    all.extend_from_slice(env);
    let (deps, queues, ledger) = Deps::memory_with_ledger(config(&all));
    LEDGER.with(|l| *l.borrow_mut() = Some(ledger));
    tenant(&deps, "acme").await;
    let sub = subscribe(&deps, "acme", url, &["*"], true).await;
    let task = crate::fanout::tasks_for(&event("e1", "a.b"), crate::ids::EventSource::Queue, false, &deps).await.unwrap().remove(0);
    (deps, queues, task, sub)
}

pub(crate) fn message(task: &DeliveryTask, id: &str, receive_count: u32) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.into());
    m.receipt_handle = Some(format!("rh-{id}-{receive_count}"));
    m.body = Some(serde_json::to_string(task).unwrap());
    m.attributes.insert("ApproximateReceiveCount".into(), receive_count.to_string());
    m
}

/// One message through the worker: its ack as the batch response says (kept or deleted).
pub(crate) async fn handle(deps: &Deps, m: SqsMessage) -> bool {
    let mut e = SqsEvent::default();
    e.records.push(m);
    !handle_batch(e, deps).await.batch_item_failures.is_empty()
}

async fn delivery(deps: &Deps, task: &DeliveryTask) -> Delivery {
    deps.ledger.delivery(task.delivery_id()).await.unwrap().expect("recorded")
}

async fn sub_now(deps: &Deps, sub: &Subscription) -> Subscription {
    deps.subscriptions.get(&sub.tenant_id, &sub.subscription_id).await.unwrap().unwrap()
}

fn id_of(task: &DeliveryTask) -> &DeliveryId {
    task.delivery_id()
}

#[tokio::test]
async fn failure_schedules_a_retry_then_success_settles_the_delivery() {
    let code = Arc::new(AtomicU16::new(503));
    let (url, seen) = receiver(code.clone(), &[]).await;
    let (deps, queues, task, sub) = setup(&url, &[]).await;

    // WHEN the first attempt gets a 503
    assert!(handle(&deps, message(&task, "m1", 1)).await, "kept on the queue");
    // THEN the message is hidden for the first delay (10 s ± 20 %), and the delivery is retrying,
    // owned by that message, with the event in its first record
    let (q, handle_, delay) = queues.visibility.lock().unwrap()[0].clone();
    assert_eq!((q, handle_), (QueueName::Deliveries, crate::ports::MessageHandle("rh-m1-1".into())));
    assert!((8..=12).contains(&delay.as_secs()), "{delay:?}");
    let d = delivery(&deps, &task).await;
    assert_eq!((d.status(), d.head().attempts, d.head().owner.as_deref()), (DeliveryStatus::Retrying, 1, Some("m1")));
    assert_eq!(d.event().unwrap().body, task.deliver().body.get());
    assert_eq!(d.last_attempt().unwrap().status_code, Some(503));
    assert_eq!(sub_now(&deps, &sub).await.failure_count, 1);

    // WHEN SQS hands the same message back once the wait is over, and the endpoint answers 204
    code.store(204, Ordering::SeqCst);
    make_due(&deps, &task).await;
    assert!(!handle(&deps, message(&task, "m1", 2)).await, "deleted");
    let d = delivery(&deps, &task).await;
    assert_eq!((d.status(), d.head().attempts, d.records.len()), (DeliveryStatus::Delivered, 2, 2));
    let attempts: Vec<_> = d.records.iter().filter_map(|r| r.attempt.as_ref()).map(|a| (a.attempt, a.status_code)).collect();
    assert_eq!(attempts, [(1, Some(503)), (2, Some(204))]);
    let health = sub_now(&deps, &sub).await;
    assert_eq!((health.failure_count, health.first_failure_at), (0, None));
    assert!(health.last_delivered_at.is_some());

    // AND a duplicate task that checks the ledger is dropped without a POST
    let mut dup = task.clone();
    let DeliveryTask::Deliver(d) = &mut dup;
    d.check = true;
    assert!(!handle(&deps, message(&dup, "m2", 1)).await);
    assert_eq!(seen.lock().unwrap().len(), 2);
    // AND one that does not (a first receive) POSTs once more under the same webhook-id, is
    // recorded, and leaves the delivery delivered
    code.store(500, Ordering::SeqCst);
    assert!(!handle(&deps, message(&task, "m3", 1)).await);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|h| h["webhook-id"] == id_of(&task).as_str()));
    let d = delivery(&deps, &task).await;
    assert_eq!((d.status(), d.head().attempts), (DeliveryStatus::Delivered, 3));
}

#[tokio::test]
async fn the_last_attempt_fails_the_delivery_and_deletes_its_message() {
    let (url, _) = receiver(Arc::new(AtomicU16::new(500)), &[]).await;
    let (deps, queues, task, _) = setup(&url, &[]).await;
    // Schedule "10,20": three attempts. The receive count says nothing about them.
    for receive in [1, 2, 3] {
        let kept = handle(&deps, message(&task, "m1", receive)).await;
        // Each retry comes back early here (no real wait): the worker attempts only when due.
        let head = deps.ledger.head(id_of(&task), Read::Strong).await.unwrap().unwrap();
        assert_eq!(head.attempts, 1, "receive {receive}: the retry is not due yet");
        if receive == 1 {
            assert!(kept);
        }
    }
    // Make the retries due, then run them.
    for attempt in 2..=3 {
        make_due(&deps, &task).await;
        let kept = handle(&deps, message(&task, "m1", 10 + attempt)).await;
        assert_eq!(kept, attempt < 3, "attempt {attempt}");
    }
    let d = delivery(&deps, &task).await;
    assert_eq!((d.status(), d.head().attempts), (DeliveryStatus::Failed, 3));
    assert_eq!(d.head().reason.as_deref(), Some("retries exhausted: 3 attempts failed"));
    assert!(queues.visibility.lock().unwrap().iter().all(|(_, _, d)| !d.is_zero()), "no message is pushed to the DLQ");
}

/// Moves the head's next attempt into the past (as if its wait had passed).
async fn make_due(_deps: &Deps, task: &DeliveryTask) {
    let past = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    LEDGER.with(|l| l.borrow().as_ref().expect("setup ran").set_due(id_of(task), past));
}

#[tokio::test]
async fn a_message_that_comes_back_early_waits_for_its_due_time_without_an_attempt() {
    let (url, seen) = receiver(Arc::new(AtomicU16::new(500)), &[]).await;
    let (deps, queues, task, _) = setup(&url, &[]).await;
    handle(&deps, message(&task, "m1", 1)).await;
    // The visibility change was lost (a crash): SQS hands the message back after its timeout.
    assert!(handle(&deps, message(&task, "m1", 2)).await);
    assert_eq!(seen.lock().unwrap().len(), 1, "no second POST");
    let waits = queues.visibility.lock().unwrap().clone();
    assert_eq!(waits.len(), 2);
    assert!(waits[1].2 <= waits[0].2 && waits[1].2.as_secs() >= 5, "{waits:?}");
    // A copy of the task from another message (a second fan-out) leaves it to its owner.
    let mut dup = task.clone();
    let DeliveryTask::Deliver(d) = &mut dup;
    d.check = true;
    assert!(!handle(&deps, message(&dup, "other", 1)).await);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn throttling_and_retry_after_stretch_the_wait() {
    let (url, _) = receiver(Arc::new(AtomicU16::new(429)), &[]).await;
    let (deps, queues, task, _) = setup(&url, &[]).await;
    handle(&deps, message(&task, "m1", 1)).await;
    assert_eq!(queues.visibility.lock().unwrap()[0].2, Duration::from_secs(60), "429 waits at least a minute");

    let (url, _) = receiver(Arc::new(AtomicU16::new(503)), &[("retry-after", "120")]).await;
    let (deps, queues, task, _) = setup(&url, &[]).await;
    handle(&deps, message(&task, "m1", 1)).await;
    assert_eq!(queues.visibility.lock().unwrap()[0].2, Duration::from_secs(120), "Retry-After above the schedule wins");
    let a = delivery(&deps, &task).await.last_attempt().cloned().unwrap();
    assert_eq!(a.response_headers.get("retry-after").map(String::as_str), Some("120"));
}

#[tokio::test]
async fn gone_fails_at_once_and_disables_the_subscription() {
    let (url, _) = receiver(Arc::new(AtomicU16::new(410)), &[]).await;
    let (deps, queues, task, sub) = setup(&url, &[]).await;
    assert!(!handle(&deps, message(&task, "m1", 1)).await);
    assert!(queues.visibility.lock().unwrap().is_empty());
    assert_eq!(delivery(&deps, &task).await.status(), DeliveryStatus::Failed);
    let s = sub_now(&deps, &sub).await;
    assert!(!s.enabled);
    assert_eq!(s.disabled_reason.as_deref(), Some("endpoint answered 410 Gone"));
}

#[tokio::test]
async fn a_run_of_failures_longer_than_the_limit_disables_the_subscription() {
    let (url, _) = receiver(Arc::new(AtomicU16::new(500)), &[]).await;
    let (deps, _, task, sub) = setup(&url, &[("DISABLE_AFTER_SECS", "3600")]).await;
    let since = OffsetDateTime::now_utc() - time::Duration::hours(2);
    deps.subscriptions.record_health(&sub.tenant_id, &sub.subscription_id, HealthChange::Failed { count: 7, since }).await.unwrap();
    handle(&deps, message(&task, "m1", 1)).await;
    let s = sub_now(&deps, &sub).await;
    assert!(!s.enabled);
    assert_eq!(s.failure_count, 8);
    assert!(s.disabled_reason.unwrap().contains("8 consecutive failures"));
}

#[tokio::test]
async fn a_deleted_subscription_cancels_its_delivery_without_an_attempt() {
    let (url, seen) = receiver(Arc::new(AtomicU16::new(200)), &[]).await;
    let (deps, _, task, sub) = setup(&url, &[]).await;
    let at = OffsetDateTime::now_utc();
    deps.subscriptions.set_active(&sub.tenant_id, &sub.subscription_id, crate::ports::ActiveChange::Delete { at, purge_at: 0 }, None).await.unwrap();
    assert!(!handle(&deps, message(&task, "m1", 1)).await);
    let d = delivery(&deps, &task).await;
    assert_eq!((d.status(), d.head().attempts), (DeliveryStatus::Cancelled, 0));
    assert!(d.event().is_some(), "kept for a redelivery after a restore");
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn custom_headers_auth_and_both_secrets_during_rotation_are_sent() {
    let (url, seen) = receiver(Arc::new(AtomicU16::new(200)), &[]).await;
    let (deps, _, task, sub) = setup(&url, &[]).await;
    let change = crate::ports::SubscriptionChange {
        headers: Some([("x-tenant-tag".to_owned(), "blue".to_owned())].into()),
        auth: Some(EndpointAuth::Basic { username: "u".into(), password: "p".into() }),
        rotate: Some((crate::signing::Secret::generate(), OffsetDateTime::now_utc() + time::Duration::hours(1))),
        ..Default::default()
    };
    deps.subscriptions.update(&sub.tenant_id, &sub.subscription_id, &change, None).await.unwrap();
    assert!(!handle(&deps, message(&task, "m1", 1)).await);
    let h = seen.lock().unwrap()[0].clone();
    assert_eq!(h["x-tenant-tag"], "blue");
    assert_eq!(h["authorization"], "Basic dTpw");
    assert_eq!(h["webhook-signature"].to_str().unwrap().split(' ').count(), 2);
    assert_eq!(h["webhook-id"], id_of(&task).as_str());
}

#[tokio::test]
async fn connection_refused_is_a_connect_failure_and_unreadable_tasks_back_off() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let (deps, queues, task, _) = setup(&url, &[("INFRA_BACKOFF_MS", "1000")]).await;
    assert!(handle(&deps, message(&task, "m1", 1)).await);
    let a = delivery(&deps, &task).await.last_attempt().cloned().unwrap();
    assert_eq!((a.error_class, a.status_code), (Some(FailureClass::Connect), None));

    let mut garbage = SqsMessage::default();
    garbage.message_id = Some("g".into());
    garbage.receipt_handle = Some("rh-g".into());
    garbage.body = Some("{not json".into());
    garbage.attributes.insert("ApproximateReceiveCount".into(), "3".into());
    assert!(handle(&deps, garbage).await);
    assert_eq!(queues.visibility.lock().unwrap().last().unwrap().2, Duration::from_secs(4), "1 s doubled per receive");
}

#[tokio::test]
async fn blocked_targets_are_refused_without_a_connection() {
    let (url, seen) = receiver(Arc::new(AtomicU16::new(200)), &[]).await;
    let (deps, _, task, _) = setup(&url, &[("ALLOW_PRIVATE_TARGETS", "false")]).await;
    assert!(handle(&deps, message(&task, "m1", 1)).await);
    assert_eq!(delivery(&deps, &task).await.last_attempt().unwrap().error_class, Some(FailureClass::Blocked));
    assert!(seen.lock().unwrap().is_empty());
}

/// A receiver that holds each request until `n` have arrived, so concurrent POSTs overlap.
async fn rendezvous(n: usize, code: u16) -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Barrier::new(n));
    let c = count.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move || {
            let (c, gate) = (c.clone(), gate.clone());
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                gate.wait().await;
                StatusCode::from_u16(code).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, count)
}

#[tokio::test]
async fn racing_workers_record_every_post_and_agree_on_the_state() {
    for (code, want) in [(200, DeliveryStatus::Delivered), (500, DeliveryStatus::Retrying)] {
        // GIVEN two handlers given the same message at once, whose POSTs overlap
        let (url, posts) = rendezvous(2, code).await;
        let (deps, _, task, _) = setup(&url, &[]).await;
        let (a, b) = tokio::join!(handle(&deps, message(&task, "m1", 1)), handle(&deps, message(&task, "m1", 1)));
        // THEN each POST has its record, numbered 1 and 2, and the state follows from them
        assert_eq!(posts.load(Ordering::SeqCst), 2);
        let d = delivery(&deps, &task).await;
        let numbers: Vec<u32> = d.records.iter().filter_map(|r| r.attempt.as_ref()).map(|a| a.attempt).collect();
        assert_eq!(numbers, [1, 2], "{code}");
        assert_eq!(d.status(), want, "{code}");
        assert_eq!(d.records.iter().filter(|r| r.event.is_some()).count(), 1, "the event is kept once");
        // AND a delivered delivery is deleted by both; a retrying one stays with its owner
        assert_eq!((a, b), if code == 200 { (false, false) } else { (true, true) });
    }
}

#[tokio::test]
async fn a_redelivery_is_claimed_once_and_gets_the_whole_schedule_again() {
    let code = Arc::new(AtomicU16::new(410));
    let (url, seen) = receiver(code.clone(), &[]).await;
    let (deps, queues, task, sub) = setup(&url, &[]).await;
    handle(&deps, message(&task, "m1", 1)).await;
    let enable = crate::ports::SubscriptionChange { enabled: Some(true), ..Default::default() };
    deps.subscriptions.update(&sub.tenant_id, &sub.subscription_id, &enable, None).await.unwrap();
    // WHEN the failed delivery is redelivered
    let d = delivery(&deps, &task).await;
    let reopened = actions::redeliver(&deps, d).await.unwrap();
    assert_eq!(reopened.status(), DeliveryStatus::Queued);
    let sent = queues.take_tasks();
    assert_eq!(sent.len(), 1);
    // THEN a second redeliver is refused while it is queued
    assert!(matches!(actions::redeliver(&deps, delivery(&deps, &task).await).await, Err(actions::ActionError::NotReopenable("queued"))));
    // AND of two copies of its task, one claims and POSTs, the other finds it claimed
    code.store(500, Ordering::SeqCst);
    assert!(handle(&deps, message(&sent[0], "r1", 1)).await);
    assert!(!handle(&deps, message(&sent[0], "r2", 1)).await);
    assert_eq!(seen.lock().unwrap().len(), 2);
    let head = deps.ledger.head(id_of(&task), Read::Strong).await.unwrap().unwrap();
    assert_eq!((head.status, head.run, head.attempts, head.owner.as_deref()), (RecordStatus::Retrying, 1, 2, Some("r1")), "a new run, owned by the claimer");
    let shown = seen.lock().unwrap()[1]["webhook-id"].clone();
    assert_eq!(shown, id_of(&task).as_str(), "the same webhook-id");
}
