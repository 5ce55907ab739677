//! Endpoint authentication end to end on LocalStack, against real servers on 127.0.0.1:
//! - OAuth2 client credentials: a token endpoint and a receiver that demands its bearer tokens;
//!   one token serves many deliveries, a refused token is replaced within the attempt, an expired
//!   one is fetched again, a wrong client secret fails with `error_class: auth`.
//! - mTLS: an HTTPS receiver (Python's `ssl`, certificates made by `openssl` in the test) that
//!   requires a client certificate accepts ours, refuses a delivery without one, and a CA pin
//!   that does not match the receiver's certificate refuses to send.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use e2e::{eventually, StackOptions, TestStack};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);

/// The token endpoint's clients: id → (secret, token lifetime in seconds).
const CLIENTS: [(&str, &str, u64); 2] = [("cid", "right-secret", 3600), ("cid-short", "short-secret", 1)];

#[derive(Default)]
struct Auth {
    /// Tokens issued per client.
    issued: BTreeMap<String, usize>,
    /// Valid tokens and when they expire.
    valid: HashMap<String, Instant>,
    /// Deliveries the receiver accepted, by the `webhook-id`.
    accepted: Vec<String>,
    /// Requests the receiver refused (no or a bad token).
    refused: usize,
}

type Shared = Arc<Mutex<Auth>>;

/// POST /token: client credentials with HTTP Basic (RFC 6749 section 2.3.1), `scope=hooks`.
async fn token(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    use base64::Engine;
    // The form's values here need no percent-decoding (`client_credentials`, `hooks`).
    let form: HashMap<String, String> = String::from_utf8_lossy(&body).split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    let basic = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic ")).unwrap_or_default();
    let decoded = base64::engine::general_purpose::STANDARD.decode(basic).ok().and_then(|b| String::from_utf8(b).ok()).unwrap_or_default();
    let client = CLIENTS.iter().find(|(id, secret, _)| decoded == format!("{id}:{secret}"));
    let Some((id, _, lifetime)) = client else {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client"}))).into_response();
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") || form.get("scope").map(String::as_str) != Some("hooks") {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_request"}))).into_response();
    }
    let mut s = s.lock().unwrap();
    let n = s.issued.entry(id.to_string()).or_default();
    *n += 1;
    let value = format!("tok-{id}-{n}");
    s.valid.insert(value.clone(), Instant::now() + Duration::from_secs(*lifetime));
    Json(json!({"access_token": value, "token_type": "Bearer", "expires_in": lifetime})).into_response()
}

/// POST /hook: only with a bearer token the endpoint issued and that has not expired.
async fn hook(State(s): State<Shared>, headers: HeaderMap) -> StatusCode {
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default();
    let mut s = s.lock().unwrap();
    if s.valid.get(bearer).is_some_and(|exp| *exp > Instant::now()) {
        let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        s.accepted.push(id);
        StatusCode::OK
    } else {
        s.refused += 1;
        StatusCode::UNAUTHORIZED
    }
}

async fn auth_server() -> (String, Shared) {
    let state = Shared::default();
    let app = Router::new().route("/token", post(token)).route("/hook", post(hook)).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, state)
}

async fn subscribe(stack: &TestStack, body: Value) -> String {
    let (status, sub) = stack.call("POST", "/v1/subscriptions", Some(body)).await;
    assert_eq!(status, 201, "{sub}");
    sub["id"].as_str().unwrap().to_owned()
}

/// The attempts of the subscription's deliveries (all of them, newest delivery first).
async fn attempts(stack: &TestStack, sub: &str) -> Vec<Value> {
    let (_, page) = stack.call("GET", &format!("/v1/subscriptions/{sub}/deliveries"), None).await;
    let mut out = Vec::new();
    for d in page["data"].as_array().cloned().unwrap_or_default() {
        let (_, a) = stack.call("GET", &format!("/v1/deliveries/{}/attempts", d["id"].as_str().unwrap()), None).await;
        out.extend(a["data"].as_array().cloned().unwrap_or_default());
    }
    out
}

fn oauth(base: &str, client: (&str, &str)) -> Value {
    json!({"type": "oauth2", "token_url": format!("{base}/token"), "client_id": client.0, "client_secret": client.1, "scope": "hooks"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_tokens_are_fetched_once_refreshed_on_401_and_on_expiry_and_a_wrong_secret_is_an_auth_failure() {
    let stack = TestStack::start(StackOptions::default()).await;
    let (base, state) = auth_server().await;
    let hook = format!("{base}/hook");
    let sub = |to: &str, auth: Value| json!({"url": hook, "events": ["project.created"], "filter": {"data.to": to}, "auth": auth});
    subscribe(&stack, sub("long", oauth(&base, ("cid", "right-secret")))).await;
    let short = subscribe(&stack, sub("short", oauth(&base, ("cid-short", "short-secret")))).await;
    let wrong = subscribe(&stack, sub("wrong", oauth(&base, ("cid", "not-the-secret")))).await;
    let accepted = |s: &Shared| s.lock().unwrap().accepted.len();
    let issued = |s: &Shared, id: &str| s.lock().unwrap().issued.get(id).copied().unwrap_or(0);

    // Many deliveries, one token.
    for i in 0..20 {
        stack.publish(&format!("evt-long-{i}"), "project.created", json!({"to": "long"})).await;
    }
    eventually(DEADLINE, "20 deliveries with the cached token", || async { (accepted(&state) >= 20).then_some(()) }).await;
    assert_eq!(issued(&state, "cid"), 1, "one token fetched for 20 deliveries");

    // The endpoint stops taking the token: a new one is fetched and the POST repeated in the
    // same attempt.
    state.lock().unwrap().valid.clear();
    let refused_before = state.lock().unwrap().refused;
    stack.publish("evt-long-revoked", "project.created", json!({"to": "long"})).await;
    eventually(DEADLINE, "the delivery after the token was revoked", || async { (accepted(&state) >= 21).then_some(()) }).await;
    assert_eq!(issued(&state, "cid"), 2, "fetched again after the 401");
    assert_eq!(state.lock().unwrap().refused, refused_before + 1, "one refused POST, then the accepted one");

    // A one-second token is not reused after it expired.
    stack.publish("evt-short-1", "project.created", json!({"to": "short"})).await;
    eventually(DEADLINE, "the first short-token delivery", || async { (accepted(&state) >= 22).then_some(()) }).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stack.publish("evt-short-2", "project.created", json!({"to": "short"})).await;
    eventually(DEADLINE, "the second short-token delivery", || async { (accepted(&state) >= 23).then_some(()) }).await;
    assert_eq!(issued(&state, "cid-short"), 2, "the expired token was replaced before it was sent");
    let short_attempts = attempts(&stack, &short).await;
    assert!(short_attempts.len() == 2 && short_attempts.iter().all(|a| a["status_code"] == 200), "each delivered at its first attempt: {short_attempts:?}");

    // A wrong client secret: the token endpoint refuses, the attempt says `auth`, and the
    // endpoint never sees a request of it.
    let refused_before = state.lock().unwrap().refused;
    stack.publish("evt-wrong", "project.created", json!({"to": "wrong"})).await;
    let failed = eventually(DEADLINE, "the failed attempt of the wrong secret", || async { attempts(&stack, &wrong).await.into_iter().next() }).await;
    assert_eq!(failed["error_class"], "auth", "{failed}");
    assert!(failed["status_code"].is_null(), "no POST was made: {failed}");
    let message = failed["error_message"].as_str().unwrap();
    assert!(message.contains("401") && message.contains("invalid_client") && !message.contains("not-the-secret"), "{message}");
    assert_eq!(state.lock().unwrap().refused, refused_before);
    assert_eq!(issued(&state, "cid"), 2, "no token for the wrong secret");
}

/// An HTTPS server requiring client certificates issued by `ca.pem`; it writes one JSON line per
/// request it answered (with the client certificate's subject) to `requests.jsonl`.
const TLS_RECEIVER: &str = r#"
import http.server, json, ssl, sys
d = sys.argv[1]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(f"{d}/server.pem", f"{d}/server.key")
ctx.load_verify_locations(f"{d}/ca.pem")
ctx.verify_mode = ssl.CERT_REQUIRED
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        subject = dict(x[0] for x in self.connection.getpeercert()["subject"])
        with open(f"{d}/requests.jsonl", "a") as f:
            f.write(json.dumps({"webhook_id": self.headers["webhook-id"], "client": subject.get("commonName")}) + "\n")
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
s.socket = ctx.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// Stops the receiver by its PID when the test ends, also on failure.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_deliveries_present_our_client_certificate_and_pin_the_receivers_ca() {
    let dir = e2e::tls::tempdir("mtls");
    let pem = e2e::tls::certificates(&dir);
    let mut child = Command::new("python3").arg("-c").arg(TLS_RECEIVER).arg(&dir).stdout(Stdio::piped()).spawn().expect("python3 on PATH");
    let mut port = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut port).unwrap();
    let _receiver = Killed(child);
    let url = format!("https://127.0.0.1:{}/hook", port.trim());

    let stack = TestStack::start(StackOptions::default()).await;
    let sub = |to: &str, tls: Value| json!({"url": url, "events": ["project.created"], "filter": {"data.to": to}, "tls": tls});
    let with_cert = subscribe(&stack, sub("cert", json!({"client_certificate": pem["client.pem"], "client_key": pem["client.key"], "ca_certificates": pem["ca.pem"]}))).await;
    let without = subscribe(&stack, sub("none", json!({"ca_certificates": pem["ca.pem"]}))).await;
    let wrong_pin = subscribe(&stack, sub("pin", json!({"client_certificate": pem["client.pem"], "client_key": pem["client.key"], "ca_certificates": pem["other-ca.pem"]}))).await;

    // Shown: the certificate by fingerprint, never the key.
    let (_, shown) = stack.call("GET", &format!("/v1/subscriptions/{with_cert}"), None).await;
    assert_eq!(shown["tls"]["ca_certificates"], 1, "{shown}");
    assert_eq!(shown["tls"]["client_certificate_sha256"].as_str().map(str::len), Some(64), "{shown}");
    assert!(!shown.to_string().contains("PRIVATE KEY"), "{shown}");
    // A key that is not PEM is refused at create, naming the field.
    let (status, problem) = stack.call("POST", "/v1/subscriptions", Some(sub("x", json!({"client_certificate": pem["client.pem"], "client_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"})))).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("tls.client_key")), "{problem}");

    for to in ["cert", "none", "pin"] {
        stack.publish(&format!("evt-mtls-{to}"), "project.created", json!({"to": to})).await;
    }
    let requests = || std::fs::read_to_string(dir.join("requests.jsonl")).unwrap_or_default();
    eventually(DEADLINE, "the delivery with our client certificate", || async { requests().lines().next().map(str::to_owned) }).await;
    let first: Value = serde_json::from_str(requests().lines().next().unwrap()).unwrap();
    assert_eq!(first["client"], "webhooks client", "the receiver saw our certificate");
    let (_, page) = stack.call("GET", &format!("/v1/subscriptions/{with_cert}/deliveries"), None).await;
    assert_eq!(page["data"][0]["status"], "delivered", "{page}");

    for (sub, why) in [(&without, "without a client certificate"), (&wrong_pin, "a pin the receiver's certificate does not match")] {
        let failed = eventually(DEADLINE, why, || async { attempts(&stack, sub).await.into_iter().next() }).await;
        assert_eq!(failed["error_class"], "tls", "{why}: {failed}");
    }
    assert_eq!(requests().lines().count(), 1, "only the delivery with our certificate was answered: {}", requests());
}
