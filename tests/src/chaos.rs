//! A misbehaving receiver for chaos tests, and one that deduplicates like a careful customer:
//! it processes each `webhook-id` once and counts the duplicates it was sent.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use rand::Rng;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Per request: `fail` answer 500, `hang` wait past the delivery timeout then answer 503,
/// `reset` drop the connection without an answer, otherwise 200. With `fail_first`, the first
/// request of each webhook-id is answered 500 whatever the roll (so every delivery retries).
#[derive(Debug, Clone, Copy, Default)]
pub struct Profile {
    pub fail: f64,
    pub hang: f64,
    pub reset: f64,
    pub hang_for: Duration,
    pub fail_first: bool,
}

impl Profile {
    /// Answers 200 to everything.
    pub const OK: Profile = Profile { fail: 0.0, hang: 0.0, reset: 0.0, hang_for: Duration::ZERO, fail_first: false };
}

#[derive(Default)]
struct Inner {
    /// webhook-id → when it was first processed (answered 2xx).
    processed: HashMap<String, Instant>,
    /// 2xx answers for an id already processed (what dedup saved the customer from).
    duplicates: u64,
    requests: u64,
    /// Requests per webhook-id.
    seen: HashMap<String, u64>,
}

#[derive(Clone)]
pub struct ChaosReceiver {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl ChaosReceiver {
    pub async fn start(profile: Profile) -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().route("/hook", post(handle)).with_state((inner.clone(), profile));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, inner, task: Arc::new(task) }
    }

    /// webhook-ids processed (once each) and when.
    pub fn processed(&self) -> HashMap<String, Instant> {
        self.inner.lock().unwrap().processed.clone()
    }

    /// 2xx answers for an id already processed (what dedup saved the customer from).
    pub fn duplicates(&self) -> u64 {
        self.inner.lock().unwrap().duplicates
    }

    pub fn requests(&self) -> u64 {
        self.inner.lock().unwrap().requests
    }

    /// Requests per webhook-id.
    pub fn seen(&self) -> HashMap<String, u64> {
        self.inner.lock().unwrap().seen.clone()
    }
}

impl Drop for ChaosReceiver {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

async fn handle(State((inner, p)): State<(Arc<Mutex<Inner>>, Profile)>, headers: HeaderMap) -> StatusCode {
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let first = {
        let mut g = inner.lock().unwrap();
        g.requests += 1;
        let n = g.seen.entry(id.clone()).or_default();
        *n += 1;
        *n == 1
    };
    if p.fail_first && first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let roll: f64 = rand::thread_rng().gen();
    if roll < p.fail {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    if roll < p.fail + p.hang {
        tokio::time::sleep(p.hang_for).await;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if roll < p.fail + p.hang + p.reset {
        // Ends this connection's task: the client sees the connection close with no response.
        std::panic::resume_unwind(Box::new("chaos: connection reset"));
    }
    let mut g = inner.lock().unwrap();
    match g.processed.entry(id) {
        std::collections::hash_map::Entry::Occupied(_) => g.duplicates += 1,
        std::collections::hash_map::Entry::Vacant(v) => {
            v.insert(Instant::now());
        }
    }
    StatusCode::OK
}
