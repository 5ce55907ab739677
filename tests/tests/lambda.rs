//! Lambda mode only: the release bootstraps (`sam build`) as processes against cargo-lambda's
//! Lambda emulator, configured from the translated template. `scripts/test.sh` runs these after
//! `sam build` (`cargo test -p e2e --test lambda -- --ignored`); the walking-skeleton, delivery
//! and API tests also run in this mode there (`E2E_LAMBDA=1`).

use base64::Engine;
use e2e::receiver::{Receiver, Reply};
use e2e::census::Census;
use e2e::{eventually, repo_root, StackOptions, TestStack};
use serde_json::{json, Value};
use std::time::Duration;

fn sample(name: &str) -> Value {
    let path = repo_root().join("tests/data/lambda-events").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("a sample event")).expect("JSON")
}

fn lambda_stack(mut opts: StackOptions) -> StackOptions {
    opts.lambda = true;
    opts
}

/// The documented HTTP API sample, addressed to our API: method, path, query, headers, body.
fn http_event(stack: &TestStack, method: &str, path: &str, query: &str, body: Option<&Value>) -> Value {
    let mut e = sample("http-api-v2.json");
    e["routeKey"] = json!("ANY /v1/{proxy+}");
    e["rawPath"] = json!(path);
    e["rawQueryString"] = json!(query);
    e["requestContext"]["http"]["method"] = json!(method);
    e["requestContext"]["http"]["path"] = json!(path);
    e["requestContext"]["routeKey"] = json!("ANY /v1/{proxy+}");
    e["pathParameters"] = json!({"proxy": path.trim_start_matches("/v1/")});
    e["headers"]["authorization"] = json!(format!("Bearer {}", stack.api_key));
    match body {
        // API Gateway base64-encodes bodies it does not take for text.
        Some(b) => {
            e["headers"]["content-type"] = json!("application/json");
            e["body"] = json!(base64::engine::general_purpose::STANDARD.encode(b.to_string()));
            e["isBase64Encoded"] = json!(true);
        }
        None => {
            e.as_object_mut().unwrap().remove("body");
            e["isBase64Encoded"] = json!(false);
        }
    }
    e
}

fn response_json(resp: &Value) -> Value {
    let body = resp["body"].as_str().expect("a body");
    let text = if resp["isBase64Encoded"] == true { String::from_utf8(base64::engine::general_purpose::STANDARD.decode(body).unwrap()).unwrap() } else { body.to_owned() };
    serde_json::from_str(&text).expect("a JSON body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "Lambda mode: needs `scripts/sam.sh build` and cargo-lambda (scripts/test.sh runs it)"]
async fn the_documented_sample_events_drive_each_bootstrap() {
    let stack = TestStack::start(lambda_stack(StackOptions { fanout_pollers: 0, delivery_pollers: 0, ..Default::default() })).await;
    let lambda = stack.runner.lambda.clone().expect("Lambda mode");
    let receiver = Receiver::statuses(&[], 200).await;

    // GIVEN the HTTP API sample (cookies, a query string with a repeated key, client certificate
    // and JWT authorizer context, stage variables) carrying a base64 body: the api bootstrap creates
    let body = json!({"url": receiver.url, "events": ["project.*"]});
    let resp = lambda.invoke("ApiFunction", &http_event(&stack, "POST", "/v1/subscriptions", "parameter1=value1&parameter1=value2", Some(&body))).await.expect("invoke");
    assert_eq!(resp["statusCode"], 201, "{resp}");
    assert_eq!(resp["headers"]["content-type"], "application/json");
    assert_eq!(resp["headers"]["etag"], "\"1\"");
    let created = response_json(&resp);
    let secret = created["secret"].as_str().expect("the secret, once").to_owned();
    let sub_id = created["id"].as_str().unwrap().to_owned();
    // AND reads it back with the query string in `rawQueryString`
    let resp = lambda.invoke("ApiFunction", &http_event(&stack, "GET", "/v1/subscriptions", "limit=1", None)).await.expect("invoke");
    assert_eq!(resp["statusCode"], 200, "{resp}");
    assert_eq!(response_json(&resp)["data"][0]["id"], sub_id.as_str());
    let resp = lambda.invoke("ApiFunction", &http_event(&stack, "GET", "/v1/subscriptions", "limit=abc", None)).await.expect("invoke");
    assert_eq!((resp["statusCode"].as_u64(), response_json(&resp)["field"].as_str()), (Some(400), Some("limit")), "{resp}");

    // WHEN the SQS sample (system and message attributes) carries an upstream event to fan-out
    let mut batch = sample("sqs.json");
    batch["Records"][0]["body"] = json!(TestStack::envelope("evt-sample", "project.created", json!({"n": 1})).to_string());
    batch["Records"][0]["eventSourceARN"] = json!(stack.outputs["EVENTS_QUEUE_ARN"]);
    let resp = lambda.invoke("FanoutFunction", &batch).await.expect("invoke");
    // THEN no batch item failed and one delivery task is on the delivery queue
    assert_eq!(resp["batchItemFailures"], json!([]), "{resp}");
    let task = eventually(Duration::from_secs(10), "the delivery task", || async {
        let out = stack.sqs.receive_message().queue_url(&stack.config.delivery_queue_url).message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All).send().await.unwrap();
        out.messages.unwrap_or_default().pop()
    })
    .await;

    // WHEN that task, in the sample's shape, goes to the delivery bootstrap
    let mut batch = sample("sqs.json");
    let r = &mut batch["Records"][0];
    r["messageId"] = json!(task.message_id.clone().unwrap());
    r["receiptHandle"] = json!(task.receipt_handle.clone().unwrap());
    r["body"] = json!(task.body.clone().unwrap());
    r["md5OfBody"] = json!(task.md5_of_body.clone().unwrap());
    r["eventSourceARN"] = json!(stack.outputs["DELIVERY_QUEUE_ARN"]);
    r["awsRegion"] = json!("us-east-1");
    let resp = lambda.invoke("DeliveryFunction", &batch).await.expect("invoke");
    assert_eq!(resp["batchItemFailures"], json!([]), "{resp}");
    // THEN the receiver got the event, signed with the secret the API returned
    let got = receiver.received().pop().expect("a delivery");
    let s = shared::signing::Secret::parse(&secret).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(got.header("webhook-signature").split(' ').any(|sig| shared::signing::verify(&s, got.header("webhook-id"), got.header("webhook-timestamp"), sig, &got.body, now, 300).is_ok()));
    assert_eq!(serde_json::from_slice::<Value>(&got.body).unwrap()["data"]["n"], 1);

    // AND the EventBridge sample runs the sweeper, which reports what it did
    let resp = lambda.invoke("SweeperFunction", &sample("scheduled.json")).await.expect("invoke");
    assert!(resp.is_object(), "{resp}");
    // Each bootstrap ran as its own process, started once.
    for f in ["ApiFunction", "FanoutFunction", "DeliveryFunction", "SweeperFunction"] {
        assert_eq!(lambda.pool(f).unwrap().starts().await, 1, "{f}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "Lambda mode: needs `scripts/sam.sh build` and cargo-lambda (scripts/test.sh runs it)"]
async fn a_batch_that_outlives_the_functions_timeout_comes_back_and_is_delivered() {
    // GIVEN a delivery function with a 2 s timeout, an HTTP timeout of 10 s, and a receiver whose
    // first answer takes 6 s
    let stack = TestStack::start(lambda_stack(StackOptions {
        delivery_timeout_ms: 10_000,
        delivery_pollers: 1,
        function_timeouts: vec![("DeliveryFunction", Duration::from_secs(2))],
        ..Default::default()
    }))
    .await;
    let lambda = stack.runner.lambda.clone().expect("Lambda mode");
    let receiver = Receiver::start(vec![Reply::status(200).after(Duration::from_secs(6))], Reply::status(200)).await;
    let sub = stack.create_subscription(&receiver.url, &["*"]).await;
    // WHEN an event arrives
    stack.publish("evt-slow", "project.created", json!({})).await;
    // THEN the first invocation is abandoned at 2 s (its process killed): the task stays on the
    // queue, in flight until its visibility timeout (10 s) ends
    eventually(Duration::from_secs(20), "the first POST", || async { (!receiver.received().is_empty()).then_some(()) }).await;
    eventually(Duration::from_secs(10), "the overrun's process to be replaced", || async {
        (stack.runner.delivery_stats.get(&stack.runner.delivery_stats.failed) >= 1).then_some(())
    })
    .await;
    assert_eq!(stack.queue_depth(&stack.config.delivery_queue_url).await, 1, "the batch was not deleted");
    // AND it comes back and is delivered by a new process (a cold start)
    let id = TestStack::delivery_id("evt-slow", sub["id"].as_str().unwrap());
    eventually(Duration::from_secs(40), "delivered after the timeout", || async {
        let d = stack.runner.deps.ledger.delivery(&id).await.unwrap()?;
        (d.status() == shared::model::DeliveryStatus::Delivered).then_some(())
    })
    .await;
    let got = receiver.received();
    assert_eq!(got.len(), 2, "the abandoned POST and the one that landed");
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_eq!(lambda.pool("DeliveryFunction").unwrap().starts().await, 2, "killed at its timeout, started again");
    stack.settle(Duration::from_secs(20)).await;
    Census::take(&stack, &[("evt-slow".to_owned(), sub["id"].as_str().unwrap().to_owned())]).await.assert_sound();
}
