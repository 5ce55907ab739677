//! A webhook receiver that verifies deliveries with `shared::signing::verify`.
//!
//!     WEBHOOK_SECRET=whsec_... PORT=8000 cargo run -p rust-receiver   # POST http://127.0.0.1:8000/webhook

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use shared::signing::{verify, Secret, DEFAULT_TOLERANCE_SECS};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

struct App {
    secret: Secret,
    /// webhook-ids already accepted; in production a unique key in your database.
    seen: Mutex<HashSet<String>>,
}

#[tokio::main]
async fn main() {
    let secret = std::env::var("WEBHOOK_SECRET").expect("set WEBHOOK_SECRET to the whsec_... secret");
    let secret = Secret::parse(&secret).expect("WEBHOOK_SECRET is whsec_ + base64");
    let port = std::env::var("PORT").unwrap_or_else(|_| "8000".into());
    let app = Arc::new(App { secret, seen: Mutex::default() });
    let router = Router::new().route("/webhook", post(receive)).with_state(app);
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await.expect("bind");
    axum::serve(listener, router).await.expect("serve");
}

/// `Bytes` is the raw body: verify exactly what arrived, before parsing it.
async fn receive(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let (id, ts, sigs) = (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if let Err(e) = verify(&app.secret, id, ts, sigs, &body, now, DEFAULT_TOLERANCE_SECS) {
        println!("rejected: {e}");
        return StatusCode::BAD_REQUEST;
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
