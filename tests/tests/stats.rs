//! Delivery statistics end to end on LocalStack: a run with known outcomes (70 delivered, 30
//! failed, one attempt each, at a real receiver) and the stats route agree with each other and
//! with the delivery log, in both windows.

use e2e::receiver::Receiver;
use e2e::{eventually, StackOptions, TestStack};
use serde_json::{json, Value};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(90);

/// Every delivery of the subscription, through the log's pages.
async fn log(stack: &TestStack, sub: &str) -> Vec<Value> {
    let (mut out, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let q = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let (status, page) = stack.call("GET", &format!("/v1/subscriptions/{sub}/deliveries?limit=100{q}"), None).await;
        assert_eq!(status, 200, "{page}");
        out.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn stats_agree_with_the_delivery_log_for_a_run_of_known_outcomes() {
    let stack = TestStack::start(StackOptions::default()).await;
    // The first 30 POSTs fail; with a single attempt each, exactly 30 deliveries fail.
    let receiver = Receiver::statuses(&[500; 30], 200).await;
    let (status, sub) = stack.call("POST", "/v1/subscriptions", Some(json!({"url": receiver.url, "events": ["project.*"], "retry": {"schedule": []}}))).await;
    assert_eq!(status, 201, "{sub}");
    let sub = sub["id"].as_str().unwrap().to_owned();
    let (status, other) = stack.call("POST", "/v1/subscriptions", Some(json!({"url": Receiver::statuses(&[], 200).await.url, "events": ["visit.*"]}))).await;
    assert_eq!(status, 201, "{other}");

    // Published over HTTP: occurred_at is now, inside the windows.
    for i in 0..100 {
        let (status, out) = stack.call("POST", "/v1/events", Some(json!({"event_id": format!("evt-stats-{i:03}"), "event_type": "project.updated", "data": {"i": i}}))).await;
        assert!(status == 202 || status == 200, "{status} {out}");
    }
    let deliveries = eventually(DEADLINE, "100 settled deliveries", || async {
        let all = log(&stack, &sub).await;
        (all.len() == 100 && all.iter().all(|d| matches!(d["status"].as_str(), Some("delivered" | "failed")))).then_some(all)
    })
    .await;
    let count = |s: &str| deliveries.iter().filter(|d| d["status"] == s).count() as u64;
    assert_eq!((count("delivered"), count("failed")), (70, 30), "the log holds the known outcomes");

    for (window, buckets, bucket) in [("24h", 24, "1h"), ("7d", 7, "1d")] {
        let (status, stats) = stack.call("GET", &format!("/v1/subscriptions/{sub}/stats?window={window}"), None).await;
        assert_eq!(status, 200, "{stats}");
        assert_eq!((stats["window"].as_str(), stats["bucket"].as_str(), stats["truncated"].as_bool()), (Some(window), Some(bucket), Some(false)));
        let t = &stats["totals"];
        assert_eq!(
            (t["deliveries"].as_u64(), t["delivered"].as_u64(), t["failed"].as_u64(), t["pending"].as_u64(), t["attempts"].as_u64(), t["failed_attempts"].as_u64()),
            (Some(100), Some(count("delivered")), Some(count("failed")), Some(0), Some(100), Some(30)),
            "{window}: {t}"
        );
        assert_eq!(t["success_rate"].as_f64(), Some(0.7));
        assert_eq!(stats["failures_by_class"], json!({"http": 30}));
        let (p50, p95) = (t["p50_ms"].as_u64().unwrap(), t["p95_ms"].as_u64().unwrap());
        assert!(p50 <= p95, "{t}");
        // The buckets partition the totals; the run falls into the newest bucket or two.
        let b = stats["buckets"].as_array().unwrap();
        assert_eq!(b.len(), buckets);
        for key in ["deliveries", "delivered", "failed", "attempts", "failed_attempts"] {
            assert_eq!(b.iter().map(|x| x[key].as_u64().unwrap()).sum::<u64>(), t[key].as_u64().unwrap(), "{window} {key}");
        }
        assert!(b[..buckets - 2].iter().all(|x| x["deliveries"] == 0), "older buckets are empty");
        assert!(b.windows(2).all(|w| w[0]["start"].as_str() < w[1]["start"].as_str()), "oldest first");
    }

    // Another subscription's deliveries are not counted; a bad window names the field.
    let (_, stats) = stack.call("GET", &format!("/v1/subscriptions/{}/stats", other["id"].as_str().unwrap()), None).await;
    assert_eq!(stats["totals"]["deliveries"], 0, "{stats}");
    let (status, problem) = stack.call("GET", &format!("/v1/subscriptions/{sub}/stats?window=30d"), None).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("window")), "{problem}");
}
