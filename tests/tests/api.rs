//! The management API end to end: through the runner's HTTP server, on LocalStack.

use e2e::receiver::Receiver;
use e2e::{eventually, StackOptions, TestStack};
use serde_json::{json, Value};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn subscription_lifecycle_create_patch_delete_restore_and_limits() {
    let stack = TestStack::start(StackOptions { env: vec![("MAX_SUBSCRIPTIONS_PER_TENANT", "2".into())], ..Default::default() }).await;
    let (status, created) = stack.call(
        "POST",
        "/v1/subscriptions",
        Some(json!({
            "url": "https://example.com/hooks", "name": "CRM", "description": "sync", "events": ["project.*"],
            "headers": {"X-Team": "blue"}, "auth": {"type": "basic", "username": "u", "password": "s3cret-pw"}
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["auth"], json!({"type": "basic", "username": "u"}));
    assert_eq!(created["headers"]["X-Team"], "<redacted>");
    assert!(!created.to_string().contains("s3cret-pw"));
    assert_eq!(created["failure_count"], 0);

    // PATCH: only what is sent changes; null clears.
    let (status, patched) = stack.call("PATCH", &format!("/v1/subscriptions/{id}"), Some(json!({"name": null, "events": ["visit.media.available"]}))).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["name"], Value::Null);
    assert_eq!(patched["description"], "sync");
    assert_eq!(patched["events"], json!(["visit.media.available"]));
    let (status, problem) = stack.call("PATCH", &format!("/v1/subscriptions/{id}"), Some(json!({"headers": {"Host": "evil"}}))).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("headers.Host")));
    let (status, problem) = stack.call("PATCH", &format!("/v1/subscriptions/{id}"), Some(json!({"url": "https://user:pw@example.com/hook"}))).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("url")));

    // The limit counts active subscriptions: a deleted one frees its place.
    let (status, second) = stack.call("POST", "/v1/subscriptions", Some(json!({"url": "https://example.com/2"}))).await;
    assert_eq!(status, 201);
    let (status, problem) = stack.call("POST", "/v1/subscriptions", Some(json!({"url": "https://example.com/3"}))).await;
    assert_eq!(status, 409, "{problem}");
    let (status, _) = stack.call("DELETE", &format!("/v1/subscriptions/{id}"), None).await;
    assert_eq!(status, 204);
    let (_, got) = stack.call("GET", &format!("/v1/subscriptions/{id}"), None).await;
    assert_eq!(got["active"], false);
    let (status, _) = stack.call("POST", "/v1/subscriptions", Some(json!({"url": "https://example.com/3"}))).await;
    assert_eq!(status, 201);
    let (status, problem) = stack.call("POST", &format!("/v1/subscriptions/{id}/restore"), None).await;
    assert_eq!(status, 409, "restoring would exceed the limit: {problem}");

    // Filter by enabled.
    let second = second["id"].as_str().unwrap();
    let (status, _) = stack.call("PATCH", &format!("/v1/subscriptions/{second}"), Some(json!({"enabled": false}))).await;
    assert_eq!(status, 200);
    let (_, list) = stack.call("GET", "/v1/subscriptions?enabled=false", None).await;
    let ids: Vec<&str> = list["data"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![second]);
}

#[tokio::test]
async fn lists_paginate_with_cursors_and_reject_bad_parameters() {
    let stack = TestStack::start(StackOptions::default()).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(stack.create_subscription(&format!("https://example.com/{i}"), &["*"]).await["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/subscriptions?limit=2&cursor={c}"),
            None => "/v1/subscriptions?limit=2".into(),
        };
        let (status, page) = stack.call("GET", &path, None).await;
        assert_eq!(status, 200);
        pages += 1;
        seen.extend(page["data"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids, "every subscription once, in creation order");

    for (path, field) in [
        ("/v1/subscriptions?limit=0", "limit"),
        ("/v1/subscriptions?limit=abc", "limit"),
        ("/v1/subscriptions?cursor=..%2F..%2Fx", "cursor"),
        ("/v1/subscriptions?color=red", "color"),
    ] {
        let (status, problem) = stack.call("GET", path, None).await;
        assert_eq!((status, problem["field"].as_str()), (400, Some(field)), "{path}: {problem}");
    }
}

#[tokio::test]
async fn the_delivery_log_redeliver_and_recover() {
    let stack = TestStack::start(StackOptions { retry_schedule: "1", ..Default::default() }).await;
    let receiver = Receiver::statuses(&[500, 500, 500, 500], 200).await;
    let sub = stack.create_subscription(&receiver.url, &["*"]).await;
    let id = sub["id"].as_str().unwrap();
    stack.publish("evt-log-1", "project.created", json!({"n": 1})).await;
    stack.publish("evt-log-2", "project.updated", json!({"n": 2})).await;

    // Both fail twice (schedule "1": two attempts).
    let failed = eventually(DEADLINE, "two failed deliveries", || async {
        let (_, page) = stack.call("GET", &format!("/v1/subscriptions/{id}/deliveries?status=failed"), None).await;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        (data.len() == 2).then_some(data)
    })
    .await;
    let (_, only_created) = stack.call("GET", &format!("/v1/subscriptions/{id}/deliveries?event_type=project.created"), None).await;
    assert_eq!(only_created["data"].as_array().unwrap().len(), 1);
    let (_, none_yet) = stack.call("GET", &format!("/v1/subscriptions/{id}/deliveries?since=2099-01-01T00:00:00Z"), None).await;
    assert_eq!(none_yet["data"].as_array().unwrap().len(), 0);

    let dlv = failed[0]["id"].as_str().unwrap().to_owned();
    let (status, detail) = stack.call("GET", &format!("/v1/deliveries/{dlv}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(detail["status"], "failed");
    assert_eq!(detail["request"]["headers"]["webhook-id"], dlv.as_str());
    assert_eq!(detail["request"]["headers"]["webhook-signature"], "<redacted>");
    assert!(detail["request"]["payload"]["event_id"].as_str().unwrap().starts_with("evt-log-"));
    let (_, attempts) = stack.call("GET", &format!("/v1/deliveries/{dlv}/attempts"), None).await;
    let attempts = attempts["data"].as_array().unwrap().clone();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["status_code"], 500);
    assert_eq!(attempts[0]["error_class"], "http");
    assert_eq!(attempts[0]["trigger"], "live");

    // Redeliver the first: the receiver now answers 200.
    let (status, out) = stack.call("POST", &format!("/v1/deliveries/{dlv}/redeliver"), None).await;
    assert_eq!(status, 202, "{out}");
    let attempts = eventually(DEADLINE, "the redelivery", || async {
        let (_, a) = stack.call("GET", &format!("/v1/deliveries/{dlv}/attempts"), None).await;
        let a = a["data"].as_array().cloned().unwrap_or_default();
        (a.len() == 3 && a[2]["status_code"] == 200).then_some(a)
    })
    .await;
    assert_eq!(attempts[2]["trigger"], "redeliver");
    assert_eq!(attempts[2]["attempt"], 3);
    let delivered = eventually(DEADLINE, "delivered", || async {
        let (_, d) = stack.call("GET", &format!("/v1/deliveries/{dlv}"), None).await;
        (d["status"] == "delivered").then_some(d)
    })
    .await;
    assert_eq!(delivered["attempts"], 3);
    let (status, problem) = stack.call("POST", &format!("/v1/deliveries/{dlv}/redeliver"), None).await;
    assert_eq!(status, 409, "only failed, cancelled or dead-lettered deliveries: {problem}");

    // Recover every failure since the start: the other one.
    let (status, out) = stack.call("POST", &format!("/v1/subscriptions/{id}/recover"), Some(json!({"since": "2020-01-01T00:00:00Z"}))).await;
    assert_eq!((status, out["recovered"].as_u64(), out["next_cursor"].as_str()), (202, Some(1), None), "{out}");
    eventually(DEADLINE, "both delivered", || async {
        let (_, page) = stack.call("GET", &format!("/v1/subscriptions/{id}/deliveries?status=delivered"), None).await;
        (page["data"].as_array().map(Vec::len) == Some(2)).then_some(())
    })
    .await;
    let (status, problem) = stack.call("POST", &format!("/v1/subscriptions/{id}/recover"), Some(json!({"since": "yesterday"}))).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("since")));
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_and_the_test_route_reports_the_outcome() {
    let stack = TestStack::start(StackOptions::default()).await;
    let receiver = Receiver::statuses(&[], 200).await;
    let created = stack.create_subscription(&receiver.url, &["*"]).await;
    let id = created["id"].as_str().unwrap();
    let old = shared::signing::Secret::parse(created["secret"].as_str().unwrap()).unwrap();
    let (status, rotated) = stack.call("POST", &format!("/v1/subscriptions/{id}/rotate-secret"), None).await;
    assert_eq!(status, 200);
    let new = shared::signing::Secret::parse(rotated["secret"].as_str().unwrap()).unwrap();
    assert_ne!(old, new);

    let (status, test) = stack.call("POST", &format!("/v1/subscriptions/{id}/test"), None).await;
    assert_eq!(status, 200, "{test}");
    assert_eq!(test["status"], "delivered");
    assert_eq!(test["attempt"]["status_code"], 200);
    assert_eq!(test["attempt"]["trigger"], "test");

    let got = receiver.received().pop().expect("the test POST");
    assert_eq!(got.header("x-webhook-event"), "webhook.test");
    let sigs = got.header("webhook-signature");
    assert_eq!(sigs.split(' ').count(), 2, "both secrets sign during the overlap: {sigs}");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for secret in [&old, &new] {
        shared::signing::verify(secret, got.header("webhook-id"), got.header("webhook-timestamp"), sigs, &got.body, now, 300).expect("verifies");
    }
    // The list never shows a secret.
    let (_, list) = stack.call("GET", "/v1/subscriptions", None).await;
    assert!(!list.to_string().contains(new.expose()) && !list.to_string().contains(old.expose()));
}

#[tokio::test]
async fn events_over_http_are_idempotent_and_delivered_once() {
    let stack = TestStack::start(StackOptions::default()).await;
    let receiver = Receiver::statuses(&[], 200).await;
    stack.create_subscription(&receiver.url, &["contact.created"]).await;

    let body = json!({"event_id": "crm-42", "event_type": "contact.created", "data": {"contact_id": "c1"}});
    let (status, first) = stack.call("POST", "/v1/events", Some(body.clone())).await;
    assert_eq!((status, first["duplicate"].as_bool()), (202, Some(false)), "{first}");
    let (status, again) = stack.call("POST", "/v1/events", Some(body)).await;
    assert_eq!((status, again["duplicate"].as_bool(), again["event_id"].as_str()), (200, Some(true), Some("crm-42")));

    let (status, generated) = stack.call("POST", "/v1/events", Some(json!({"event_type": "contact.created", "data": {"odd": "\u{ffff}\u{fffe}"}}))).await;
    assert_eq!(status, 202);
    assert!(generated["event_id"].as_str().unwrap().starts_with("evt_"));

    eventually(DEADLINE, "two deliveries", || async { (receiver.received().len() >= 2).then_some(()) }).await;
    stack.settle(DEADLINE).await;
    let ids: Vec<String> = receiver.received().iter().map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["event_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.iter().filter(|i| *i == "crm-42").count(), 1, "{ids:?}");
    assert_eq!(ids.len(), 2);

    // The event's view: the subscription it matched, delivered; no occurred_at needed for an
    // event published over HTTP. An event on the queue is found with its occurred_at.
    let (status, view) = stack.call("GET", "/v1/events/crm-42", None).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!((view["source"].as_str(), view["event_type"].as_str()), (Some("http"), Some("contact.created")));
    assert_eq!(view["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!((view["deliveries"][0]["status"].as_str(), view["deliveries"][0]["inferred"].as_bool()), (Some("delivered"), Some(false)));
    let (status, problem) = stack.call("GET", "/v1/events/never-seen", None).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("occurred_at")), "{problem}");
    let (status, _) = stack.call("GET", "/v1/events/never-seen?occurred_at=2026-11-22T10:00:00Z", None).await;
    assert_eq!(status, 404);

    for (body, field) in [
        (json!({"event_type": "contact.created", "data": {}, "tenant_id": "someone-else"}), "tenant_id"),
        (json!({"event_type": "Not Valid", "data": {}}), "event_type"),
        (json!({"event_type": "contact.created"}), "data"),
        (json!({"event_id": "has space", "event_type": "contact.created", "data": {}}), "event_id"),
    ] {
        let (status, problem) = stack.call("POST", "/v1/events", Some(body.clone())).await;
        assert_eq!((status, problem["field"].as_str()), (400, Some(field)), "{body}: {problem}");
    }
    let resp = stack.http.post(stack.api("/v1/events")).bearer_auth(&stack.api_key).header("content-type", "application/json").body(vec![b'{'; 70_000]).send().await.unwrap();
    assert_eq!(resp.status(), 413);
}

#[tokio::test]
async fn api_keys_are_managed_by_admin_keys_and_the_catalogue_is_served() {
    let stack = TestStack::start(StackOptions::default()).await;
    let (status, created) = stack.call("POST", "/v1/api-keys", Some(json!({"scopes": ["webhooks:read"]}))).await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let key_id = created["id"].as_str().unwrap().to_owned();

    let (status, types) = stack.call_as(&key, "GET", "/v1/event-types", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = types["data"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"visit.media.available") && names.contains(&"webhook.test"), "{names:?}");
    assert!(types["data"][0]["schema"].is_object() && types["data"][0]["example"].is_object());

    let (status, problem) = stack.call_as(&key, "POST", "/v1/subscriptions", Some(json!({"url": "https://example.com"}))).await;
    assert_eq!(status, 403);
    assert!(problem["detail"].as_str().unwrap().contains("webhooks:write"));

    let (_, list) = stack.call("GET", "/v1/api-keys", None).await;
    assert!(list["data"].as_array().unwrap().iter().all(|k| k.get("key").is_none()), "keys are shown once");
    assert!(!list.to_string().contains(&key));

    let (status, _) = stack.call("DELETE", &format!("/v1/api-keys/{key_id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = stack.call_as(&key, "GET", "/v1/event-types", None).await;
    assert_eq!(status, 401, "a revoked key no longer works");

    let (status, spec) = stack.call_as("none", "GET", "/v1/openapi.json", None).await;
    assert_eq!((status, spec["openapi"].as_str()), (200, Some("3.1.0")));
}

#[tokio::test]
async fn deliveries_paginate_newest_event_first_across_pages() {
    let stack = TestStack::start(StackOptions::default()).await;
    let receiver = Receiver::statuses(&[], 200).await;
    let sub = stack.create_subscription(&receiver.url, &["*"]).await;
    let id = sub["id"].as_str().unwrap();
    // Five events, one second apart in `occurred_at`, published in a shuffled order: the log
    // sorts by the event's time, not by when it was delivered.
    for i in [3, 0, 4, 1, 2] {
        let mut e = TestStack::envelope(&format!("page-{i}"), "project.created", json!({}));
        e["occurred_at"] = json!(format!("2026-11-22T10:00:0{i}Z"));
        stack.sqs.send_message().queue_url(&stack.config.events_queue_url).message_body(e.to_string()).send().await.unwrap();
    }
    eventually(DEADLINE, "five deliveries", || async { (receiver.received().len() == 5).then_some(()) }).await;
    stack.settle(DEADLINE).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/subscriptions/{id}/deliveries?limit=2&status=delivered&cursor={c}"),
            None => format!("/v1/subscriptions/{id}/deliveries?limit=2&status=delivered"),
        };
        let (status, page) = stack.call("GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        seen.extend(page["data"].as_array().unwrap().iter().map(|d| d["event_id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["page-4", "page-3", "page-2", "page-1", "page-0"]);
    let (_, window) = stack.call("GET", &format!("/v1/subscriptions/{id}/deliveries?since=2026-11-22T10:00:01Z&until=2026-11-22T10:00:03Z"), None).await;
    let ids: Vec<&str> = window["data"].as_array().unwrap().iter().map(|d| d["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["page-2", "page-1"], "since is inclusive, until exclusive, by occurred_at");
    // Found by API fuzzing: empty or inverted ranges, a cursor outside the range, a timestamp
    // with no UTC form — each a clear answer, not a 500.
    let (status, page) = stack.call("GET", &format!("/v1/subscriptions/{id}/deliveries?since=2026-11-23T00:00:00Z&until=2026-11-22T00:00:00Z"), None).await;
    assert_eq!((status, page["data"].as_array().map(Vec::len)), (200, Some(0)), "{page}");
    let (_, first) = stack.call("GET", &format!("/v1/subscriptions/{id}/deliveries?limit=2"), None).await;
    let c = first["next_cursor"].as_str().unwrap();
    let (status, problem) = stack.call("GET", &format!("/v1/subscriptions/{id}/deliveries?limit=2&cursor={c}&since=2099-01-01T00:00:00Z"), None).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("cursor")), "{problem}");
    let (status, problem) = stack.call("GET", &format!("/v1/subscriptions/{id}/deliveries?since=9999-12-31T23:59:59-23:59"), None).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("since")), "{problem}");
    let (status, problem) = stack.call("GET", &format!("/v1/subscriptions/{id}/deliveries?cursor=bm9wZQ"), None).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("cursor")));
    let (status, problem) = stack.call("GET", &format!("/v1/subscriptions/{id}/deliveries?status=lost"), None).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("status")), "{problem}");
}
