//! The walking skeleton end to end: HTTP API → event queue → fan-out → delivery queue → signed
//! POST to a real receiver → records in the ledger, on LocalStack, no mocks.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use e2e::receiver::Receiver;
use e2e::{eventually, quiet, StackOptions, TestStack};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use shared::adapters::dynamodb::item_size;
use shared::ids::DeliveryId;
use shared::model::{DeliveryStatus, FailureClass};
use shared::ports::Delivery;
use std::collections::HashMap;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

type Item = HashMap<String, AttributeValue>;

/// A delivery as the ledger holds it.
async fn delivery(stack: &TestStack, delivery_id: &str) -> Option<Delivery> {
    stack.runner.deps.ledger.delivery(&DeliveryId::parse(delivery_id).unwrap()).await.expect("read the ledger")
}

/// The ledger's items of a delivery, raw.
async fn items(stack: &TestStack, delivery_id: &str) -> Vec<Item> {
    let id = DeliveryId::parse(delivery_id).unwrap();
    stack
        .ddb
        .query()
        .table_name(&stack.config.deliveries_table)
        .key_condition_expression("s = :s AND begins_with(k, :p)")
        .expression_attribute_values(":s", AttributeValue::S(id.subscription().to_string()))
        .expression_attribute_values(":p", AttributeValue::S(format!("{}#", id.key())))
        .consistent_read(true)
        .send()
        .await
        .expect("query the ledger")
        .items
        .unwrap_or_default()
}

/// Independent check of the legacy header: hex HMAC-SHA256 of the raw body.
fn legacy_signature(secret: &str, body: &[u8]) -> String {
    let key = base64::engine::general_purpose::STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn delivers_a_signed_event_and_records_the_attempt() {
    let stack = TestStack::start(StackOptions::default()).await;
    let receiver = Receiver::statuses(&[], 200).await;
    let other = Receiver::statuses(&[], 200).await;
    let created = stack.create_subscription(&receiver.url, &["project.*"]).await;
    stack.create_subscription(&other.url, &["enrollment.completed"]).await;
    let secret = created["secret"].as_str().expect("secret returned at creation").to_owned();
    assert!(secret.starts_with("whsec_"));

    // The list shows both subscriptions and never a secret.
    let (_, list) = stack.call("GET", "/v1/subscriptions", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains(&secret));

    stack.publish("evt-001", "project.created", json!({"project_id": "p1"})).await;

    let got = eventually(DEADLINE, "the receiver to get the POST", || async { receiver.received().into_iter().next() }).await;
    let body: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(body["event_id"], "evt-001");
    assert_eq!(body["event_type"], "project.created");
    assert_eq!(body["tenant_id"], "acme");
    assert_eq!(body["data"]["project_id"], "p1");
    assert_eq!(got.header("content-type"), "application/json");
    assert_eq!(got.header("x-webhook-event"), "project.created");

    // Both signatures verify with the secret from creation.
    let sw_secret = shared::signing::Secret::parse(&secret).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    shared::signing::verify(&sw_secret, got.header("webhook-id"), got.header("webhook-timestamp"), got.header("webhook-signature"), &got.body, now, shared::signing::DEFAULT_TOLERANCE_SECS)
        .expect("Standard Webhooks signature verifies");
    assert_eq!(got.header("x-webhook-signature"), legacy_signature(&secret, &got.body));

    // The delivery's id is the webhook-id, derived from the pair; its one record holds the
    // attempt (200, a duration) and the event, in one item under one write unit.
    let delivery_id = got.header("webhook-id").to_owned();
    assert_eq!(delivery_id, TestStack::delivery_id("evt-001", created["id"].as_str().unwrap()).as_str());
    let d = eventually(DEADLINE, "the record", || async { delivery(&stack, &delivery_id).await.filter(|d| d.status() == DeliveryStatus::Delivered) }).await;
    assert_eq!(d.records.len(), 1);
    let a = d.last_attempt().expect("the attempt");
    assert_eq!((a.attempt, a.status_code), (1, Some(200)));
    assert!(a.duration_ms < 60_000);
    assert_eq!(d.event().expect("the event in record 1").body.as_bytes(), &got.body[..]);
    let raw = items(&stack, &delivery_id).await;
    assert_eq!(raw.len(), 1);
    assert!(item_size(&raw[0]) <= 1024, "{} bytes", item_size(&raw[0]));

    // The log lists it; the non-matching subscription got nothing.
    let (_, log) = stack.call("GET", &format!("/v1/subscriptions/{}/deliveries", created["id"].as_str().unwrap()), None).await;
    assert_eq!(log["data"][0]["id"], delivery_id.as_str());
    assert_eq!(log["data"][0]["status"], "delivered");
    assert_eq!(log["data"][0]["occurred_at"], "2026-11-22T10:00:00Z");
    quiet(Duration::from_millis(500), "POST at the other receiver", || async { other.received().into_iter().next().map(|r| r.header("webhook-id").to_owned()) }).await;
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn retries_until_the_receiver_recovers() {
    let stack = TestStack::start(StackOptions { retry_schedule: "1,1,1", ..Default::default() }).await;
    let receiver = Receiver::statuses(&[500, 500], 200).await;
    stack.create_subscription(&receiver.url, &["*"]).await;
    stack.publish("evt-retry", "visit.media.available", json!({})).await;

    let delivery_id = eventually(DEADLINE, "three POSTs", || async {
        let got = receiver.received();
        (got.len() >= 3).then(|| got[0].header("webhook-id").to_owned())
    })
    .await;
    let d = eventually(DEADLINE, "the delivery to be delivered", || async { delivery(&stack, &delivery_id).await.filter(|d| d.status() == DeliveryStatus::Delivered) }).await;
    assert_eq!(d.head().attempts, 3);
    let attempts: Vec<_> = d.records.iter().filter_map(|r| r.attempt.as_ref()).collect();
    assert_eq!(attempts.iter().map(|a| a.status_code).collect::<Vec<_>>(), [Some(500), Some(500), Some(200)]);
    assert_eq!(attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(attempts[0].error_class, Some(FailureClass::Http));
    // One record per attempt, the event in the first only.
    assert_eq!(d.records.len(), 3);
    assert_eq!(d.records.iter().filter(|r| r.event.is_some()).count(), 1);

    // Delivered once: the queue drains and no fourth POST arrives.
    stack.settle(DEADLINE).await;
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.header("webhook-id") == delivery_id), "webhook-id is stable across retries");
}

#[tokio::test]
async fn an_exhausted_delivery_fails_in_the_ledger_and_leaves_the_queues() {
    let stack = TestStack::start(StackOptions { retry_schedule: "1,1", ..Default::default() }).await;
    let receiver = Receiver::statuses(&[], 500).await;
    let sub = stack.create_subscription(&receiver.url, &["*"]).await;
    stack.publish("evt-dead", "project.deleted", json!({})).await;

    let delivery_id = TestStack::delivery_id("evt-dead", sub["id"].as_str().unwrap());
    let d = eventually(DEADLINE, "the delivery to fail", || async { delivery(&stack, delivery_id.as_str()).await.filter(|d| d.status() == DeliveryStatus::Failed) }).await;
    assert_eq!(d.head().attempts, 3);
    assert_eq!(d.head().reason.as_deref(), Some("retries exhausted: 3 attempts failed"));
    assert_eq!(receiver.received().len(), 3);
    // A customer endpoint failing is not an infrastructure problem: nothing in the DLQ.
    stack.settle(DEADLINE).await;
    assert_eq!(stack.queue_depth(&stack.config.delivery_dlq_url).await, 0);
    // The API shows it failed, and offers it for redelivery.
    let (status, shown) = stack.call("GET", &format!("/v1/deliveries/{delivery_id}"), None).await;
    assert_eq!((status, shown["status"].as_str(), shown["attempts"].as_u64()), (200, Some("failed"), Some(3)));
}

#[tokio::test]
async fn api_rejects_bad_requests_with_problem_json() {
    let stack = TestStack::start(StackOptions::default()).await;
    let url = format!("{}/v1/subscriptions", stack.runner.api_url);

    let resp = stack.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");

    let resp = stack.http.get(&url).bearer_auth("whk_not-a-key").send().await.unwrap();
    assert_eq!(resp.status(), 401);

    let cases = [
        (json!({"events": ["project.created"]}), "url"),
        (json!({"url": "ftp://example.com", "events": ["a.b"]}), "url"),
        (json!({"url": "https://example.com/h", "events": []}), "events"),
        (json!({"url": "https://example.com/h", "events": ["Bad Type"]}), "events[0]"),
        (json!({"url": "https://example.com/h", "color": "red"}), "color"),
        (json!([1, 2]), "body"),
        (json!({"url": 5}), "url"),
    ];
    for (body, field) in cases {
        let resp = stack.http.post(&url).bearer_auth(&stack.api_key).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let problem: Value = resp.json().await.unwrap();
        assert_eq!(problem["status"], 400);
        assert_eq!(problem["field"], field, "{body} → {problem}");
    }

    let resp = stack.http.post(&url).bearer_auth(&stack.api_key).body("{}").send().await.unwrap();
    assert_eq!(resp.status(), 415, "missing content type");

    let resp = stack.http.get(format!("{url}/sub_doesnotexist")).bearer_auth(&stack.api_key).send().await.unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn a_large_event_travels_in_its_task_and_is_kept_deflated_in_its_first_record() {
    let stack = TestStack::start(StackOptions::default()).await;
    let receiver = Receiver::statuses(&[], 200).await;
    let created = stack.create_subscription(&receiver.url, &["*"]).await;
    let secret = shared::signing::Secret::parse(created["secret"].as_str().unwrap()).unwrap();
    let lines: Vec<Value> = (0..120).map(|i| json!({"sku": format!("SKU-{i:05}"), "qty": i % 7, "note": "Café ✓ — naïve"})).collect();
    let data = json!({"order_id": "ord_77", "lines": lines});
    stack.publish("evt-large", "order.created", data.clone()).await;

    let got = eventually(DEADLINE, "the POST", || async { receiver.received().into_iter().next() }).await;
    assert!(got.body.len() > 6_000, "{} bytes", got.body.len());
    let body: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(body["data"], data);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    shared::signing::verify(&secret, got.header("webhook-id"), got.header("webhook-timestamp"), got.header("webhook-signature"), &got.body, now, 300)
        .expect("the signature covers the delivered bytes");

    // Kept once, deflated, in the delivery's first record: a fraction of the body.
    let id = got.header("webhook-id").to_owned();
    let raw = eventually(DEADLINE, "the record", || async { items(&stack, &id).await.into_iter().next() }).await;
    let z = raw.get("bz").and_then(|v| v.as_b().ok()).expect("a deflated body");
    assert!(z.as_ref().len() * 4 < got.body.len(), "{} → {} bytes", got.body.len(), z.as_ref().len());
    assert!(!raw.contains_key("b"));
    // The API shows it whole.
    let (_, shown) = stack.call("GET", &format!("/v1/deliveries/{id}"), None).await;
    assert_eq!(shown["request"]["payload"]["data"], data);
}
