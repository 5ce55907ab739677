//! The management API Lambda: API Gateway HTTP API (payload format 2.0) → the axum router of
//! `shared::api`.
//!
//! The event is turned into an `http::Request` and the router's response into the API Gateway
//! response here, in a few lines, rather than with `lambda_http`, whose response conversion links
//! every text encoding of `encoding_rs` (≈ 0.2 MB) to decode bodies we only ever send as UTF-8.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use axum::Router;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Request};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use std::sync::Arc;
use tower::ServiceExt;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = shared::Config::from_env()?;
    let sdk = shared::load_sdk_config().await;
    let router = &shared::api::router(Arc::new(shared::Deps::aws(&sdk, config)));
    shared::telemetry::flush(); // what init logged
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
        let response = handle(router, event.payload).await;
        shared::telemetry::flush();
        response
    }))
    .await
}

/// One HTTP API request through the router.
async fn handle(router: &Router, event: ApiGatewayV2httpRequest) -> Result<ApiGatewayV2httpResponse, Error> {
    let response = router.clone().oneshot(to_request(event)?).await?;
    to_response(response).await
}

fn to_request(event: ApiGatewayV2httpRequest) -> Result<Request<axum::body::Body>, Error> {
    let mut uri = event.raw_path.unwrap_or_else(|| "/".to_owned());
    if let Some(query) = event.raw_query_string.filter(|q| !q.is_empty()) {
        uri.push('?');
        uri.push_str(&query);
    }
    let body = match event.body {
        Some(b) if event.is_base64_encoded => B64.decode(b)?,
        Some(b) => b.into_bytes(),
        None => Vec::new(),
    };
    let mut request = Request::builder().method(event.request_context.http.method).uri(uri).body(axum::body::Body::from(body))?;
    *request.headers_mut() = event.headers;
    // HTTP API moves the Cookie header into `cookies`.
    if let Some(cookies) = event.cookies.filter(|c| !c.is_empty()) {
        request.headers_mut().insert(COOKIE, HeaderValue::from_str(&cookies.join("; "))?);
    }
    Ok(request)
}

/// Text types go back as text; anything else (or invalid UTF-8) base64-encoded.
async fn to_response(response: http::Response<axum::body::Body>) -> Result<ApiGatewayV2httpResponse, Error> {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await?.to_vec();
    let textual = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
        ct.starts_with("text/") || ["json", "javascript", "xml"].iter().any(|t| ct.contains(t))
    });
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    let (body, base64) = match String::from_utf8(bytes) {
        Ok(text) if textual => (Body::Text(text), false),
        Ok(text) => (Body::Binary(text.into_bytes()), true),
        Err(e) => (Body::Binary(e.into_bytes()), true),
    };
    out.body = Some(body);
    out.is_base64_encoded = base64;
    let mut headers = HeaderMap::new();
    for name in parts.headers.keys() {
        let values = parts.headers.get_all(name);
        if name == SET_COOKIE {
            out.cookies.extend(values.iter().filter_map(|v| v.to_str().ok().map(str::to_owned)));
            continue;
        }
        let joined: Vec<&[u8]> = values.iter().map(HeaderValue::as_bytes).collect();
        headers.insert(name.clone(), HeaderValue::from_bytes(&joined.join(&b", "[..]))?);
    }
    out.headers = headers;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// A router on in-memory stores, and an API key of tenant `acme` with every scope.
    async fn router_with_key() -> (Router, String) {
        let config = shared::Config::from_lookup(|k| (k.ends_with("_TABLE") || k.ends_with("_URL")).then(|| format!("test-{k}"))).unwrap();
        let deps = Arc::new(shared::Deps::memory(config).0);
        let tenant = shared::ids::TenantId::parse("acme").unwrap();
        let (key, _) = shared::api::auth::issue_key(&deps, &tenant, &shared::model::Scope::ALL).await.unwrap();
        (shared::api::router(deps), key)
    }

    /// An HTTP API payload 2.0 event, as API Gateway sends it.
    fn event(method: &str, path: &str, query: &str, body: Option<(&str, bool)>) -> ApiGatewayV2httpRequest {
        let mut e = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
            "cookies": ["a=1", "b=2"],
            "headers": {"content-type": "application/json", "host": "abc.execute-api.eu-west-1.amazonaws.com", "x-forwarded-proto": "https"},
            "requestContext": {"accountId": "123456789012", "apiId": "abc", "domainName": "abc.execute-api.eu-west-1.amazonaws.com",
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "curl/8"},
                "requestId": "r1", "routeKey": "$default", "stage": "$default", "time": "22/Nov/2026:10:00:00 +0000", "timeEpoch": 1795000000000u64},
            "isBase64Encoded": false
        });
        if let Some((b, base64)) = body {
            e["body"] = json!(b);
            e["isBase64Encoded"] = json!(base64);
        }
        serde_json::from_value(e).expect("a payload 2.0 event")
    }

    fn text(resp: &ApiGatewayV2httpResponse) -> &str {
        match resp.body.as_ref() {
            Some(Body::Text(t)) => t,
            other => panic!("expected a text body, got {other:?}"),
        }
    }

    fn authorized(mut e: ApiGatewayV2httpRequest, key: &str) -> ApiGatewayV2httpRequest {
        e.headers.insert("authorization", HeaderValue::from_str(&format!("Bearer {key}")).unwrap());
        e
    }

    #[tokio::test]
    async fn bodies_plain_or_base64_reach_the_handlers() {
        let (router, key) = router_with_key().await;
        // No key: refused, in problem+json, as text.
        let resp = handle(&router, event("POST", "/v1/subscriptions", "", Some(("{}", false)))).await.unwrap();
        assert_eq!(resp.status_code, 401);
        assert!(!resp.is_base64_encoded);
        assert_eq!(resp.headers[CONTENT_TYPE], "application/problem+json");
        // A base64 body (as API Gateway sends non-text types) is decoded: the problem names its field.
        let body = B64.encode(r#"{"url": "ftp://example.com/hook", "events": ["*"]}"#);
        let resp = handle(&router, authorized(event("POST", "/v1/subscriptions", "", Some((&body, true))), &key)).await.unwrap();
        assert_eq!(resp.status_code, 400, "{}", text(&resp));
        let problem: Value = serde_json::from_str(text(&resp)).unwrap();
        assert_eq!(problem["field"], "url", "{problem}");
        // A plain body creates the subscription.
        let body = r#"{"url": "https://example.com/hook", "events": ["*"]}"#;
        let resp = handle(&router, authorized(event("POST", "/v1/subscriptions", "", Some((body, false))), &key)).await.unwrap();
        assert_eq!(resp.status_code, 201, "{}", text(&resp));
        assert!(text(&resp).contains("whsec_"));
    }

    #[tokio::test]
    async fn the_query_string_and_method_are_passed_on() {
        let (router, key) = router_with_key().await;
        let resp = handle(&router, authorized(event("GET", "/v1/subscriptions", "limit=abc", None), &key)).await.unwrap();
        assert_eq!(resp.status_code, 400, "{}", text(&resp));
        assert_eq!(serde_json::from_str::<Value>(text(&resp)).unwrap()["field"], "limit");
        let resp = handle(&router, authorized(event("GET", "/v1/subscriptions", "limit=5", None), &key)).await.unwrap();
        assert_eq!(resp.status_code, 200, "{}", text(&resp));
        let resp = handle(&router, event("DELETE", "/v1/openapi.json", "", None)).await.unwrap();
        assert_eq!(resp.status_code, 405);
        let resp = handle(&router, event("GET", "/v1/openapi.json", "x=1", None)).await.unwrap();
        assert_eq!(resp.status_code, 200);
        assert_eq!(serde_json::from_str::<Value>(text(&resp)).unwrap()["openapi"], "3.1.0");
    }

    #[tokio::test]
    async fn console_pages_keep_their_security_headers() {
        let resp = handle(&router_with_key().await.0, event("GET", "/console/", "", None)).await.unwrap();
        assert_eq!(resp.status_code, 200);
        assert!(text(&resp).contains("<html"));
        assert!(resp.headers["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
        assert!(resp.cookies.is_empty());
    }

    #[tokio::test]
    async fn binary_bodies_and_cookies_round_trip() {
        let resp = to_response(
            http::Response::builder()
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(SET_COOKIE, "s=1")
                .header(SET_COOKIE, "t=2")
                .header("vary", "a")
                .header("vary", "b")
                .body(axum::body::Body::from(vec![0u8, 159, 146, 150]))
                .unwrap(),
        )
        .await
        .unwrap();
        assert!(resp.is_base64_encoded);
        assert!(matches!(resp.body, Some(Body::Binary(ref b)) if b == &[0u8, 159, 146, 150]));
        assert_eq!(resp.cookies, ["s=1", "t=2"]);
        assert_eq!(resp.headers["vary"], "a, b");
        let req = to_request(event("GET", "/x", "", None)).unwrap();
        assert_eq!(req.headers()[COOKIE], "a=1; b=2");
        assert_eq!(req.uri(), "/x");
    }
}
