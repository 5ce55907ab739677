//! A subscription's own retry policy end to end on LocalStack: its schedule decides how many
//! attempts a failing delivery gets and how far apart (beside a subscription on the stack's
//! schedule), its timeout how long the worker waits (beside one on the stack's timeout); policies
//! outside the stack's bounds are refused naming the field; `null` returns to the stack's.

use e2e::receiver::{Receiver, Reply};
use e2e::{eventually, StackOptions, TestStack};
use serde_json::{json, Value};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

/// The stack's schedule in these tests: three retries 1 s apart (four attempts, 3 s in all), and
/// a 3 s endpoint timeout.
fn options() -> StackOptions {
    StackOptions { retry_schedule: "1,1,1", delivery_timeout_ms: 3000, ..Default::default() }
}

async fn subscribe(stack: &TestStack, url: &str, retry: Value) -> String {
    let (status, body) = stack.call("POST", "/v1/subscriptions", Some(json!({"url": url, "events": ["project.*"], "retry": retry}))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["retry"], retry);
    body["id"].as_str().unwrap().to_owned()
}

/// The delivery of `event` to `sub` once it has settled (delivered or failed).
async fn settled(stack: &TestStack, event: &str, sub: &str) -> Value {
    let path = format!("/v1/deliveries/{}", TestStack::delivery_id(event, sub));
    eventually(DEADLINE, "the delivery to settle", || async {
        let (status, d) = stack.call("GET", &path, None).await;
        (status == 200 && matches!(d["status"].as_str(), Some("delivered" | "failed"))).then_some(d)
    })
    .await
}

#[tokio::test]
async fn a_subscription_is_retried_on_its_own_schedule_and_waits_its_own_timeout() {
    let stack = TestStack::start(options()).await;
    let failing_default = Receiver::statuses(&[], 500).await;
    let failing_own = Receiver::statuses(&[], 500).await;
    let slow_default = Receiver::start(Vec::new(), Reply::status(200).after(Duration::from_millis(2000))).await;
    let slow_own = Receiver::start(Vec::new(), Reply::status(200).after(Duration::from_millis(2000))).await;
    let a = subscribe(&stack, &failing_default.url, Value::Null).await;
    let b = subscribe(&stack, &failing_own.url, json!({"schedule": [3]})).await;
    let c = subscribe(&stack, &slow_default.url, Value::Null).await;
    let d = subscribe(&stack, &slow_own.url, json!({"schedule": [], "timeout_ms": 1000})).await;

    stack.publish("evt-policy", "project.created", json!({"n": 1})).await;
    let (da, db, dc, dd) = (settled(&stack, "evt-policy", &a).await, settled(&stack, "evt-policy", &b).await, settled(&stack, "evt-policy", &c).await, settled(&stack, "evt-policy", &d).await);

    // The stack's schedule: four attempts 1 s apart; its own: two, the second after its 3 s
    // (±20 % jitter, and SQS hides a message for whole seconds: at least 2 s).
    assert_eq!((da["status"].as_str(), da["attempts"].as_u64(), failing_default.received().len()), (Some("failed"), Some(4), 4), "{da}");
    assert_eq!((db["status"].as_str(), db["attempts"].as_u64()), (Some("failed"), Some(2)), "{db}");
    let got = failing_own.received();
    assert_eq!(got.len(), 2);
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(1800), "the second attempt waited its schedule's 3 s (less 20 % jitter, in whole seconds): {gap:?}");
    assert!(db["reason"].as_str().unwrap().contains("2 attempts"), "{db}");

    // A 2 s endpoint: delivered within the stack's 3 s; timed out, once, under its own 1 s.
    assert_eq!((dc["status"].as_str(), dc["attempts"].as_u64()), (Some("delivered"), Some(1)), "{dc}");
    assert_eq!((dd["status"].as_str(), dd["attempts"].as_u64(), dd["last_error_class"].as_str()), (Some("failed"), Some(1), Some("timeout")), "{dd}");
    let (_, attempts) = stack.call("GET", &format!("/v1/deliveries/{}/attempts", TestStack::delivery_id("evt-policy", &d)), None).await;
    let ms = attempts["data"][0]["duration_ms"].as_u64().unwrap();
    assert!((900..2000).contains(&ms), "cut off at its own 1 s timeout: {ms} ms");
}

#[tokio::test]
async fn policies_outside_the_stacks_bounds_are_refused_and_null_returns_to_the_stacks() {
    let stack = TestStack::start(StackOptions { delivery_pollers: 0, ..options() }).await;
    let url = "https://example.com/hook";
    for (retry, field) in [
        (json!({"schedule": [1, 1, 1, 1]}), "retry.schedule"),
        (json!({"schedule": [1, 0]}), "retry.schedule[1]"),
        (json!({"schedule": [1, 43201]}), "retry.schedule[1]"),
        (json!({"schedule": [2, 2]}), "retry.schedule"),
        (json!({"timeout_ms": 5000}), "retry.timeout_ms"),
        (json!({"timeout_ms": 10}), "retry.timeout_ms"),
    ] {
        let (status, problem) = stack.call("POST", "/v1/subscriptions", Some(json!({"url": url, "retry": retry}))).await;
        assert_eq!((status, problem["field"].as_str()), (400, Some(field)), "{retry}: {problem}");
    }
    let (status, problem) = stack.call("POST", "/v1/subscriptions", Some(json!({"url": url, "retry": {"attempts": 3}}))).await;
    assert_eq!(status, 400, "an unknown field is refused: {problem}");

    let id = subscribe(&stack, url, json!({"schedule": [1, 2], "timeout_ms": 2000})).await;
    let (status, problem) = stack.call("PATCH", &format!("/v1/subscriptions/{id}"), Some(json!({"retry": {"schedule": [1, 1, 1, 1]}}))).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("retry.schedule")), "{problem}");
    let (status, body) = stack.call("PATCH", &format!("/v1/subscriptions/{id}"), Some(json!({"retry": {"timeout_ms": 1500}}))).await;
    assert_eq!((status, &body["retry"]), (200, &json!({"timeout_ms": 1500})), "a PATCH replaces the whole policy: {body}");
    let (status, body) = stack.call("PATCH", &format!("/v1/subscriptions/{id}"), Some(json!({"retry": null}))).await;
    assert_eq!((status, &body["retry"]), (200, &Value::Null), "{body}");
    let (_, got) = stack.call("GET", &format!("/v1/subscriptions/{id}"), None).await;
    assert_eq!(got["retry"], Value::Null);
}
