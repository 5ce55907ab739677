//! The walking skeleton end to end: HTTP API → event queue → fan-out → delivery queue → signed
//! POST to a real receiver → attempt rows in DynamoDB, on LocalStack, no mocks.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use e2e::receiver::Receiver;
use e2e::{eventually, StackOptions, TestStack};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use std::collections::HashMap;
use shared::adapters::dynamodb::DynamoDeliveries;
use shared::ids::{DeliveryId, TenantId};
use shared::model::{Attempt, DeliveryStatus, FailureClass};
use shared::ports::DeliveryStore;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

type Item = HashMap<String, AttributeValue>;

/// Every attempt of a delivery, as the API lists them: the Attempts items and the clean success
/// kept on the delivery item.
async fn attempts(stack: &TestStack, delivery_id: &str) -> Vec<Attempt> {
    let store = DynamoDeliveries::new(stack.ddb.clone(), &stack.config);
    store.list_attempts(&DeliveryId::parse(delivery_id).unwrap()).await.expect("list attempts")
}

/// The items of the Attempts table for a delivery.
async fn attempt_items(stack: &TestStack, delivery_id: &str) -> Vec<Item> {
    stack
        .ddb
        .query()
        .table_name(&stack.config.attempts_table)
        .key_condition_expression("delivery_id = :d")
        .expression_attribute_values(":d", AttributeValue::S(delivery_id.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("query attempts")
        .items
        .unwrap_or_default()
}

async fn delivery(stack: &TestStack, delivery_id: &str) -> Item {
    stack
        .ddb
        .get_item()
        .table_name(&stack.config.deliveries_table)
        .key("delivery_id", AttributeValue::S(delivery_id.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get delivery")
        .item
        .expect("delivery row exists")
}

fn s<'a>(item: &'a Item, k: &str) -> &'a str {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or_default()
}

fn n(item: &Item, k: &str) -> Option<u64> {
    item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
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
    let list: Value = stack
        .http
        .get(format!("{}/v1/subscriptions", stack.runner.api_url))
        .bearer_auth(&stack.api_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains(&secret));

    stack.publish("evt-001", "project.created", json!({"project_id": "p1"})).await;

    let got = eventually(DEADLINE, "the receiver to get the POST", || async {
        receiver.received().into_iter().next()
    })
    .await;
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
    shared::signing::verify(
        &sw_secret,
        got.header("webhook-id"),
        got.header("webhook-timestamp"),
        got.header("webhook-signature"),
        &got.body,
        now,
        shared::signing::DEFAULT_TOLERANCE_SECS,
    )
    .expect("Standard Webhooks signature verifies");
    assert_eq!(got.header("x-webhook-signature"), legacy_signature(&secret, &got.body));

    // The attempt row: status 200 and a duration; the delivery is delivered.
    let delivery_id = got.header("webhook-id").to_owned();
    let rows = eventually(DEADLINE, "the attempt row", || async {
        let rows = attempts(&stack, &delivery_id).await;
        (!rows.is_empty()).then_some(rows)
    })
    .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status_code, Some(200));
    assert!(rows[0].duration_ms < 60_000);
    assert_eq!(rows[0].attempt, 1);
    // A clean success is kept on the delivery item, in the write that settles it: no Attempts item.
    let item = delivery(&stack, &delivery_id).await;
    assert_eq!(s(&item, "status"), "delivered");
    let inline = item.get("success_attempt").and_then(|v| v.as_m().ok()).expect("the attempt on the delivery item");
    assert_eq!(n(inline, "status_code"), Some(200));
    assert!(attempt_items(&stack, &delivery_id).await.is_empty());
    // A second success (SQS delivers a task at least once) cannot take that place: it becomes an
    // Attempts item, and both are listed.
    let store = DynamoDeliveries::new(stack.ddb.clone(), &stack.config);
    let again = Attempt { attempt: 2, ..rows[0].clone() };
    store.record_attempt(&again, DeliveryStatus::Delivered).await.expect("record a second success");
    assert_eq!(attempt_items(&stack, &delivery_id).await.len(), 1);
    assert_eq!(attempts(&stack, &delivery_id).await.iter().map(|a| a.attempt).collect::<Vec<_>>(), [1, 2]);

    // The non-matching subscription got nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(other.received().is_empty());
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
    let item = eventually(DEADLINE, "the delivery to be delivered", || async {
        let d = delivery(&stack, &delivery_id).await;
        (s(&d, "status") == "delivered").then_some(d)
    })
    .await;
    assert_eq!(n(&item, "attempts"), Some(3));

    let rows = attempts(&stack, &delivery_id).await;
    let codes: Vec<_> = rows.iter().map(|r| r.status_code).collect();
    assert_eq!(codes, vec![Some(500), Some(500), Some(200)]);
    assert_eq!(rows.iter().map(|r| r.attempt).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(rows[0].error_class, Some(FailureClass::Http));
    // The failures are Attempts items; the success is on the delivery.
    assert_eq!(attempt_items(&stack, &delivery_id).await.len(), 2);

    // Delivered once: the queue drains and no fourth POST arrives.
    eventually(DEADLINE, "the delivery queue to drain", || async {
        (stack.queue_depth(&stack.config.delivery_queue_url).await == 0).then_some(())
    })
    .await;
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.header("webhook-id") == delivery_id), "webhook-id is stable across retries");
}

#[tokio::test]
async fn exhausted_delivery_lands_in_the_dlq() {
    let stack = TestStack::start(StackOptions { retry_schedule: "1,1", ..Default::default() }).await;
    let receiver = Receiver::statuses(&[], 500).await;
    stack.create_subscription(&receiver.url, &["*"]).await;
    stack.publish("evt-dead", "project.deleted", json!({})).await;

    let dlq = stack.outputs["DELIVERY_DLQ_URL"].clone();
    let dead = eventually(DEADLINE, "the message in the delivery DLQ", || async {
        let out = stack.sqs.receive_message().queue_url(&dlq).wait_time_seconds(1).send().await.unwrap();
        out.messages.unwrap_or_default().into_iter().next()
    })
    .await;
    let task: Value = serde_json::from_str(dead.body().unwrap()).unwrap();
    assert_eq!(task["type"], "deliver.v1");
    let delivery_id = task["delivery_id"].as_str().unwrap().to_owned();

    let d = delivery(&stack, &delivery_id).await;
    assert_eq!(s(&d, "status"), "failed");
    assert_eq!(n(&d, "attempts"), Some(3));
    assert_eq!(attempts(&stack, &delivery_id).await.len(), 3);
    assert_eq!(receiver.received().len(), 3);
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

    let resp = stack
        .http
        .get(format!("{url}/sub_doesnotexist"))
        .bearer_auth(&stack.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn a_large_event_is_stored_deflated_and_delivered_byte_for_byte() {
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

    // Stored once, deflated: the item is a fraction of the body.
    let item = stack
        .ddb
        .get_item()
        .table_name(&stack.config.events_table)
        .key("tenant_id", AttributeValue::S("acme".into()))
        .key("event_id", AttributeValue::S("evt-large".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the event item");
    let z = item.get("body_deflate").and_then(|v| v.as_b().ok()).expect("a deflated body");
    assert!(z.as_ref().len() * 4 < got.body.len(), "{} → {} bytes", got.body.len(), z.as_ref().len());
    assert!(!item.contains_key("body"));

    // The adapter reads it back whole (eventually consistent, then strong on a miss); an event
    // that was never stored is none after both reads.
    let store = DynamoDeliveries::new(stack.ddb.clone(), &stack.config);
    let acme = TenantId::parse("acme").unwrap();
    let stored = store.get_event(&acme, "evt-large").await.unwrap().expect("the stored event");
    assert_eq!(stored.body.as_bytes(), &got.body[..]);
    assert!(store.get_event(&acme, "evt-never-published").await.unwrap().is_none());
}
