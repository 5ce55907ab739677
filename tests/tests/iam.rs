//! Least privilege, proven: in Lambda mode every AWS call of each function (and of the event
//! source mapping polling for it) goes through its own recording proxy. A tour through every
//! path that touches AWS (each API route, fan-out with a poison event and an outage of DynamoDB,
//! deliveries that retry, land, are refused with 410, a sweep with a stranded redelivery and
//! dead-lettered tasks) records them; each must be allowed by the function's role as SAM's own
//! translator expands `infra/template.yaml`. Then, for each statement of each role: without it,
//! some recorded call is denied (the check fails when a policy is removed, and no statement is
//! dead weight). Prints what is granted and never used.

use e2e::iam;
use e2e::receiver::Receiver;
use e2e::{eventually, StackOptions, TestStack, ENVELOPE_TIME};
use runner::lambda::recorder::Call;
use serde_json::json;
use shared::ids::EventSource;
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "Lambda mode: needs `scripts/sam.sh build` and cargo-lambda (scripts/test.sh runs it)"]
async fn every_call_the_functions_make_is_allowed_and_every_statement_is_needed() {
    let stack = TestStack::start(StackOptions { lambda: true, env: vec![("SWEEP_QUEUED_AFTER_SECS", "0".into())], ..Default::default() }).await;
    let lambda = stack.runner.lambda.clone().expect("Lambda mode");
    // The test route takes the first 500; an event's first attempt the second (a retry).
    let flaky = Receiver::statuses(&[500, 500], 200).await;
    let gone = Receiver::statuses(&[], 410).await;

    // The API: every route.
    let a = stack.create_subscription(&flaky.url, &["*"]).await;
    let a_id = a["id"].as_str().unwrap().to_owned();
    let b = stack.create_subscription(&gone.url, &["project.*"]).await;
    let b_id = b["id"].as_str().unwrap().to_owned();
    let a_path = format!("/v1/subscriptions/{a_id}");
    for (method, path, body, want) in [
        ("GET", "/v1/subscriptions".to_owned(), None, 200),
        ("GET", a_path.clone(), None, 200),
        ("PATCH", a_path.clone(), Some(json!({"name": "tour"})), 200),
        ("POST", format!("{a_path}/rotate-secret"), None, 200),
        ("POST", format!("{a_path}/test"), None, 200),
        ("GET", "/v1/event-types".into(), None, 200),
        ("GET", "/v1/openapi.json".into(), None, 200),
    ] {
        let (status, resp) = stack.call(method, &path, body).await;
        assert_eq!(status, want, "{method} {path}: {resp}");
    }
    let c = stack.create_subscription(&flaky.url, &["webhook.test"]).await;
    let c_path = format!("/v1/subscriptions/{}", c["id"].as_str().unwrap());
    assert_eq!(stack.call("DELETE", &c_path, None).await.0, 204);
    assert_eq!(stack.call("POST", &format!("{c_path}/restore"), None).await.0, 200);
    let (status, key) = stack.call("POST", "/v1/api-keys", Some(json!({"scopes": ["webhooks:read"]}))).await;
    assert_eq!(status, 201, "{key}");
    assert_eq!(stack.call("GET", "/v1/api-keys", None).await.0, 200);
    assert_eq!(stack.call("DELETE", &format!("/v1/api-keys/{}", key["id"].as_str().unwrap()), None).await.0, 204);
    let (status, posted) = stack.call("POST", "/v1/events", Some(json!({"event_id": "evt-http", "event_type": "project.created", "data": {}}))).await;
    assert_eq!(status, 202, "{posted}");

    // Fan-out and delivery: an event from the queue (A retries, then lands; B's 410 disables it),
    // a poison message, and an outage of DynamoDB for fan-out (its backoff).
    stack.publish("evt-q1", "project.created", json!({})).await;
    stack.sqs.send_message().queue_url(&stack.config.events_queue_url).message_body("not json").send().await.unwrap();
    let a_q1 = TestStack::delivery_id("evt-q1", &a_id);
    let b_q1 = TestStack::delivery_id("evt-q1", &b_id);
    use shared::model::DeliveryStatus::{Cancelled, Delivered, Failed};
    eventually(Duration::from_secs(60), "A delivered; B failed (410), or cancelled if the HTTP event disabled it first", || async {
        let da = stack.runner.deps.ledger.delivery(&a_q1).await.unwrap()?;
        let db = stack.runner.deps.ledger.delivery(&b_q1).await.unwrap()?;
        (da.status() == Delivered && matches!(db.status(), Failed | Cancelled)).then_some(())
    })
    .await;
    lambda.calls.cut_dynamodb("FanoutFunction", true);
    stack.publish("evt-q2", "project.created", json!({})).await;
    eventually(Duration::from_secs(60), "fan-out to back off", || async { (stack.runner.fanout_stats.get(&stack.runner.fanout_stats.failed) >= 1).then_some(()) }).await;
    lambda.calls.cut_dynamodb("FanoutFunction", false);

    // The delivery log and its actions.
    let dlv = a_q1.to_string();
    for (method, path, body) in [
        ("GET", "/v1/events/evt-http".to_owned(), None),
        ("GET", format!("/v1/events/evt-q1?occurred_at={ENVELOPE_TIME}"), None),
        ("GET", format!("{a_path}/deliveries"), None),
        ("GET", format!("/v1/deliveries/{dlv}"), None),
        ("GET", format!("/v1/deliveries/{dlv}/attempts"), None),
        ("POST", format!("/v1/deliveries/{b_q1}/redeliver"), None),
        ("POST", format!("/v1/subscriptions/{b_id}/recover"), Some(json!({"since": "2020-01-01T00:00:00Z"}))),
    ] {
        let (status, resp) = stack.call(method, &path, body).await;
        assert!(status < 300, "{method} {path}: {status} {resp}");
    }

    // The sweeper: a redelivery whose task was lost (marked, never sent), and tasks in the
    // delivery DLQ whose deliveries have no record yet.
    let d = eventually(Duration::from_secs(60), "B's redelivery to settle (B is disabled: cancelled)", || async {
        let d = stack.runner.deps.ledger.delivery(&b_q1).await.unwrap()?;
        matches!(d.status(), Failed | Cancelled).then_some(d)
    })
    .await;
    let expect = shared::ports::Expect { status: shared::delivery::actions::REOPENABLE.to_vec(), token: None };
    let mark = shared::ports::Mark::Queue { token: "lost-task".into(), at: time::OffsetDateTime::now_utc() - time::Duration::minutes(10) };
    stack.runner.deps.ledger.mark(d.id(), d.head().seq, &expect, &mark).await.unwrap();
    let event = shared::envelope::parse_event(&TestStack::envelope("evt-dead", "project.created", json!({})).to_string()).unwrap();
    let tasks = shared::fanout::tasks_for(&event, EventSource::Queue, false, &stack.runner.deps).await.unwrap();
    assert_eq!(tasks.len(), 1, "A's (B is disabled, C wants webhook.test only)");
    for task in &tasks {
        let body = serde_json::to_string(&task).unwrap();
        stack.sqs.send_message().queue_url(&stack.config.delivery_dlq_url).message_body(body).send().await.unwrap();
    }
    let swept = lambda.invoke("SweeperFunction", &runner::lambda::Lambda::scheduled_event("tour")).await.expect("the sweeper runs");
    assert_eq!((swept["resent"].as_u64(), swept["dead_lettered"].as_u64()), (Some(1), Some(1)), "{swept}");
    stack.settle(Duration::from_secs(60)).await;

    // THEN every recorded call is allowed by its function's role
    let calls = lambda.calls.all();
    let record = e2e::repo_root().join("target/lambda/iam-calls.json");
    std::fs::write(&record, serde_json::to_string_pretty(&calls).unwrap()).unwrap();
    println!("{} calls recorded in {}", calls.len(), record.display());
    let deployment = &lambda.deployment;
    let mut by_function: BTreeMap<&str, Vec<&Call>> = BTreeMap::new();
    for c in &calls {
        by_function.entry(c.function.as_str()).or_default().push(c);
    }
    assert_eq!(by_function.keys().copied().collect::<Vec<_>>(), ["ApiFunction", "DeliveryFunction", "FanoutFunction", "SweeperFunction"]);
    let mut denied_all = Vec::new();
    for (function, calls) in &by_function {
        let statements = iam::statements(&deployment.roles[*function]);
        let mut actions: Vec<String> = calls.iter().map(|c| format!("{} {}", c.action, c.resource.rsplit(':').next().unwrap_or_default())).collect();
        actions.sort();
        actions.dedup();
        println!("{function}: {} calls, {} distinct (action, resource):", calls.len(), actions.len());
        for a in &actions {
            println!("  {a}");
        }
        denied_all.extend(iam::denied(&statements, calls.iter().copied()).into_iter().map(|c| format!("{function}: {} on {} (attributes {:?}, returns {:?})", c.action, c.resource, c.attributes, c.return_values)));
        let unused = iam::unused(&statements, calls);
        println!("{function}: granted, never used by the tour ({}):", unused.len());
        for u in &unused {
            println!("  {u}");
        }
    }
    assert!(denied_all.is_empty(), "calls the template does not allow:\n{}", denied_all.join("\n"));

    // AND without any one of its inline statements, some call of the function is denied
    for (function, calls) in &by_function {
        let role = &deployment.roles[*function];
        for (i, s) in role.statements.iter().enumerate() {
            let mut without = role.clone();
            without.statements.remove(i);
            let denied = iam::denied(&iam::statements(&without), calls.iter().copied());
            assert!(!denied.is_empty(), "{function}: statement {} is not needed by any call of the tour", s.sid);
            println!("{function} without {}: {} calls denied, e.g. {} on {}", s.sid, denied.len(), denied[0].action, denied[0].resource);
        }
    }
}
