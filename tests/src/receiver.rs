//! A real HTTP receiver on 127.0.0.1 that records every request and answers from a script.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// How long to wait before answering (to exceed the delivery timeout, say).
    pub delay: Duration,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self { status, delay: Duration::ZERO, headers: Vec::new() }
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

struct Inner {
    received: Vec<Received>,
    script: VecDeque<Reply>,
    fallback: Reply,
    /// Answers completed (a hung request is received but not yet answered).
    answered: usize,
    /// Each request waits here until this many have arrived (to make POSTs overlap).
    gate: Option<Arc<tokio::sync::Barrier>>,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    /// Starts a receiver answering `script` in order, then `fallback` forever.
    pub async fn start(script: Vec<Reply>, fallback: Reply) -> Self {
        Self::with_gate(script, fallback, None).await
    }

    /// Holds each request until `n` have arrived, then answers `status` to all.
    pub async fn gated(n: usize, status: u16) -> Self {
        Self::with_gate(Vec::new(), Reply::status(status), Some(Arc::new(tokio::sync::Barrier::new(n)))).await
    }

    async fn with_gate(script: Vec<Reply>, fallback: Reply, gate: Option<Arc<tokio::sync::Barrier>>) -> Self {
        let inner = Arc::new(Mutex::new(Inner { received: Vec::new(), script: script.into(), fallback, answered: 0, gate }));
        let app = Router::new().route("/hook", post(record)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, inner, task: Arc::new(task) }
    }

    /// Answers these statuses in order, then `fallback`.
    pub async fn statuses(script: &[u16], fallback: u16) -> Self {
        Self::start(script.iter().map(|s| Reply::status(*s)).collect(), Reply::status(fallback)).await
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    pub fn answered(&self) -> usize {
        self.inner.lock().unwrap().answered
    }

    /// From now on, answers `status` once the script is used up.
    pub fn set_fallback(&self, status: u16) {
        self.inner.lock().unwrap().fallback = Reply::status(status);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

async fn record(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> Response {
    let (reply, gate) = {
        let mut g = inner.lock().unwrap();
        g.received.push(Received { at: Instant::now(), headers, body });
        let fallback = g.fallback.clone();
        (g.script.pop_front().unwrap_or(fallback), g.gate.clone())
    };
    if let Some(gate) = gate {
        gate.wait().await;
    }
    tokio::time::sleep(reply.delay).await;
    inner.lock().unwrap().answered += 1;
    let mut resp = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR).into_response();
    for (name, value) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(HeaderName::from_static(name), v);
        }
    }
    resp
}
