//! SQS events as Lambda delivers them (JSON), decoded by the handler call as lambda_runtime does.

use aws_sdk_sqs::types::Message;
use serde_json::{json, Value};
use shared::Deps;

const FAKE_ARN_EVENTS: &str = "arn:aws:sqs:us-east-1:000000000000:EventsQueue";
const FAKE_ARN_DELIVERY: &str = "arn:aws:sqs:us-east-1:000000000000:DeliveryQueue";

/// A record of the shape the SQS event source mapping sends (receipt handles are ~400 chars).
pub fn record(i: usize, body: &str, receive: u32, delivery: bool) -> Value {
    json!({
        "messageId": format!("{:08x}-5e1d-4c6e-9b1f-{:012x}", i, i),
        "receiptHandle": format!("AQEB{i:016x}{}", "Zm9vYmFy".repeat(48)),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": receive.to_string(),
            "SentTimestamp": "1795341600000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1795341600010"
        },
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": if delivery { FAKE_ARN_DELIVERY } else { FAKE_ARN_EVENTS },
        "awsRegion": "us-east-1"
    })
}

/// The record Lambda would build from a received message (as the runner's poller does).
pub fn record_from_sdk(m: &Message, queue_url: &str) -> Value {
    let attrs: serde_json::Map<String, Value> =
        m.attributes.as_ref().map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v))).collect()).unwrap_or_default();
    json!({
        "messageId": m.message_id, "receiptHandle": m.receipt_handle, "body": m.body,
        "md5OfBody": m.md5_of_body, "attributes": attrs, "messageAttributes": {},
        "eventSource": "aws:sqs", "eventSourceARN": queue_url, "awsRegion": "us-east-1"
    })
}

pub fn event(records: Vec<Value>) -> String {
    json!({ "Records": records }).to_string()
}

/// Decode + `delivery::handle_batch` + encode the response: what the Lambda does per batch.
/// Returns the ids reported as batch item failures.
pub async fn delivery(event_json: &str, deps: &Deps) -> Vec<String> {
    let event = serde_json::from_str(event_json).expect("an SqsEvent");
    let resp = shared::delivery::handle_batch(event, deps).await;
    let _ = std::hint::black_box(serde_json::to_vec(&resp));
    resp.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
}

pub async fn fanout(event_json: &str, deps: &Deps) -> Vec<String> {
    let event = serde_json::from_str(event_json).expect("an SqsEvent");
    let resp = shared::fanout::handle_batch(event, deps).await;
    let _ = std::hint::black_box(serde_json::to_vec(&resp));
    resp.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
}
