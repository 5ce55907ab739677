//! Poison input: on every API route and on the event queue, bad input gets a clear 4xx or a DLQ
//! entry with its reason — never a 5xx, never a lost neighbour message.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use e2e::receiver::Receiver;
use e2e::{eventually, StackOptions, TestStack};
use serde_json::json;
use shared::api::ROUTES;
use std::time::Duration;

const IDS: &[&str] = &[
    "%FF",
    "sub_%C3%28",
    "..%2F..%2Fetc%2Fpasswd",
    "sub_..%2F..",
    "sub_%00",
    "sub_%F0%9F%98%80",
    "%E2%80%AE",
    "dlv_%20OR%201%3D1",
    "sub_0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_every_route_is_a_clear_4xx() {
    let stack = TestStack::start(StackOptions::default()).await;
    let long_id = "x".repeat(5000);
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("application/json", b"{\"url\": ".to_vec()),
        ("application/json", b"[1,2,3]".to_vec()),
        ("application/json", br#"{"url": "https://example.com/\ud800", "name": "\u0000\u202e", "events": ["\ud83d\ude00"]}"#.to_vec()),
        ("application/json", vec![0xff, 0xfe, 0x00, 0x7b]),
        ("text/plain", b"url=https://example.com".to_vec()),
        ("application/json", format!("{{\"url\": \"{}\"}}", "a".repeat(70_000)).into_bytes()),
    ];
    // A server that rejects before reading a body closes the connection: no pooling, so no
    // request is sent on a connection that is going away.
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let mut checked = 0;
    for (method, path) in ROUTES {
        let mut paths = vec![path.replace("{id}", "sub_00000000000000000000000000")];
        if path.contains("{id}") {
            paths.extend(IDS.iter().map(|id| path.replace("{id}", id)));
            paths.push(path.replace("{id}", &long_id));
        }
        for p in paths {
            for (ctype, body) in &bodies {
                let resp = http
                    .request(method.parse().unwrap(), stack.api(&p))
                    .bearer_auth(&stack.api_key)
                    .header("content-type", *ctype)
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                let status = resp.status();
                assert!(!status.is_server_error(), "{method} {p} ({ctype}, {} bytes) → {status}", body.len());
                if status.is_client_error() {
                    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                    assert_eq!(ct, "application/problem+json", "{method} {p} → {status}");
                }
                checked += 1;
            }
        }
    }
    println!("poison: {checked} bad requests, no 5xx");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_on_the_event_queue_never_costs_a_neighbour() {
    let stack = TestStack::start(StackOptions::default()).await;
    let receiver = Receiver::statuses(&[], 200).await;
    stack.create_subscription(&receiver.url, &["*"]).await;
    let good = |id: &str| TestStack::envelope(id, "form.submitted", json!({"text": "héllo \u{202e} 😀 \u{0}"})).to_string();
    let mut wrong_types = TestStack::envelope("wt", "form.submitted", json!({}));
    wrong_types["occurred_at"] = json!(12345);
    let mut no_tenant = TestStack::envelope("nt", "form.submitted", json!({}));
    no_tenant.as_object_mut().unwrap().remove("tenant_id");
    let mut bad_tenant = TestStack::envelope("bt", "form.submitted", json!({}));
    bad_tenant["tenant_id"] = json!("../../etc");
    let mut empty_tenant = TestStack::envelope("et", "form.submitted", json!({}));
    empty_tenant["tenant_id"] = json!("");
    let mut long_tenant = TestStack::envelope("lt", "form.submitted", json!({}));
    long_tenant["tenant_id"] = json!("t".repeat(2048));
    let bodies = [
        good("good-1"),
        "not json at all".to_owned(),
        wrong_types.to_string(),
        good("good-2"),
        no_tenant.to_string(),
        bad_tenant.to_string(),
        json!({"event_id": 5, "event_type": ["x"], "tenant_id": "acme", "occurred_at": "2026-11-22T10:00:00Z", "data": {}}).to_string(),
        r#"{"event_id":"sur","event_type":"a.b","tenant_id":"acme","occurred_at":"2026-11-22T10:00:00Z","data":"\ud800"}"#.to_owned(),
        good("good-3"),
        empty_tenant.to_string(),
    ];
    // The batch holds ten; the long tenant id goes on its own.
    stack.sqs.send_message().queue_url(&stack.config.events_queue_url).message_body(long_tenant.to_string()).send().await.unwrap();
    let entries = bodies.iter().enumerate().map(|(i, b)| SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(b).build().unwrap()).collect();
    stack.sqs.send_message_batch().queue_url(&stack.config.events_queue_url).set_entries(Some(entries)).send().await.unwrap();

    let got = eventually(Duration::from_secs(60), "the three good events", || async {
        let r = receiver.received();
        (r.len() >= 3).then_some(r)
    })
    .await;
    let mut ids: Vec<String> = got.iter().map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["event_id"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    assert_eq!(ids, ["good-1", "good-2", "good-3"]);
    // The unicode payload arrives byte for byte as JSON-escaped by the envelope.
    assert!(std::str::from_utf8(&got[0].body).unwrap().contains("😀"));

    stack.drain_events().await;
    let dlq = &stack.outputs["EVENTS_DLQ_URL"];
    let mut reasons = Vec::new();
    while reasons.len() < 8 {
        let out = stack.sqs.receive_message().queue_url(dlq).max_number_of_messages(10).message_attribute_names("All").wait_time_seconds(1).send().await.unwrap();
        let msgs = out.messages.unwrap_or_default();
        assert!(!msgs.is_empty() || reasons.len() >= 8, "only {} rejected events in the DLQ: {reasons:?}", reasons.len());
        for m in msgs {
            reasons.push(m.message_attributes.unwrap()["reason"].string_value().unwrap().to_owned());
        }
    }
    assert_eq!(reasons.len(), 8, "{reasons:?}");
    assert!(reasons.iter().all(|r| r.contains(": ")), "every reason says why: {reasons:?}");
    // Each invalid tenant id is named as such, at once (not retried as an infrastructure error);
    // no reason echoes payload text.
    assert_eq!(reasons.iter().filter(|r| *r == "invalid_envelope: tenant_id").count(), 4, "{reasons:?}");
    assert!(reasons.iter().all(|r| !r.contains("etc") && !r.contains("ttt") && !r.contains("12345")), "{reasons:?}");
    assert_eq!(stack.runner.fanout_stats.get(&stack.runner.fanout_stats.failed), 0);
}
