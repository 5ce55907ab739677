//! Payload filters end to end on LocalStack: subscriptions of one tenant with different filters
//! receive exactly the events their filters select, counted at real receivers on loopback;
//! fan-out reads the filters through the sparse index's projection; invalid filters are refused
//! naming the place at fault; the filter test route says why; a PATCH changes or removes one.

use e2e::receiver::Receiver;
use e2e::{eventually, quiet, StackOptions, TestStack};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

async fn subscribe(stack: &TestStack, url: &str, filter: Value) -> String {
    let (status, body) = stack.call("POST", "/v1/subscriptions", Some(json!({"url": url, "events": ["project.*"], "filter": filter}))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["filter"], filter, "the filter as given comes back");
    body["id"].as_str().unwrap().to_owned()
}

/// The event ids a receiver got, once each (deduplicated by `webhook-id`, as receivers do).
fn event_ids(r: &Receiver) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    r.received()
        .iter()
        .filter(|m| seen.insert(m.header("webhook-id").to_owned()))
        .map(|m| serde_json::from_slice::<Value>(&m.body).unwrap()["event_id"].as_str().unwrap().to_owned())
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn three_filtered_subscriptions_receive_exactly_what_their_filters_select() {
    let stack = TestStack::start(StackOptions::default()).await;
    let (eu, big, urgent) = (Receiver::statuses(&[], 200).await, Receiver::statuses(&[], 200).await, Receiver::statuses(&[], 200).await);
    subscribe(&stack, &eu.url, json!({"data.project.region": "eu"})).await;
    subscribe(&stack, &big.url, json!({"data.project.budget": {"$gte": 1000}, "event_type": {"$ne": "project.deleted"}})).await;
    let urgent_id = subscribe(&stack, &urgent.url, json!({"$or": [{"data.tags": "urgent"}, {"$not": {"data.project.region": {"$in": ["eu", "us"]}}}]})).await;

    // (event id, type, data): which receiver should get it is written out below by hand, not
    // computed with the filter code under test.
    let events = [
        ("e1", "project.created", json!({"project": {"region": "eu", "budget": 500}, "tags": []})),
        ("e2", "project.created", json!({"project": {"region": "us", "budget": 1500}, "tags": ["urgent"]})),
        ("e3", "project.updated", json!({"project": {"region": "eu", "budget": 1000}, "tags": ["late"]})),
        ("e4", "project.deleted", json!({"project": {"region": "us", "budget": 9000}})),
        ("e5", "project.updated", json!({"project": {"region": "apac", "budget": 10}})),
        ("e6", "project.updated", json!({"project": {"budget": "2000"}})),
        ("e7", "project.created", json!({"project": {"region": "us", "budget": 999.5}, "tags": ["routine", "urgent"]})),
        ("e8", "project.updated", json!({"nothing": true})),
    ];
    for (id, event_type, data) in &events {
        stack.publish(id, event_type, data.clone()).await;
    }
    let expected = [
        (&eu, set(&["e1", "e3"])),
        // e4 is deleted; e6's budget is a string, which no number comparison matches.
        (&big, set(&["e2", "e3"])),
        // urgent tags (e2, e7), or a region that is neither eu nor us (e5, e6, e8: absent counts).
        (&urgent, set(&["e2", "e5", "e6", "e7", "e8"])),
    ];
    for (receiver, want) in &expected {
        eventually(DEADLINE, "each receiver's events", || async { (event_ids(receiver).len() >= want.len()).then_some(()) }).await;
    }
    stack.settle(DEADLINE).await;
    quiet(Duration::from_secs(2), "further deliveries", || async {
        let extra: usize = expected.iter().map(|(r, want)| event_ids(r).len() - want.len()).sum();
        (extra > 0).then_some(extra)
    })
    .await;
    for (receiver, want) in &expected {
        assert_eq!(&event_ids(receiver), want, "{}", receiver.url);
    }

    // A PATCH that removes the filter: the next event of any content reaches it.
    let (status, body) = stack.call("PATCH", &format!("/v1/subscriptions/{urgent_id}"), Some(json!({"filter": null}))).await;
    assert_eq!((status, &body["filter"]), (200, &Value::Null), "{body}");
    stack.publish("e9", "project.updated", json!({"project": {"region": "eu"}})).await;
    eventually(DEADLINE, "e9 at the now unfiltered subscription", || async { event_ids(&urgent).contains("e9").then_some(()) }).await;
    eventually(DEADLINE, "e9 at the eu subscription", || async { event_ids(&eu).contains("e9").then_some(()) }).await;
    stack.settle(DEADLINE).await;
    assert!(!event_ids(&big).contains("e9"), "e9 has no budget");
}

#[tokio::test]
async fn invalid_filters_are_refused_and_the_test_route_says_why() {
    let stack = TestStack::start(StackOptions { delivery_pollers: 0, ..Default::default() }).await;
    let url = "https://example.com/hook";
    for (filter, field) in [
        (json!({"data.amount": {"$regex": "^1"}}), "filter.data.amount.$regex"),
        (json!({"amount": 1}), "filter.amount"),
        (json!({"$or": [{"data.a": 1}, {"data.b": {"$gt": true}}]}), "filter.$or[1].data.b.$gt"),
        (json!([1]), "filter"),
    ] {
        let (status, problem) = stack.call("POST", "/v1/subscriptions", Some(json!({"url": url, "filter": filter}))).await;
        assert_eq!((status, problem["field"].as_str()), (400, Some(field)), "{filter}: {problem}");
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()), "{problem}");
    }

    let id = subscribe(&stack, url, json!({"data.amount": {"$gt": 100}})).await;
    let test = |body: Value| {
        let path = format!("/v1/subscriptions/{id}/filter/test");
        let stack = &stack;
        async move { stack.call("POST", &path, Some(body)).await }
    };
    let (status, out) = test(json!({"event_type": "project.created", "data": {"amount": 150}})).await;
    assert_eq!((status, out["delivered"].as_bool(), out["decided_by"].as_str()), (200, Some(true), Some("filter")), "{out}");
    let (_, out) = test(json!({"event_type": "project.created", "data": {"amount": 50}})).await;
    assert_eq!((out["delivered"].as_bool(), out["decided_by"].as_str()), (Some(false), Some("filter")), "{out}");
    assert!(out["reason"].as_str().unwrap().contains("data.amount is 50"), "{out}");
    let (_, out) = test(json!({"event_type": "visit.created", "data": {"amount": 150}})).await;
    assert_eq!((out["delivered"].as_bool(), out["decided_by"].as_str()), (Some(false), Some("events")), "its patterns are project.*: {out}");
    // An unsaved filter, tried before it is saved; and a malformed one, refused as at update.
    let (_, out) = test(json!({"event_type": "project.created", "data": {"amount": 50}, "filter": {"data.amount": {"$lt": 100}}})).await;
    assert_eq!(out["delivered"].as_bool(), Some(true), "{out}");
    let (status, problem) = test(json!({"event_type": "project.created", "data": {}, "filter": {"data.amount": {"$lt": []}}})).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("filter.data.amount.$lt")), "{problem}");
    let (status, problem) = test(json!({"event_type": "Not A Type", "data": {}})).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("event_type")), "{problem}");

    // PATCH replaces it, validated the same way; GET shows it; disabled decides before it.
    let (status, body) = stack.call("PATCH", &format!("/v1/subscriptions/{id}"), Some(json!({"filter": {"data.kind": {"$in": ["a", "b"]}}}))).await;
    assert_eq!((status, &body["filter"]), (200, &json!({"data.kind": {"$in": ["a", "b"]}})), "{body}");
    let (status, problem) = stack.call("PATCH", &format!("/v1/subscriptions/{id}"), Some(json!({"filter": {}}))).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("filter")), "{problem}");
    let (_, got) = stack.call("GET", &format!("/v1/subscriptions/{id}"), None).await;
    assert_eq!(got["filter"], json!({"data.kind": {"$in": ["a", "b"]}}));
    stack.call("PATCH", &format!("/v1/subscriptions/{id}"), Some(json!({"enabled": false}))).await;
    let (_, out) = test(json!({"event_type": "project.created", "data": {"kind": "a"}})).await;
    assert_eq!((out["delivered"].as_bool(), out["decided_by"].as_str()), (Some(false), Some("enabled")), "{out}");
}
