//! No response (other than the one that issues it), log line or stored attempt ever contains a
//! signing secret, an endpoint password or API key, a custom header value, or an API key.

use e2e::receiver::Receiver;
use e2e::{eventually, StackOptions, TestStack};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every log line of this test process, as the JSON formatter writes them in Lambda.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Adds a response's raw text (from [`TestStack::call_text`]) to `seen`, the responses that must
/// show no secret; returns its JSON (`Null` if none).
fn record(seen: &mut Vec<String>, (_, text): (u16, String)) -> Value {
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    seen.push(text);
    json
}

/// Creates a subscription; the response (the one that issues its secret) is not added to `seen`.
async fn create(stack: &TestStack, body: Value) -> Value {
    stack.call("POST", "/v1/subscriptions", Some(body)).await.1
}

async fn scan(stack: &TestStack, table: &str) -> String {
    let items = stack.ddb.scan().table_name(table).send().await.unwrap().items.unwrap_or_default();
    format!("{items:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_leak_into_responses_logs_or_attempts() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_env_filter("debug,aws_smithy_runtime=info,aws_sdk_sqs=info,aws_sdk_dynamodb=info,aws_config=info,hyper=info,h2=info,rustls=info")
        .with_writer(move || writer.clone())
        .init();

    let stack = TestStack::start(StackOptions::default()).await;
    let receiver = Receiver::statuses(&[500], 200).await;
    let mut secrets: Vec<String> = vec![stack.api_key.clone()];
    let mut seen = Vec::new();

    // Responses that issue a secret are the only ones allowed to show it: not added to `seen`.
    let a: Value = create(&stack, json!({"url": receiver.url, "headers": {"X-Custom-Token": "hdr-value-31337"}, "auth": {"type": "basic", "username": "svc", "password": "pw-0xDEADBEEF"}})).await;
    let b: Value = create(&stack, json!({"url": receiver.url, "auth": {"type": "api_key", "header": "X-Api-Key", "value": "apikey-8badf00d"}})).await;
    // OAuth2 (its token URL answers no token: the attempts fail `auth`), mTLS with a key, a raw
    // secret, and a v1a subscription whose signing key must never leave the service.
    let pem = e2e::tls::certificates(&e2e::tls::tempdir("secrets"));
    let token_endpoint = Receiver::statuses(&[], 200).await;
    let c: Value = create(&stack, json!({"url": receiver.url, "secret": "raw-secret-5up3r-l0ng", "auth": {"type": "oauth2", "token_url": token_endpoint.url, "client_id": "cid", "client_secret": "oauth-s3cret-c0ffee"},
            "tls": {"client_certificate": pem["client.pem"], "client_key": pem["client.key"]}})).await;
    assert_eq!(c["secret"], "raw-secret-5up3r-l0ng", "{c}");
    let v1a = record(&mut seen, stack.call_text("POST", "/v1/subscriptions", Some(json!({"url": receiver.url, "signature": {"scheme": "v1a"}}))).await);
    assert!(v1a["signature"]["public_key"].as_str().is_some() && v1a.get("secret").is_none(), "{v1a}");
    let key_body: String = pem["client.key"].lines().filter(|l| !l.starts_with("-----")).collect();
    // The OAuth2 client credentials as they go to the token endpoint (HTTP Basic).
    secrets.extend(["raw-secret-5up3r-l0ng".to_owned(), "oauth-s3cret-c0ffee".to_owned(), key_body, "Y2lkOm9hdXRoLXMzY3JldC1jMGZmZWU=".to_owned()]);
    let (_, rotated) = stack.call("POST", &format!("/v1/subscriptions/{}/rotate-secret", a["id"].as_str().unwrap()), None).await;
    let (_, key2) = stack.call("POST", "/v1/api-keys", Some(json!({"scopes": ["webhooks:read"]}))).await;
    for s in [&a["secret"], &b["secret"], &rotated["secret"], &key2["key"]] {
        secrets.push(s.as_str().expect("issued once").to_owned());
    }
    secrets.extend(["hdr-value-31337", "pw-0xDEADBEEF", "apikey-8badf00d"].map(String::from));
    // The Basic credential as it goes on the wire.
    secrets.push("c3ZjOnB3LTB4REVBREJFRUY=".into());

    // Exercise every reading route, a failing then succeeding delivery, the test route.
    stack.publish("evt-secret", "project.created", json!({"x": 1})).await;
    eventually(Duration::from_secs(60), "the three deliveries and the retry", || async { (receiver.received().len() >= 4).then_some(()) }).await;
    let a_id = a["id"].as_str().unwrap();
    let b_id = b["id"].as_str().unwrap();
    let c_id = c["id"].as_str().unwrap();
    eventually(Duration::from_secs(60), "the OAuth2 subscription's failed attempt", || async {
        let (_, page) = stack.call("GET", &format!("/v1/subscriptions/{c_id}/deliveries"), None).await;
        page["data"].as_array().filter(|d| !d.is_empty()).map(|_| ())
    })
    .await;
    // The v1a signing key as stored (the subscriptions table is the one place it may be).
    let subs = scan(&stack, &stack.config.subscriptions_table).await;
    let whsk = subs.split("whsk_").nth(1).expect("a stored v1a key").split('"').next().unwrap().to_owned();
    secrets.push(whsk);
    record(&mut seen, stack.call_text("GET", "/v1/subscriptions", None).await);
    record(&mut seen, stack.call_text("GET", &format!("/v1/subscriptions/{a_id}"), None).await);
    record(&mut seen, stack.call_text("GET", &format!("/v1/subscriptions/{c_id}"), None).await);
    record(&mut seen, stack.call_text("GET", &format!("/v1/subscriptions/{b_id}"), None).await);
    record(&mut seen, stack.call_text("PATCH", &format!("/v1/subscriptions/{a_id}"), Some(json!({"name": "renamed"}))).await);
    record(&mut seen, stack.call_text("POST", &format!("/v1/subscriptions/{b_id}/test"), None).await);
    for id in [a_id, b_id, c_id] {
        let page = record(&mut seen, stack.call_text("GET", &format!("/v1/subscriptions/{id}/deliveries"), None).await);
        for d in page["data"].as_array().unwrap() {
            let dlv = d["id"].as_str().unwrap();
            record(&mut seen, stack.call_text("GET", &format!("/v1/deliveries/{dlv}"), None).await);
            record(&mut seen, stack.call_text("GET", &format!("/v1/deliveries/{dlv}/attempts"), None).await);
        }
    }
    record(&mut seen, stack.call_text("GET", "/v1/api-keys", None).await);
    record(&mut seen, stack.call_text("POST", "/v1/subscriptions", Some(json!({"url": "ftp://x", "auth": {"type": "basic", "username": "svc", "password": "pw-0xDEADBEEF"}}))).await);

    // The ledger: every record of every delivery, attempts and first records with their events.
    let deliveries = scan(&stack, &stack.config.deliveries_table).await;
    assert!(deliveries.contains("\"ac\""), "attempts were recorded: {deliveries}");
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("subscription created") && logs.contains("delivered"), "logs were captured");
    for secret in &secrets {
        for (i, body) in seen.iter().enumerate() {
            assert!(!body.contains(secret.as_str()), "response {i} leaks {secret}: {body}");
        }
        assert!(!logs.contains(secret.as_str()), "a log line leaks {secret}");
        assert!(!deliveries.contains(secret.as_str()), "a ledger record leaks {secret}");
    }
    // The receiver did get the credentials: they were sent, just never shown back.
    let got = receiver.received();
    assert!(got.iter().any(|r| r.header("authorization") == "Basic c3ZjOnB3LTB4REVBREJFRUY="));
    assert!(got.iter().any(|r| r.header("x-api-key") == "apikey-8badf00d"));
    assert!(token_endpoint.received().iter().any(|r| r.header("authorization") == "Basic Y2lkOm9hdXRoLXMzY3JldC1jMGZmZWU="), "the token endpoint got the client credentials");
}
