//! Fan-out against LocalStack: exact matching, idempotency, poison handling and batching.
//! Fan-out writes nothing: its tasks carry the event, and their delivery ids say which pair.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use e2e::{eventually, StackOptions, TestStack};
use futures::StreamExt;
use serde_json::json;
use shared::ids::TenantId;
use shared::model::{DeliveryTask, Subscription};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);

fn queued_only() -> StackOptions {
    StackOptions { delivery_pollers: 0, ..Default::default() }
}

/// The delivery ids of the tasks on the delivery queue (read, then made visible again).
async fn queued_ids(stack: &TestStack) -> Vec<String> {
    e2e::census::dlq_bodies(stack, &stack.config.delivery_queue_url).await.iter().map(|b| DeliveryTask::parse(b).unwrap().delivery_id().to_string()).collect()
}

#[tokio::test]
async fn three_of_five_subscriptions_match_and_a_repeat_yields_the_same_deliveries() {
    let stack = TestStack::start(queued_only()).await;
    let url = "https://example.com/hook";
    let matching = [
        stack.create_subscription(url, &["project.created"]).await,
        stack.create_subscription(url, &["project.*"]).await,
        stack.create_subscription(url, &["*"]).await,
    ];
    let others = [
        stack.create_subscription(url, &["project.deleted"]).await,
        stack.create_subscription(url, &["visit.*"]).await,
    ];

    stack.calls.reset();
    stack.publish("evt-match", "project.created", json!({"n": 1})).await;
    stack.drain_events().await;
    // The same event again, as a new message (upstream retried its send).
    stack.publish("evt-match", "project.created", json!({"n": 1})).await;
    stack.drain_events().await;

    // One task per matching subscription each time, for the same three deliveries: the ledger's
    // conditional writes keep them to one each, and the webhook-id lets receivers dedupe.
    let ids = queued_ids(&stack).await;
    assert_eq!(ids.len(), 6);
    let distinct: BTreeSet<&String> = ids.iter().collect();
    let expected: BTreeSet<String> = matching.iter().map(|s| TestStack::delivery_id("evt-match", s["id"].as_str().unwrap()).to_string()).collect();
    assert_eq!(distinct.into_iter().cloned().collect::<BTreeSet<_>>(), expected);
    for sub in &others {
        assert!(!ids.contains(&TestStack::delivery_id("evt-match", sub["id"].as_str().unwrap()).to_string()));
    }
    assert_eq!(stack.calls.get("PutItem") + stack.calls.get("UpdateItem"), 0, "fan-out writes nothing");
}

#[tokio::test]
async fn poison_messages_go_to_the_dlq_with_reasons_and_the_rest_fan_out() {
    let stack = TestStack::start(queued_only()).await;
    stack.create_subscription("https://example.com/hook", &["*"]).await;

    let mut bodies: Vec<String> = (0..7).map(|i| TestStack::envelope(&format!("ok-{i}"), "project.created", json!({})).to_string()).collect();
    bodies.insert(2, "{not json".into());
    bodies.insert(5, json!({"event_id": "x", "event_type": "project.created", "tenant_id": "acme"}).to_string());
    let mut unknown = TestStack::envelope("evt-nobody", "project.created", json!({}));
    unknown["tenant_id"] = json!("nobody");
    bodies.insert(8, unknown.to_string());
    let entries = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(b).build().unwrap())
        .collect();
    stack.sqs.send_message_batch().queue_url(&stack.config.events_queue_url).set_entries(Some(entries)).send().await.unwrap();
    stack.drain_events().await;

    eventually(DEADLINE, "7 delivery tasks", || async { (stack.queue_depth(&stack.config.delivery_queue_url).await == 7).then_some(()) }).await;
    let dlq = &stack.outputs["EVENTS_DLQ_URL"];
    let mut reasons = Vec::new();
    while reasons.len() < 3 {
        let out = stack
            .sqs
            .receive_message()
            .queue_url(dlq)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            let attrs = m.message_attributes.unwrap_or_default();
            reasons.push(attrs["reason"].string_value().unwrap().split(':').next().unwrap().to_owned());
            assert!(attrs["source_message_id"].string_value().is_some());
        }
    }
    reasons.sort();
    assert_eq!(reasons, vec!["invalid_envelope", "not_json", "unknown_tenant"]);
    // Moved, not failed: no message was left for SQS to redeliver.
    assert_eq!(stack.runner.fanout_stats.get(&stack.runner.fanout_stats.failed), 0);
    assert_eq!(stack.runner.fanout_stats.get(&stack.runner.fanout_stats.deleted), 10);
}

#[tokio::test]
async fn a_thousand_subscriptions_fan_out_in_a_hundred_batch_calls() {
    let n = 1000;
    let stack = TestStack::start(StackOptions { env: vec![("MAX_SUBSCRIPTIONS_PER_TENANT", n.to_string())], ..queued_only() }).await;
    let tenant = TenantId::parse("acme").unwrap();
    let now = time::OffsetDateTime::now_utc();
    let store = stack.runner.deps.subscriptions.clone();
    futures::stream::iter(0..n)
        .map(|_| {
            let store = store.clone();
            let sub = Subscription::new(tenant.clone(), "https://example.com/hook".into(), vec!["*".into()], now);
            async move { store.create(&sub, usize::MAX).await.unwrap() }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;

    stack.calls.reset();
    let started = Instant::now();
    stack.publish("evt-wide", "project.created", json!({})).await;
    eventually(DEADLINE, "1,000 delivery tasks", || async {
        (stack.queue_depth(&stack.config.delivery_queue_url).await == n as u64).then_some(())
    })
    .await;
    let elapsed = started.elapsed();
    let batches = stack.calls.get("SendMessageBatch");
    println!(
        "fan-out of 1 event to {n} subscriptions: {:.2} s, {batches} SendMessageBatch, {} PutItem, {} Query",
        elapsed.as_secs_f64(),
        stack.calls.get("PutItem"),
        stack.calls.get("Query")
    );
    assert!(batches <= 100, "{batches} SendMessageBatch calls");
    assert_eq!(stack.calls.get("PutItem"), 0, "fan-out writes nothing: each task carries its event");
}

/// Creates a queue of `stack`'s own naming with the given attributes; returns its URL.
async fn queue_with(stack: &TestStack, suffix: &str, attrs: &[(aws_sdk_sqs::types::QueueAttributeName, String)]) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let mut req = stack.sqs.create_queue().queue_name(format!("qc-{suffix}-{nanos}"));
    for (k, v) in attrs {
        req = req.attributes(k.clone(), v.clone());
    }
    req.send().await.expect("create queue").queue_url.expect("queue url")
}

#[tokio::test]
async fn the_functions_refuse_queues_that_would_lose_messages() {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    // GIVEN a stack (whose queues pass: it started) and three misconfigured queues
    let stack = TestStack::start(queued_only()).await;
    let dlq_arn = &stack.outputs["EVENTS_DLQ_ARN"];
    let redrive = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"20"}}"#);
    let no_dlq = queue_with(&stack, "nodlq", &[]).await;
    let expires_first = queue_with(&stack, "short", &[(A::RedrivePolicy, redrive), (A::VisibilityTimeout, "60".into()), (A::MessageRetentionPeriod, "240".into())]).await;
    let sdk = shared::load_sdk_config().await;
    let start = |config: shared::Config| {
        let sdk = sdk.clone();
        async move { runner::Runner::start(&sdk, config, runner::Options::default()).await.err().map(|e| e.to_string()) }
    };

    // WHEN the events queue has no DLQ THEN the runner (as the fan-out function) refuses to start
    let err = start(shared::Config { events_queue_url: no_dlq.clone(), ..stack.config.clone() }).await.expect("refused");
    assert!(err.contains("the events queue has no RedrivePolicy"), "{err}");
    // WHEN it would drop an event before its 20th receive THEN too, naming the parameter to raise
    let err = start(shared::Config { events_queue_url: expires_first, ..stack.config.clone() }).await.expect("refused");
    assert!(err.contains("keeps messages 240s") && err.contains("to reach the DLQ") && err.contains("RetentionSeconds"), "{err}");
    // WHEN the delivery queue has no DLQ THEN the delivery check refuses it
    let err = start(shared::Config { delivery_queue_url: no_dlq, ..stack.config.clone() }).await.expect("refused");
    assert!(err.contains("the delivery queue has no RedrivePolicy"), "{err}");
}
