//! The management API under concurrency and abuse, on LocalStack: racing changes never undo each
//! other, `If-Match` guards a change, the subscription limit holds under parallel creates, a
//! customer's key cannot publish events, and a tenant with thousands of deleted subscriptions
//! does not slow its neighbours' fan-out.

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use e2e::receiver::Receiver;
use e2e::{eventually, StackOptions, TestStack};
use futures::StreamExt;
use serde_json::{json, Value};
use shared::ids::{SubscriptionId, TenantId};
use shared::model::{Scope, Subscription};
use shared::ports::HealthChange;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_changes_never_undo_each_other_and_a_stale_if_match_is_refused() {
    let stack = TestStack::start(StackOptions::default()).await;
    let receiver = Receiver::statuses(&[], 200).await;
    let created = stack.create_subscription(&receiver.url, &["*"]).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let sub_id = SubscriptionId::parse(&id).unwrap();
    let tenant = TenantId::parse("acme").unwrap();
    let path = format!("/v1/subscriptions/{id}");
    let rounds = 20;
    let mut last_secret = String::new();
    for r in 0..rounds {
        // PATCH racing a rotation: both acknowledged, neither undone.
        let rotate = format!("{path}/rotate-secret");
        let (patched, rotated) = tokio::join!(stack.call("PATCH", &path, Some(json!({"name": format!("n{r}")}))), stack.call("POST", &rotate, None));
        assert_eq!((patched.0, rotated.0), (200, 200), "{patched:?} {rotated:?}");
        last_secret = rotated.1["secret"].as_str().unwrap().to_owned();
        // PATCH racing the worker's health update.
        let at = time::OffsetDateTime::now_utc();
        let (patched, health) = tokio::join!(
            stack.call("PATCH", &path, Some(json!({"description": format!("d{r}")}))),
            stack.runner.deps.subscriptions.record_health(&tenant, &sub_id, HealthChange::Failed { count: 1, since: at })
        );
        assert_eq!(patched.0, 200);
        health.unwrap().expect("the subscription exists");
        // PATCH racing DELETE: the delete stands, the patch too; then restore.
        let events = if r % 2 == 0 { json!(["project.*"]) } else { json!(["*"]) };
        let (patched, deleted) = tokio::join!(stack.call("PATCH", &path, Some(json!({"events": events}))), stack.call("DELETE", &path, None));
        assert_eq!((patched.0, deleted.0), (200, 204));
        let (_, now) = stack.call("GET", &path, None).await;
        assert_eq!(now["active"], false, "a PATCH never undeletes: {now}");
        let (status, _) = stack.call("POST", &format!("{path}/restore"), None).await;
        assert_eq!(status, 200);
    }
    // THEN the item reflects every acknowledged change: the last of each field, every health
    // increment, and one version per change (6 a round, on top of the creation's 1).
    let (_, sub) = stack.call("GET", &path, None).await;
    assert_eq!((sub["name"].as_str(), sub["description"].as_str(), sub["active"].as_bool()), (Some("n19"), Some("d19"), Some(true)), "{sub}");
    assert_eq!(sub["events"], json!(["*"]));
    assert_eq!(sub["failure_count"], rounds);
    assert_eq!(sub["version"], 1 + 6 * rounds);
    // AND a change with a stale If-Match is refused with 412, one with the current ETag applies
    let resp = stack.http.patch(stack.api(&path)).bearer_auth(&stack.api_key).header("if-match", "\"1\"").json(&json!({"name": "late"})).send().await.unwrap();
    assert_eq!(resp.status(), 412);
    let problem: Value = resp.json().await.unwrap();
    assert_eq!((problem["type"].as_str(), problem["field"].as_str()), (Some("/problems/precondition-failed"), Some("If-Match")));
    let current = stack.http.get(stack.api(&path)).bearer_auth(&stack.api_key).send().await.unwrap();
    let etag = current.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", 1 + 6 * rounds));
    let resp = stack.http.patch(stack.api(&path)).bearer_auth(&stack.api_key).header("if-match", &etag).json(&json!({"name": "on time"})).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"].to_str().unwrap(), format!("\"{}\"", 2 + 6 * rounds));
    for (method, extra) in [("DELETE", ""), ("POST", "/rotate-secret"), ("POST", "/restore")] {
        let resp = stack.http.request(method.parse().unwrap(), stack.api(&format!("{path}{extra}"))).bearer_auth(&stack.api_key).header("if-match", "\"1\"").send().await.unwrap();
        assert_eq!(resp.status(), 412, "{method} {extra}");
    }
    // AND the secret that signs deliveries is the one the last rotation returned
    let (status, test) = stack.call("POST", &format!("{path}/test"), None).await;
    assert_eq!((status, test["status"].as_str()), (200, Some("delivered")), "{test}");
    let got = receiver.received().pop().unwrap();
    let secret = shared::signing::Secret::parse(&last_secret).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let only_new = got.header("webhook-signature").split(' ').find(|sig| shared::signing::verify(&secret, got.header("webhook-id"), got.header("webhook-timestamp"), sig, &got.body, now, 300).is_ok());
    assert!(only_new.is_some(), "the last rotation's secret signs the delivery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_creates_against_a_limit_of_25_create_exactly_25() {
    let stack = TestStack::start(StackOptions { env: vec![("MAX_SUBSCRIPTIONS_PER_TENANT", "25".into())], delivery_pollers: 0, ..Default::default() }).await;
    let creates = (0..50).map(|i| stack.call("POST", "/v1/subscriptions", Some(json!({"url": format!("https://example.com/{i}")}))));
    let answers = futures::future::join_all(creates).await;
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    let refused = answers.iter().filter(|(s, b)| *s == 409 && b["detail"].as_str().is_some_and(|d| d.contains("at most 25"))).count();
    println!("50 parallel creates against a limit of 25: {created} created, {refused} refused");
    assert_eq!((created, refused), (25, 25), "{answers:?}");
    let (_, list) = stack.call("GET", "/v1/subscriptions?limit=100", None).await;
    assert_eq!(list["data"].as_array().unwrap().iter().filter(|s| s["active"] == true).count(), 25);
    // A deleted one frees its place, once.
    let first = list["data"][0]["id"].as_str().unwrap();
    assert_eq!(stack.call("DELETE", &format!("/v1/subscriptions/{first}"), None).await.0, 204);
    let again = futures::future::join_all((0..5).map(|i| stack.call("POST", "/v1/subscriptions", Some(json!({"url": format!("https://example.com/again-{i}")}))))).await;
    assert_eq!(again.iter().filter(|(s, _)| *s == 201).count(), 1);
}

#[tokio::test]
async fn only_a_publish_scoped_key_publishes_events() {
    let stack = TestStack::start(StackOptions { delivery_pollers: 0, ..Default::default() }).await;
    let tenant = TenantId::parse("acme").unwrap();
    let (customer, _) = shared::api::auth::issue_key(&stack.runner.deps, &tenant, &Scope::DEFAULT).await.unwrap();
    let (platform, _) = shared::api::auth::issue_key(&stack.runner.deps, &tenant, &[Scope::Publish]).await.unwrap();
    let event = json!({"event_id": "visit-1", "event_type": "visit.completed", "data": {"forged": false}});
    let post = |key: String| {
        let req = stack.http.post(stack.api("/v1/events")).bearer_auth(key).json(&event);
        async move { req.send().await.unwrap() }
    };
    let resp = post(customer.clone()).await;
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("events:publish"));
    assert_eq!(post(platform).await.status(), 202);
    // The customer's key still manages its subscriptions.
    let resp = stack.http.get(stack.api("/v1/subscriptions")).bearer_auth(customer).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

/// A subscription at the size bounds: 20 headers of 1 KB, a 1 KB description.
fn maximal(tenant: &TenantId, i: usize, active: bool) -> Subscription {
    let mut s = Subscription::new(tenant.clone(), format!("https://example.com/{i}"), vec!["*".into()], time::OffsetDateTime::now_utc());
    s.description = Some("d".repeat(shared::api::validate::MAX_DESCRIPTION));
    s.headers = (0..shared::api::validate::MAX_HEADERS).map(|h| (format!("x-h-{h}"), "v".repeat(shared::api::validate::MAX_HEADER_VALUE))).collect();
    s.active = active;
    s
}

fn batch(bodies: &[String]) -> SqsEvent {
    let mut e = SqsEvent::default();
    for (i, b) in bodies.iter().enumerate() {
        let mut m = SqsMessage::default();
        m.message_id = Some(format!("m{i}"));
        m.body = Some(b.clone());
        m.attributes.insert("ApproximateReceiveCount".into(), "1".into());
        e.records.push(m);
    }
    e
}

fn envelope(tenant: &str, id: &str) -> String {
    json!({"event_id": id, "event_type": "project.created", "tenant_id": tenant, "occurred_at": "2026-11-22T10:00:00Z", "data": {}}).to_string()
}

/// The neighbour's fan-out time per batch (ms), sorted, each batch also carrying `noisy` events.
async fn fan_out_times(stack: &TestStack, rounds: usize, noisy: usize, tag: &str) -> Vec<f64> {
    let mut times = Vec::new();
    for r in 0..rounds {
        let mut bodies = vec![envelope("acme", &format!("{tag}-{r}"))];
        bodies.extend((0..noisy).map(|k| envelope("noisy", &format!("{tag}-{r}-{k}"))));
        let t = Instant::now();
        let resp = shared::fanout::handle_batch(batch(&bodies), &stack.runner.deps).await;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(resp.batch_item_failures.is_empty(), "{tag} round {r}: {resp:?}");
    }
    times.sort_by(|a, b| a.total_cmp(b));
    times
}

fn p(v: &[f64], q: f64) -> f64 {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_with_5000_deleted_subscriptions_does_not_slow_its_neighbours() {
    let stack = TestStack::start(StackOptions { delivery_pollers: 0, ..Default::default() }).await;
    stack.create_subscription("https://example.com/neighbour", &["*"]).await;
    let noisy = TenantId::parse("noisy").unwrap();
    shared::api::auth::issue_key(&stack.runner.deps, &noisy, &Scope::ALL).await.unwrap();
    // GIVEN the noisy tenant's 25 maximal active subscriptions (through the store)
    for i in 0..25 {
        stack.runner.deps.subscriptions.create(&maximal(&noisy, i, true), 25).await.unwrap();
    }
    let rounds = 20;
    fan_out_times(&stack, 2, 9, "warm").await;
    // The neighbour alone, and beside the noisy tenant's events (9 per batch, 25 tasks each)
    let alone = fan_out_times(&stack, rounds, 0, "alone").await;
    let beside = fan_out_times(&stack, rounds, 9, "beside").await;
    // WHEN the noisy tenant also keeps 5,000 maximal deleted subscriptions (written as the store
    // leaves them: inactive, outside the index)
    let started = Instant::now();
    let deleted: Vec<Subscription> = (0..5000).map(|i| maximal(&noisy, 100 + i, false)).collect();
    let mut writes = futures::stream::iter(deleted.chunks(25).map(|chunk| {
        let requests: Vec<WriteRequest> = chunk
            .iter()
            .map(|s| WriteRequest::builder().put_request(PutRequest::builder().set_item(Some(serde_dynamo::to_item(s).unwrap())).build().unwrap()).build())
            .collect();
        let (ddb, table) = (stack.ddb.clone(), stack.config.subscriptions_table.clone());
        async move {
            let mut pending = requests;
            while !pending.is_empty() {
                let out = ddb.batch_write_item().request_items(&table, pending).send().await.expect("batch write");
                pending = out.unprocessed_items.and_then(|mut u| u.remove(&table)).unwrap_or_default();
            }
        }
    }))
    .buffer_unordered(8);
    while writes.next().await.is_some() {}
    let item_bytes = shared::adapters::dynamodb::item_size(&serde_dynamo::to_item(&deleted[0]).unwrap());
    println!("noisy tenant: 5,000 deleted subscriptions of {item_bytes} B each written in {:.1} s", started.elapsed().as_secs_f64());
    let noisy_after = fan_out_times(&stack, rounds, 9, "after").await;
    println!("fan-out of a batch with the neighbour's event (ms, {rounds} batches each, subscription cache off):");
    println!("  neighbour alone:                                   p50 {:.1} p99 {:.1}", p(&alone, 0.5), p(&alone, 0.99));
    println!("  beside 9 noisy events, the noisy tenant 25 active: p50 {:.1} p99 {:.1}", p(&beside, 0.5), p(&beside, 0.99));
    println!("  the same, the noisy tenant + 5,000 deleted:        p50 {:.1} p99 {:.1}", p(&noisy_after, 0.5), p(&noisy_after, 0.99));
    // THEN fan-out reads only the 25 active subscriptions (small index items), and every event
    // fanned out: one task per neighbour event, 25 per noisy event
    let subscribers = stack.runner.deps.subscriptions.subscribers(&noisy).await.unwrap();
    assert_eq!(subscribers.len(), 25);
    let bytes: usize = subscribers.iter().map(|s| serde_json::to_string(s).unwrap().len()).sum();
    println!("noisy tenant's fan-out holds {} subscribers, {bytes} B as JSON (not 5,025 x {item_bytes} B)", subscribers.len());
    // 2 warm-up, 3 x 20 measured batches: one neighbour task each, 25 per noisy event.
    let want = (2 + 3 * rounds) as u64 + ((2 + 2 * rounds) * 9 * 25) as u64;
    let tasks = eventually(Duration::from_secs(30), "the tasks", || async {
        let n = stack.queue_depth(&stack.config.delivery_queue_url).await;
        (n == want).then_some(n)
    })
    .await;
    assert_eq!(tasks, want);
}
