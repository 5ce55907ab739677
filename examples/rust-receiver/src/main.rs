//! A webhook receiver that verifies deliveries with `shared::signing::verify` (`v1`, HMAC), or, for
//! a `v1a` subscription, with `ed25519-dalek` and the subscription's public key.
//!
//!     WEBHOOK_SECRET=whsec_... PORT=8000 cargo run -p rust-receiver       # POST http://127.0.0.1:8000/webhook
//!     WEBHOOK_PUBLIC_KEY=whpk_... PORT=8000 cargo run -p rust-receiver   # v1a: instead of WEBHOOK_SECRET

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use shared::signing::{verify, Secret, DEFAULT_TOLERANCE_SECS};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// What the receiver verifies with: one of the two, as the subscription's `signature.scheme` says.
enum Key {
    /// `v1`: the signing secret, `whsec_...`.
    Secret(Secret),
    /// `v1a`: the public key shown as `signature.public_key`, `whpk_...`.
    PublicKey(String),
}

struct App {
    key: Key,
    /// webhook-ids already accepted; in production a unique key in your database.
    seen: Mutex<HashSet<String>>,
}

#[tokio::main]
async fn main() {
    let key = match std::env::var("WEBHOOK_PUBLIC_KEY") {
        Ok(public_key) => {
            assert!(parse_public_key(&public_key).is_some(), "WEBHOOK_PUBLIC_KEY is whpk_ + base64 of 32 bytes");
            Key::PublicKey(public_key)
        }
        Err(_) => {
            let secret = std::env::var("WEBHOOK_SECRET")
                .expect("set WEBHOOK_SECRET to the whsec_... secret (or WEBHOOK_PUBLIC_KEY to the whpk_... key)");
            Key::Secret(Secret::parse(&secret).expect("WEBHOOK_SECRET is whsec_ + base64"))
        }
    };
    let port = std::env::var("PORT").unwrap_or_else(|_| "8000".into());
    let app = Arc::new(App { key, seen: Mutex::default() });
    let router = Router::new().route("/webhook", post(receive)).with_state(app);
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await.expect("bind");
    axum::serve(listener, router).await.expect("serve");
}

/// `Bytes` is the raw body: verify exactly what arrived, before parsing it.
async fn receive(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let (id, ts, sigs) = (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
    match &app.key {
        Key::Secret(secret) => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            if let Err(e) = verify(secret, id, ts, sigs, &body, now, DEFAULT_TOLERANCE_SECS) {
                println!("rejected: {e}");
                return StatusCode::BAD_REQUEST;
            }
        }
        Key::PublicKey(public_key) => {
            if !verify_v1a(public_key, id, ts, sigs, &body) {
                println!("rejected: no valid v1a signature, or the timestamp is too old or too new");
                return StatusCode::BAD_REQUEST;
            }
        }
    }
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    // The same webhook-id arrives again on a retry: accept it, process it once.
    if app.seen.lock().unwrap().insert(id.to_owned()) {
        let id = id.to_owned();
        // Answer now (within 15 s) and process in the background.
        tokio::spawn(async move {
            let field = |k: &str| event[k].as_str().unwrap_or_default().to_owned();
            println!("verified {id} {} {}", field("event_type"), field("event_id"));
        });
    }
    StatusCode::NO_CONTENT
}

/// Standard Webhooks `v1a` (ed25519), with `ed25519-dalek` only: true if the timestamp is within
/// 5 minutes of this clock and any space-separated `v1a,<base64 of the 64-byte signature>` entry
/// of `webhook-signature` verifies over `{webhook-id}.{webhook-timestamp}.{raw body}` with the
/// public key `whpk_` + base64 of its 32 raw bytes. Other entries (the `v1,` one while a
/// subscription migrates from v1 to v1a) are ignored; two `v1a,` ones during a rotation: either
/// may match.
fn verify_v1a(public_key_whpk: &str, id: &str, ts: &str, signatures: &str, body: &[u8]) -> bool {
    let Some(public_key) = parse_public_key(public_key_whpk) else {
        return false;
    };
    let Ok(timestamp) = ts.parse::<i64>() else {
        return false;
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if id.is_empty() || now.abs_diff(timestamp) > DEFAULT_TOLERANCE_SECS.unsigned_abs() {
        return false;
    }
    let signed = [id.as_bytes(), b".", ts.as_bytes(), b".", body].concat();
    signatures.split(' ').filter_map(|entry| entry.strip_prefix("v1a,")).any(|b64| {
        let Some(bytes) = STANDARD.decode(b64).ok().and_then(|raw| <[u8; 64]>::try_from(raw).ok()) else {
            return false;
        };
        public_key.verify_strict(&signed, &Signature::from_bytes(&bytes)).is_ok()
    })
}

/// `whpk_` + standard base64 of the 32-byte ed25519 public key.
fn parse_public_key(whpk: &str) -> Option<VerifyingKey> {
    let raw = STANDARD.decode(whpk.strip_prefix("whpk_")?).ok()?;
    VerifyingKey::from_bytes(&<[u8; 32]>::try_from(raw).ok()?).ok()
}
