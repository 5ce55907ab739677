//! The loopback receiver: its own OS thread and single-threaded runtime, so its CPU time can be
//! told apart from the sender's. `POST /s/{status}` answers that status with an empty body.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Default)]
struct SinkState {
    count: AtomicU64,
    bytes: AtomicU64,
    recording: AtomicBool,
    seen: Mutex<Vec<(Instant, String)>>,
}

pub struct Sink {
    pub base: String,
    pub tid: u32,
    st: Arc<SinkState>,
}

impl Sink {
    pub fn start() -> Sink {
        let st = Arc::new(SinkState::default());
        let st2 = st.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("receiver".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("receiver runtime");
                rt.block_on(async move {
                    let app = axum::Router::new().route("/s/{code}", axum::routing::post(hook)).with_state(st2);
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
                    tx.send((listener.local_addr().unwrap(), super::procfs::tid())).unwrap();
                    let _ = axum::serve(listener, app).await;
                });
            })
            .expect("receiver thread");
        let (addr, tid) = rx.recv().expect("receiver started");
        Sink { base: format!("http://{addr}"), tid, st }
    }

    pub fn url(&self, status: u16) -> String {
        format!("{}/s/{status}", self.base)
    }

    pub fn count(&self) -> u64 {
        self.st.count.load(Ordering::Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.st.bytes.load(Ordering::Relaxed)
    }

    /// Records (arrival, `webhook-id`) of every request while on.
    pub fn record(&self, on: bool) {
        self.st.seen.lock().unwrap().clear();
        self.st.recording.store(on, Ordering::SeqCst);
    }

    pub fn seen(&self) -> Vec<(Instant, String)> {
        self.st.seen.lock().unwrap().clone()
    }
}

async fn hook(State(st): State<Arc<SinkState>>, Path(code): Path<u16>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = Instant::now();
    st.count.fetch_add(1, Ordering::Relaxed);
    st.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    if st.recording.load(Ordering::Relaxed) {
        if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
            st.seen.lock().unwrap().push((at, id.to_owned()));
        }
    }
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
