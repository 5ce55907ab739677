//! A recording proxy per function: its bootstraps (and the event source mapping polling for it)
//! reach LocalStack through it, so every AWS call is known as (function, IAM action, resource),
//! with the request context IAM conditions look at (`dynamodb:Attributes`,
//! `dynamodb:ReturnValues`). `tests/tests/iam.rs` checks each call against the function's role.

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{HeaderMap, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use super::template::{ACCOUNT, REGION};

/// One AWS call as IAM authorises it. A batch or transaction is one call per action and resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Call {
    pub function: String,
    /// `dynamodb:UpdateItem`, `sqs:SendMessage`, ...
    pub action: String,
    pub resource: String,
    /// `dynamodb:Attributes`: the top-level attribute names the request names (keys, item,
    /// expressions, projections).
    pub attributes: Vec<String>,
    /// `dynamodb:ReturnValues`, when the request sets it.
    pub return_values: Option<String>,
}

/// The calls recorded so far, and the functions whose DynamoDB calls the proxies fail (a
/// fault tests inject: an outage of DynamoDB for one function).
#[derive(Clone, Default)]
pub struct Calls {
    calls: Arc<Mutex<Vec<Call>>>,
    cut: Arc<Mutex<BTreeSet<String>>>,
}

impl Calls {
    pub fn all(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }

    fn push(&self, calls: Vec<Call>) {
        self.calls.lock().expect("calls").extend(calls);
    }

    /// While on, `function`'s DynamoDB calls answer 500 `InternalServerError` (after being
    /// recorded); its SQS calls pass.
    pub fn cut_dynamodb(&self, function: &str, on: bool) {
        let mut cut = self.cut.lock().expect("cut");
        if on {
            cut.insert(function.to_owned());
        } else {
            cut.remove(function);
        }
    }

    fn is_cut(&self, function: &str) -> bool {
        self.cut.lock().expect("cut").contains(function)
    }
}

#[derive(Clone)]
struct Proxy {
    function: String,
    upstream: String,
    http: reqwest::Client,
    calls: Calls,
}

/// Starts a proxy for `function` in front of `upstream`; returns its URL.
pub async fn start(function: &str, upstream: &str, calls: Calls) -> std::io::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let state = Proxy { function: function.to_owned(), upstream: upstream.trim_end_matches('/').to_owned(), http: reqwest::Client::builder().no_proxy().build().map_err(std::io::Error::other)?, calls };
    let app = axum::Router::new().fallback(forward).with_state(state);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, task))
}

async fn forward(State(p): State<Proxy>, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, 64 << 20).await else {
        return Response::builder().status(StatusCode::PAYLOAD_TOO_LARGE).body(Body::empty()).expect("a response");
    };
    p.calls.push(classify(&p.function, &parts.headers, &bytes));
    let dynamodb = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("DynamoDB_"));
    if dynamodb && p.calls.is_cut(&p.function) {
        let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected by the recording proxy"}"#;
        return Response::builder().status(StatusCode::INTERNAL_SERVER_ERROR).header("content-type", "application/x-amz-json-1.0").body(Body::from(body)).expect("a response");
    }
    let path = parts.uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    let mut out = p.http.request(parts.method.clone(), format!("{}{path}", p.upstream)).body(bytes.to_vec());
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            out = out.header(name, value);
        }
    }
    match out.send().await {
        Ok(resp) => {
            let mut b = Response::builder().status(resp.status().as_u16());
            for (name, value) in resp.headers() {
                if name != "content-length" && name != "transfer-encoding" {
                    b = b.header(name.as_str(), value.as_bytes());
                }
            }
            let body = resp.bytes().await.unwrap_or_default();
            b.body(Body::from(body)).expect("a response")
        }
        Err(e) => Response::builder().status(StatusCode::BAD_GATEWAY).body(Body::from(e.to_string())).expect("a response"),
    }
}

fn table_arn(name: &str) -> String {
    if name.starts_with("arn:") {
        return name.to_owned();
    }
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}")
}

/// `http://host/000000000000/name` → `arn:aws:sqs:us-east-1:000000000000:name`.
pub fn queue_arn(url: &str) -> String {
    let mut parts = url.trim_end_matches('/').rsplit('/');
    let name = parts.next().unwrap_or_default();
    let account = parts.next().filter(|a| a.chars().all(|c| c.is_ascii_digit()) && !a.is_empty()).unwrap_or(ACCOUNT);
    format!("arn:aws:sqs:{REGION}:{account}:{name}")
}

/// The IAM view of one request (JSON protocols: `X-Amz-Target`; SQS's query protocol: `Action=`).
pub fn classify(function: &str, headers: &HeaderMap, body: &[u8]) -> Vec<Call> {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let call = |action: String, resource: String, attributes: Vec<String>, return_values: Option<String>| Call { function: function.to_owned(), action, resource, attributes, return_values };
    if let Some(op) = target.strip_prefix("DynamoDB_20120810.") {
        return dynamodb(op, &json).into_iter().map(|(a, r, attrs, rv)| call(a, r, attrs, rv)).collect();
    }
    let (op, queue) = if let Some(op) = target.strip_prefix("AmazonSQS.") {
        (op.to_owned(), json["QueueUrl"].as_str().map(str::to_owned))
    } else {
        let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        match get("Action") {
            Some(op) => (op, get("QueueUrl")),
            None => return vec![call(format!("unknown:{target}"), String::new(), Vec::new(), None)],
        }
    };
    // Batch calls are authorised as their single action.
    let action = match op.as_str() {
        "SendMessageBatch" => "SendMessage",
        "DeleteMessageBatch" => "DeleteMessage",
        "ChangeMessageVisibilityBatch" => "ChangeMessageVisibility",
        other => other,
    };
    let resource = match queue {
        Some(u) => queue_arn(&u),
        None => json["QueueName"].as_str().map(|n| format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{n}")).unwrap_or_else(|| "*".to_owned()),
    };
    vec![call(format!("sqs:{action}"), resource, Vec::new(), None)]
}

type Authorised = (String, String, Vec<String>, Option<String>);

fn dynamodb(op: &str, req: &Value) -> Vec<Authorised> {
    let one = |action: &str, r: &Value| -> Authorised {
        let table = r["TableName"].as_str().unwrap_or_default();
        let resource = match r["IndexName"].as_str() {
            Some(index) => format!("{}/index/{index}", table_arn(table)),
            None => table_arn(table),
        };
        (format!("dynamodb:{action}"), resource, attributes(r), r["ReturnValues"].as_str().map(str::to_owned))
    };
    match op {
        // A transaction is authorised item by item, as the single-item actions.
        "TransactWriteItems" | "TransactGetItems" => req["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| {
                let (kind, r) = item.as_object()?.iter().next()?;
                let action = match kind.as_str() {
                    "Put" => "PutItem",
                    "Update" => "UpdateItem",
                    "Delete" => "DeleteItem",
                    "ConditionCheck" => "ConditionCheckItem",
                    "Get" => "GetItem",
                    _ => return None,
                };
                Some(one(action, r))
            })
            .collect(),
        "BatchWriteItem" | "BatchGetItem" => req["RequestItems"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(table, _)| (format!("dynamodb:{op}"), table_arn(table), Vec::new(), None))
            .collect(),
        other => vec![one(other, req)],
    }
}

/// The top-level attribute names a request names.
fn attributes(r: &Value) -> Vec<String> {
    let mut names = BTreeSet::new();
    for field in ["Key", "Item"] {
        for k in r[field].as_object().into_iter().flatten().map(|(k, _)| k) {
            names.insert(k.clone());
        }
    }
    let aliases = r["ExpressionAttributeNames"].as_object();
    for field in ["UpdateExpression", "ConditionExpression", "KeyConditionExpression", "FilterExpression", "ProjectionExpression"] {
        if let Some(e) = r[field].as_str() {
            for n in expression_names(e) {
                let name = match n.strip_prefix('#') {
                    Some(_) => aliases.and_then(|a| a.get(&n)).and_then(Value::as_str).map(str::to_owned).unwrap_or(n),
                    None => n,
                };
                names.insert(name);
            }
        }
    }
    for n in r["AttributesToGet"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        names.insert(n.to_owned());
    }
    names.into_iter().collect()
}

/// Top-level attribute names (or `#aliases`) in an expression: not keywords, functions, values
/// (`:v`), or the parts of a document path after the first.
fn expression_names(e: &str) -> Vec<String> {
    const KEYWORDS: &[&str] = &["SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "BETWEEN", "IN"];
    let chars: Vec<char> = e.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == ':' {
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            continue;
        }
        if c == '#' || c.is_alphabetic() || c == '_' {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let after_dot = start > 0 && chars[..start].iter().rev().find(|c| !c.is_whitespace()) == Some(&'.');
            let is_function = chars[i..].iter().find(|c| !c.is_whitespace()) == Some(&'(');
            if !after_dot && !is_function && !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(&word)) {
                out.push(word);
            }
            continue;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-amz-target", t.parse().unwrap());
        h
    }

    #[test]
    fn an_update_names_its_keys_and_every_attribute_it_touches() {
        let body = json!({"TableName": "subs", "Key": {"tenant_id": {"S": "a"}, "subscription_id": {"S": "b"}},
            "UpdateExpression": "SET failure_count = if_not_exists(failure_count, :zero) + :k, #fa = if_not_exists(#fa, :at) REMOVE h.x[1]",
            "ConditionExpression": "attribute_exists(subscription_id) AND version = :v",
            "ExpressionAttributeNames": {"#fa": "first_failure_at"}, "ReturnValues": "UPDATED_NEW"});
        let calls = classify("F", &target("DynamoDB_20120810.UpdateItem"), body.to_string().as_bytes());
        assert_eq!(calls.len(), 1);
        assert_eq!((calls[0].action.as_str(), calls[0].resource.as_str()), ("dynamodb:UpdateItem", "arn:aws:dynamodb:us-east-1:000000000000:table/subs"));
        assert_eq!(calls[0].attributes, ["failure_count", "first_failure_at", "h", "subscription_id", "tenant_id", "version"]);
        assert_eq!(calls[0].return_values.as_deref(), Some("UPDATED_NEW"));
    }

    #[test]
    fn transactions_and_batches_are_their_single_actions() {
        let body = json!({"TransactItems": [{"Put": {"TableName": "subs", "Item": {"a": {"S": "1"}}}}, {"Update": {"TableName": "tenants", "Key": {"t": {"S": "1"}}, "UpdateExpression": "ADD n :one"}}]});
        let calls = classify("F", &target("DynamoDB_20120810.TransactWriteItems"), body.to_string().as_bytes());
        let got: Vec<(&str, &str)> = calls.iter().map(|c| (c.action.as_str(), c.resource.rsplit('/').next().unwrap())).collect();
        assert_eq!(got, [("dynamodb:PutItem", "subs"), ("dynamodb:UpdateItem", "tenants")]);
        let body = json!({"QueueUrl": "http://127.0.0.1:4566/000000000000/q1", "Entries": []});
        let calls = classify("F", &target("AmazonSQS.SendMessageBatch"), body.to_string().as_bytes());
        assert_eq!((calls[0].action.as_str(), calls[0].resource.as_str()), ("sqs:SendMessage", "arn:aws:sqs:us-east-1:000000000000:q1"));
        let calls = classify("F", &HeaderMap::new(), b"Action=DeleteMessageBatch&QueueUrl=http%3A%2F%2Fh%2F000000000000%2Fq2");
        assert_eq!((calls[0].action.as_str(), calls[0].resource.as_str()), ("sqs:DeleteMessage", "arn:aws:sqs:us-east-1:000000000000:q2"));
        let body = json!({"TableName": "subs", "IndexName": "active", "KeyConditionExpression": "active_tenant = :t"});
        let calls = classify("F", &target("DynamoDB_20120810.Query"), body.to_string().as_bytes());
        assert_eq!(calls[0].resource, "arn:aws:dynamodb:us-east-1:000000000000:table/subs/index/active");
    }
}
