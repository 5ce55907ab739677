//! Killed at every step: a handler stopped for good at each write of fan-out, delivery, recover
//! and redeliver (a fault point, `shared::faults`), the runner restarted (its in-flight work
//! dropped, as a killed process's), one sweeper pass: every pair ends delivered, none is lost,
//! and every request a receiver saw carries the pair's own `webhook-id`. And recover at scale:
//! 5,000 failed deliveries, the API handler killed mid-way, called again: each redelivered once.

use e2e::census::Census;
use e2e::chaos::{ChaosReceiver, Profile};
use e2e::receiver::Receiver;
use e2e::{eventually, StackOptions, TestStack};
use futures::StreamExt;
use serde_json::json;
use shared::ids::{DeliveryId, SubscriptionId, TenantId};
use shared::model::{Attempt, Record, RecordStatus, RecordedEvent, Trigger};
use std::collections::HashSet;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(120);

fn options() -> StackOptions {
    StackOptions {
        retry_schedule: "1,1",
        delivery_visibility_timeout: 3,
        event_visibility_timeout: 3,
        env: vec![("SWEEP_QUEUED_AFTER_SECS", "1".into())],
        ..Default::default()
    }
}

fn pairs(events: &[String], subs: &[String]) -> Vec<(String, String)> {
    subs.iter().flat_map(|s| events.iter().map(move |e| (e.clone(), s.clone()))).collect()
}

/// Waits for the fault point, then kills and restarts the runner.
async fn kill_when_reached(stack: &mut TestStack, reached: std::sync::Arc<tokio::sync::Notify>, point: &str) {
    tokio::time::timeout(Duration::from_secs(60), reached.notified()).await.unwrap_or_else(|_| panic!("fault point {point} never reached"));
    stack.restart().await;
}

/// After a restart: one sweeper pass (once queued marks are old enough to count as stranded),
/// then everything settles; the census must find every pair delivered.
async fn finish(stack: &TestStack, pairs: &[(String, String)], point: &str) -> Census {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let swept = shared::sweeper::sweep(&stack.runner.deps).await.expect("sweep");
    stack.settle(DEADLINE).await;
    eventually(DEADLINE, "every pair delivered", || async {
        let c = Census::take(stack, pairs).await;
        (c.count("delivered") == pairs.len()).then_some(())
    })
    .await;
    let census = Census::take(stack, pairs).await;
    println!("kill at {point}: swept {swept:?}; {census}");
    census.assert_sound();
    census
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_each_write_of_fan_out_and_delivery_nothing_is_lost() {
    for point in ["fanout.before_send", "fanout.after_send", "delivery.after_post", "delivery.after_append", "delivery.after_visibility"] {
        // GIVEN two subscriptions whose endpoint fails each delivery's first request
        let mut stack = TestStack::start(options()).await;
        let receiver = ChaosReceiver::start(Profile { fail_first: true, ..Profile::OK }).await;
        let subs: Vec<String> = futures::future::join_all((0..2).map(|_| stack.create_subscription(&receiver.url, &["*"]))).await.iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect();
        let events: Vec<String> = (0..4).map(|i| format!("kill-{i}")).collect();
        // WHEN the first handler to reach the point stops there, and the runner is killed
        let reached = stack.runner.deps.faults.arm(point, 0);
        stack.publish_many(&events, "project.created").await;
        kill_when_reached(&mut stack, reached, point).await;
        // THEN after a restart and one sweeper pass every pair is delivered
        let census = finish(&stack, &pairs(&events, &subs), point).await;
        assert_eq!(census.count("delivered"), 8, "{point}: {census}");
        // AND every request carried its own pair's webhook-id
        let expected: HashSet<String> = pairs(&events, &subs).iter().map(|(e, s)| TestStack::delivery_id(e, s).to_string()).collect();
        let seen = receiver.seen();
        assert!(seen.keys().all(|id| expected.contains(id)), "{point}: {seen:?}");
        assert_eq!(receiver.processed().len(), 8, "{point}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_each_write_of_recover_and_redeliver_nothing_is_lost_or_stranded() {
    for point in ["recover.after_mark", "recover.after_send", "redeliver.after_mark"] {
        // GIVEN failed deliveries (the endpoint answered 500 to all three attempts)
        let mut stack = TestStack::start(options()).await;
        let receiver = Receiver::statuses(&[], 500).await;
        let sub = stack.create_subscription(&receiver.url, &["*"]).await["id"].as_str().unwrap().to_owned();
        let events: Vec<String> = (0..6).map(|i| format!("rec-{i}")).collect();
        let all = pairs(&events, std::slice::from_ref(&sub));
        stack.publish_many(&events, "project.created").await;
        eventually(DEADLINE, "six failed deliveries", || async {
            let c = Census::take(&stack, &all).await;
            (c.count("failed") == 6).then_some(())
        })
        .await;
        stack.settle(DEADLINE).await;
        receiver.set_fallback(200);
        // WHEN the API handler is killed at the point
        let reached = stack.runner.deps.faults.arm(point, 0);
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        let call = |path: String, body: serde_json::Value| {
            let req = client.post(stack.api(&path)).bearer_auth(&stack.api_key).json(&body);
            async move { req.send().await }
        };
        let first = if point.starts_with("recover") {
            call(format!("/v1/subscriptions/{sub}/recover"), json!({"since": "2020-01-01T00:00:00Z"})).await
        } else {
            call(format!("/v1/deliveries/{}/redeliver", TestStack::delivery_id(&events[0], &sub)), json!({})).await
        };
        assert!(first.is_err(), "{point}: the killed call does not answer");
        kill_when_reached(&mut stack, reached, point).await;
        // THEN calling again finishes the job (recover), or the sweeper sends the stranded
        // redelivery; every delivery gets exactly one new attempt
        if point.starts_with("recover") {
            let (status, out) = stack.call("POST", &format!("/v1/subscriptions/{sub}/recover"), Some(json!({"since": "2020-01-01T00:00:00Z"}))).await;
            assert_eq!((status, out["next_cursor"].as_str()), (202, None), "{out}");
        } else {
            for e in &events[1..] {
                let (status, out) = stack.call("POST", &format!("/v1/deliveries/{}/redeliver", TestStack::delivery_id(e, &sub)), None).await;
                assert_eq!(status, 202, "{out}");
            }
        }
        finish(&stack, &all, point).await;
        for e in &events {
            let id = TestStack::delivery_id(e, &sub);
            let n = receiver.received().iter().filter(|r| r.header("webhook-id") == id.as_str()).count();
            assert_eq!(n, 4, "{point}: {id}: three failed attempts and exactly one redelivery");
        }
    }
}

/// A failed delivery as its first record says, written straight into the ledger (setup).
fn failed_record(sub: &SubscriptionId, i: usize) -> Record {
    let event_id = format!("scale-{i:05}");
    let body = TestStack::envelope(&event_id, "project.created", json!({"i": i})).to_string();
    let at = shared::timefmt::parse(e2e::ENVELOPE_TIME).unwrap();
    let tenant = TenantId::parse("acme").unwrap();
    let now = time::OffsetDateTime::now_utc();
    Record {
        delivery_id: DeliveryId::derive(shared::ids::EventSource::Queue, &tenant, &event_id, at, sub),
        seq: 1,
        event_id,
        event_type: "project.created".into(),
        status: RecordStatus::Failed,
        attempts: 1,
        run: 1,
        owner: None,
        next_attempt_at: None,
        token: None,
        queued_at: None,
        attempt: Some(Attempt { attempt: 1, url: "http://127.0.0.1:9/".into(), started_at: now, duration_ms: 1, status_code: Some(500), error_class: Some(shared::model::FailureClass::Http), error_message: None, response_headers: Default::default(), response_body: Some(String::new()), trigger: Trigger::Live }),
        reason: Some("retries exhausted: 1 attempts failed".into()),
        event: Some(RecordedEvent { tenant_id: tenant, body }),
        written_at: now,
        expires_at: now.unix_timestamp() + 86_400,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovering_5000_failed_deliveries_killed_midway_redelivers_each_exactly_once() {
    let n: usize = std::env::var("RECOVER_DELIVERIES").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
    // A visibility timeout well above a loaded batch's time: a task is received again only after
    // the kill (production: 180 s against a 30 s function timeout), not while its first
    // handler is still posting.
    let mut stack = TestStack::start(StackOptions { delivery_pollers: 4, delivery_visibility_timeout: 30, ..options() }).await;
    let receiver = ChaosReceiver::start(Profile::OK).await;
    let sub = SubscriptionId::parse(stack.create_subscription(&receiver.url, &["*"]).await["id"].as_str().unwrap()).unwrap();
    let ledger = stack.runner.deps.ledger.clone();
    futures::stream::iter(0..n)
        .map(|i| {
            let (ledger, r) = (ledger.clone(), failed_record(&sub, i));
            async move { ledger.append(&r).await.expect("append") }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    // WHEN recover is killed after sending its fifth page of 100
    let reached = stack.runner.deps.faults.arm("recover.after_send", 4);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let path = format!("/v1/subscriptions/{sub}/recover");
    let killed = client.post(stack.api(&path)).bearer_auth(&stack.api_key).json(&json!({"since": "2020-01-01T00:00:00Z"})).send();
    let (killed, _) = tokio::join!(killed, kill_when_reached(&mut stack, reached, "recover.after_send"));
    assert!(killed.is_err());
    // THEN calling it again (and on, with its cursor) finishes the job
    let mut cursor = serde_json::Value::Null;
    let mut calls = 0;
    loop {
        let (status, out) = stack.call("POST", &path, Some(json!({"since": "2020-01-01T00:00:00Z", "cursor": cursor}))).await;
        assert_eq!(status, 202, "{out}");
        calls += 1;
        match out["next_cursor"].as_str() {
            Some(c) => cursor = json!(c),
            None => break,
        }
    }
    eventually(Duration::from_secs(600), "every delivery redelivered", || async { (receiver.processed().len() == n).then_some(()) }).await;
    stack.settle(DEADLINE).await;
    // AND each delivery was redelivered exactly once: one redelivery attempt recorded for each
    // (the census below: 2 attempts per delivery). At the receiver, a POST in flight when the
    // process was killed comes again after the restart under the same webhook-id (at least
    // once): at most the tasks in flight then, 4 pollers x 10.
    let seen = receiver.seen();
    let twice: Vec<_> = seen.iter().filter(|(_, c)| **c != 1).collect();
    println!("recover at scale: {n} failed deliveries, killed after 500, then {calls} calls: {} distinct redelivered, {} POSTed again after the kill", seen.len(), twice.len());
    assert_eq!(seen.len(), n);
    assert!(twice.len() <= 40 && twice.iter().all(|(_, c)| **c == 2), "redelivered more than the kill explains: {:?}", &twice[..twice.len().min(5)]);
    let ids: Vec<String> = (0..n).map(|i| format!("scale-{i:05}")).collect();
    let census = Census::take(&stack, &pairs(&ids, &[sub.to_string()])).await;
    census.assert_sound();
    assert_eq!((census.count("delivered"), census.attempts), (n, 2 * n as u64), "{census}");
}
