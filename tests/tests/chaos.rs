//! Reliability proof: under misbehaving endpoints and an infrastructure outage, every
//! (event, subscription) pair ends in exactly one terminal state — `delivered` (and the receiver
//! processed it, once after dedup) or `failed` (and the receiver never accepted it) — with one
//! attempt recorded per request the receivers saw; the invariant checker finds no lost pair.
//!
//! `CHAOS_EVENTS` sets N (default 200); the large run: see docs/reliability.md.

use e2e::census::Census;
use e2e::chaos::{ChaosReceiver, Profile};
use e2e::proxy::Proxy;
use e2e::{StackOptions, TestStack};
use shared::ids::SubscriptionId;
use shared::model::DeliveryStatus;
use shared::ports::Read;
use std::time::{Duration, Instant};

/// Per pair: what the ledger says against what the receiver saw.
#[derive(Debug, Default)]
struct Crosscheck {
    delivered_not_processed: usize,
    processed_but_failed: usize,
}

async fn crosscheck(stack: &TestStack, event_ids: &[String], subs: &[(SubscriptionId, &ChaosReceiver)]) -> Crosscheck {
    let mut c = Crosscheck::default();
    for (sub, receiver) in subs {
        let processed = receiver.processed();
        for event_id in event_ids {
            let id = TestStack::delivery_id(event_id, sub.as_str());
            let seen = processed.contains_key(id.as_str());
            match stack.runner.deps.ledger.head(&id, Read::Strong).await.unwrap().map(|h| h.status.public()) {
                Some(DeliveryStatus::Delivered) => c.delivered_not_processed += usize::from(!seen),
                Some(DeliveryStatus::Failed) => c.processed_but_failed += usize::from(seen),
                _ => {}
            }
        }
    }
    c
}

fn pairs(event_ids: &[String], subs: &[(SubscriptionId, &ChaosReceiver)]) -> Vec<(String, String)> {
    subs.iter().flat_map(|(s, _)| event_ids.iter().map(move |e| (e.clone(), s.to_string()))).collect()
}

async fn subscribe_all<'a>(stack: &TestStack, receivers: &'a [ChaosReceiver]) -> Vec<(SubscriptionId, &'a ChaosReceiver)> {
    let mut subs = Vec::new();
    for r in receivers {
        let created = stack.create_subscription(&r.url, &["*"]).await;
        subs.push((SubscriptionId::parse(created["id"].as_str().unwrap()).unwrap(), r));
    }
    subs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_every_pair_ends_delivered_or_failed() {
    let n: usize = std::env::var("CHAOS_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let stack = TestStack::start(StackOptions { retry_schedule: "1,1,1", delivery_timeout_ms: 1000, delivery_pollers: 4, ..Default::default() }).await;
    let profile = Profile { fail: 0.30, hang: 0.10, reset: 0.05, hang_for: Duration::from_millis(1500), fail_first: false };
    let receivers = [ChaosReceiver::start(profile).await, ChaosReceiver::start(profile).await, ChaosReceiver::start(profile).await];
    let subs = subscribe_all(&stack, &receivers).await;
    let event_ids: Vec<String> = (0..n).map(|i| format!("chaos-{i}")).collect();
    let started = Instant::now();
    stack.publish_many(&event_ids, "project.created").await;
    stack.settle(Duration::from_secs(120 + n as u64)).await;
    let elapsed = started.elapsed();

    let census = Census::take(&stack, &pairs(&event_ids, &subs)).await;
    let cross = crosscheck(&stack, &event_ids, &subs).await;
    let duplicates: u64 = receivers.iter().map(ChaosReceiver::duplicates).sum();
    let requests: u64 = receivers.iter().map(ChaosReceiver::requests).sum();
    let max_latency = receivers.iter().flat_map(|r| r.processed().into_values()).map(|t| t - started).max().unwrap_or_default();
    println!(
        "chaos: {n} events x 3 subscriptions = {} pairs in {:.1} s: {} delivered, {} failed, {} lost; \\
         {} attempts recorded, {requests} requests at receivers, {duplicates} duplicates before dedup, max publish-to-receipt {:.1} s",
        census.pairs,
        elapsed.as_secs_f64(),
        census.count("delivered"),
        census.count("failed"),
        census.orphans.len(),
        census.attempts,
        max_latency.as_secs_f64()
    );
    census.assert_sound();
    assert_eq!(census.count("delivered") + census.count("failed"), census.pairs, "{census}");
    assert_eq!((cross.delivered_not_processed, cross.processed_but_failed), (0, 0), "{cross:?}");
    assert_eq!(census.attempts, requests, "one attempt recorded per request a receiver saw");
    assert_eq!(census.tasks_in_delivery_dlq, 0, "endpoints failing are not our infrastructure failing");
    assert!(census.count("delivered") > census.pairs / 2, "most pairs get through 4 attempts at 55 % success: {census}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aws_outage_mid_run_loses_nothing() {
    let localstack = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let proxy = Proxy::start(localstack.trim_start_matches("http://").trim_end_matches('/').to_owned()).await;
    let stack = TestStack::start(StackOptions { retry_schedule: "1,1,1,1,1,1", runner_endpoint: Some(proxy.url.clone()), ..Default::default() }).await;
    let always_ok = Profile::OK;
    let receivers = [ChaosReceiver::start(always_ok).await, ChaosReceiver::start(always_ok).await];
    let subs = subscribe_all(&stack, &receivers).await;
    let event_ids: Vec<String> = (0..60).map(|i| format!("outage-{i}")).collect();
    let (first, second) = event_ids.split_at(30);
    stack.publish_many(first, "project.created").await;
    // Cut the runner off from SQS and DynamoDB while the first half is in flight.
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.cut();
    stack.publish_many(second, "project.created").await; // upstream still publishes (not through the proxy)
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.restore();
    stack.settle(Duration::from_secs(180)).await;

    let census = Census::take(&stack, &pairs(&event_ids, &subs)).await;
    let duplicates: u64 = receivers.iter().map(ChaosReceiver::duplicates).sum();
    println!("outage: {} pairs: {} delivered, {} failed, {duplicates} duplicates before dedup", census.pairs, census.count("delivered"), census.count("failed"));
    census.assert_sound();
    assert_eq!(census.count("delivered"), census.pairs, "every endpoint answers 200: all delivered after the outage: {census}");
}
