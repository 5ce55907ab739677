//! Reliability proof: under misbehaving endpoints and an infrastructure outage, every
//! (event, subscription) pair ends in exactly one terminal state — `delivered` (and the receiver
//! processed it, once after dedup) or `failed` (and its message is in the delivery DLQ).
//!
//! `CHAOS_EVENTS` sets N (default 200); the large run:
//! `CHAOS_EVENTS=10000 scripts/test.sh`-style, see docs/reliability.md.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use e2e::chaos::{ChaosReceiver, Profile};
use e2e::proxy::Proxy;
use e2e::{eventually, StackOptions, TestStack};
use shared::ids::{DeliveryId, SubscriptionId, TenantId};
use shared::model::DeliveryStatus;
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct Accounting {
    pairs: usize,
    delivered: usize,
    failed: usize,
    missing: usize,
    pending: usize,
    delivered_not_processed: usize,
    failed_not_in_dlq: usize,
    in_dlq_not_failed: usize,
    processed_but_failed: usize,
    attempts: u64,
}

async fn publish_all(stack: &TestStack, ids: &[String]) -> Instant {
    let started = Instant::now();
    for chunk in ids.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let body = TestStack::envelope(id, "project.created", serde_json::json!({"id": id})).to_string();
                SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body).build().unwrap()
            })
            .collect();
        let out = stack.sqs.send_message_batch().queue_url(&stack.config.events_queue_url).set_entries(Some(entries)).send().await.unwrap();
        assert!(out.failed.is_empty(), "publishing failed: {:?}", out.failed);
    }
    started
}

/// Waits until both queues are empty (nothing visible, nothing in flight).
async fn settle(stack: &TestStack, deadline: Duration) {
    eventually(deadline, "both queues to drain", || async {
        let events = stack.queue_depth(&stack.config.events_queue_url).await;
        let deliveries = stack.queue_depth(&stack.config.delivery_queue_url).await;
        (events == 0 && deliveries == 0).then_some(())
    })
    .await;
}

async fn dlq_delivery_ids(stack: &TestStack) -> HashSet<String> {
    let dlq = &stack.outputs["DELIVERY_DLQ_URL"];
    let mut ids = HashSet::new();
    loop {
        let out = stack.sqs.receive_message().queue_url(dlq).max_number_of_messages(10).visibility_timeout(300).wait_time_seconds(1).send().await.unwrap();
        let msgs = out.messages.unwrap_or_default();
        if msgs.is_empty() {
            return ids;
        }
        for m in msgs {
            let task: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
            ids.insert(task["delivery_id"].as_str().unwrap().to_owned());
        }
    }
}

async fn account(stack: &TestStack, event_ids: &[String], subs: &[(SubscriptionId, &ChaosReceiver)]) -> Accounting {
    let tenant = TenantId::parse("acme").unwrap();
    let dlq = dlq_delivery_ids(stack).await;
    let mut a = Accounting::default();
    let mut failed_ids = HashSet::new();
    for (sub, receiver) in subs {
        let processed = receiver.processed();
        for event_id in event_ids {
            a.pairs += 1;
            let id = DeliveryId::derive(&tenant, event_id, sub);
            let Some(d) = stack.runner.deps.deliveries.get_delivery(&id).await.unwrap() else {
                a.missing += 1;
                continue;
            };
            a.attempts += d.attempts as u64;
            let seen = processed.contains_key(id.as_str());
            match d.status {
                DeliveryStatus::Delivered => {
                    a.delivered += 1;
                    a.delivered_not_processed += usize::from(!seen);
                }
                DeliveryStatus::Failed => {
                    a.failed += 1;
                    failed_ids.insert(id.to_string());
                    a.failed_not_in_dlq += usize::from(!dlq.contains(id.as_str()));
                    a.processed_but_failed += usize::from(seen);
                }
                DeliveryStatus::Pending => a.pending += 1,
            }
        }
    }
    a.in_dlq_not_failed = dlq.difference(&failed_ids).count();
    a
}

fn assert_consistent(a: &Accounting) {
    assert_eq!(a.missing, 0, "{a:?}");
    assert_eq!(a.pending, 0, "{a:?}");
    assert_eq!(a.delivered + a.failed, a.pairs, "{a:?}");
    assert_eq!(a.delivered_not_processed, 0, "{a:?}");
    assert_eq!(a.failed_not_in_dlq, 0, "{a:?}");
    assert_eq!(a.in_dlq_not_failed, 0, "{a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_every_pair_ends_delivered_or_dead_lettered() {
    let n: usize = std::env::var("CHAOS_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let stack = TestStack::start(StackOptions {
        retry_schedule: "1,1,1",
        delivery_timeout_ms: 1000,
        delivery_pollers: 4,
        ..Default::default()
    })
    .await;
    let profile = Profile { fail: 0.30, hang: 0.10, reset: 0.05, hang_for: Duration::from_millis(1500) };
    let receivers = [ChaosReceiver::start(profile).await, ChaosReceiver::start(profile).await, ChaosReceiver::start(profile).await];
    let mut subs = Vec::new();
    for r in &receivers {
        let created = stack.create_subscription(&r.url, &["*"]).await;
        subs.push((SubscriptionId::parse(created["id"].as_str().unwrap()).unwrap(), r));
    }
    let event_ids: Vec<String> = (0..n).map(|i| format!("chaos-{i}")).collect();
    let started = publish_all(&stack, &event_ids).await;
    settle(&stack, Duration::from_secs(120 + n as u64)).await;
    let elapsed = started.elapsed();

    let a = account(&stack, &event_ids, &subs).await;
    let duplicates: u64 = receivers.iter().map(ChaosReceiver::duplicates).sum();
    let requests: u64 = receivers.iter().map(ChaosReceiver::requests).sum();
    let max_latency = receivers.iter().flat_map(|r| r.processed().into_values()).map(|t| t - started).max().unwrap_or_default();
    println!(
        "chaos: {n} events x 3 subscriptions = {} pairs in {:.1} s: {} delivered, {} failed (in DLQ), 0 missing; \
         {} attempts recorded, {requests} requests at receivers, {duplicates} duplicates before dedup, max publish-to-receipt {:.1} s",
        a.pairs,
        elapsed.as_secs_f64(),
        a.delivered,
        a.failed,
        a.attempts,
        max_latency.as_secs_f64()
    );
    assert_consistent(&a);
    assert_eq!(a.processed_but_failed, 0, "{a:?}");
    assert!(a.delivered > a.pairs / 2, "most pairs get through 4 attempts at 55 % success: {a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aws_outage_mid_run_loses_nothing() {
    let localstack = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let proxy = Proxy::start(localstack.trim_start_matches("http://").trim_end_matches('/').to_owned()).await;
    let stack = TestStack::start(StackOptions {
        retry_schedule: "1,1,1,1,1,1",
        runner_endpoint: Some(proxy.url.clone()),
        ..Default::default()
    })
    .await;
    let always_ok = Profile { fail: 0.0, hang: 0.0, reset: 0.0, hang_for: Duration::ZERO };
    let receivers = [ChaosReceiver::start(always_ok).await, ChaosReceiver::start(always_ok).await];
    let mut subs = Vec::new();
    for r in &receivers {
        let created = stack.create_subscription(&r.url, &["*"]).await;
        subs.push((SubscriptionId::parse(created["id"].as_str().unwrap()).unwrap(), r));
    }
    let event_ids: Vec<String> = (0..60).map(|i| format!("outage-{i}")).collect();
    let (first, second) = event_ids.split_at(30);
    publish_all(&stack, first).await;
    // Cut the runner off from SQS and DynamoDB while the first half is in flight.
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.cut();
    publish_all(&stack, second).await; // upstream still publishes (it does not go through the proxy)
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.restore();
    settle(&stack, Duration::from_secs(180)).await;

    let a = account(&stack, &event_ids, &subs).await;
    let duplicates: u64 = receivers.iter().map(ChaosReceiver::duplicates).sum();
    println!("outage: {} pairs: {} delivered, {} failed, {} duplicates before dedup", a.pairs, a.delivered, a.failed, duplicates);
    assert_consistent(&a);
    assert_eq!(a.delivered, a.pairs, "every endpoint answers 200: all delivered after the outage");
}
