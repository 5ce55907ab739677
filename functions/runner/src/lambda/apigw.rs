//! API Gateway's HTTP API, played: an HTTP request becomes a payload format 2.0 event for the
//! function of the template's matching route, and the function's response becomes the HTTP
//! response, as the AWS documentation describes the format
//! (<https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html>):
//! header names in lower case, repeated headers joined with commas, cookies moved from the
//! `cookie` header to `cookies` (and back out of `cookies` as `set-cookie` headers), the body as
//! text when it is textual UTF-8 and base64 otherwise. A request no route matches answers 404
//! `{"message":"Not Found"}`; a function error or timeout 500 `{"message":"Internal Server
//! Error"}`, as API Gateway does. Throttling is not played.

use axum::body::{to_bytes, Body};
use axum::http::{HeaderValue, Request, Response, StatusCode};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use time::OffsetDateTime;

use super::template::{Route, ACCOUNT};

/// HTTP API's payload limit.
const MAX_BODY: usize = 10 << 20;

pub fn message(status: StatusCode, text: &str) -> Response<Body> {
    Response::builder().status(status).header("content-type", "application/json").body(Body::from(json!({ "message": text }).to_string())).expect("a response")
}

/// Whether API Gateway hands the *request* body to the function as text (`isBase64Encoded:
/// false`). Not `shared::apigw::is_text`, which decides the other way, how the function sends its
/// response body back (the lists of `lambda_http`): this side is API Gateway's, so it keeps its own
/// list, forms included, and the response side below reads only the function's `isBase64Encoded`.
fn textual(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.starts_with("text/") || ["json", "xml", "javascript", "x-www-form-urlencoded"].iter().any(|t| ct.contains(t))
}

/// The payload 2.0 event for a request the route serves.
pub async fn event(req: Request<Body>, route: &Route, path_parameters: Vec<(String, String)>, peer: SocketAddr, request_id: &str) -> Result<Value, Response<Body>> {
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_BODY).await.map_err(|_| message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"))?;
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for name in parts.headers.keys() {
        let values: Vec<String> = parts.headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
        if name == "cookie" {
            cookies.extend(values.iter().flat_map(|v| v.split(';').map(|c| c.trim().to_owned())).filter(|c| !c.is_empty()));
            continue;
        }
        headers.insert(name.as_str().to_owned(), Value::String(values.join(",")));
    }
    let source_ip = peer.ip().to_string();
    headers.insert("x-forwarded-for".into(), source_ip.clone().into());
    headers.insert("x-forwarded-proto".into(), "http".into());
    headers.insert("x-forwarded-port".into(), peer.port().to_string().into());
    headers.insert("x-amzn-trace-id".into(), format!("Root=1-{request_id}").into());
    let user_agent = headers.get("user-agent").cloned().unwrap_or_else(|| "".into());
    let raw_query = parts.uri.query().unwrap_or_default().to_owned();
    let mut query = Map::new();
    for (k, v) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        match query.get_mut(k.as_ref()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                query.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
    }
    let now = OffsetDateTime::now_utc();
    let time = now.format(time::macros::format_description!("[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000")).unwrap_or_default();
    let host = headers.get("host").and_then(Value::as_str).unwrap_or("localhost").to_owned();
    let path = parts.uri.path().to_owned();
    let mut e = json!({
        "version": "2.0",
        "routeKey": route.key(),
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or_default(),
            "http": {"method": parts.method.as_str(), "path": path, "protocol": format!("{:?}", parts.version), "sourceIp": source_ip, "userAgent": user_agent},
            "requestId": request_id,
            "routeKey": route.key(),
            "stage": "$default",
            "time": time,
            "timeEpoch": (now.unix_timestamp_nanos() / 1_000_000) as i64,
        },
        "isBase64Encoded": false,
    });
    if !cookies.is_empty() {
        e["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        e["queryStringParameters"] = Value::Object(query);
    }
    if !path_parameters.is_empty() {
        e["pathParameters"] = Value::Object(path_parameters.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
    }
    if !bytes.is_empty() {
        let content_type = parts.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        match std::str::from_utf8(&bytes) {
            Ok(text) if textual(content_type) => e["body"] = text.into(),
            _ => {
                e["body"] = B64.encode(&bytes).into();
                e["isBase64Encoded"] = true.into();
            }
        }
    }
    Ok(e)
}

/// The function's payload 2.0 response as HTTP.
pub fn response(payload: &[u8]) -> Response<Body> {
    let Ok(r) = serde_json::from_slice::<Value>(payload) else {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let Some(status) = r["statusCode"].as_u64().and_then(|s| StatusCode::from_u16(s as u16).ok()) else {
        // Format 2.0 also accepts a bare JSON value as a 200 body; the API never returns one.
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let mut b = Response::builder().status(status);
    for (name, value) in r["headers"].as_object().into_iter().flatten() {
        if let Some(v) = value.as_str().and_then(|v| HeaderValue::from_str(v).ok()) {
            b = b.header(name.as_str(), v);
        }
    }
    for (name, values) in r["multiValueHeaders"].as_object().into_iter().flatten() {
        for v in values.as_array().into_iter().flatten().filter_map(Value::as_str) {
            b = b.header(name.as_str(), v);
        }
    }
    for c in r["cookies"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        b = b.header("set-cookie", c);
    }
    let body = match r["body"].as_str() {
        None => Vec::new(),
        Some(text) if r["isBase64Encoded"] == true => match B64.decode(text) {
            Ok(bytes) => bytes,
            Err(_) => return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        },
        Some(text) => text.as_bytes().to_vec(),
    };
    b.body(Body::from(body)).unwrap_or_else(|_| message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route() -> Route {
        Route { method: "ANY".into(), path: "/v1/{proxy+}".into(), function: "F".into() }
    }

    #[tokio::test]
    async fn a_request_becomes_the_documented_event() {
        let req = Request::builder()
            .method("POST")
            .uri("/v1/x?a=1&a=2&b=%20c")
            .header("Host", "h.example")
            .header("Cookie", "s=1; t=2")
            .header("X-Multi", "p")
            .header("X-Multi", "q")
            .header("content-type", "application/octet-stream")
            .body(Body::from(vec![0u8, 255]))
            .unwrap();
        let e = event(req, &route(), vec![("proxy".into(), "x".into())], "127.0.0.1:5000".parse().unwrap(), "r1").await.unwrap();
        assert_eq!(e["routeKey"], "ANY /v1/{proxy+}");
        assert_eq!((e["rawPath"].as_str(), e["rawQueryString"].as_str()), (Some("/v1/x"), Some("a=1&a=2&b=%20c")));
        assert_eq!(e["queryStringParameters"], json!({"a": "1,2", "b": " c"}));
        assert_eq!(e["cookies"], json!(["s=1", "t=2"]));
        assert_eq!(e["headers"]["x-multi"], "p,q");
        assert!(e["headers"].get("cookie").is_none());
        assert_eq!((e["body"].as_str(), e["isBase64Encoded"].as_bool()), (Some("AP8="), Some(true)));
        assert_eq!(e["pathParameters"], json!({"proxy": "x"}));
        assert_eq!(e["requestContext"]["http"]["method"], "POST");
        // What the function's own event type reads.
        let parsed: aws_lambda_events::apigw::ApiGatewayV2httpRequest = serde_json::from_value(e).unwrap();
        assert_eq!(parsed.cookies.unwrap(), ["s=1", "t=2"]);
    }

    #[test]
    fn a_response_becomes_http_with_its_cookies_and_binary_body() {
        let r = response(json!({"statusCode": 201, "headers": {"content-type": "application/octet-stream"}, "cookies": ["a=1", "b=2"], "body": "AP8=", "isBase64Encoded": true}).to_string().as_bytes());
        assert_eq!(r.status(), 201);
        let cookies: Vec<_> = r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(response(b"not json").status(), 500);
    }
}
