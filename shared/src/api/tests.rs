//! Router tests on in-memory adapters: the route table against the OpenAPI document, auth and
//! scopes, tenant isolation, and random bodies never causing a 5xx.

use super::*;
use crate::testing::config;
use crate::ids::TenantId;
use crate::model::Scope;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use rand::Rng;
use serde_json::{json, Value};
use tower::ServiceExt;

struct App {
    router: Router,
    deps: Arc<Deps>,
}

impl App {
    fn new() -> Self {
        let (deps, _) = Deps::memory(config(&[("ALLOW_HTTP", "true"), ("ALLOW_PRIVATE_TARGETS", "true")]));
        let deps = Arc::new(deps);
        Self { router: router(deps.clone()), deps }
    }

    async fn key(&self, tenant: &str, scopes: &[Scope]) -> String {
        auth::issue_key(&self.deps, &TenantId::parse(tenant).unwrap(), scopes).await.unwrap().0
    }

    async fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let req = match body {
            Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

fn concrete(path: &str) -> String {
    let id = if path.starts_with("/v1/deliveries") { "dlv_000000000aaaaaaaaaaaaaaaa00000000000000000000000000" } else if path.starts_with("/v1/events") { "evt-1" } else { "sub_00000000000000000000000000" };
    path.replace("{id}", id)
}

#[test]
fn the_openapi_document_lists_exactly_the_routes_served() {
    let doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().unwrap().keys().filter(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str())).map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let mut served: Vec<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served);
}

#[tokio::test]
async fn every_route_in_the_table_is_served_and_protected() {
    let app = App::new();
    for (method, path) in ROUTES {
        let (status, body) = app.call(method, &concrete(path), None, None).await;
        if *path == "/v1/openapi.json" {
            assert_eq!(status, StatusCode::OK);
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        }
    }
    let (status, _) = app.call("GET", "/v1/nothing-here", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app.call("PUT", "/v1/subscriptions", None, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
}

#[tokio::test]
async fn each_scope_is_enforced_and_named() {
    let app = App::new();
    let all = app.key("acme", &Scope::ALL).await;
    let read = app.key("acme", &[Scope::Read]).await;
    let write = app.key("acme", &[Scope::Write]).await;
    let all_but_publish = app.key("acme", &[Scope::Read, Scope::Write, Scope::Delete, Scope::Admin]).await;
    let (_, sub) = app.call("POST", "/v1/subscriptions", Some(&all), Some(json!({"url": "https://example.com/h"}))).await;
    let id = sub["id"].as_str().unwrap();

    let cases: Vec<(&str, String, &String, Option<Value>, &str)> = vec![
        ("POST", "/v1/subscriptions".into(), &read, Some(json!({"url": "https://example.com/h"})), "webhooks:write"),
        ("GET", "/v1/subscriptions".into(), &write, None, "webhooks:read"),
        ("DELETE", format!("/v1/subscriptions/{id}"), &write, None, "webhooks:delete"),
        ("PATCH", format!("/v1/subscriptions/{id}"), &read, Some(json!({"name": "x"})), "webhooks:write"),
        ("GET", "/v1/api-keys".into(), &read, None, "webhooks:admin"),
        ("POST", "/v1/events".into(), &all_but_publish, Some(json!({"event_type": "project.created", "data": {}})), "events:publish"),
        ("GET", "/v1/events/e1?occurred_at=2026-11-22T10:00:00Z".into(), &write, None, "webhooks:read"),
    ];
    for (method, path, key, body, scope) in cases {
        let (status, problem) = app.call(method, &path, Some(key), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
        assert!(problem["detail"].as_str().unwrap().contains(scope), "{problem}");
    }
}

#[tokio::test]
async fn another_tenant_gets_404_on_every_object_route() {
    let app = App::new();
    let a = app.key("tenant-a", &Scope::ALL).await;
    let b = app.key("tenant-b", &Scope::ALL).await;
    let (_, sub) = app.call("POST", "/v1/subscriptions", Some(&a), Some(json!({"url": "http://127.0.0.1:9999/h"}))).await;
    let id = sub["id"].as_str().unwrap();
    let (_, test) = app.call("POST", &format!("/v1/subscriptions/{id}/test"), Some(&a), None).await;
    let dlv = test["delivery_id"].as_str().expect("test delivery");
    let (_, keys) = app.call("GET", "/v1/api-keys", Some(&a), None).await;
    let key_id = keys["data"][0]["id"].as_str().unwrap();

    for (method, path, body) in [
        ("GET", format!("/v1/subscriptions/{id}"), None),
        ("PATCH", format!("/v1/subscriptions/{id}"), Some(json!({"name": "stolen"}))),
        ("DELETE", format!("/v1/subscriptions/{id}"), None),
        ("POST", format!("/v1/subscriptions/{id}/restore"), None),
        ("POST", format!("/v1/subscriptions/{id}/rotate-secret"), None),
        ("POST", format!("/v1/subscriptions/{id}/test"), None),
        ("POST", format!("/v1/subscriptions/{id}/filter/test"), Some(json!({"event_type": "project.created", "data": {}}))),
        ("POST", format!("/v1/subscriptions/{id}/recover"), Some(json!({"since": "2026-01-01T00:00:00Z"}))),
        ("GET", format!("/v1/subscriptions/{id}/deliveries"), None),
        ("GET", format!("/v1/deliveries/{dlv}"), None),
        ("GET", format!("/v1/deliveries/{dlv}/attempts"), None),
        ("POST", format!("/v1/deliveries/{dlv}/redeliver"), None),
        ("DELETE", format!("/v1/api-keys/{key_id}"), None),
        ("GET", format!("/v1/events/{evt}?occurred_at={at}", evt = test["event_id"].as_str().unwrap(), at = "2026-11-22T10:00:00Z"), None),
    ] {
        let (status, _) = app.call(method, &path, Some(&b), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let (_, list) = app.call("GET", "/v1/subscriptions", Some(&b), None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    // A's subscription is untouched.
    let (status, sub) = app.call("GET", &format!("/v1/subscriptions/{id}"), Some(&a), None).await;
    assert_eq!((status, sub["active"].as_bool(), sub["name"].as_str()), (StatusCode::OK, Some(true), None));
}

/// A random JSON value, biased towards the shapes the API reads.
fn random_value(rng: &mut impl Rng, depth: u32) -> Value {
    let keys = ["url", "events", "filter", "payload", "$or", "$not", "data.a", "$gt", "enabled", "name", "description", "headers", "auth", "type", "username", "password", "header", "value", "since", "scopes", "event_type", "event_id", "data", "tenant_id", "occurred_at", "\u{0}", "ü"];
    let strings = ["", "https://example.com/h", "http://10.0.0.1/", "project.*", "*", "webhooks:read", "basic", "api_key", "2026-11-22T10:00:00Z", "\u{202e}rtl", "../../etc/passwd", "a\u{0}b", "😀"];
    match rng.gen_range(0..if depth > 2 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.gen::<bool>()),
        2 => json!(rng.gen::<i64>()),
        3 => json!(rng.gen::<f64>()),
        4 => json!(strings[rng.gen_range(0..strings.len())]),
        5 => Value::Array((0..rng.gen_range(0..4)).map(|_| random_value(rng, depth + 1)).collect()),
        _ => Value::Object((0..rng.gen_range(0..6)).map(|_| (keys[rng.gen_range(0..keys.len())].to_owned(), random_value(rng, depth + 1))).collect()),
    }
}

#[tokio::test]
async fn random_json_bodies_never_cause_a_server_error() {
    let app = App::new();
    let key = app.key("acme", &Scope::ALL).await;
    let (_, sub) = app.call("POST", "/v1/subscriptions", Some(&key), Some(json!({"url": "http://127.0.0.1:9999/h"}))).await;
    let id = sub["id"].as_str().unwrap().to_owned();
    let mut rng = rand::thread_rng();
    let routes = [
        ("POST", "/v1/subscriptions".to_owned()),
        ("PATCH", format!("/v1/subscriptions/{id}")),
        ("POST", format!("/v1/subscriptions/{id}/recover")),
        ("POST", format!("/v1/subscriptions/{id}/filter/test")),
        ("POST", "/v1/events".to_owned()),
        ("POST", "/v1/api-keys".to_owned()),
    ];
    for i in 0..600 {
        let (method, path) = &routes[i % routes.len()];
        let mut body = random_value(&mut rng, 0);
        if i % 3 == 0 {
            // Mostly-valid objects reach deeper validation.
            body = json!({"url": "https://example.com/h", "events": random_value(&mut rng, 1), "filter": random_value(&mut rng, 1), "headers": random_value(&mut rng, 1), "auth": random_value(&mut rng, 1)});
        }
        let (status, resp) = app.call(method, path, Some(&key), Some(body.clone())).await;
        assert!(!status.is_server_error(), "{method} {path} with {body} → {status} {resp}");
    }
}

#[tokio::test]
async fn refused_targets_are_refused_at_create_and_update() {
    let (deps, _) = Deps::memory(config(&[("ALLOW_HTTP", "true")]));
    let deps = Arc::new(deps);
    let app = App { router: router(deps.clone()), deps };
    let key = app.key("acme", &Scope::ALL).await;
    let (status, sub) = app.call("POST", "/v1/subscriptions", Some(&key), Some(json!({"url": "https://example.com/ok"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = sub["id"].as_str().unwrap();
    for url in crate::ssrf::REFUSED_TARGETS {
        let (status, problem) = app.call("POST", "/v1/subscriptions", Some(&key), Some(json!({"url": url}))).await;
        assert_eq!((status, problem["field"].as_str()), (StatusCode::BAD_REQUEST, Some("url")), "create {url}: {problem}");
        let (status, problem) = app.call("PATCH", &format!("/v1/subscriptions/{id}"), Some(&key), Some(json!({"url": url}))).await;
        assert_eq!((status, problem["field"].as_str()), (StatusCode::BAD_REQUEST, Some("url")), "update {url}: {problem}");
    }
}

#[tokio::test]
async fn a_customer_may_bring_its_own_secret_at_create_and_rotate() {
    use base64::Engine;
    let app = App::new();
    let key = app.key("acme", &Scope::ALL).await;
    let own = |n: usize| format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]));
    let (status, sub) = app.call("POST", "/v1/subscriptions", Some(&key), Some(json!({"url": "https://example.com/h", "secret": own(32)}))).await;
    assert_eq!((status, sub["secret"].as_str()), (StatusCode::CREATED, Some(own(32).as_str())), "{sub}");
    let id = sub["id"].as_str().unwrap();
    let stored = app.deps.subscriptions.get(&TenantId::parse("acme").unwrap(), &crate::ids::SubscriptionId::parse(id).unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.secret.expose(), own(32), "it signs with the customer's secret");
    for bad in [own(16), own(65), "whsec_not base64!".to_owned(), "s3cret".to_owned(), "a raw secret with spaces".to_owned(), "whsk_AAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(), "x".repeat(257)] {
        let (status, problem) = app.call("POST", "/v1/subscriptions", Some(&key), Some(json!({"url": "https://example.com/h", "secret": bad}))).await;
        assert_eq!((status, problem["field"].as_str()), (StatusCode::BAD_REQUEST, Some("secret")), "{bad}: {problem}");
        assert!(!problem.to_string().contains(&bad), "a refused secret is not echoed: {problem}");
    }
    // Rotation: to the customer's next secret, or a generated one without a body.
    let rotate = format!("/v1/subscriptions/{id}/rotate-secret");
    let (status, out) = app.call("POST", &rotate, Some(&key), Some(json!({"secret": own(48)}))).await;
    assert_eq!((status, out["secret"].as_str()), (StatusCode::OK, Some(own(48).as_str())), "{out}");
    let (status, problem) = app.call("POST", &rotate, Some(&key), Some(json!({"secret": own(8)}))).await;
    assert_eq!((status, problem["field"].as_str()), (StatusCode::BAD_REQUEST, Some("secret")));
    let (status, out) = app.call("POST", &rotate, Some(&key), None).await;
    assert!(status == StatusCode::OK && out["secret"].as_str().is_some_and(|s| s.starts_with("whsec_") && s != own(48)), "{out}");
    // A raw secret (TrustPager's form) is its own text, shown back once and signing with its bytes.
    let (status, sub) = app.call("POST", "/v1/subscriptions", Some(&key), Some(json!({"url": "https://example.com/h", "secret": "my-trustpager-secret-1"}))).await;
    assert_eq!((status, sub["secret"].as_str()), (StatusCode::CREATED, Some("my-trustpager-secret-1")), "{sub}");
    let (_, shown) = app.call("GET", &format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap()), Some(&key), None).await;
    assert!(!shown.to_string().contains("my-trustpager-secret-1"), "{shown}");
}

#[tokio::test]
async fn v1a_subscriptions_show_their_public_key_and_never_a_signing_key() {
    let app = App::new();
    let key = app.key("acme", &Scope::ALL).await;
    let create = |body: serde_json::Value| app.call("POST", "/v1/subscriptions", Some(&key), Some(body));
    let (status, sub) = create(json!({"url": "https://example.com/h", "signature": {"scheme": "v1a"}})).await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    assert!(sub.get("secret").is_none(), "{sub}");
    let pk = sub["signature"]["public_key"].as_str().unwrap().to_owned();
    assert!(pk.starts_with("whpk_") && sub["signature"]["scheme"] == "v1a" && sub["signature"]["header"].is_null(), "{sub}");
    let id = sub["id"].as_str().unwrap().to_owned();
    let stored = app.deps.subscriptions.get(&TenantId::parse("acme").unwrap(), &crate::ids::SubscriptionId::parse(&id).unwrap()).await.unwrap().unwrap();
    assert!(!sub.to_string().contains(&stored.secret.stored()["whsk_".len()..]), "the signing key is never shown");
    // Rotation keeps the scheme; the previous key is shown while it still signs.
    let (status, out) = app.call("POST", &format!("/v1/subscriptions/{id}/rotate-secret"), Some(&key), None).await;
    assert!(status == StatusCode::OK && out.get("secret").is_none() && out["public_key"].as_str().is_some_and(|k| k.starts_with("whpk_") && k != pk), "{out}");
    let (_, shown) = app.call("GET", &format!("/v1/subscriptions/{id}"), Some(&key), None).await;
    assert_eq!((shown["signature"]["public_key"].as_str(), shown["signature"]["previous_public_key"].as_str()), (out["public_key"].as_str(), Some(pk.as_str())));
    // What cannot go with ed25519, each naming its field.
    for (body, field) in [
        (json!({"url": "https://example.com/h", "signature": {"scheme": "v1a"}, "secret": "my-trustpager-secret-1"}), "secret"),
        (json!({"url": "https://example.com/h", "signature": {"scheme": "v1a", "profile": "hex"}}), "signature.profile"),
        (json!({"url": "https://example.com/h", "signature": {"profile": "standard", "header": "X-Sig"}}), "signature.header"),
        (json!({"url": "https://example.com/h", "signature": {"profile": "hex", "header": "Host"}}), "signature.header"),
        (json!({"url": "https://example.com/h", "signature": {"profile": "hex", "header": "X-A", "event_header": "x-a"}}), "signature.event_header"),
    ] {
        let (status, problem) = create(body.clone()).await;
        assert_eq!((status, problem["field"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{body}: {problem}");
    }
    let (status, problem) = app.call("PATCH", &format!("/v1/subscriptions/{id}"), Some(&key), Some(json!({"signature": {"profile": "sha256_hex"}}))).await;
    assert_eq!((status, problem["field"].as_str()), (StatusCode::BAD_REQUEST, Some("signature.profile")), "{problem}");
    let (status, problem) = app.call("PATCH", &format!("/v1/subscriptions/{id}"), Some(&key), Some(json!({"signature": {"scheme": "v1"}}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the scheme changes by rotation only: {problem}");
}

#[tokio::test]
async fn profiles_and_oauth2_credentials_are_shown_without_secrets() {
    let app = App::new();
    let key = app.key("acme", &Scope::ALL).await;
    let body = json!({"url": "https://example.com/h", "secret": "my-trustpager-secret-1",
        "signature": {"profile": "hex", "header": "X-TrustPager-Signature", "event_header": "X-TrustPlus-Event"},
        "auth": {"type": "oauth2", "token_url": "https://auth.example.com/token", "client_id": "cid", "client_secret": "oauth-client-secret", "scope": "hooks"}});
    let (status, sub) = app.call("POST", "/v1/subscriptions", Some(&key), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    assert_eq!(sub["signature"], json!({"scheme": "v1", "profile": "hex", "header": "x-trustpager-signature", "event_header": "x-trustplus-event", "public_key": null, "previous_public_key": null}));
    assert_eq!(sub["auth"], json!({"type": "oauth2", "token_url": "https://auth.example.com/token", "client_id": "cid", "scope": "hooks", "audience": null, "client_auth": "basic"}));
    assert!(!sub.to_string().contains("oauth-client-secret"));
    let (status, problem) = app.call("PATCH", &format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap()), Some(&key), Some(json!({"tls": {"client_certificate": "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----"}}))).await;
    assert_eq!((status, problem["field"].as_str()), (StatusCode::BAD_REQUEST, Some("tls.client_key")), "{problem}");
}
