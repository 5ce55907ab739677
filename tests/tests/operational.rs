//! Operational webhooks end to end on LocalStack: endpoints that answer 410, keep failing, or
//! fail and recover are reported to the tenant's subscriptions that ask for `endpoint.*` /
//! `message.*`, signed like any webhook (verified at a real receiver); a subscription never
//! hears about itself; `*` does not take them; enabling a disabled subscription is reported.

use e2e::receiver::{Received, Receiver};
use e2e::{eventually, StackOptions, TestStack};
use serde_json::{json, Value};
use shared::signing::{self, Secret, DEFAULT_TOLERANCE_SECS};
use std::collections::BTreeSet;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(90);

async fn subscribe(stack: &TestStack, url: &str, events: &[&str]) -> (String, String) {
    let s = stack.create_subscription(url, events).await;
    (s["id"].as_str().unwrap().to_owned(), s["secret"].as_str().unwrap().to_owned())
}

fn body(m: &Received) -> Value {
    serde_json::from_slice(&m.body).expect("a JSON body")
}

/// (event_type, data.subscription_id) of every distinct delivery a receiver got.
fn reports(r: &Receiver) -> BTreeSet<(String, String)> {
    let mut seen = BTreeSet::new();
    r.received()
        .iter()
        .filter(|m| seen.insert(m.header("webhook-id").to_owned()))
        .map(|m| {
            let b = body(m);
            (b["event_type"].as_str().unwrap().to_owned(), b["data"]["subscription_id"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn failing_endpoints_are_reported_signed_to_the_tenants_other_subscriptions() {
    let stack = TestStack::start(StackOptions { retry_schedule: "1,1", ..Default::default() }).await;
    let (ops, noisy, star) = (Receiver::statuses(&[], 200).await, Receiver::statuses(&[], 500).await, Receiver::statuses(&[], 200).await);
    let (gone, failing, flaky) = (Receiver::statuses(&[], 410).await, Receiver::statuses(&[], 500).await, Receiver::statuses(&[500], 200).await);
    let (ops_id, ops_secret) = subscribe(&stack, &ops.url, &["endpoint.*", "message.*"]).await;
    // An operational subscriber that fails itself: it hears of the others, never of itself.
    let (noisy_id, _) = subscribe(&stack, &noisy.url, &["message.attempt.failing"]).await;
    let (star_id, _) = subscribe(&stack, &star.url, &["*"]).await;
    let (gone_id, _) = subscribe(&stack, &gone.url, &["project.*"]).await;
    let (failing_id, _) = subscribe(&stack, &failing.url, &["project.*"]).await;
    let (flaky_id, _) = subscribe(&stack, &flaky.url, &["project.*"]).await;

    stack.publish("evt-op", "project.created", json!({"n": 1})).await;
    let expected: BTreeSet<(String, String)> = [
        ("endpoint.disabled", &gone_id),
        ("message.attempt.failing", &failing_id),
        ("message.attempt.exhausted", &failing_id),
        ("message.attempt.failing", &flaky_id),
        ("message.attempt.recovered", &flaky_id),
        ("message.attempt.failing", &noisy_id),
    ]
    .into_iter()
    .map(|(t, s)| (t.to_owned(), s.clone()))
    .collect();
    eventually(DEADLINE, "the operational events at the ops receiver", || async { expected.is_subset(&reports(&ops)).then_some(()) }).await;

    // Each is a signed webhook with a payload that says what happened.
    for m in ops.received() {
        let h = |n: &str| m.header(n).to_owned();
        let verified = signing::verify(&Secret::parse(&ops_secret).unwrap(), &h("webhook-id"), &h("webhook-timestamp"), &h("webhook-signature"), &m.body, now(), DEFAULT_TOLERANCE_SECS);
        assert!(verified.is_ok(), "signed with the ops subscription's secret: {verified:?}");
        assert_eq!(h("x-webhook-event"), body(&m)["event_type"].as_str().unwrap());
    }
    let find = |t: &str, s: &str| ops.received().into_iter().map(|m| body(&m)).find(|b| b["event_type"] == t && b["data"]["subscription_id"] == s).unwrap();
    assert_eq!(find("endpoint.disabled", &gone_id)["data"]["reason"], "endpoint answered 410 Gone");
    let exhausted = find("message.attempt.exhausted", &failing_id);
    assert_eq!((exhausted["data"]["event_id"].as_str(), exhausted["data"]["attempts"].as_u64(), exhausted["data"]["last_status_code"].as_u64()), (Some("evt-op"), Some(3), Some(500)), "{exhausted}");
    assert_eq!(exhausted["data"]["delivery_id"], TestStack::delivery_id("evt-op", &failing_id).to_string());
    assert!(exhausted["event_id"].as_str().unwrap().starts_with("op_"));

    // Enabling the disabled one again is reported too.
    let (status, out) = stack.call("PATCH", &format!("/v1/subscriptions/{gone_id}"), Some(json!({"enabled": true}))).await;
    assert_eq!(status, 200, "{out}");
    eventually(DEADLINE, "endpoint.enabled", || async { reports(&ops).contains(&("endpoint.enabled".to_owned(), gone_id.clone())).then_some(()) }).await;
    stack.settle(DEADLINE).await;

    // No loops: the failing operational subscriber got reports of others only; `*` got none.
    let of_noisy = reports(&noisy);
    assert!(!of_noisy.is_empty() && of_noisy.iter().all(|(t, s)| t == "message.attempt.failing" && s != &noisy_id), "{of_noisy:?}");
    let of_star = reports(&star);
    assert_eq!(of_star, BTreeSet::from([("project.created".to_owned(), String::new())]), "`*` takes no operational event");
    assert!(!reports(&ops).iter().any(|(_, s)| s == &ops_id || s == &star_id), "nobody failed there");
    // The failing subscriber's deliveries of reports were exhausted, and that is not reported:
    // two failing subscribers of each other's reports would otherwise ping-pong for ever.
    let exhausted_reports = stack.call("GET", &format!("/v1/subscriptions/{noisy_id}/deliveries?status=failed"), None).await.1;
    assert!(!exhausted_reports["data"].as_array().unwrap().is_empty(), "{exhausted_reports}");
    assert!(!reports(&ops).contains(&("message.attempt.exhausted".to_owned(), noisy_id.clone())), "{:?}", reports(&ops));
}
