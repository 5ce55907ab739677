//! The delivery ledger under operator actions and infrastructure faults, on LocalStack with real
//! receivers: DLQ redrives (events and deliveries), a DynamoDB outage longer than the queue's
//! receives × its visibility timeout, and two workers racing on one task. Each ends with the
//! invariant checker (`e2e::census`) over every pair.

use e2e::census::Census;
use e2e::chaos::{ChaosReceiver, Profile};
use e2e::proxy::Proxy;
use e2e::{eventually, StackOptions, TestStack};
use runner::redrive::{redrive, Dlq};
use shared::model::{DeliveryStatus, DeliveryTask, RecordStatus};
use shared::ports::Read;
use std::time::Duration;

fn localstack() -> String {
    std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL").trim_start_matches("http://").trim_end_matches('/').to_owned()
}

fn pairs(events: &[String], subs: &[String]) -> Vec<(String, String)> {
    subs.iter().flat_map(|s| events.iter().map(move |e| (e.clone(), s.clone()))).collect()
}

async fn subscribe(stack: &TestStack, receiver: &ChaosReceiver, n: usize) -> Vec<String> {
    let mut subs = Vec::new();
    for _ in 0..n {
        subs.push(stack.create_subscription(&receiver.url, &["*"]).await["id"].as_str().unwrap().to_owned());
    }
    subs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_that_keep_failing_fan_out_reach_the_events_dlq_and_a_redrive_delivers_them() {
    // GIVEN handlers cut off from SQS (the pollers still receive): fan-out cannot send tasks
    let proxy = Proxy::start(localstack()).await;
    let stack = TestStack::start(StackOptions { handler_sqs_endpoint: Some(proxy.url.clone()), event_max_receive_count: Some(2), event_visibility_timeout: 2, ..Default::default() }).await;
    let receiver = ChaosReceiver::start(Profile::OK).await;
    let subs = subscribe(&stack, &receiver, 2).await;
    proxy.cut();
    let events: Vec<String> = (0..6).map(|i| format!("redrive-ev-{i}")).collect();
    stack.publish_many(&events, "project.created").await;
    // WHEN they use up their receives
    eventually(Duration::from_secs(60), "the events in the events DLQ", || async { (stack.queue_depth(&stack.config.events_dlq_url).await == 6).then_some(()) }).await;
    let before = Census::take(&stack, &pairs(&events, &subs)).await;
    before.assert_sound(); // owned by the events DLQ
    assert_eq!((before.count("none"), before.events_in_events_dlq), (12, 6), "{before}");
    // THEN after the outage, the redrive command hands them back and every pair is delivered
    proxy.restore();
    let r = redrive(&stack.sqs, &stack.runner.deps, Dlq::Events).await.expect("redrive");
    assert_eq!(r.moved, 6);
    eventually(Duration::from_secs(60), "12 deliveries", || async { (receiver.processed().len() == 12).then_some(()) }).await;
    stack.settle(Duration::from_secs(60)).await;
    let after = Census::take(&stack, &pairs(&events, &subs)).await;
    after.assert_sound();
    assert_eq!(after.count("delivered"), 12, "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_that_keep_failing_are_dead_lettered_visibly_and_a_redrive_delivers_them() {
    // GIVEN tasks on the delivery queue, and then workers cut off from DynamoDB (they cannot
    // read subscriptions or write the ledger)
    let proxy = Proxy::start(localstack()).await;
    let mut stack = TestStack::start(StackOptions {
        retry_schedule: "1",
        handler_dynamodb_endpoint: Some(proxy.url.clone()),
        delivery_visibility_timeout: 3,
        delivery_pollers: 0,
        env: vec![("INFRA_BACKOFF_MAX_SECS", "1".into())],
        ..Default::default()
    })
    .await;
    let receiver = ChaosReceiver::start(Profile::OK).await;
    let subs = subscribe(&stack, &receiver, 2).await;
    let events: Vec<String> = (0..5).map(|i| format!("redrive-dl-{i}")).collect();
    stack.publish_many(&events, "project.created").await;
    stack.drain_events().await;
    proxy.cut();
    stack.restart_with(|o| o.delivery_pollers = 2).await;
    // WHEN their messages use up the queue's receives (2 attempts + 10 for our faults)
    eventually(Duration::from_secs(240), "the tasks in the delivery DLQ", || async { (stack.queue_depth(&stack.config.delivery_dlq_url).await == 10).then_some(()) }).await;
    proxy.restore();
    // THEN one sweeper pass marks each delivery dead-lettered: visible, and owned by its DLQ task
    let swept = shared::sweeper::sweep(&stack.runner.deps).await.expect("sweep");
    assert_eq!(swept.dead_lettered, 10, "{swept:?}");
    let dead = Census::take(&stack, &pairs(&events, &subs)).await;
    dead.assert_sound();
    assert_eq!((dead.count("dead_lettered"), dead.tasks_in_delivery_dlq), (10, 10), "{dead}");
    let (_, shown) = stack.call("GET", &format!("/v1/deliveries/{}", TestStack::delivery_id(&events[0], &subs[0])), None).await;
    assert_eq!(shown["status"], "dead_lettered", "{shown}");
    // AND the redrive command resumes every one of them: each delivered, once
    let r = redrive(&stack.sqs, &stack.runner.deps, Dlq::Deliveries).await.expect("redrive");
    assert_eq!(r.moved, 10);
    eventually(Duration::from_secs(60), "10 deliveries", || async { (receiver.processed().len() == 10).then_some(()) }).await;
    stack.settle(Duration::from_secs(60)).await;
    let after = Census::take(&stack, &pairs(&events, &subs)).await;
    after.assert_sound();
    assert_eq!(after.count("delivered"), 10, "{after}");
    assert_eq!(receiver.duplicates(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamodb_outage_longer_than_the_receives_dead_letters_nothing_with_attempts_left() {
    // GIVEN a delivery queue that would dead-letter after 12 receives x 2 s = 24 s without backoff
    let proxy = Proxy::start(localstack()).await;
    let stack = TestStack::start(StackOptions {
        retry_schedule: "1",
        delivery_timeout_ms: 1000,
        delivery_visibility_timeout: 2,
        handler_dynamodb_endpoint: Some(proxy.url.clone()),
        env: vec![("INFRA_BACKOFF_MAX_SECS", "30".into())],
        ..Default::default()
    })
    .await;
    let receiver = ChaosReceiver::start(Profile::OK).await;
    let subs = subscribe(&stack, &receiver, 2).await;
    let receives = 1 + 1 + shared::retry::RECEIVE_HEADROOM;
    // WHEN DynamoDB is unreachable for 45 s, longer than 12 x 2 s, while events arrive
    proxy.cut();
    let events: Vec<String> = (0..10).map(|i| format!("outage-ddb-{i}")).collect();
    stack.publish_many(&events, "project.created").await;
    let outage = Duration::from_secs(45);
    tokio::time::sleep(outage).await;
    assert!(outage > Duration::from_secs(2) * receives, "the outage outlasts receives x visibility");
    assert_eq!(stack.queue_depth(&stack.config.delivery_dlq_url).await, 0, "nothing dead-lettered during the outage");
    proxy.restore();
    // THEN every pair is delivered (the backoff doubled each wait: few receives were used)
    eventually(Duration::from_secs(120), "20 deliveries", || async { (receiver.processed().len() == 20).then_some(()) }).await;
    stack.settle(Duration::from_secs(60)).await;
    let census = Census::take(&stack, &pairs(&events, &subs)).await;
    census.assert_sound();
    assert_eq!((census.count("delivered"), census.tasks_in_delivery_dlq), (20, 0), "{census}");
    // AND each was attempted once: the outage used no customer attempt
    assert_eq!(census.attempts, 20, "{census}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handlers_given_the_same_task_at_once_record_one_attempt_per_post() {
    // GIVEN a task on the queue and a receiver that holds each request until both arrived
    let stack = TestStack::start(StackOptions { delivery_pollers: 0, ..Default::default() }).await;
    let held = e2e::receiver::Receiver::gated(2, 200).await;
    let sub = stack.create_subscription(&held.url, &["*"]).await;
    stack.publish("race-1", "project.created", serde_json::json!({})).await;
    stack.drain_events().await;
    let msg = eventually(Duration::from_secs(30), "the task", || async {
        let out = stack.sqs.receive_message().queue_url(&stack.config.delivery_queue_url).visibility_timeout(30).message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All).send().await.unwrap();
        out.messages.unwrap_or_default().into_iter().next()
    })
    .await;
    assert!(DeliveryTask::parse(msg.body().unwrap()).is_ok());
    // WHEN two handlers get it at once (duplicate delivery of one message by SQS)
    let record = runner::lambda_record(msg, &runner::lambda::recorder::queue_arn(&stack.config.delivery_queue_url));
    let batch = |r: aws_lambda_events::event::sqs::SqsMessage| {
        let mut e = aws_lambda_events::event::sqs::SqsEvent::default();
        e.records.push(r);
        e
    };
    let deps = &stack.runner.deps;
    let (a, b) = tokio::join!(shared::delivery::handle_batch(batch(record.clone()), deps), shared::delivery::handle_batch(batch(record), deps));
    // THEN both POSTs are recorded, numbered 1 and 2, and the delivery is delivered once for all
    assert_eq!(held.received().len(), 2);
    let id = TestStack::delivery_id("race-1", sub["id"].as_str().unwrap());
    let d = deps.ledger.delivery(&id).await.unwrap().expect("recorded");
    let numbers: Vec<u32> = d.records.iter().filter_map(|r| r.attempt.as_ref()).map(|a| a.attempt).collect();
    assert_eq!(numbers, [1, 2]);
    assert_eq!(d.status(), DeliveryStatus::Delivered);
    assert!(a.batch_item_failures.is_empty() && b.batch_item_failures.is_empty());
    assert_eq!(deps.ledger.head(&id, Read::Strong).await.unwrap().unwrap().status, RecordStatus::Delivered);
}
