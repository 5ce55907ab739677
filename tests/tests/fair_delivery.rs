//! Fair and ordered delivery end to end on LocalStack, with real receivers and several concurrent
//! pollers: a rate-limited subscription gets a burst at its rate (held across every worker), all
//! of it delivered; an ordered subscription gets its events strictly in publish order while its
//! receiver fails 30 % of requests, and an unordered neighbour is not held by it; an endpoint's
//! circuit breaker opens after the configured run of failures, lets only probes through while
//! open, and everything queued is delivered once the endpoint recovers.

use e2e::receiver::{Received, Receiver, Reply};
use e2e::{eventually, StackOptions, TestStack};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

async fn subscribe(stack: &TestStack, body: Value) -> String {
    let (status, created) = stack.call("POST", "/v1/subscriptions", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

/// The first receipt of each `webhook-id`, in order.
fn distinct(got: &[Received]) -> Vec<Received> {
    let mut seen = HashSet::new();
    got.iter().filter(|m| seen.insert(m.header("webhook-id").to_owned())).cloned().collect()
}

/// The successful receipts (the receiver answered 2xx), as event ids in order.
fn event_id(m: &Received) -> String {
    let b: Value = serde_json::from_slice(&m.body).unwrap();
    b["event_id"].as_str().unwrap().to_owned()
}

async fn count_delivered(stack: &TestStack, sub: &str) -> usize {
    let mut n = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/subscriptions/{sub}/deliveries?status=delivered&limit=100&cursor={}", c.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")),
            None => format!("/v1/subscriptions/{sub}/deliveries?status=delivered&limit=100"),
        };
        let (status, page) = stack.call("GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        n += page["data"].as_array().map_or(0, Vec::len);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return n,
        }
    }
}

#[tokio::test]
async fn a_rate_limited_subscription_gets_a_burst_at_its_rate_across_workers_and_all_of_it() {
    let stack = TestStack::start(StackOptions { delivery_pollers: 4, ..Default::default() }).await;
    let limited = Receiver::statuses(&[], 200).await;
    let free = Receiver::statuses(&[], 200).await;
    let sub = subscribe(&stack, json!({"url": limited.url, "events": ["project.*"], "rate_limit_per_second": 5})).await;
    subscribe(&stack, json!({"url": free.url, "events": ["project.*"]})).await;
    let (status, shown) = stack.call("GET", &format!("/v1/subscriptions/{sub}"), None).await;
    assert_eq!((status, &shown["rate_limit_per_second"]), (200, &json!(5)));

    let ids: Vec<String> = (0..200).map(|i| format!("evt-burst-{i:03}")).collect();
    stack.publish_many(&ids, "project.created").await;
    // The neighbour without a limit is not slowed by it.
    eventually(Duration::from_secs(60), "the unlimited neighbour to get all 200", || async { (distinct(&free.received()).len() == 200).then_some(()) }).await;
    assert!(distinct(&limited.received()).len() < 100, "the limited one is still at its rate");
    eventually(Duration::from_secs(150), "all 200 at the limited endpoint", || async { (distinct(&limited.received()).len() == 200).then_some(()) }).await;
    stack.settle(Duration::from_secs(30)).await;

    let got = limited.received();
    // Every POST counts (none failed here, so each is a first receipt), in every second of the
    // clock (the limiter's windows, docs/architecture.md): at most 5, give or take one (a POST
    // granted at the end of a second may arrive in the next).
    let times: Vec<Instant> = got.iter().map(|m| m.at).collect();
    let (wall, mono) = (std::time::SystemTime::now(), Instant::now());
    let mut per_second = std::collections::BTreeMap::<u64, usize>::new();
    for t in &times {
        let at = wall - (mono - *t);
        *per_second.entry(at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).or_default() += 1;
    }
    let worst = per_second.values().max().copied().unwrap();
    assert!(worst <= 6, "at most 5 (±1) POSTs in each second; the busiest had {worst}: {per_second:?}");
    let span = *times.last().unwrap() - times[0];
    assert!(span >= Duration::from_secs(37), "200 at 5 per second take about 40 s: {span:?}");
    assert_eq!(got.len(), 200, "waiting for the rate used no attempt and sent nothing twice");
    assert_eq!(count_delivered(&stack, &sub).await, 200);
    for id in ids.iter().step_by(50) {
        let (_, d) = stack.call("GET", &format!("/v1/deliveries/{}", TestStack::delivery_id(id, &sub)), None).await;
        assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("delivered"), Some(1)), "{d}");
    }
}

#[tokio::test]
async fn an_ordered_subscription_gets_its_events_in_publish_order_through_failures_and_holds_no_neighbour() {
    // Enough retries that no delivery exhausts at a 30 % failure rate (0.3^12).
    let stack = TestStack::start(StackOptions { retry_schedule: "1,1,1,1,1,1,1,1,1,1,1", delivery_pollers: 3, fanout_pollers: 3, ..Default::default() }).await;
    // 30 % of requests fail, in a fixed pseudo-random pattern.
    let mut x: u32 = 0x2545_f491;
    let script: Vec<u16> = (0..600)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if x % 10 < 3 { 500 } else { 200 }
        })
        .collect();
    let ordered = Receiver::start(script.iter().map(|s| Reply::status(*s)).collect(), Reply::status(200)).await;
    let neighbour = Receiver::statuses(&[], 200).await;
    let sub = subscribe(&stack, json!({"url": ordered.url, "events": ["visit.*"], "ordering": "fifo"})).await;
    subscribe(&stack, json!({"url": neighbour.url, "events": ["visit.*"]})).await;
    let (_, shown) = stack.call("GET", &format!("/v1/subscriptions/{sub}"), None).await;
    assert_eq!(shown["ordering"], "fifo");

    // Published in order to the ordered event queue, as an upstream service that needs order does.
    let ids: Vec<String> = (0..100).map(|i| format!("evt-ord-{i:03}")).collect();
    for chunk in ids.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let body = TestStack::envelope(id, "visit.updated", json!({"id": id})).to_string();
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body).message_group_id("acme-orders").message_deduplication_id(id).build().unwrap()
            })
            .collect();
        let out = stack.sqs.send_message_batch().queue_url(&stack.config.ordered_events_queue_url).set_entries(Some(entries)).send().await.unwrap();
        assert!(out.failed.is_empty(), "{:?}", out.failed);
    }

    eventually(Duration::from_secs(60), "the unordered neighbour to get all 100", || async { (distinct(&neighbour.received()).len() == 100).then_some(()) }).await;
    let ordered_so_far = ordered.received().len();
    assert!(ordered_so_far < 100, "the neighbour was not held behind the ordered one's failures ({ordered_so_far} requests to it so far)");
    eventually(Duration::from_secs(240), "all 100 delivered to the ordered subscription", || async { (count_delivered(&stack, &sub).await == 100).then_some(()) }).await;

    let got = ordered.received();
    let order: Vec<String> = distinct(&got).iter().map(event_id).collect();
    assert_eq!(order, ids, "strictly in publish order (first receipt of each webhook-id)");
    // The successes, too, are in order: no event was delivered before an earlier one landed.
    let answered: Vec<u16> = script.iter().copied().chain(std::iter::repeat(200)).take(got.len()).collect();
    let landed: Vec<String> = got.iter().zip(&answered).filter(|(_, s)| **s == 200).map(|(m, _)| event_id(m)).collect();
    let mut seen = HashSet::new();
    let landed: Vec<String> = landed.into_iter().filter(|e| seen.insert(e.clone())).collect();
    assert_eq!(landed, ids, "each event landed only after the one before it");
    let failures = answered.iter().filter(|s| **s == 500).count();
    assert!(failures >= 20, "the receiver failed a good share of requests ({failures} of {})", got.len());
}

#[tokio::test]
async fn the_breaker_opens_after_its_run_of_failures_lets_only_probes_through_and_everything_lands_after_recovery() {
    let env = vec![("CIRCUIT_FAILURES", "3".to_owned()), ("CIRCUIT_PROBE_SECS", "1".to_owned()), ("CIRCUIT_PROBE_MAX_SECS", "2".to_owned())];
    let stack = TestStack::start(StackOptions { retry_schedule: "1,1,1,1,1,1,1,1,1,1,1,1", delivery_pollers: 3, env, ..Default::default() }).await;
    let down = Receiver::statuses(&[], 503).await;
    let ops = Receiver::statuses(&[], 200).await;
    let sub = subscribe(&stack, json!({"url": down.url, "events": ["project.*"]})).await;
    subscribe(&stack, json!({"url": ops.url, "events": ["endpoint.*"]})).await;

    // Three failures in a row open it; then twenty more deliveries queue behind it.
    let first: Vec<String> = (0..3).map(|i| format!("evt-cb-run-{i}")).collect();
    stack.publish_many(&first, "project.created").await;
    let opened = eventually(Duration::from_secs(60), "the circuit to open", || async {
        let (_, s) = stack.call("GET", &format!("/v1/subscriptions/{sub}"), None).await;
        (s["circuit"]["state"] != "closed").then_some(s)
    })
    .await;
    let at_open = down.received().len();
    assert!(opened["failure_count"].as_u64().unwrap() >= 3, "opened after the run of 3 failures: {opened}");
    assert!(opened["circuit"]["since"].is_string(), "{opened}");
    assert!((3..=5).contains(&at_open), "3 failures open it (a retry may have been in flight): {at_open}");
    let queued: Vec<String> = (0..20).map(|i| format!("evt-cb-{i:02}")).collect();
    stack.publish_many(&queued, "project.created").await;
    let ids: Vec<String> = first.iter().chain(&queued).cloned().collect();

    // Open for 8 s: only probes, one at a time, at intervals of 1 s then 2 s.
    let watch_from = Instant::now() + Duration::from_millis(500); // POSTs in flight at the opening
    tokio::time::sleep(Duration::from_secs(8)).await;
    let during: Vec<Instant> = down.received().iter().map(|m| m.at).filter(|t| *t >= watch_from).collect();
    assert!(!during.is_empty() && during.len() <= 8, "only probes reached the endpoint while open: {}", during.len());
    for w in during.windows(2) {
        assert!(w[1] - w[0] >= Duration::from_millis(900), "one probe at a time, an interval apart: {:?}", w[1] - w[0]);
    }
    let (_, s) = stack.call("GET", &format!("/v1/subscriptions/{sub}"), None).await;
    assert!(matches!(s["circuit"]["state"].as_str(), Some("open" | "half_open")), "{s}");
    assert!(s["circuit"]["next_probe_at"].is_string(), "{s}");

    down.set_fallback(200);
    eventually(Duration::from_secs(60), "everything queued delivered after the recovery", || async { (count_delivered(&stack, &sub).await == 23).then_some(()) }).await;
    let (_, s) = stack.call("GET", &format!("/v1/subscriptions/{sub}"), None).await;
    assert_eq!((s["circuit"]["state"].as_str(), s["failure_count"].as_u64()), (Some("closed"), Some(0)), "{s}");
    let mut attempts = 0;
    for id in &ids {
        let (_, d) = stack.call("GET", &format!("/v1/deliveries/{}", TestStack::delivery_id(id, &sub)), None).await;
        assert_eq!(d["status"], "delivered", "{d}");
        attempts += d["attempts"].as_u64().unwrap();
    }
    assert_eq!(attempts as usize, down.received().len(), "one attempt recorded per POST; deferrals used none");
    assert!(attempts < 23 + at_open as u64 + 8, "deferred deliveries used no attempt: {attempts}");

    // The tenant's operational subscription heard both moves.
    let heard = eventually(Duration::from_secs(30), "the circuit's operational events", || async {
        let types: Vec<String> = distinct(&ops.received()).iter().map(|m| serde_json::from_slice::<Value>(&m.body).unwrap()["event_type"].as_str().unwrap().to_owned()).collect();
        (types.iter().any(|t| t == "endpoint.circuit.opened") && types.iter().any(|t| t == "endpoint.circuit.closed")).then_some(types)
    })
    .await;
    // One opening (failed probes keep it open, they do not open it again) and one closing.
    let count = |name: &str| heard.iter().filter(|t| *t == name).count();
    assert_eq!((count("endpoint.circuit.opened"), count("endpoint.circuit.closed")), (1, 1), "{heard:?}");
}
