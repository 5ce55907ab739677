//! API Gateway HTTP API (payload format 2.0) ⇄ `http`, for the management API Lambda
//! (`functions/api`): the event becomes an `http::Request` for the axum router of `crate::api`,
//! and the router's response becomes the API Gateway response.
//!
//! Written here in a few lines rather than taken from `lambda_http`, whose response conversion
//! links every text encoding of `encoding_rs` (≈ 0.2 MB) to decode bodies we only ever send as
//! UTF-8; which bodies go back as text is decided as `lambda_http` decides it ([`is_text`]).

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Request};

/// What the conversions fail with: the `Error` of `lambda_runtime` (the same boxed type).
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Media types sent back as text, the lists of `lambda_http`'s response conversion
/// (`TEXT_ENCODING_PREFIXES` and `TEXT_ENCODING_SUFFIXES` in `lambda-http/src/response.rs` of
/// awslabs/aws-lambda-rust-runtime); it matches the prefix `text`, this `text/`.
const TEXT_PREFIXES: [&str; 5] = ["text/", "application/json", "application/javascript", "application/xml", "application/yaml"];
const TEXT_SUFFIXES: [&str; 3] = ["+xml", "+yaml", "+json"];

/// Whether a body of this `content-type` goes back as text: a prefix of the whole value, or a
/// suffix of the media type before its parameters, compared without regard to case (media types
/// are case-insensitive; `lambda_http` compares as written).
pub fn is_text(content_type: &str) -> bool {
    let ct = content_type.trim().to_ascii_lowercase();
    let media_type = ct.split(';').next().unwrap_or_default().trim_end();
    TEXT_PREFIXES.iter().any(|p| ct.starts_with(p)) || TEXT_SUFFIXES.iter().any(|s| media_type.ends_with(s))
}

/// The HTTP request an HTTP API event stands for: its raw path and query, its body decoded from
/// base64 when API Gateway encoded it, its headers, and its `cookies` back in a `Cookie` header.
pub fn to_request(event: ApiGatewayV2httpRequest) -> Result<Request<axum::body::Body>, Error> {
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

/// The HTTP API response for the router's: text types ([`is_text`]) go back as text; anything else,
/// a body without a content type, an encoded body (`content-encoding`, as `lambda_http` does) or
/// invalid UTF-8 base64-encoded. `Set-Cookie` headers go to `cookies`, repeated headers are joined
/// with commas.
pub async fn to_response(response: http::Response<axum::body::Body>) -> Result<ApiGatewayV2httpResponse, Error> {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await?.to_vec();
    let textual = !parts.headers.contains_key(CONTENT_ENCODING) && parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(is_text);
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
    use axum::Router;
    use serde_json::{json, Value};
    use std::sync::Arc;
    use tower::ServiceExt;

    /// One HTTP API request through the router, as `functions/api` serves it.
    async fn handle(router: &Router, event: ApiGatewayV2httpRequest) -> Result<ApiGatewayV2httpResponse, Error> {
        let response = router.clone().oneshot(to_request(event)?).await?;
        to_response(response).await
    }

    /// A router on in-memory stores, and an API key of tenant `acme` with every scope.
    async fn router_with_key() -> (Router, String) {
        let config = crate::Config::from_lookup(|k| (k.ends_with("_TABLE") || k.ends_with("_URL")).then(|| format!("test-{k}"))).unwrap();
        let deps = Arc::new(crate::Deps::memory(config).0);
        let tenant = crate::ids::TenantId::parse("acme").unwrap();
        let (key, _) = crate::api::auth::issue_key(&deps, &tenant, &crate::model::Scope::ALL).await.unwrap();
        (crate::api::router(deps), key)
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

    #[test]
    fn text_types_are_lambda_https() {
        // What the API and its console send, and the rest of the lists.
        for ct in [
            "application/json", "application/problem+json", "text/html; charset=utf-8", "text/css; charset=utf-8", "text/javascript; charset=utf-8",
            "text/plain; charset=utf-8", "application/javascript", "application/xml", "application/yaml", "application/ld+json; charset=utf-8",
            "image/svg+xml", "application/openapi+yaml", "Application/JSON", " text/html",
        ] {
            assert!(is_text(ct), "{ct}");
        }
        for ct in ["image/png", "application/octet-stream", "application/gzip", "application/x-ndjson", "application/x-www-form-urlencoded", "application/zip", "textual/x", ""] {
            assert!(!is_text(ct), "{ct}");
        }
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
        // Its scripts and style sheet go back as text too.
        for path in ["/console/app.js", "/console/app.css"] {
            let resp = handle(&router_with_key().await.0, event("GET", path, "", None)).await.unwrap();
            assert_eq!(resp.status_code, 200, "{path}");
            assert!(!resp.is_base64_encoded && !text(&resp).is_empty(), "{path}");
        }
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

    #[tokio::test]
    async fn utf8_bodies_of_other_types_still_go_base64() {
        for (ct, encoding) in [(Some("image/png"), None), (None, None), (Some("application/json"), Some("gzip"))] {
            let mut b = http::Response::builder();
            if let Some(ct) = ct {
                b = b.header(CONTENT_TYPE, ct);
            }
            if let Some(e) = encoding {
                b = b.header(CONTENT_ENCODING, e);
            }
            let resp = to_response(b.body(axum::body::Body::from("abc")).unwrap()).await.unwrap();
            assert!(resp.is_base64_encoded, "{ct:?} {encoding:?}");
            assert!(matches!(resp.body, Some(Body::Binary(ref b)) if b == b"abc"), "{ct:?}");
        }
    }
}
