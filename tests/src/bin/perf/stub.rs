//! A minimal Lambda Runtime API (2018-06-01) on loopback: records the first `GET …/next`, serves
//! at most one event, records the response or error, holds further `next` calls open.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct St {
    first_next: Mutex<Option<Instant>>,
    event: Mutex<Option<String>>,
    response: Mutex<Option<(Instant, String)>>,
    error: Mutex<Option<String>>,
    closing: AtomicBool,
}

pub struct Stub {
    pub addr: SocketAddr,
    st: Arc<St>,
    task: tokio::task::JoinHandle<()>,
}

impl Stub {
    pub async fn start(event: Option<String>) -> Stub {
        let st = Arc::new(St { event: Mutex::new(event), ..Default::default() });
        let app = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(error))
            .with_state(st.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind stub");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Stub { addr, st, task }
    }

    pub async fn first_next(&self, timeout: Duration) -> Option<Instant> {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if let Some(t) = *self.st.first_next.lock().unwrap() {
                return Some(t);
            }
            if self.st.error.lock().unwrap().is_some() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        None
    }

    pub async fn response(&self, timeout: Duration) -> Result<(Instant, String), String> {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if let Some(r) = self.st.response.lock().unwrap().clone() {
                return Ok(r);
            }
            if let Some(e) = self.st.error.lock().unwrap().clone() {
                return Err(e);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Err(format!("no response within {timeout:?}"))
    }

    pub fn error(&self) -> Option<String> {
        self.st.error.lock().unwrap().clone()
    }

    pub fn stop(self) {
        self.st.closing.store(true, Ordering::SeqCst);
        self.task.abort();
    }
}

async fn next(State(st): State<Arc<St>>) -> Response {
    st.first_next.lock().unwrap().get_or_insert_with(Instant::now);
    let event = st.event.lock().unwrap().take();
    if let Some(ev) = event {
        let deadline = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000 + 900_000).to_string();
        return (
            [
                ("lambda-runtime-aws-request-id", "8476a536-e9f4-11e8-9739-2dfe598c3fcd".to_owned()),
                ("lambda-runtime-deadline-ms", deadline),
                ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:000000000000:function:perf-delivery".to_owned()),
                ("lambda-runtime-trace-id", "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1".to_owned()),
            ],
            ev,
        )
            .into_response();
    }
    while !st.closing.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    StatusCode::SERVICE_UNAVAILABLE.into_response()
}

async fn response(State(st): State<Arc<St>>, body: String) -> StatusCode {
    *st.response.lock().unwrap() = Some((Instant::now(), body));
    StatusCode::ACCEPTED
}

async fn error(State(st): State<Arc<St>>, body: String) -> StatusCode {
    *st.error.lock().unwrap() = Some(body);
    StatusCode::ACCEPTED
}
