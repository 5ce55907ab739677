//! The delivery engine against LocalStack with real receivers on 127.0.0.1: Retry-After,
//! timeouts, redirects, refused connections, 410 Gone, and concurrency within a batch.

use e2e::receiver::{Receiver, Reply};
use e2e::{eventually, StackOptions, TestStack};
use serde_json::json;
use shared::ids::{SubscriptionId, TenantId};
use shared::model::{Attempt, DeliveryStatus, FailureClass};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

/// Waits for `n` attempts of the only delivery of `sub_id` and returns them.
async fn attempts_of(stack: &TestStack, sub: &serde_json::Value, n: usize) -> Vec<Attempt> {
    let sub_id = SubscriptionId::parse(sub["id"].as_str().unwrap()).unwrap();
    let deps = stack.runner.deps.clone();
    eventually(DEADLINE, &format!("{n} attempts"), || {
        let deps = deps.clone();
        let sub_id = sub_id.clone();
        async move {
            let page = deps.ledger.list(&sub_id, &Default::default(), None, 10).await.unwrap();
            let d = page.items.first()?;
            let attempts: Vec<Attempt> = d.records.iter().filter_map(|r| r.attempt.clone()).collect();
            (attempts.len() >= n).then_some(attempts)
        }
    })
    .await
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let stack = TestStack::start(StackOptions::default()).await;
    let receiver = Receiver::start(vec![Reply::status(503).header("retry-after", "3")], Reply::status(200)).await;
    let sub = stack.create_subscription(&receiver.url, &["*"]).await;
    stack.publish("evt-ra", "project.created", json!({})).await;

    let got = eventually(DEADLINE, "two POSTs", || async {
        let r = receiver.received();
        (r.len() >= 2).then_some(r)
    })
    .await;
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(2500), "retried after {gap:?}, before Retry-After: 3");
    let attempts = attempts_of(&stack, &sub, 2).await;
    assert_eq!(attempts[0].response_headers.get("retry-after").map(String::as_str), Some("3"));
    assert_eq!(attempts[1].status_code, Some(200));
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_is_a_timeout() {
    let stack = TestStack::start(StackOptions { delivery_timeout_ms: 1000, ..Default::default() }).await;
    let receiver = Receiver::start(vec![], Reply::status(200).after(Duration::from_secs(3))).await;
    let sub = stack.create_subscription(&receiver.url, &["*"]).await;
    stack.publish("evt-slow", "project.created", json!({})).await;
    let attempts = attempts_of(&stack, &sub, 1).await;
    assert_eq!(attempts[0].error_class, Some(FailureClass::Timeout));
    assert_eq!(attempts[0].status_code, None);
    assert!(attempts[0].duration_ms >= 900 && attempts[0].duration_ms < 3000, "{}", attempts[0].duration_ms);
}

#[tokio::test]
async fn a_redirect_is_a_failure_and_is_not_followed() {
    let stack = TestStack::start(StackOptions::default()).await;
    let elsewhere = Receiver::statuses(&[], 200).await;
    let receiver = Receiver::start(vec![], Reply::status(302).header("location", elsewhere.url.clone())).await;
    let sub = stack.create_subscription(&receiver.url, &["*"]).await;
    stack.publish("evt-302", "project.created", json!({})).await;
    let attempts = attempts_of(&stack, &sub, 1).await;
    assert_eq!(attempts[0].error_class, Some(FailureClass::Redirect));
    assert_eq!(attempts[0].status_code, Some(302));
    assert!(attempts[0].error_message.as_deref().unwrap().contains(&elsewhere.url));
    assert!(elsewhere.received().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_failure() {
    let stack = TestStack::start(StackOptions::default()).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let sub = stack.create_subscription(&url, &["*"]).await;
    stack.publish("evt-refused", "project.created", json!({})).await;
    let attempts = attempts_of(&stack, &sub, 1).await;
    assert_eq!(attempts[0].error_class, Some(FailureClass::Connect));
}

#[tokio::test]
async fn gone_disables_the_subscription_and_fails_the_delivery_at_once() {
    let stack = TestStack::start(StackOptions { retry_schedule: "1,1,1", ..Default::default() }).await;
    let receiver = Receiver::statuses(&[], 410).await;
    let sub = stack.create_subscription(&receiver.url, &["*"]).await;
    stack.publish("evt-gone", "project.created", json!({})).await;
    let attempts = attempts_of(&stack, &sub, 1).await;
    assert_eq!(attempts[0].status_code, Some(410));

    let tenant = TenantId::parse("acme").unwrap();
    let sub_id = SubscriptionId::parse(sub["id"].as_str().unwrap()).unwrap();
    let s = eventually(DEADLINE, "the subscription to be disabled", || async {
        stack.runner.deps.subscriptions.get(&tenant, &sub_id).await.unwrap().filter(|s| !s.enabled)
    })
    .await;
    assert_eq!(s.disabled_reason.as_deref(), Some("endpoint answered 410 Gone"));
    let d = stack.runner.deps.ledger.list(&sub_id, &Default::default(), None, 1).await.unwrap().items.remove(0);
    assert_eq!(d.status(), DeliveryStatus::Failed);
    assert_eq!(d.head().reason.as_deref(), Some("the endpoint answered 410 Gone"));
    // No retries: the message is gone and the receiver saw one POST.
    stack.settle(DEADLINE).await;
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn one_hung_endpoint_does_not_delay_the_other_nine() {
    let stack = TestStack::start(StackOptions { delivery_timeout_ms: 8000, ..Default::default() }).await;
    let hung = Receiver::start(vec![], Reply::status(200).after(Duration::from_secs(6))).await;
    stack.create_subscription(&hung.url, &["*"]).await;
    let mut fast = Vec::new();
    for _ in 0..9 {
        let r = Receiver::statuses(&[], 200).await;
        stack.create_subscription(&r.url, &["*"]).await;
        fast.push(r);
    }
    stack.publish("evt-hang", "project.created", json!({})).await;
    eventually(DEADLINE, "all ten POSTs", || async {
        (fast.iter().all(|r| r.received().len() == 1) && hung.received().len() == 1).then_some(())
    })
    .await;
    // All nine were served while the hung endpoint was still holding its request (6 s).
    assert_eq!(hung.answered(), 0, "the nine waited for the hung endpoint");
}
