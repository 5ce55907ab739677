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
/// `reset` drop the connection without an answer, otherwise 200.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    pub fail: f64,
    pub hang: f64,
    pub reset: f64,
    pub hang_for: Duration,
}

#[derive(Default)]
struct Inner {
    /// webhook-id → when it was first processed (answered 2xx).
    processed: HashMap<String, Instant>,
    duplicates: u64,
    requests: u64,
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
}

impl Drop for ChaosReceiver {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

async fn handle(State((inner, p)): State<(Arc<Mutex<Inner>>, Profile)>, headers: HeaderMap) -> StatusCode {
    inner.lock().unwrap().requests += 1;
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
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut g = inner.lock().unwrap();
    match g.processed.entry(id) {
        std::collections::hash_map::Entry::Occupied(_) => g.duplicates += 1,
        std::collections::hash_map::Entry::Vacant(v) => {
            v.insert(Instant::now());
        }
    }
    StatusCode::OK
}
