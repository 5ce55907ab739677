//! Performance figures of the webhook service, each printed by one command (docs/performance.md).
//!
//! One file of ~2,300 lines on purpose for now: every figure shares the meters, the sink and the
//! stacks below, and splitting it into a module per figure is issue 21's (house-keeping) step.
//!
//! ```sh
//! scripts/perf.sh [--quick]                                  # starts its own LocalStack (port 45684)
//! cargo run --release -p e2e --bin perf -- [--quick] [--only 1,2,7]   # with AWS_ENDPOINT_URL set
//! ```
//!
//! 1. delivery overhead vs a bare reqwest POST (in-process, loopback receiver, in-memory adapters)
//! 2. AWS calls, SQS billed requests and DynamoDB capacity units per delivery (LocalStack)
//! 3. cost per million deliveries at us-east-1 list prices (from 1 and 2)
//! 4. bootstrap sizes and cold start to the first `GET …/invocation/next` (runtime API stub)
//! 5. peak RSS of the delivery bootstrap delivering 10 × 256 KB events
//! 6. fan-out of one event to 1 … 1,000 subscriptions (LocalStack)
//! 7. end to end: events/s and publish-to-receipt latency, LocalStack beside in-memory adapters
//!
//! Ratios are measured side by side in the same run; nothing here asserts on time.

use aws_sdk_dynamodb::config::interceptors::{AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity, ReturnValue};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, SendMessageBatchRequestEntry};
use futures::StreamExt;
use serde_json::{json, Value};
use shared::adapters::calls::CallCounter;
use shared::adapters::{dynamodb as ddb_adapters, sqs as sqs_adapters};
use shared::adapters::dynamodb::item_size;
use shared::ids::{DeliveryId, EventSource, TenantId};
use shared::model::{Scope, Subscription, TenantRecord};
use shared::{Config, Deps};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

// ------------------------------------------------------------------------------------------------
// Plan and arguments

struct Args {
    quick: bool,
    only: Option<Vec<u32>>,
    child: Option<String>,
    logs: bool,
    n: usize,
    rounds: usize,
}

impl Args {
    fn parse() -> Self {
        let mut a = Args { quick: false, only: None, child: None, logs: false, n: 0, rounds: 0 };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--quick" => a.quick = true,
                "--only" => a.only = it.next().map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect()),
                "--child" => a.child = it.next(),
                "--logs" => a.logs = true,
                "--n" => a.n = it.next().and_then(|v| v.parse().ok()).unwrap_or(0),
                "--rounds" => a.rounds = it.next().and_then(|v| v.parse().ok()).unwrap_or(0),
                "-h" | "--help" => {
                    println!("usage: perf [--quick] [--only 1,2,...]   (figures 2-7 need AWS_ENDPOINT_URL: see scripts/perf.sh)");
                    std::process::exit(0);
                }
                other => {
                    eprintln!("perf: unknown argument {other}");
                    std::process::exit(2);
                }
            }
        }
        a
    }

    fn wants(&self, fig: u32) -> bool {
        self.only.as_ref().is_none_or(|o| o.contains(&fig))
    }
}

/// How much work each figure does (`--quick` shrinks the message counts).
struct Plan {
    quick: bool,
    f1_n: usize,
    f1_rounds: usize,
    f2_events_one: usize,
    f2_events_ten: usize,
    f2_failing: usize,
    f4_runs: usize,
    f6_sizes: Vec<usize>,
    f7_burst: usize,
    f7_rate: f64,
    f7_secs: f64,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Plan { quick, f1_n: 500, f1_rounds: 3, f2_events_one: 200, f2_events_ten: 20, f2_failing: 50, f4_runs: 5, f6_sizes: vec![1, 10, 100, 1000], f7_burst: 200, f7_rate: 20.0, f7_secs: 5.0 }
        } else {
            Plan { quick, f1_n: 2000, f1_rounds: 5, f2_events_one: 1000, f2_events_ten: 100, f2_failing: 200, f4_runs: 9, f6_sizes: vec![1, 10, 100, 1000], f7_burst: 1000, f7_rate: 20.0, f7_secs: 10.0 }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Prices (us-east-1, public list prices, on-demand, no free tier)

const REGION: &str = "us-east-1";
const LAMBDA_PER_REQUEST: f64 = 0.20 / 1e6;
const LAMBDA_PER_GB_S: f64 = 0.000_016_666_7; // x86_64
const LAMBDA_MEMORY_GB: f64 = 128.0 / 1024.0;
/// Lambda gives a full vCPU at 1,769 MB; 128 MB gets 128/1769 of one.
const LAMBDA_CPU_STRETCH: f64 = 1769.0 / 128.0;
const SQS_PER_REQUEST: f64 = 0.40 / 1e6; // standard queue, per 64 KB chunk
const DDB_PER_WRU: f64 = 0.625 / 1e6; // on-demand
const DDB_PER_RRU: f64 = 0.125 / 1e6;
const APIGW_HTTP_PER_REQUEST: f64 = 1.00 / 1e6; // HTTP API, first 300 M
const CW_LOGS_PER_GB: f64 = 0.50;
const DDB_STORAGE_PER_GB_MONTH: f64 = 0.25;
const DDB_PITR_PER_GB_MONTH: f64 = 0.20;
/// Management API requests per delivery assumed for the cost (a log read per 100 deliveries).
const API_REQUESTS_PER_DELIVERY: f64 = 0.01;
/// START/END/REPORT platform log lines per invocation (estimate).
const PLATFORM_LOG_BYTES: f64 = 300.0;

// ------------------------------------------------------------------------------------------------
// Child processes we start: killed by PID if the benchmark panics (release builds abort on panic).

static TRACKED: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn track(pid: u32) {
    TRACKED.lock().unwrap().push(pid);
}

fn untrack(pid: u32) {
    TRACKED.lock().unwrap().retain(|p| *p != pid);
}

fn install_panic_cleanup() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Ok(pids) = TRACKED.try_lock() {
            for pid in pids.iter() {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
        }
        default(info);
    }));
}

// ------------------------------------------------------------------------------------------------
// /proc: CPU time per thread (schedstat, ns) and of the process (utime+stime), memory.

mod procfs {
    use std::collections::HashMap;

    pub fn tid() -> u32 {
        std::fs::read_link("/proc/thread-self")
            .ok()
            .and_then(|p| p.file_name().and_then(|s| s.to_str()).and_then(|s| s.parse().ok()))
            .unwrap_or(0)
    }

    fn thread_ns(tid: u32) -> u64 {
        std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
            .unwrap_or(0)
    }

    fn threads() -> HashMap<u32, u64> {
        let mut out = HashMap::new();
        if let Ok(rd) = std::fs::read_dir("/proc/self/task") {
            for e in rd.flatten() {
                if let Some(tid) = e.file_name().to_str().and_then(|s| s.parse().ok()) {
                    out.insert(tid, thread_ns(tid));
                }
            }
        }
        out
    }

    /// utime + stime of the whole process, exited threads included (what getrusage reports), in
    /// ns; the kernel counts it in clock ticks (10 ms).
    pub fn process_ns() -> u64 {
        let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let rest = s.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        (field(11) + field(12)) * 10_000_000
    }

    pub fn status_kb(pid: u32, key: &str) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
    }

    #[derive(Debug, Clone, Copy, Default)]
    pub struct CpuDelta {
        /// Every thread but the excluded one (the loopback receiver), ns.
        pub client_ns: u64,
        /// The excluded thread, ns.
        pub excluded_ns: u64,
        /// utime+stime of the process, ns (10 ms resolution).
        pub process_ns: u64,
    }

    pub struct Snap {
        threads: HashMap<u32, u64>,
        process: u64,
    }

    impl Snap {
        pub fn now() -> Self {
            Self { threads: threads(), process: process_ns() }
        }

        pub fn since(&self, exclude: u32) -> CpuDelta {
            let mut d = CpuDelta { process_ns: process_ns().saturating_sub(self.process), ..Default::default() };
            for (tid, ns) in threads() {
                let delta = ns.saturating_sub(*self.threads.get(&tid).unwrap_or(&0));
                if tid == exclude {
                    d.excluded_ns += delta;
                } else {
                    d.client_ns += delta;
                }
            }
            d
        }
    }
}

use procfs::CpuDelta;

// ------------------------------------------------------------------------------------------------
// The loopback receiver: its own OS thread and single-threaded runtime, so its CPU time can be
// told apart from the sender's. `POST /s/{status}` answers that status with an empty body.

mod sink {
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
}

use sink::Sink;

// ------------------------------------------------------------------------------------------------
// SQS events as Lambda delivers them (JSON), decoded by the handler call as lambda_runtime does.

mod lambda {
    use super::*;

    const FAKE_ARN_EVENTS: &str = "arn:aws:sqs:us-east-1:000000000000:EventsQueue";
    const FAKE_ARN_DELIVERY: &str = "arn:aws:sqs:us-east-1:000000000000:DeliveryQueue";

    /// A record of the shape the SQS event source mapping sends (receipt handles are ~400 chars).
    pub fn record(i: usize, body: &str, receive: u32, delivery: bool) -> Value {
        json!({
            "messageId": format!("{:08x}-5e1d-4c6e-9b1f-{:012x}", i, i),
            "receiptHandle": format!("AQEB{i:016x}{}", "Zm9vYmFy".repeat(48)),
            "body": body,
            "attributes": {
                "ApproximateReceiveCount": receive.to_string(),
                "SentTimestamp": "1795341600000",
                "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                "ApproximateFirstReceiveTimestamp": "1795341600010"
            },
            "messageAttributes": {},
            "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
            "eventSource": "aws:sqs",
            "eventSourceARN": if delivery { FAKE_ARN_DELIVERY } else { FAKE_ARN_EVENTS },
            "awsRegion": "us-east-1"
        })
    }

    /// The record Lambda would build from a received message (as the runner's poller does).
    pub fn record_from_sdk(m: &Message, queue_url: &str) -> Value {
        let attrs: serde_json::Map<String, Value> =
            m.attributes.as_ref().map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v))).collect()).unwrap_or_default();
        json!({
            "messageId": m.message_id, "receiptHandle": m.receipt_handle, "body": m.body,
            "md5OfBody": m.md5_of_body, "attributes": attrs, "messageAttributes": {},
            "eventSource": "aws:sqs", "eventSourceARN": queue_url, "awsRegion": "us-east-1"
        })
    }

    pub fn event(records: Vec<Value>) -> String {
        json!({ "Records": records }).to_string()
    }

    /// Decode + `delivery::handle_batch` + encode the response: what the Lambda does per batch.
    /// Returns the ids reported as batch item failures.
    pub async fn delivery(event_json: &str, deps: &Deps) -> Vec<String> {
        let event = serde_json::from_str(event_json).expect("an SqsEvent");
        let resp = shared::delivery::handle_batch(event, deps).await;
        let _ = std::hint::black_box(serde_json::to_vec(&resp));
        resp.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
    }

    pub async fn fanout(event_json: &str, deps: &Deps) -> Vec<String> {
        let event = serde_json::from_str(event_json).expect("an SqsEvent");
        let resp = shared::fanout::handle_batch(event, deps).await;
        let _ = std::hint::black_box(serde_json::to_vec(&resp));
        resp.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
    }
}

/// An upstream envelope of about `data_len` + 160 bytes.
fn envelope(tenant: &str, event_id: &str, data_len: usize) -> String {
    json!({
        "event_id": event_id, "event_type": "project.created", "tenant_id": tenant,
        "occurred_at": "2026-11-22T10:00:00Z",
        "data": {"project_id": "prj_01JDW3K8Q4", "name": "Perf", "notes": "x".repeat(data_len)}
    })
    .to_string()
}

/// The `occurred_at` of every [`envelope`].
fn envelope_time() -> OffsetDateTime {
    time::macros::datetime!(2026-11-22 10:00 UTC)
}

/// Typical webhook body: ~1 KB.
const DATA_LEN: usize = 860;

fn memory_config(extra: &[(&str, &str)]) -> Config {
    let extra: HashMap<String, String> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_lookup(|k| match extra.get(k) {
        Some(v) => Some(v.clone()),
        None if k.ends_with("_TABLE") || k.ends_with("_URL") => Some(format!("mem-{k}")),
        None => None,
    })
    .expect("memory config")
}

async fn memory_tenant(deps: &Deps, tenant: &str, url: &str) -> Subscription {
    let t = TenantId::parse(tenant).unwrap();
    let now = OffsetDateTime::now_utc();
    deps.tenants.register(&TenantRecord { tenant_id: t.clone(), created_at: now }).await.unwrap();
    let sub = Subscription::new(t, url.to_owned(), vec!["project.*".into()], now);
    deps.subscriptions.create(&sub, usize::MAX).await.unwrap();
    sub
}

// ------------------------------------------------------------------------------------------------
// Small statistics helpers

fn median(v: &[f64]) -> f64 {
    percentile(v, 50.0)
}

fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn verdict(value: f64, goal: f64) -> &'static str {
    if value <= goal {
        "OK"
    } else if value <= goal * 1.5 {
        "NEAR"
    } else {
        "FAR"
    }
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn section(title: &str) {
    println!("\n== {title}");
}

// ------------------------------------------------------------------------------------------------
// Figure 1: overhead of the delivery path over a bare POST (child process, so that Lambda's
// logging — JSON lines and EMF on stdout — can be switched on and its bytes counted).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Bare,
    Sender,
    Full,
}

impl Variant {
    fn key(self) -> &'static str {
        match self {
            Variant::Bare => "a",
            Variant::Sender => "c",
            Variant::Full => "b",
        }
    }
}

fn child_marker(phase: &str) {
    println!("@@perf-phase {phase}");
    let _ = std::io::stdout().flush();
}

fn child_overhead(args: &Args) {
    if args.logs {
        // As the Lambda binaries: JSON lines (AWS_LAMBDA_FUNCTION_NAME is set by the parent) and
        // EMF (METRICS=emf), both on stdout, which the parent reads and counts.
        shared::telemetry::init();
    }
    let (n, rounds) = (args.n.max(10) / 10 * 10, args.rounds.max(1));
    let sink = Sink::start();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let config = memory_config(&[("RETRY_SCHEDULE", "1"), ("ALLOW_HTTP", "true"), ("ALLOW_PRIVATE_TARGETS", "true")]);
        let (deps, queues) = Deps::memory(config);
        let url = sink.url(200);
        let sub = memory_tenant(&deps, "acme", &url).await;
        let total = (rounds + 1) * n;

        // The deliveries: fanned out through the fan-out handler (its log bytes are counted too).
        child_marker("fanout");
        let mut i = 0;
        while i < total {
            let recs = (i..(i + 10).min(total)).map(|k| lambda::record(k, &envelope("acme", &format!("evt-{k:07}"), DATA_LEN), 1, false)).collect();
            assert!(lambda::fanout(&lambda::event(recs), &deps).await.is_empty());
            i += 10;
        }
        child_marker("idle");
        let tasks = std::mem::take(&mut *queues.deliveries.lock().unwrap());
        assert_eq!(tasks.len(), total);
        let batches: Vec<String> = tasks
            .chunks(10)
            .enumerate()
            .map(|(b, c)| lambda::event(c.iter().enumerate().map(|(j, t)| lambda::record(b * 10 + j, &serde_json::to_string(t).unwrap(), 1, true)).collect()))
            .collect();
        let body = tasks[0].deliver().body.get().to_owned();
        let _ = &sub;

        let bare = reqwest::Client::new();
        let sender = shared::delivery::http::HttpSender::new(Duration::from_secs(15), true, true);
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in [
            ("content-type", "application/json".to_owned()),
            ("webhook-id", format!("dlv_{}", "0f".repeat(16))),
            ("webhook-timestamp", "1795341600".to_owned()),
            ("webhook-signature", format!("v1,{}=", "A".repeat(43))),
            ("x-webhook-signature", format!("sha256={}", "ab".repeat(32))),
            ("x-webhook-event", "project.created".to_owned()),
        ] {
            headers.insert(reqwest::header::HeaderName::from_static(k), v.parse().unwrap());
        }

        let orders = [[Variant::Bare, Variant::Sender, Variant::Full], [Variant::Full, Variant::Bare, Variant::Sender], [Variant::Sender, Variant::Full, Variant::Bare]];
        let mut next_batch = 0;
        let mut results = Vec::new();
        for round in 0..=rounds {
            for v in orders[round % 3] {
                if v == Variant::Full {
                    child_marker("delivery");
                }
                let snap = procfs::Snap::now();
                let t0 = Instant::now();
                match v {
                    Variant::Bare => {
                        for _ in 0..n / 10 {
                            futures::future::join_all((0..10).map(|_| async {
                                let r = bare.post(&url).header(reqwest::header::CONTENT_TYPE, "application/json").body(body.clone()).send().await.expect("bare POST");
                                assert!(r.status().is_success());
                                let _ = r.bytes().await;
                            }))
                            .await;
                        }
                    }
                    Variant::Sender => {
                        for _ in 0..n / 10 {
                            let outs = futures::future::join_all((0..10).map(|_| sender.post(&url, headers.clone(), body.clone().into_bytes()))).await;
                            assert!(outs.iter().all(|o| matches!(o, shared::delivery::http::DeliveryOutcome::Delivered(_))));
                        }
                    }
                    Variant::Full => {
                        for b in &batches[next_batch..next_batch + n / 10] {
                            assert!(lambda::delivery(b, &deps).await.is_empty(), "a delivery failed");
                        }
                        next_batch += n / 10;
                    }
                }
                let wall = t0.elapsed();
                let cpu = snap.since(sink.tid);
                if v == Variant::Full {
                    child_marker("idle");
                }
                if round > 0 {
                    results.push(json!({"v": v.key(), "wall_ns": wall.as_nanos() as u64, "client_ns": cpu.client_ns, "recv_ns": cpu.excluded_ns, "process_ns": cpu.process_ns}));
                }
            }
        }
        let out = json!({"n": n, "rounds": rounds, "events": total, "body_len": body.len(), "results": results, "received": sink.count()});
        println!("@@perf-result {out}");
        let _ = std::io::stdout().flush();
    });
}

#[derive(Debug, Clone, Default)]
struct F1Variant {
    cpu_us: f64,
    wall_us: f64,
    recv_us: f64,
}

#[derive(Debug, Clone, Default)]
struct F1 {
    logs: bool,
    n: usize,
    rounds: usize,
    body_len: usize,
    a: F1Variant,
    c: F1Variant,
    b: F1Variant,
    cpu_ratio: f64,
    wall_ratio: f64,
    cpu_ratio_rounds: Vec<f64>,
    log_bytes_per_delivery: f64,
    log_bytes_per_event: f64,
    cpu_check: String,
}

fn fig1_child(plan: &Plan, logs: bool) -> Result<F1, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    cmd.args(["--child", "overhead", "--n", &plan.f1_n.to_string(), "--rounds", &plan.f1_rounds.to_string()]);
    for k in ["RUST_LOG", "METRICS", "AWS_LAMBDA_FUNCTION_NAME"] {
        cmd.env_remove(k);
    }
    if logs {
        cmd.arg("--logs").env("AWS_LAMBDA_FUNCTION_NAME", "perf-delivery").env("METRICS", "emf");
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    track(child.id());
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut phase = String::from("setup");
    let mut bytes: HashMap<String, u64> = HashMap::new();
    let mut result: Option<Value> = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        let k = reader.read_until(b'\n', &mut line).map_err(|e| e.to_string())?;
        if k == 0 {
            break;
        }
        if let Some(rest) = line.strip_prefix(b"@@perf-phase ") {
            phase = String::from_utf8_lossy(rest).trim().to_owned();
        } else if let Some(rest) = line.strip_prefix(b"@@perf-result ") {
            result = serde_json::from_slice(rest).ok();
        } else {
            *bytes.entry(phase.clone()).or_default() += k as u64;
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    untrack(child.id());
    let r = result.ok_or_else(|| format!("figure 1 child ended without a result ({status})"))?;
    let n = r["n"].as_u64().unwrap_or(0) as usize;
    let rounds = r["rounds"].as_u64().unwrap_or(0) as usize;
    let events = r["events"].as_u64().unwrap_or(1) as f64;
    let rows = r["results"].as_array().cloned().unwrap_or_default();
    let per = |key: &str, field: &str| -> Vec<f64> {
        rows.iter().filter(|x| x["v"] == key).map(|x| x[field].as_f64().unwrap_or(0.0) / 1000.0 / n as f64).collect()
    };
    let variant = |key: &str| F1Variant { cpu_us: median(&per(key, "client_ns")), wall_us: median(&per(key, "wall_ns")), recv_us: median(&per(key, "recv_ns")) };
    let (a, b, c) = (variant("a"), variant("b"), variant("c"));
    let ratios: Vec<f64> = per("b", "client_ns").iter().zip(per("a", "client_ns")).map(|(b, a)| b / a).collect();
    // Cross-check of the per-thread clock against the process's utime+stime (10 ms ticks).
    let sched: f64 = rows.iter().map(|x| x["client_ns"].as_f64().unwrap_or(0.0) + x["recv_ns"].as_f64().unwrap_or(0.0)).sum();
    let ticks: f64 = rows.iter().map(|x| x["process_ns"].as_f64().unwrap_or(0.0)).sum();
    Ok(F1 {
        logs,
        n,
        rounds,
        body_len: r["body_len"].as_u64().unwrap_or(0) as usize,
        cpu_ratio: b.cpu_us / a.cpu_us,
        wall_ratio: b.wall_us / a.wall_us,
        cpu_ratio_rounds: ratios,
        a,
        b,
        c,
        log_bytes_per_delivery: *bytes.get("delivery").unwrap_or(&0) as f64 / ((rounds + 1) * n) as f64,
        log_bytes_per_event: *bytes.get("fanout").unwrap_or(&0) as f64 / events,
        cpu_check: format!("schedstat {:.2} s vs utime+stime {:.2} s", sched / 1e9, ticks / 1e9),
    })
}

fn fig1(plan: &Plan) -> Vec<F1> {
    section("Figure 1: delivery overhead vs a bare reqwest POST (one process, loopback receiver, in-memory adapters)");
    let mut out = Vec::new();
    for logs in [false, true] {
        match fig1_child(plan, logs) {
            Ok(f) => out.push(f),
            Err(e) => println!("  figure 1 ({}) failed: {e}", if logs { "logs on" } else { "logs off" }),
        }
    }
    let Some(first) = out.first() else { return out };
    println!(
        "  {} rounds x {} messages per variant (+1 warm-up round), batches of 10 sent concurrently, body {} B, medians per message;",
        first.rounds,
        thousands(first.n),
        first.body_len
    );
    println!("  CPU = all threads of the process except the receiver's (per-thread schedstat); the receiver's CPU is shown apart.");
    println!("  (a) bare reqwest::Client POST + read body   (c) shared HttpSender::post (timeouts, SSRF check, signed headers prebuilt)");
    println!("  (b) decode SqsEvent JSON -> delivery::handle_batch (load delivery/subscription/event, sign, POST, attempt record) -> encode response");
    println!("  {:<34} {:>12} {:>12} {:>14}", "variant", "CPU us/msg", "wall us/msg", "receiver us/msg");
    for f in &out {
        let label = if f.logs { "logs on (Lambda JSON logs + EMF to a pipe)" } else { "logs off (no subscriber, no EMF)" };
        println!("  -- {label}");
        for (name, v) in [("(a) bare reqwest", &f.a), ("(c) HttpSender::post", &f.c), ("(b) full delivery path", &f.b)] {
            println!("  {:<34} {:>12.1} {:>12.1} {:>14.1}", name, v.cpu_us, v.wall_us, v.recv_us);
        }
        println!(
            "  ratio b/a: CPU {:.2}x (per round: {}), wall {:.2}x   [goal <= 1.15x: {}]",
            f.cpu_ratio,
            f.cpu_ratio_rounds.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(" "),
            f.wall_ratio,
            verdict(f.cpu_ratio.max(f.wall_ratio), 1.15)
        );
        println!("  ratio c/a: CPU {:.2}x, wall {:.2}x; b-c (handler logic beyond the HTTP client): {:.1} us CPU/msg", f.c.cpu_us / f.a.cpu_us, f.c.wall_us / f.a.wall_us, f.b.cpu_us - f.c.cpu_us);
        if f.logs {
            println!("  stdout bytes: {:.0} per delivery (JSON log lines + EMF), {:.0} per fanned-out event", f.log_bytes_per_delivery, f.log_bytes_per_event);
        }
        println!("  clock check: {}", f.cpu_check);
    }
    out
}

// ------------------------------------------------------------------------------------------------
// AWS call metering: an SDK interceptor beside shared's CallCounter that also records per
// (operation, table/queue) the consumed capacity DynamoDB (Local) reports, item sizes, and SQS
// billed requests (64 KB chunks).

#[derive(Debug, Default, Clone)]
struct Row {
    calls: u64,
    empty: u64,
    billed: f64,
    wcu: f64,
    wcu_gsi: f64,
    rcu: f64,
    /// Units from item sizes (1 WCU per 1 KB, 1 RCU per 4 KB strongly consistent, half that
    /// eventually consistent; GSI modelled).
    size_units: f64,
    bytes: u64,
    items: u64,
}

type Rows = BTreeMap<(String, String), Row>;

#[derive(Debug, Clone, Default)]
struct Ledger {
    rows: Arc<Mutex<Rows>>,
    names: Arc<HashMap<String, String>>,
}

impl Ledger {
    fn new(config: &Config) -> Self {
        let names = [
            (&config.subscriptions_table, "Subscriptions"),
            (&config.api_keys_table, "ApiKeys"),
            (&config.tenants_table, "Tenants"),
            (&config.events_table, "Events"),
            (&config.deliveries_table, "Deliveries"),
            (&config.delivery_dlq_url, "DeliveryDlq"),
            (&config.events_queue_url, "EventsQueue"),
            (&config.delivery_queue_url, "DeliveryQueue"),
            (&config.events_dlq_url, "EventsDlq"),
        ]
        .into_iter()
        .map(|(k, v)| (k.clone(), v.to_owned()))
        .collect();
        Self { rows: Arc::default(), names: Arc::new(names) }
    }

    fn name(&self, physical: Option<&str>) -> String {
        let p = physical.unwrap_or("?");
        self.names.get(p).cloned().unwrap_or_else(|| p.rsplit('/').next().unwrap_or(p).to_owned())
    }

    fn with(&self, op: &str, target: &str, f: impl FnOnce(&mut Row)) {
        f(self.rows.lock().unwrap().entry((op.to_owned(), target.to_owned())).or_default());
    }

    fn reset(&self) {
        self.rows.lock().unwrap().clear();
    }

    fn snapshot(&self) -> Rows {
        self.rows.lock().unwrap().clone()
    }
}

fn write_units(size: usize) -> f64 {
    size.div_ceil(1024).max(1) as f64
}

/// Write units of the index copy a write makes (infra/data.yaml): the ledger's only index,
/// `queued`, is sparse: it holds records the API queued for a redelivery, which none of the
/// measured writes are.
fn gsi_units(_op: &str, _table: &str) -> f64 {
    0.0
}

#[derive(Debug)]
struct DdbMeter(Ledger);

/// Marks, in the operation's config bag, a `GetItem` that reads eventually consistent (half the
/// read units of a strong read).
#[derive(Debug, Clone)]
struct EventualRead;

impl aws_smithy_types::config_bag::Storable for EventualRead {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl DdbMeter {
    fn consumed(&self, op: &str, cc: Option<&ConsumedCapacity>, write: bool, size_units: f64, bytes: usize) {
        let Some(cc) = cc else { return };
        let table = self.0.name(cc.table_name.as_deref());
        let gsi: f64 = cc.global_secondary_indexes.as_ref().map(|m| m.values().filter_map(|c| c.capacity_units).sum()).unwrap_or(0.0);
        let total = cc.capacity_units.unwrap_or(0.0);
        let base = cc.table.as_ref().and_then(|t| t.capacity_units).unwrap_or(total - gsi);
        self.0.with(op, &table, |r| {
            if write {
                r.wcu += base;
                r.wcu_gsi += gsi;
            } else {
                r.rcu += total;
            }
            r.size_units += size_units;
            if bytes > 0 {
                r.bytes += bytes as u64;
                r.items += 1;
            }
        });
    }
}

impl Intercept for DdbMeter {
    fn name(&self) -> &'static str {
        "DdbMeter"
    }

    fn modify_before_serialization(&self, ctx: &mut BeforeSerializationInterceptorContextMut<'_>, _rc: &RuntimeComponents, cfg: &mut ConfigBag) -> Result<(), BoxError> {
        use aws_sdk_dynamodb::operation::{
            batch_get_item::BatchGetItemInput, delete_item::DeleteItemInput, get_item::GetItemInput, put_item::PutItemInput, query::QueryInput, update_item::UpdateItemInput,
        };
        let input = ctx.input_mut();
        let rcc = Some(ReturnConsumedCapacity::Indexes);
        if let Some(i) = input.downcast_mut::<PutItemInput>() {
            i.return_consumed_capacity = rcc;
            let table = self.0.name(i.table_name.as_deref());
            let size = i.item.as_ref().map(item_size).unwrap_or(0);
            let units = write_units(size) + gsi_units("PutItem", &table);
            self.0.with("PutItem", &table, |r| {
                r.calls += 1;
                r.size_units += units;
                r.bytes += size as u64;
                r.items += 1;
            });
        } else if let Some(i) = input.downcast_mut::<UpdateItemInput>() {
            i.return_consumed_capacity = rcc;
            // To size the item written (ALL_NEW); the adapters ignore what they did not ask for.
            if i.return_values.is_none() {
                i.return_values = Some(ReturnValue::AllNew);
            }
            self.0.with("UpdateItem", &self.0.name(i.table_name.as_deref()), |r| r.calls += 1);
        } else if let Some(i) = input.downcast_mut::<GetItemInput>() {
            i.return_consumed_capacity = rcc;
            if i.consistent_read != Some(true) {
                cfg.interceptor_state().store_put(EventualRead);
            }
            self.0.with("GetItem", &self.0.name(i.table_name.as_deref()), |r| r.calls += 1);
        } else if let Some(i) = input.downcast_mut::<QueryInput>() {
            i.return_consumed_capacity = rcc;
            let target = match &i.index_name {
                Some(ix) => format!("{}.{ix}", self.0.name(i.table_name.as_deref())),
                None => self.0.name(i.table_name.as_deref()),
            };
            self.0.with("Query", &target, |r| r.calls += 1);
        } else if let Some(i) = input.downcast_mut::<BatchGetItemInput>() {
            i.return_consumed_capacity = rcc;
            for table in i.request_items.as_ref().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
                self.0.with("BatchGetItem", &self.0.name(Some(&table)), |r| r.calls += 1);
            }
        } else if let Some(i) = input.downcast_mut::<DeleteItemInput>() {
            i.return_consumed_capacity = rcc;
            self.0.with("DeleteItem", &self.0.name(i.table_name.as_deref()), |r| r.calls += 1);
        } else {
            self.0.with("other", "DynamoDB", |r| r.calls += 1);
        }
        Ok(())
    }

    fn read_after_deserialization(&self, ctx: &AfterDeserializationInterceptorContextRef<'_>, _rc: &RuntimeComponents, cfg: &mut ConfigBag) -> Result<(), BoxError> {
        use aws_sdk_dynamodb::operation::{batch_get_item::BatchGetItemOutput, get_item::GetItemOutput, put_item::PutItemOutput, query::QueryOutput, update_item::UpdateItemOutput};
        let Ok(out) = ctx.output_or_error() else { return Ok(()) };
        if let Some(o) = out.downcast_ref::<PutItemOutput>() {
            self.consumed("PutItem", o.consumed_capacity.as_ref(), true, 0.0, 0);
        } else if let Some(o) = out.downcast_ref::<UpdateItemOutput>() {
            let size = o.attributes.as_ref().map(item_size).unwrap_or(0);
            let table = self.0.name(o.consumed_capacity.as_ref().and_then(|c| c.table_name.as_deref()));
            self.consumed("UpdateItem", o.consumed_capacity.as_ref(), true, write_units(size) + gsi_units("UpdateItem", &table), size);
        } else if let Some(o) = out.downcast_ref::<GetItemOutput>() {
            let size = o.item.as_ref().map(item_size).unwrap_or(0);
            let share = if cfg.load::<EventualRead>().is_some() { 0.5 } else { 1.0 };
            self.consumed("GetItem", o.consumed_capacity.as_ref(), false, size.div_ceil(4096).max(1) as f64 * share, size);
        } else if let Some(o) = out.downcast_ref::<BatchGetItemOutput>() {
            for (table, items) in o.responses.iter().flatten() {
                let size_units: f64 = items.iter().map(|i| item_size(i).div_ceil(4096).max(1) as f64).sum();
                let bytes: usize = items.iter().map(item_size).sum();
                let cc = o.consumed_capacity.iter().flatten().find(|c| c.table_name.as_deref() == Some(table.as_str()));
                let rcu = cc.and_then(|c| c.capacity_units).unwrap_or(0.0);
                self.0.with("BatchGetItem", &self.0.name(Some(table)), |r| {
                    r.rcu += rcu;
                    r.size_units += size_units;
                    r.bytes += bytes as u64;
                    r.items += items.len() as u64;
                });
            }
        } else if let Some(o) = out.downcast_ref::<QueryOutput>() {
            let size: usize = o.items.as_ref().map(|v| v.iter().map(item_size).sum()).unwrap_or(0);
            let op = "Query";
            // The query's target (table or index) was recorded on the way in; attribute the units
            // to the table's row when the index is not known here.
            let Some(cc) = o.consumed_capacity.as_ref() else { return Ok(()) };
            let table = self.0.name(cc.table_name.as_deref());
            let gsi_name = cc.global_secondary_indexes.as_ref().and_then(|m| m.keys().next().cloned());
            let target = gsi_name.map(|g| format!("{table}.{g}")).unwrap_or(table);
            let total = cc.capacity_units.unwrap_or(0.0);
            self.0.with(op, &target, |r| {
                r.rcu += total;
                r.size_units += size.div_ceil(4096).max(1) as f64;
                r.bytes += size as u64;
                r.items += o.items.as_ref().map(|v| v.len()).unwrap_or(0) as u64;
            });
        }
        Ok(())
    }
}

#[derive(Debug)]
struct SqsMeter(Ledger);

impl Intercept for SqsMeter {
    fn name(&self) -> &'static str {
        "SqsMeter"
    }

    fn modify_before_serialization(&self, ctx: &mut BeforeSerializationInterceptorContextMut<'_>, _rc: &RuntimeComponents, _cfg: &mut ConfigBag) -> Result<(), BoxError> {
        use aws_sdk_sqs::operation::{
            change_message_visibility::ChangeMessageVisibilityInput, change_message_visibility_batch::ChangeMessageVisibilityBatchInput, delete_message_batch::DeleteMessageBatchInput, get_queue_attributes::GetQueueAttributesInput,
            receive_message::ReceiveMessageInput, send_message::SendMessageInput, send_message_batch::SendMessageBatchInput,
        };
        let input = ctx.input();
        let chunks = |bytes: usize| bytes.div_ceil(64 * 1024).max(1) as f64;
        if let Some(i) = input.downcast_ref::<ReceiveMessageInput>() {
            // Billed by the poller, which sees what came back.
            self.0.with("ReceiveMessage", &self.0.name(i.queue_url.as_deref()), |r| r.calls += 1);
        } else if let Some(i) = input.downcast_ref::<DeleteMessageBatchInput>() {
            self.0.with("DeleteMessageBatch", &self.0.name(i.queue_url.as_deref()), |r| {
                r.calls += 1;
                r.billed += 1.0;
                r.items += i.entries.as_ref().map(|e| e.len()).unwrap_or(0) as u64;
            });
        } else if let Some(i) = input.downcast_ref::<SendMessageBatchInput>() {
            let entries = i.entries.as_deref().unwrap_or_default();
            let bytes: usize = entries.iter().map(|e| e.message_body.len()).sum();
            self.0.with("SendMessageBatch", &self.0.name(i.queue_url.as_deref()), |r| {
                r.calls += 1;
                r.billed += chunks(bytes);
                r.bytes += bytes as u64;
                r.items += entries.len() as u64;
            });
        } else if let Some(i) = input.downcast_ref::<SendMessageInput>() {
            let bytes = i.message_body.as_deref().map(str::len).unwrap_or(0);
            self.0.with("SendMessage", &self.0.name(i.queue_url.as_deref()), |r| {
                r.calls += 1;
                r.billed += chunks(bytes);
                r.bytes += bytes as u64;
                r.items += 1;
            });
        } else if let Some(i) = input.downcast_ref::<ChangeMessageVisibilityInput>() {
            self.0.with("ChangeMessageVisibility", &self.0.name(i.queue_url.as_deref()), |r| {
                r.calls += 1;
                r.billed += 1.0;
            });
        } else if let Some(i) = input.downcast_ref::<ChangeMessageVisibilityBatchInput>() {
            self.0.with("ChangeMessageVisibilityBatch", &self.0.name(i.queue_url.as_deref()), |r| {
                r.calls += 1;
                r.billed += 1.0;
                r.items += i.entries.as_ref().map(|e| e.len()).unwrap_or(0) as u64;
            });
        } else if let Some(i) = input.downcast_ref::<GetQueueAttributesInput>() {
            self.0.with("GetQueueAttributes", &self.0.name(i.queue_url.as_deref()), |r| {
                r.calls += 1;
                r.billed += 1.0;
            });
        } else {
            self.0.with("other", "SQS", |r| {
                r.calls += 1;
                r.billed += 1.0;
            });
        }
        Ok(())
    }
}

/// What each counted call is for.
fn purpose(op: &str, target: &str) -> &'static str {
    match (op, target) {
        ("ReceiveMessage", "EventsQueue") => "fan-out ESM poll: a batch of events",
        ("DeleteMessageBatch", "EventsQueue") => "fan-out ESM: delete the handled events",
        ("GetItem", "Tenants") => "fan-out: is the tenant known (cached 10 s)",
        ("Query", "Subscriptions.active") => "fan-out: tenant's active subscriptions, from the sparse index (cached 10 s)",
        ("PutItem", "Deliveries") => "delivery: append the attempt's ledger record (conditional on its seq)",
        ("UpdateItem", "Deliveries") => "delivery: claim / mark the head record (conditional)",
        ("SendMessageBatch", "DeliveryQueue") => "fan-out: enqueue delivery tasks (<= 10 per call)",
        ("ReceiveMessage", "DeliveryQueue") => "delivery ESM poll: a batch of tasks",
        ("DeleteMessageBatch", "DeliveryQueue") => "delivery ESM: delete delivered tasks",
        ("GetItem", "Deliveries") => "delivery: the ledger head (a retry or a redelivery)",
        ("Query", "Deliveries") => "delivery / API: the ledger head, a log page",
        ("GetItem", "Subscriptions") => "delivery: load the subscription (url, secret)",
        ("UpdateItem", "Subscriptions") => "delivery: health (<= 1/min on success; every failure)",
        ("ChangeMessageVisibility", "DeliveryQueue") => "delivery: schedule the retry",
        ("ChangeMessageVisibilityBatch", "DeliveryQueue") => "delivery: schedule the batch's retries (<= 10 per call)",
        ("GetItem", "ApiKeys") => "API: authenticate the key",
        ("Query", "Deliveries.by_subscription") => "API: delivery log page (keys)",
        ("BatchGetItem", "Deliveries") => "API: delivery log page (items)",
        _ => "",
    }
}

// ------------------------------------------------------------------------------------------------
// LocalStack stacks and metered dependencies

struct Stack {
    env: HashMap<String, String>,
    config: Config,
}

fn provision_stack(prefix: &str, params: &[(&str, String)], extra: &[(&str, &str)]) -> Stack {
    let secs = OffsetDateTime::now_utc().unix_timestamp() % 100_000;
    let name = format!("perf-{prefix}-{}-{secs}", std::process::id());
    // Blocks this thread for the few seconds of a CloudFormation deploy; the runtime's workers carry on.
    let outputs = e2e::provision(&name, params);
    let mut env = outputs.clone();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("config from stack outputs");
    Stack { env, config }
}

/// `Deps::aws_counted`, with the DynamoDB and SQS clients also carrying the meters.
fn metered_deps(sdk: &aws_config::SdkConfig, config: &Config, counter: &CallCounter, ledger: &Ledger) -> (Deps, aws_sdk_sqs::Client) {
    let ddb = aws_sdk_dynamodb::Client::from_conf(aws_sdk_dynamodb::config::Builder::from(sdk).interceptor(counter.clone()).interceptor(DdbMeter(ledger.clone())).build());
    let sqs = aws_sdk_sqs::Client::from_conf(aws_sdk_sqs::config::Builder::from(sdk).interceptor(counter.clone()).interceptor(SqsMeter(ledger.clone())).build());
    let mut deps = Deps::aws_counted(sdk, config.clone(), Some(counter));
    deps.subscriptions = Arc::new(ddb_adapters::DynamoSubscriptions::new(ddb.clone(), config));
    deps.api_keys = Arc::new(ddb_adapters::DynamoApiKeys::new(ddb.clone(), config));
    deps.tenants = Arc::new(ddb_adapters::DynamoTenants::new(ddb.clone(), config));
    deps.events = Arc::new(ddb_adapters::DynamoEvents::new(ddb.clone(), config));
    deps.ledger = Arc::new(ddb_adapters::DynamoLedger::new(ddb, config));
    deps.queues = Arc::new(sqs_adapters::SqsQueues::new(sqs.clone(), config));
    (deps, sqs)
}

/// A filter every [`envelope`] passes, with a condition of each kind fan-out evaluates.
fn passing_filter() -> shared::filter::Filter {
    shared::filter::Filter::parse(json!({
        "event_type": {"$in": ["project.created", "project.updated"]},
        "data.project_id": {"$exists": true},
        "$or": [{"data.name": "Perf"}, {"data.name": {"$gte": "Q"}}],
        "$not": {"data.notes": ""}
    }))
    .expect("a valid filter")
}

async fn create_subscriptions(deps: &Deps, tenant: &str, url: &str, n: usize, filter: Option<shared::filter::Filter>) -> Vec<Subscription> {
    let t = TenantId::parse(tenant).unwrap();
    let now = OffsetDateTime::now_utc();
    let subs: Vec<Subscription> = (0..n).map(|_| Subscription { filter: filter.clone(), ..Subscription::new(t.clone(), url.to_owned(), vec!["project.*".into()], now) }).collect();
    futures::stream::iter(subs.clone())
        .map(|s| async move { deps.subscriptions.create(&s, usize::MAX).await.expect("create subscription") })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    subs
}

/// Upstream publishing (not metered): SendMessageBatch of 10, a few in flight.
async fn publish(upstream: &aws_sdk_sqs::Client, queue_url: &str, bodies: Vec<String>) {
    let chunks: Vec<Vec<String>> = bodies.chunks(10).map(|c| c.to_vec()).collect();
    futures::stream::iter(chunks)
        .map(|chunk| async move {
            let entries = chunk.iter().enumerate().map(|(i, b)| SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(b).build().unwrap()).collect();
            let out = upstream.send_message_batch().queue_url(queue_url).set_entries(Some(entries)).send().await.expect("publish");
            assert!(out.failed.is_empty(), "publish failures: {:?}", out.failed);
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Fanout,
    Delivery,
}

#[derive(Debug, Default)]
struct DriveOut {
    /// (messages, handler wall time) per batch.
    batches: Vec<(usize, Duration)>,
    wall: Duration,
    cpu: CpuDelta,
    messages: usize,
    failed: usize,
}

/// An SQS event source mapping in miniature (as functions/runner/src/poller.rs): `pollers` loops
/// that receive up to 10 messages, build the Lambda event, call the handler, delete what it did
/// not report failed; until `expect` messages were handled. Receives are billed here (what came
/// back, 64 KB chunks; empty receives apart).
#[allow(clippy::too_many_arguments)]
async fn drive(kind: Kind, deps: &Deps, sqs: &aws_sdk_sqs::Client, queue_url: &str, expect: usize, ledger: &Ledger, exclude_tid: u32, deadline: Duration) -> DriveOut {
    let processed = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let batches = Mutex::new(Vec::new());
    let role = ledger.name(Some(queue_url));
    let snap = procfs::Snap::now();
    let t0 = Instant::now();
    let one = || async {
        while processed.load(Ordering::SeqCst) < expect {
            assert!(t0.elapsed() < deadline, "{kind:?}: only {} of {expect} messages handled after {deadline:?}", processed.load(Ordering::SeqCst));
            let out = sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .expect("receive");
            let msgs = out.messages.unwrap_or_default();
            let bytes: usize = msgs.iter().map(|m| m.body.as_deref().map(str::len).unwrap_or(0)).sum();
            ledger.with("ReceiveMessage", &role, |r| {
                if msgs.is_empty() {
                    r.empty += 1;
                } else {
                    r.billed += bytes.div_ceil(64 * 1024).max(1) as f64;
                    r.items += msgs.len() as u64;
                    r.bytes += bytes as u64;
                }
            });
            if msgs.is_empty() {
                continue;
            }
            let json = lambda::event(msgs.iter().map(|m| lambda::record_from_sdk(m, queue_url)).collect());
            let h0 = Instant::now();
            let failures = match kind {
                Kind::Fanout => lambda::fanout(&json, deps).await,
                Kind::Delivery => lambda::delivery(&json, deps).await,
            };
            batches.lock().unwrap().push((msgs.len(), h0.elapsed()));
            failed.fetch_add(failures.len(), Ordering::SeqCst);
            let entries: Vec<DeleteMessageBatchRequestEntry> = msgs
                .iter()
                .filter(|m| !failures.iter().any(|f| Some(f.as_str()) == m.message_id.as_deref()))
                .enumerate()
                .map(|(i, m)| DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(m.receipt_handle.clone().unwrap_or_default()).build().unwrap())
                .collect();
            if !entries.is_empty() {
                sqs.delete_message_batch().queue_url(queue_url).set_entries(Some(entries)).send().await.expect("delete");
            }
            processed.fetch_add(msgs.len(), Ordering::SeqCst);
        }
    };
    futures::future::join(one(), one()).await;
    DriveOut {
        wall: t0.elapsed(),
        cpu: snap.since(exclude_tid),
        batches: batches.into_inner().unwrap(),
        messages: processed.into_inner(),
        failed: failed.into_inner(),
    }
}

// ------------------------------------------------------------------------------------------------
// Figure 2: AWS calls per delivery

struct AwsCtx<'a> {
    stack: Stack,
    deps: Deps,
    sqs: aws_sdk_sqs::Client,
    upstream: aws_sdk_sqs::Client,
    ledger: Ledger,
    counter: CallCounter,
    sink: &'a Sink,
}

struct Scenario {
    label: String,
    events: usize,
    per_event: usize,
    deliveries: usize,
    failing: bool,
    fan_rows: Rows,
    del_rows: Rows,
    fan: DriveOut,
    del: DriveOut,
    fan_calls: BTreeMap<String, u64>,
    del_calls: BTreeMap<String, u64>,
    received: u64,
}

impl Scenario {
    fn rows(&self) -> impl Iterator<Item = (&'static str, &(String, String), &Row)> {
        self.fan_rows.iter().map(|(k, r)| ("fan-out", k, r)).chain(self.del_rows.iter().map(|(k, r)| ("delivery", k, r)))
    }

    fn sqs_billed(&self) -> f64 {
        self.rows().filter(|(_, (op, _), _)| is_sqs(op)).map(|(_, _, r)| r.billed).sum()
    }

    fn sqs_calls(&self) -> f64 {
        self.rows().filter(|(_, (op, _), _)| is_sqs(op)).map(|(_, (op, _), r)| if op == "ReceiveMessage" { (r.calls - r.empty) as f64 } else { r.calls as f64 }).sum()
    }

    fn empty_receives(&self) -> u64 {
        self.rows().map(|(_, _, r)| r.empty).sum()
    }

    fn ddb_writes(&self) -> f64 {
        self.rows().filter(|(_, (op, _), _)| is_write(op)).map(|(_, _, r)| r.calls as f64).sum()
    }

    fn wcu(&self) -> (f64, f64) {
        let rows: Vec<_> = self.rows().filter(|(_, (op, _), _)| is_write(op)).collect();
        (rows.iter().map(|(_, _, r)| r.wcu + r.wcu_gsi).sum(), rows.iter().map(|(_, _, r)| r.size_units).sum())
    }

    fn rcu(&self) -> (f64, f64) {
        let rows: Vec<_> = self.rows().filter(|(_, (op, _), _)| op == "GetItem" || op == "Query").collect();
        (rows.iter().map(|(_, _, r)| r.rcu).sum(), rows.iter().map(|(_, _, r)| r.size_units).sum())
    }
}

/// The goals of figures 2 and 3 (issue 14: the delivery ledger): write units per delivery, read
/// units per delivery and the per-request charges per million deliveries, by shape.
const GOAL_RCU: f64 = 0.3;
const GOAL_FAILED_ATTEMPT_USD: f64 = 1.00;
/// The delivery handler's CPU per delivered message before the ledger (figure 2, 12-02: ~2 ms on
/// this host); the goal is half of it.
const BASELINE_DELIVERY_CPU_MS: f64 = 2.0;

fn goal_wcu(per_event: usize) -> f64 {
    if per_event == 1 { 1.2 } else { 1.1 }
}

fn goal_usd(per_event: usize) -> f64 {
    if per_event == 1 { 1.20 } else { 0.90 }
}

/// CPU of the delivery phase per message handled, in ms (the handler, its SDK calls and the
/// poller loop, on this host's full vCPU).
fn cpu_ms_per_message(o: &DriveOut) -> f64 {
    o.cpu.client_ns as f64 / 1e6 / o.messages.max(1) as f64
}

fn is_sqs(op: &str) -> bool {
    matches!(op, "ReceiveMessage" | "DeleteMessageBatch" | "SendMessageBatch" | "SendMessage" | "ChangeMessageVisibility" | "ChangeMessageVisibilityBatch" | "GetQueueAttributes")
}

fn is_write(op: &str) -> bool {
    matches!(op, "PutItem" | "UpdateItem" | "DeleteItem")
}

async fn scenario(ctx: &AwsCtx<'_>, label: &str, tenant: &str, events: usize, per_event: usize, failing: bool) -> Scenario {
    let bodies: Vec<String> = (0..events).map(|i| envelope(tenant, &format!("{tenant}-{i:06}"), DATA_LEN)).collect();
    publish(&ctx.upstream, &ctx.stack.config.events_queue_url, bodies).await;
    let deadline = Duration::from_secs(300);
    ctx.ledger.reset();
    ctx.counter.reset();
    let fan = drive(Kind::Fanout, &ctx.deps, &ctx.sqs, &ctx.stack.config.events_queue_url, events, &ctx.ledger, ctx.sink.tid, deadline).await;
    let (fan_rows, fan_calls) = (ctx.ledger.snapshot(), ctx.counter.snapshot());
    ctx.ledger.reset();
    ctx.counter.reset();
    let before = ctx.sink.count();
    let deliveries = events * per_event;
    let del = drive(Kind::Delivery, &ctx.deps, &ctx.sqs, &ctx.stack.config.delivery_queue_url, deliveries, &ctx.ledger, ctx.sink.tid, deadline).await;
    let (del_rows, del_calls) = (ctx.ledger.snapshot(), ctx.counter.snapshot());
    Scenario { label: label.to_owned(), events, per_event, deliveries, failing, fan_rows, del_rows, fan, del, fan_calls, del_calls, received: ctx.sink.count() - before }
}

fn print_scenario(s: &Scenario) {
    let d = s.deliveries as f64;
    println!(
        "\n  {}: {} events x {} subscription(s) = {} {} (received by the endpoint: {})",
        s.label,
        thousands(s.events),
        s.per_event,
        thousands(s.deliveries),
        if s.failing { "failing first attempts (HTTP 500)" } else { "deliveries (HTTP 200)" },
        s.received
    );
    println!("  {:<8} {:<24} {:<27} {:>6} {:>8} {:>8} {:>9} {:>7}  purpose", "phase", "operation", "table / queue", "calls", "per dlv", "SQS req", "WCU(+GSI)", "RCU");
    for (phase, (op, target), r) in s.rows() {
        let calls = if op == "ReceiveMessage" { r.calls - r.empty } else { r.calls };
        if calls == 0 {
            continue;
        }
        let units = if is_write(op) { format!("{:.0}+{:.0}", r.wcu, r.wcu_gsi) } else { String::new() };
        let rcu = if op == "GetItem" || op == "Query" { format!("{:.0}", r.rcu) } else { String::new() };
        let billed = if is_sqs(op) { format!("{:.0}", r.billed) } else { String::new() };
        println!("  {:<8} {:<24} {:<27} {:>6} {:>8.3} {:>8} {:>9} {:>7}  {}", phase, op, target, calls, calls as f64 / d, billed, units, rcu, purpose(op, target));
    }
    let (wcu, wcu_size) = s.wcu();
    let (rcu, rcu_size) = s.rcu();
    let word = if s.failing { "failing attempt" } else { "delivered message" };
    println!(
        "  per {word}: SQS {:.3} requests ({:.3} billed 64 KB units) [goal <= 1.3: {}], DynamoDB {:.2} writes = {:.2} WCU incl. GSI [goal <= {}: {}] (size model: {:.2}), {:.2} RCU [goal <= {GOAL_RCU}: {}] (size model: {:.2})",
        s.sqs_calls() / d,
        s.sqs_billed() / d,
        verdict(s.sqs_billed() / d, 1.3),
        s.ddb_writes() / d,
        wcu / d,
        goal_wcu(s.per_event),
        if s.failing { "n/a" } else { verdict(wcu / d, goal_wcu(s.per_event)) },
        wcu_size / d,
        rcu / d,
        if s.failing { "n/a" } else { verdict(rcu / d, GOAL_RCU) },
        rcu_size / d
    );
    println!(
        "  delivery CPU per message: {:.3} ms (handler + SDK + poller loop, this host's vCPU) [goal <= {:.1} ms, half of the ~{BASELINE_DELIVERY_CPU_MS} ms before the ledger: {}]",
        cpu_ms_per_message(&s.del),
        BASELINE_DELIVERY_CPU_MS / 2.0,
        verdict(cpu_ms_per_message(&s.del), BASELINE_DELIVERY_CPU_MS / 2.0)
    );
    println!(
        "  upstream publish adds 1 SendMessage per event ({:.3} per delivery; 0.1/event with SendMessageBatch); empty long polls at the end: {} (idle cost, not per message)",
        s.events as f64 / d,
        s.empty_receives()
    );
    let stat = |o: &DriveOut| {
        let ms: Vec<f64> = o.batches.iter().map(|(_, t)| t.as_secs_f64() * 1e3).collect();
        let per: f64 = o.batches.iter().map(|(n, _)| *n as f64).sum::<f64>() / o.batches.len().max(1) as f64;
        format!(
            "{} batches of {:.1} msgs, handler p50 {:.1} ms / p95 {:.1} ms / mean {:.1} ms, CPU {:.2} ms per batch, {:.0} msgs/s",
            o.batches.len(),
            per,
            median(&ms),
            percentile(&ms, 95.0),
            mean(&ms),
            o.cpu.client_ns as f64 / 1e6 / o.batches.len().max(1) as f64,
            o.messages as f64 / o.wall.as_secs_f64()
        )
    };
    println!("  fan-out:  {}", stat(&s.fan));
    println!("  delivery: {}", stat(&s.del));
    let fmt_calls = |c: &BTreeMap<String, u64>| c.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ");
    println!("  CallCounter (shared::adapters::calls) fan-out: {}; delivery: {}", fmt_calls(&s.fan_calls), fmt_calls(&s.del_calls));
    if s.fan.failed + s.del.failed > 0 && !s.failing {
        println!("  WARNING: {} batch item failures", s.fan.failed + s.del.failed);
    }
}

// ------------------------------------------------------------------------------------------------
// Figure 3: cost per million deliveries

struct ApiSample {
    ms: Vec<f64>,
    cpu_ms: f64,
    rcu_per_request: f64,
}

async fn api_sample(ctx: &AwsCtx<'_>, api_key: &str, sub_id: &str) -> ApiSample {
    let deps = Arc::new(ctx.deps.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, shared::api::router(deps)).await;
    });
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/v1/subscriptions/{sub_id}/deliveries?limit=20");
    let get = || async { http.get(&url).bearer_auth(api_key).send().await.expect("API GET").status() };
    assert!(get().await.is_success(), "API warm-up");
    ctx.ledger.reset();
    let n = 20;
    let snap = procfs::Snap::now();
    let mut ms = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        assert!(get().await.is_success());
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let cpu = snap.since(ctx.sink.tid);
    let rcu: f64 = ctx.ledger.snapshot().values().map(|r| r.rcu).sum();
    server.abort();
    ApiSample { ms, cpu_ms: cpu.client_ns as f64 / 1e6 / n as f64, rcu_per_request: rcu / n as f64 }
}

struct CostLine {
    item: String,
    price: String,
    units: f64,
    usd: f64,
    in_goal: bool,
}

/// Billed Lambda milliseconds of a batch at 128 MB: the measured handler time plus the CPU time
/// stretched to 128/1769 of a vCPU.
fn billed_ms(o: &DriveOut, stretch: bool) -> Vec<f64> {
    let cpu_ms = o.cpu.client_ns as f64 / 1e6 / o.batches.len().max(1) as f64;
    o.batches.iter().map(|(_, t)| (t.as_secs_f64() * 1e3 + if stretch { cpu_ms * (LAMBDA_CPU_STRETCH - 1.0) } else { 0.0 }).ceil()).collect()
}

fn costs(s: &Scenario, logs: Option<&F1>, api: Option<&ApiSample>, stretch: bool) -> Vec<CostLine> {
    let per = 1e6 / s.deliveries as f64;
    let invocations = (s.fan.batches.len() + s.del.batches.len()) as f64 * per;
    let gb_s = (billed_ms(&s.fan, stretch).iter().sum::<f64>() + billed_ms(&s.del, stretch).iter().sum::<f64>()) / 1e3 * LAMBDA_MEMORY_GB * per;
    let sqs = s.sqs_billed() * per;
    let (wcu, _) = s.wcu();
    let (rcu, _) = s.rcu();
    let mut lines = vec![
        CostLine { item: "Lambda requests (fan-out + delivery invocations)".into(), price: "$0.20 / 1M".into(), units: invocations, usd: invocations * LAMBDA_PER_REQUEST, in_goal: true },
        CostLine {
            item: format!("Lambda duration, 128 MB x86 ({})", if stretch { "handler time + CPU x13.8" } else { "handler time as measured" }),
            price: "$0.0000166667 / GB-s".into(),
            units: gb_s,
            usd: gb_s * LAMBDA_PER_GB_S,
            in_goal: true,
        },
        CostLine { item: "SQS requests, service side (64 KB units)".into(), price: "$0.40 / 1M".into(), units: sqs, usd: sqs * SQS_PER_REQUEST, in_goal: true },
        CostLine { item: "DynamoDB write request units (incl. GSI)".into(), price: "$0.625 / 1M".into(), units: wcu * per, usd: wcu * per * DDB_PER_WRU, in_goal: true },
        CostLine { item: "DynamoDB read request units".into(), price: "$0.125 / 1M".into(), units: rcu * per, usd: rcu * per * DDB_PER_RRU, in_goal: true },
    ];
    let api_requests = API_REQUESTS_PER_DELIVERY * 1e6;
    lines.push(CostLine { item: format!("API Gateway HTTP API ({API_REQUESTS_PER_DELIVERY} req/delivery assumed)"), price: "$1.00 / 1M".into(), units: api_requests, usd: api_requests * APIGW_HTTP_PER_REQUEST, in_goal: true });
    if let Some(a) = api {
        let ms = (median(&a.ms) + if stretch { a.cpu_ms * (LAMBDA_CPU_STRETCH - 1.0) } else { 0.0 }).ceil();
        let gb_s = api_requests * ms / 1e3 * LAMBDA_MEMORY_GB;
        let usd = api_requests * LAMBDA_PER_REQUEST + gb_s * LAMBDA_PER_GB_S + api_requests * a.rcu_per_request * DDB_PER_RRU;
        lines.push(CostLine { item: format!("API Lambda ({ms:.0} ms/request) + its reads ({:.1} RCU/request)", a.rcu_per_request), price: "as above".into(), units: api_requests, usd, in_goal: true });
    }
    let upstream = s.events as f64 * per;
    lines.push(CostLine { item: "SQS upstream publish (1 SendMessage per event)".into(), price: "$0.40 / 1M".into(), units: upstream, usd: upstream * SQS_PER_REQUEST, in_goal: false });
    if let Some(f) = logs {
        let bytes = 1e6 * (f.log_bytes_per_delivery + f.log_bytes_per_event / s.per_event as f64) + invocations * PLATFORM_LOG_BYTES;
        lines.push(CostLine { item: "CloudWatch Logs ingestion (JSON logs + EMF + platform lines)".into(), price: "$0.50 / GB".into(), units: bytes / 1e9, usd: bytes / 1e9 * CW_LOGS_PER_GB, in_goal: false });
    }
    // Records kept for RETENTION_DAYS (30 ≈ one month), each + 100 B of overhead: every ledger
    // record appended (the first keeps the event, deflated), nothing else per delivery.
    let stored = s.rows().filter(|(_, (o, t), _)| o == "PutItem" && t == "Deliveries").map(|(_, _, r)| r.bytes as f64 + 100.0 * r.items as f64).sum::<f64>() / s.deliveries as f64;
    let gb = stored * 1e6 / 1e9;
    lines.push(CostLine { item: format!("DynamoDB storage + PITR, 30 days ({stored:.0} B/delivery)"), price: "$0.45 / GB-month".into(), units: gb, usd: gb * (DDB_STORAGE_PER_GB_MONTH + DDB_PITR_PER_GB_MONTH), in_goal: false });
    lines
}

fn print_costs(s: &Scenario, logs: Option<&F1>, api: Option<&ApiSample>) -> f64 {
    let target = goal_usd(s.per_event);
    let lines = costs(s, logs, api, true);
    let measured = costs(s, logs, api, false);
    println!("\n  {} (prices: {REGION} list prices, on-demand, no free tier)", s.label);
    println!("  {:<62} {:>22} {:>16} {:>10}", "item", "price", "units per 1M dlv", "$ per 1M");
    let mut goal = 0.0;
    let mut all = 0.0;
    for l in &lines {
        println!("  {:<62} {:>22} {:>16.2} {:>10.3}{}", l.item, l.price, l.units, l.usd, if l.in_goal { "" } else { "  (outside goal)" });
        all += l.usd;
        if l.in_goal {
            goal += l.usd;
        }
    }
    let goal_measured: f64 = measured.iter().filter(|l| l.in_goal).map(|l| l.usd).sum();
    println!("  {:<62} {:>22} {:>16} {:>10.3}  [goal <= ${target:.2}: {}]", "per-request charges (Lambda, SQS, DynamoDB units, API)", "", "", goal, verdict(goal, target));
    println!("  {:<62} {:>22} {:>16} {:>10.3}", "  same with Lambda time as measured here (no CPU stretch)", "", "", goal_measured);
    println!("  {:<62} {:>22} {:>16} {:>10.3}", "all in (+ upstream publish, logs, storage)", "", "", all);
    let mut shares: Vec<_> = lines.iter().filter(|l| l.in_goal).map(|l| (l.usd / goal * 100.0, l.item.clone())).collect();
    shares.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap());
    println!("  largest shares of the goal figure: {}", shares.iter().take(3).map(|(p, i)| format!("{i} {p:.0}%")).collect::<Vec<_>>().join("; "));
    goal
}

// ------------------------------------------------------------------------------------------------
// A minimal Lambda Runtime API (2018-06-01) on loopback: records the first `GET …/next`, serves
// at most one event, records the response or error, holds further `next` calls open.

mod stub {
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
}

const FUNCTIONS: [(&str, &str); 3] = [("api", "ApiFunction"), ("fanout", "FanoutFunction"), ("delivery", "DeliveryFunction")];

/// `.aws-sam/build/<Function>/bootstrap`, or `$PERF_BOOTSTRAP_DIR/<api|fanout|delivery>` to measure
/// a candidate build (e.g. a `target/release` of other features or profile settings).
fn bootstrap_path(dir: &str) -> PathBuf {
    if let Ok(alt) = std::env::var("PERF_BOOTSTRAP_DIR") {
        let name = FUNCTIONS.iter().find(|(_, d)| *d == dir).map(|(f, _)| *f).unwrap_or(dir);
        return PathBuf::from(alt).join(name);
    }
    e2e::repo_root().join(".aws-sam/build").join(dir).join("bootstrap")
}

fn is_stripped(path: &Path) -> Option<bool> {
    let bytes = std::fs::read(path).ok()?;
    Some(!bytes.windows(8).any(|w| w == b".symtab\0"))
}

fn lambda_env(stack: &Stack, function: &str) -> HashMap<String, String> {
    let mut env = stack.env.clone();
    for (k, v) in [
        ("AWS_LAMBDA_FUNCTION_NAME", format!("perf-{function}")),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "1".into()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/22/[1]0123456789abcdef".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/perf-{function}")),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
    ] {
        env.insert(k.into(), v);
    }
    env
}

struct Launch {
    child: std::process::Child,
    stub: stub::Stub,
    t0: Instant,
}

async fn launch(bin: &Path, env: &HashMap<String, String>, log: &Path, event: Option<String>) -> Result<Launch, String> {
    let stub = stub::Stub::start(event).await;
    let file = std::fs::OpenOptions::new().create(true).append(true).open(log).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(bin);
    cmd.env_remove("RUST_LOG").env_remove("METRICS").envs(env).env("AWS_LAMBDA_RUNTIME_API", stub.addr.to_string());
    cmd.stdin(Stdio::null()).stdout(file.try_clone().map_err(|e| e.to_string())?).stderr(file);
    let t0 = Instant::now();
    let child = cmd.spawn().map_err(|e| format!("spawn {}: {e}", bin.display()))?;
    track(child.id());
    Ok(Launch { child, stub, t0 })
}

fn finish(mut l: Launch) {
    let pid = l.child.id();
    let _ = l.child.kill();
    let _ = l.child.wait();
    untrack(pid);
    l.stub.stop();
}

struct ColdRun {
    ms: f64,
    rss_kb: u64,
    hwm_kb: u64,
}

async fn cold_start(bin: &Path, env: &HashMap<String, String>, log: &Path) -> Result<ColdRun, String> {
    let mut l = launch(bin, env, log, None).await?;
    let pid = l.child.id();
    let res = match l.stub.first_next(Duration::from_secs(20)).await {
        Some(t) => Ok(ColdRun {
            ms: (t - l.t0).as_secs_f64() * 1e3,
            rss_kb: procfs::status_kb(pid, "VmRSS:").unwrap_or(0),
            hwm_kb: procfs::status_kb(pid, "VmHWM:").unwrap_or(0),
        }),
        None => Err(format!("no GET /next within 20 s (exit: {:?}, init error: {:?}; log {})", l.child.try_wait().ok().flatten(), l.stub.error(), log.display())),
    };
    finish(l);
    res
}

/// Per function: name, size, stripped, runs, error.
type F4Row = (String, Option<u64>, Option<bool>, Vec<ColdRun>, Option<String>);

struct F4 {
    rows: Vec<F4Row>,
}

async fn fig4(stack: &Stack, runs: usize) -> F4 {
    section("Figure 4: cold start: bootstrap size (sam build) and exec -> first GET /2018-06-01/runtime/invocation/next");
    let logdir = e2e::repo_root().join("target/perf");
    let _ = std::fs::create_dir_all(&logdir);
    let mut rows = Vec::new();
    for (function, dir) in FUNCTIONS {
        let bin = bootstrap_path(dir);
        let size = std::fs::metadata(&bin).ok().map(|m| m.len());
        if size.is_none() {
            rows.push((function.to_owned(), None, None, Vec::new(), Some(format!("{} absent (bash scripts/sam.sh build)", bin.display()))));
            continue;
        }
        let env = lambda_env(stack, function);
        let log = logdir.join(format!("coldstart-{function}.log"));
        let _ = std::fs::remove_file(&log);
        let mut samples = Vec::new();
        let mut err = None;
        for i in 0..=runs {
            match cold_start(&bin, &env, &log).await {
                Ok(r) if i > 0 => samples.push(r),
                Ok(_) => {}
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        rows.push((function.to_owned(), size, is_stripped(&bin), samples, err));
    }
    if let Ok(alt) = std::env::var("PERF_BOOTSTRAP_DIR") {
        println!("  bootstraps from PERF_BOOTSTRAP_DIR={alt}");
    }
    println!("  stub: a loopback HTTP server per run; env: AWS_LAMBDA_* (128 MB), the stack's Config variables, AWS_ENDPOINT_URL (LocalStack);");
    println!("  the fan-out and delivery functions read their queue's attributes (GetQueueAttributes) before their first /next. {runs} runs after 1 warm-up, page cache warm.");
    println!("  {:<9} {:>10} {:>9} {:>11} {:>9} {:>9} {:>12} {:>12}", "function", "size MB", "stripped", "median ms", "min ms", "max ms", "RSS@next MB", "HWM@next MB");
    for (f, size, stripped, runs, err) in &rows {
        let ms: Vec<f64> = runs.iter().map(|r| r.ms).collect();
        let rss: Vec<f64> = runs.iter().map(|r| r.rss_kb as f64 / 1024.0).collect();
        let hwm: Vec<f64> = runs.iter().map(|r| r.hwm_kb as f64 / 1024.0).collect();
        let size_mb = size.map(|s| s as f64 / 1e6).unwrap_or(f64::NAN);
        println!(
            "  {:<9} {:>10.2} {:>9} {:>11.1} {:>9.1} {:>9.1} {:>12.1} {:>12.1}   [goal <= 6 MB: {}, <= 30 ms: {}]",
            f,
            size_mb,
            stripped.map(|s| if s { "yes" } else { "no" }).unwrap_or("?"),
            median(&ms),
            ms.iter().cloned().fold(f64::INFINITY, f64::min),
            ms.iter().cloned().fold(0.0, f64::max),
            median(&rss),
            median(&hwm),
            if size.is_some() { verdict(size_mb, 6.0) } else { "n/a" },
            if ms.is_empty() { "n/a" } else { verdict(median(&ms), 30.0) }
        );
        if let Some(e) = err {
            println!("  {f}: {e}");
        }
    }
    F4 { rows }
}

// ------------------------------------------------------------------------------------------------
// Figure 5: peak RSS of the delivery bootstrap delivering 10 events of 256 KB

struct F5 {
    hwm_kb: u64,
    rss_kb: u64,
    ms: f64,
    body_bytes: usize,
    received: u64,
    received_bytes: u64,
    failures: usize,
}

async fn fig5(ctx: &AwsCtx<'_>) -> Result<F5, String> {
    section("Figure 5: memory: peak RSS of the delivery bootstrap handling one SqsEvent of 10 x 256 KB events");
    let bin = bootstrap_path("DeliveryFunction");
    if !bin.exists() {
        return Err(format!("{} absent", bin.display()));
    }
    let tenant = "big";
    let (_key, _) = shared::api::auth::issue_key(&ctx.deps, &TenantId::parse(tenant).unwrap(), &Scope::ALL).await.map_err(|e| e.to_string())?;
    create_subscriptions(&ctx.deps, tenant, &ctx.sink.url(200), 1, None).await;
    // Envelopes at the SQS limit: 256 KiB including the envelope.
    let mut body_bytes = 0;
    for i in 0..10 {
        let mut body = envelope(tenant, &format!("big-{i}"), 0);
        let room = shared::envelope::MAX_EVENT_BYTES - body.len() - 16;
        body = envelope(tenant, &format!("big-{i}"), room);
        body_bytes = body.len();
        let ev = shared::envelope::parse_event(&body).map_err(|e| e.to_string())?;
        let tasks = shared::fanout::tasks_for(&ev, shared::ids::EventSource::Queue, false, &ctx.deps).await.map_err(|e| e.to_string())?;
        if !shared::fanout::send_all(&ctx.deps, &tasks).await.is_empty() {
            return Err("tasks not sent".into());
        }
    }
    // The 10 tasks, received as the event source mapping would (and deleted afterwards).
    let url = &ctx.stack.config.delivery_queue_url;
    let mut msgs: Vec<Message> = Vec::new();
    let t0 = Instant::now();
    while msgs.len() < 10 && t0.elapsed() < Duration::from_secs(30) {
        let out = ctx
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages((10 - msgs.len()) as i32)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        // Only this figure's tasks (failing ones of figure 2 may reappear after their retry delay).
        msgs.extend(out.messages.unwrap_or_default().into_iter().filter(|m| m.body.as_deref().is_some_and(|b| b.contains("\"tenant_id\":\"big\""))));
    }
    if msgs.len() < 10 {
        return Err(format!("only {} tasks on the delivery queue", msgs.len()));
    }
    let event = lambda::event(msgs.iter().map(|m| lambda::record_from_sdk(m, url)).collect());
    let env = lambda_env(&ctx.stack, "delivery");
    let log = e2e::repo_root().join("target/perf/memory-delivery.log");
    let _ = std::fs::remove_file(&log);
    let (count0, bytes0) = (ctx.sink.count(), ctx.sink.bytes());
    let l = launch(&bin, &env, &log, Some(event)).await?;
    let pid = l.child.id();
    let res = l.stub.response(Duration::from_secs(120)).await;
    let hwm = procfs::status_kb(pid, "VmHWM:").unwrap_or(0);
    let rss = procfs::status_kb(pid, "VmRSS:").unwrap_or(0);
    let started = l.t0;
    finish(l);
    let (at, resp) = res?;
    let failures = serde_json::from_str::<Value>(&resp).ok().and_then(|v| v["batchItemFailures"].as_array().map(|a| a.len())).unwrap_or(usize::MAX);
    let entries: Vec<DeleteMessageBatchRequestEntry> =
        msgs.iter().enumerate().map(|(i, m)| DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(m.receipt_handle.clone().unwrap_or_default()).build().unwrap()).collect();
    let _ = ctx.sqs.delete_message_batch().queue_url(url).set_entries(Some(entries)).send().await;
    let f = F5 { hwm_kb: hwm, rss_kb: rss, ms: (at - started).as_secs_f64() * 1e3, body_bytes, received: ctx.sink.count() - count0, received_bytes: ctx.sink.bytes() - bytes0, failures };
    println!(
        "  event bodies {} B each (stored in Events, POSTed 10 at once); endpoint got {} POSTs, {:.2} MB; batch item failures: {}",
        f.body_bytes,
        f.received,
        f.received_bytes as f64 / 1e6,
        f.failures
    );
    println!(
        "  VmHWM {:.1} MB (VmRSS after the batch {:.1} MB), exec -> response {:.0} ms   [goal <= 48 MB: {}]",
        f.hwm_kb as f64 / 1024.0,
        f.rss_kb as f64 / 1024.0,
        f.ms,
        verdict(f.hwm_kb as f64 / 1024.0, 48.0)
    );
    Ok(f)
}

// ------------------------------------------------------------------------------------------------
// Figure 6: fan-out to 1 … 1,000 subscriptions

struct F6Row {
    n: usize,
    ms: f64,
    send_batches: u64,
    puts: u64,
    queries: u64,
    gets: u64,
    failures: usize,
}

async fn fig6(sdk: &aws_config::SdkConfig, sink: &Sink, sizes: &[usize]) -> Vec<F6Row> {
    section("Figure 6: fan-out of one event to N subscriptions (LocalStack, fanout::handle_batch, one SQS record)");
    let max = sizes.iter().max().copied().unwrap_or(1).to_string();
    let stack = provision_stack("f6", &[], &[("ALLOW_HTTP", "true"), ("ALLOW_PRIVATE_TARGETS", "true"), ("MAX_SUBSCRIPTIONS_PER_TENANT", &max)]);
    let counter = CallCounter::default();
    let ledger = Ledger::new(&stack.config);
    let (deps, _) = metered_deps(sdk, &stack.config, &counter, &ledger);
    for &n in sizes {
        let tenant = format!("fan{n}");
        shared::api::auth::issue_key(&deps, &TenantId::parse(&tenant).unwrap(), &Scope::ALL).await.expect("tenant");
        create_subscriptions(&deps, &tenant, &sink.url(200), n, None).await;
    }
    let mut rows = Vec::new();
    for &n in sizes {
        let tenant = format!("fan{n}");
        counter.reset();
        let json = lambda::event(vec![lambda::record(0, &envelope(&tenant, &format!("wide-{n}"), DATA_LEN), 1, false)]);
        let t0 = Instant::now();
        let failures = lambda::fanout(&json, &deps).await;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        rows.push(F6Row { n, ms, send_batches: counter.get("SendMessageBatch"), puts: counter.get("PutItem"), queries: counter.get("Query"), gets: counter.get("GetItem"), failures: failures.len() });
    }
    println!("  {:>6} {:>16} {:>8} {:>6} {:>8} {:>10} {:>12}", "subs", "SendMessageBatch", "PutItem", "Query", "GetItem", "time ms", "ms per sub");
    for r in &rows {
        println!("  {:>6} {:>16} {:>8} {:>6} {:>8} {:>10.1} {:>12.2}{}", r.n, r.send_batches, r.puts, r.queries, r.gets, r.ms, r.ms / r.n as f64, if r.failures > 0 { "  FAILED" } else { "" });
    }
    if let (Some(a), Some(b)) = (rows.iter().find(|r| r.n == 100), rows.iter().find(|r| r.n == 1000)) {
        println!("  growth 100 -> 1,000 subscriptions: time x{:.1}, SendMessageBatch x{:.1} (linear = x10); conditional PutItems run 16 at a time", b.ms / a.ms, b.send_batches as f64 / a.send_batches.max(1) as f64);
    }
    rows
}

// ------------------------------------------------------------------------------------------------
// Figure 7: end to end

#[derive(Debug, Default, Clone)]
struct Pipe {
    events: usize,
    secs: f64,
    lat_ms: Vec<f64>,
}

impl Pipe {
    fn rate(&self) -> f64 {
        self.events as f64 / self.secs
    }
}

/// Waits until every expected delivery id arrived; returns publish-to-receipt latencies and the
/// time from the first publish to the last receipt.
async fn collect(sink: &Sink, published: &HashMap<String, Instant>, deadline: Duration) -> Pipe {
    let t0 = Instant::now();
    loop {
        let n = sink.seen().iter().filter(|(_, id)| published.contains_key(id)).count();
        if n >= published.len() || t0.elapsed() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = published.values().min().copied().unwrap_or(t0);
    let mut lat = Vec::new();
    let mut last = first;
    let mut seen = std::collections::HashSet::new();
    for (at, id) in sink.seen() {
        if let Some(p) = published.get(&id) {
            if seen.insert(id.clone()) {
                lat.push((at - *p).as_secs_f64() * 1e3);
                last = last.max(at);
            }
        }
    }
    Pipe { events: lat.len(), secs: (last - first).as_secs_f64(), lat_ms: lat }
}

struct F7 {
    burst_ls: Pipe,
    paced_ls: Pipe,
    burst_mem: Pipe,
    paced_mem: Pipe,
    burst: usize,
    rate: f64,
}

async fn fig7(sdk: &aws_config::SdkConfig, sink: &Sink, plan: &Plan) -> F7 {
    section("Figure 7: end to end: publish -> fan-out -> delivery -> receipt, LocalStack beside in-memory adapters");
    let extra = [("RETRY_SCHEDULE", "60"), ("ALLOW_HTTP", "true"), ("ALLOW_PRIVATE_TARGETS", "true")];
    let stack = provision_stack("f7", &[("DeliveryMaxReceiveCount", "12".into())], &extra);
    let opts = runner::Options { wait_seconds: 1, fanout_pollers: 2, delivery_pollers: 2, calls: None, ..Default::default() };
    let runner = runner::Runner::start(sdk, stack.config.clone(), opts).await.expect("runner starts");
    let tenant = TenantId::parse("acme").unwrap();
    shared::api::auth::issue_key(&runner.deps, &tenant, &Scope::ALL).await.expect("tenant");
    let sub = create_subscriptions(&runner.deps, "acme", &sink.url(200), 1, None).await.remove(0);
    let upstream = aws_sdk_sqs::Client::new(sdk);
    let queue = stack.config.events_queue_url.clone();
    let did = |eid: &str| DeliveryId::derive(EventSource::Queue, &tenant, eid, envelope_time(), &sub.subscription_id).to_string();

    // LocalStack, burst: all events published at once (SendMessageBatch of 10, 4 in flight).
    sink.record(true);
    let ids: Vec<String> = (0..plan.f7_burst).map(|i| format!("ls-b-{i:06}")).collect();
    let mut published = HashMap::new();
    let stamps = Mutex::new(Vec::new());
    futures::stream::iter(ids.chunks(10).map(|c| c.to_vec()))
        .map(|chunk| {
            let (upstream, queue, stamps) = (&upstream, &queue, &stamps);
            async move {
                let entries = chunk.iter().enumerate().map(|(i, id)| SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(envelope("acme", id, DATA_LEN)).build().unwrap()).collect();
                let at = Instant::now();
                upstream.send_message_batch().queue_url(queue).set_entries(Some(entries)).send().await.expect("publish");
                stamps.lock().unwrap().extend(chunk.into_iter().map(|id| (id, at)));
            }
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
    for (id, at) in stamps.into_inner().unwrap() {
        published.insert(did(&id), at);
    }
    let burst_ls = collect(sink, &published, Duration::from_secs(300)).await;

    // LocalStack, paced: one SendMessage every 1/rate s.
    sink.record(true);
    let n = (plan.f7_rate * plan.f7_secs) as usize;
    let mut published = HashMap::new();
    let t0 = Instant::now();
    for i in 0..n {
        let at = t0 + Duration::from_secs_f64(i as f64 / plan.f7_rate);
        tokio::time::sleep_until(at.into()).await;
        let id = format!("ls-p-{i:06}");
        let sent = Instant::now();
        upstream.send_message().queue_url(&queue).message_body(envelope("acme", &id, DATA_LEN)).send().await.expect("publish");
        published.insert(did(&id), sent);
    }
    let paced_ls = collect(sink, &published, Duration::from_secs(120)).await;
    drop(runner);

    // The same pipeline on in-memory adapters: 2 fan-out and 2 delivery workers taking batches of
    // up to 10 from in-process queues (a 1 ms nap when empty), same handlers, same receiver.
    let (mdeps, mqueues) = Deps::memory(memory_config(&extra));
    let mdeps = Arc::new(mdeps);
    let msub = memory_tenant(&mdeps, "acme", &sink.url(200)).await;
    let events: Arc<Mutex<VecDeque<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let seq = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..2 {
        let (deps, evq, halt, ids) = (mdeps.clone(), events.clone(), stop.clone(), seq.clone());
        workers.push(tokio::spawn(async move {
            while !halt.load(Ordering::Relaxed) {
                let batch: Vec<String> = {
                    let mut q = evq.lock().unwrap();
                    let k = q.len().min(10);
                    q.drain(..k).collect()
                };
                if batch.is_empty() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                let recs = batch.iter().map(|b| lambda::record(ids.fetch_add(1, Ordering::Relaxed) as usize, b, 1, false)).collect();
                lambda::fanout(&lambda::event(recs), &deps).await;
            }
        }));
        let (deps, queues, halt, ids) = (mdeps.clone(), mqueues.clone(), stop.clone(), seq.clone());
        workers.push(tokio::spawn(async move {
            while !halt.load(Ordering::Relaxed) {
                let batch: Vec<_> = {
                    let mut q = queues.deliveries.lock().unwrap();
                    let k = q.len().min(10);
                    q.drain(..k).collect()
                };
                if batch.is_empty() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                let recs = batch.iter().map(|t| lambda::record(ids.fetch_add(1, Ordering::Relaxed) as usize, &serde_json::to_string(t).unwrap(), 1, true)).collect();
                lambda::delivery(&lambda::event(recs), &deps).await;
            }
        }));
    }
    let mdid = |eid: &str| DeliveryId::derive(EventSource::Queue, &msub.tenant_id, eid, envelope_time(), &msub.subscription_id).to_string();
    sink.record(true);
    let mut published = HashMap::new();
    {
        let at = Instant::now();
        let mut q = events.lock().unwrap();
        for i in 0..plan.f7_burst {
            let id = format!("mem-b-{i:06}");
            q.push_back(envelope("acme", &id, DATA_LEN));
            published.insert(mdid(&id), at);
        }
    }
    let burst_mem = collect(sink, &published, Duration::from_secs(120)).await;
    sink.record(true);
    let mut published = HashMap::new();
    let t0 = Instant::now();
    for i in 0..n {
        tokio::time::sleep_until((t0 + Duration::from_secs_f64(i as f64 / plan.f7_rate)).into()).await;
        let id = format!("mem-p-{i:06}");
        published.insert(mdid(&id), Instant::now());
        events.lock().unwrap().push_back(envelope("acme", &id, DATA_LEN));
    }
    let paced_mem = collect(sink, &published, Duration::from_secs(60)).await;
    sink.record(false);
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        let _ = w.await;
    }

    let f = F7 { burst_ls, paced_ls, burst_mem, paced_mem, burst: plan.f7_burst, rate: plan.f7_rate };
    println!("  LocalStack: the local runner (2 fan-out + 2 delivery pollers, long poll 1 s) on its own stack; upstream publishes with the SDK.");
    println!("  {:<44} {:>9} {:>10} {:>10} {:>10} {:>10}", "run", "events", "events/s", "p50 ms", "p99 ms", "max ms");
    for (name, p) in [
        (format!("burst of {}, LocalStack", thousands(f.burst)), &f.burst_ls),
        (format!("burst of {}, in-memory adapters", thousands(f.burst)), &f.burst_mem),
        (format!("paced {:.0}/s, LocalStack", f.rate), &f.paced_ls),
        (format!("paced {:.0}/s, in-memory adapters", f.rate), &f.paced_mem),
    ] {
        println!(
            "  {:<44} {:>9} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            name,
            p.events,
            p.rate(),
            median(&p.lat_ms),
            percentile(&p.lat_ms, 99.0),
            p.lat_ms.iter().cloned().fold(0.0, f64::max)
        );
    }
    println!(
        "  the emulator's share: burst throughput in-memory/LocalStack x{:.1}; paced p50 latency LocalStack - in-memory = {:.1} ms",
        f.burst_mem.rate() / f.burst_ls.rate(),
        median(&f.paced_ls.lat_ms) - median(&f.paced_mem.lat_ms)
    );
    f
}

// ------------------------------------------------------------------------------------------------
// Machine and run description

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: u64 = meminfo.lines().find(|l| l.starts_with("MemTotal:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|(_, m)| m.trim().to_owned()).unwrap_or_else(|| "?".into());
    format!("{cpus} CPUs ({model}), {:.1} GiB RAM", mem_kb as f64 / 1024.0 / 1024.0)
}

fn git_head() -> String {
    let out = Command::new("git").args(["-C", &e2e::repo_root().to_string_lossy(), "rev-parse", "--short", "HEAD"]).output();
    let dirty = Command::new("git").args(["-C", &e2e::repo_root().to_string_lossy(), "status", "--porcelain", "--untracked-files=no"]).output();
    let head = out.ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default();
    let dirty = dirty.ok().is_some_and(|o| !o.stdout.is_empty());
    format!("{head}{}", if dirty { " (with uncommitted changes)" } else { "" })
}

// ------------------------------------------------------------------------------------------------

struct Summary(Vec<(String, String, String, &'static str)>);

impl Summary {
    fn add(&mut self, figure: &str, measured: String, goal: &str, verdict: &'static str) {
        self.0.push((figure.to_owned(), measured, goal.to_owned(), verdict));
    }
}

fn main() {
    let args = Args::parse();
    if let Some(child) = &args.child {
        match child.as_str() {
            "overhead" => child_overhead(&args),
            other => {
                eprintln!("perf: unknown child {other}");
                std::process::exit(2);
            }
        }
        return;
    }
    install_panic_cleanup();
    let plan = Plan::new(args.quick);
    let started = Instant::now();
    println!("webhooks performance figures ({} run)", if plan.quick { "--quick" } else { "full" });
    println!("date: {} UTC; machine: {}; commit {}", OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(), machine(), git_head());
    println!("binary: release profile of the workspace (opt-level \"z\", fat LTO, sha2 at opt-level 3), as the Lambda bootstraps (which are also non-PIE, see Cargo.toml)");

    let mut summary = Summary(Vec::new());
    let f1 = if args.wants(1) || args.wants(3) { fig1(&plan) } else { Vec::new() };
    for f in &f1 {
        let label = if f.logs { "1 delivery overhead b/a (logs on)" } else { "1 delivery overhead b/a (logs off)" };
        summary.add(label, format!("CPU {:.2}x, wall {:.2}x", f.cpu_ratio, f.wall_ratio), "<= 1.15x", verdict(f.cpu_ratio.max(f.wall_ratio), 1.15));
    }

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        if std::env::var("AWS_ENDPOINT_URL").is_err() {
            println!("\nAWS_ENDPOINT_URL is not set: figures 2-7 need LocalStack (scripts/perf.sh starts one).");
            return;
        }
        let sdk = shared::load_sdk_config().await;
        let sink = Sink::start();
        let needs_a = [2, 3, 4, 5].iter().any(|f| args.wants(*f));
        if needs_a {
            let extra = [("RETRY_SCHEDULE", "300"), ("ALLOW_HTTP", "true"), ("ALLOW_PRIVATE_TARGETS", "true")];
            let stack = provision_stack("a", &[("DeliveryMaxReceiveCount", "12".into())], &extra);
            shared::queue_check::check_delivery_queue(&aws_sdk_sqs::Client::new(&sdk), &stack.config).await.expect("queue fits the schedule");
            let counter = CallCounter::default();
            let ledger = Ledger::new(&stack.config);
            let (deps, sqs) = metered_deps(&sdk, &stack.config, &counter, &ledger);
            let ctx = AwsCtx { stack, deps, sqs, upstream: aws_sdk_sqs::Client::new(&sdk), ledger, counter, sink: &sink };

            if args.wants(4) {
                let f4 = fig4(&ctx.stack, plan.f4_runs).await;
                for (f, size, _, runs, _) in &f4.rows {
                    let ms: Vec<f64> = runs.iter().map(|r| r.ms).collect();
                    if let Some(s) = size {
                        summary.add(&format!("4 bootstrap size ({f})"), format!("{:.2} MB", *s as f64 / 1e6), "<= 6 MB", verdict(*s as f64 / 1e6, 6.0));
                    }
                    if !ms.is_empty() {
                        summary.add(&format!("4 cold start to /next ({f})"), format!("{:.1} ms median", median(&ms)), "<= 30 ms", verdict(median(&ms), 30.0));
                    }
                }
            }

            if args.wants(2) || args.wants(3) {
                section("Figure 2: AWS calls per delivery (real SDK against LocalStack, CallCounter + capacity meter)");
                println!("  handlers: fanout::handle_batch / delivery::handle_batch with Deps::aws_counted clients; an event-source-mapping loop like the");
                println!("  runner's poller (2 pollers, ReceiveMessage of 10, DeleteMessageBatch of what succeeded). WCU/RCU: ConsumedCapacity as");
                println!("  DynamoDB Local reports it (ReturnConsumedCapacity=INDEXES added by the meter); size model: 1 WCU per started KB per write,");
                println!("  + 1 for the keys-only GSI item of a new delivery (updates change no key: none), 1 RCU per 4 KB strongly consistent read (half for eventually consistent).");
                println!("  SQS: 1 request per 64 KB chunk.");
                for (tenant, n, code, filter) in [("acme", 1, 200, None), ("acmef", 1, 200, Some(passing_filter())), ("wide", 10, 200, None), ("fail", 1, 500, None)] {
                    let t = TenantId::parse(tenant).unwrap();
                    shared::api::auth::issue_key(&ctx.deps, &t, &Scope::ALL).await.expect("tenant");
                    create_subscriptions(&ctx.deps, tenant, &sink.url(code), n, filter).await;
                }
                let s1 = scenario(&ctx, "S1: one subscription per event", "acme", plan.f2_events_one, 1, false).await;
                print_scenario(&s1);
                let s1f = scenario(&ctx, "S1F: as S1, the subscription with a payload filter (4 conditions, all pass)", "acmef", plan.f2_events_one, 1, false).await;
                print_scenario(&s1f);
                {
                    let (d, df) = (s1.deliveries as f64, s1f.deliveries as f64);
                    let per_event = |o: &DriveOut| o.cpu.client_ns as f64 / 1e3 / o.messages.max(1) as f64;
                    println!(
                        "\n  filters side by side (S1 | S1F): SQS {:.3} | {:.3} requests, {:.2} | {:.2} WCU, {:.2} | {:.2} RCU per delivery; fan-out CPU {:.0} | {:.0} µs per event (this host's noise is about ±20 %)",
                        s1.sqs_billed() / d,
                        s1f.sqs_billed() / df,
                        s1.wcu().0 / d,
                        s1f.wcu().0 / df,
                        s1.rcu().0 / d,
                        s1f.rcu().0 / df,
                        per_event(&s1.fan),
                        per_event(&s1f.fan)
                    );
                    let same = (s1.sqs_billed() / d - s1f.sqs_billed() / df).abs() < 0.005 && (s1.wcu().0 / d - s1f.wcu().0 / df).abs() < 0.005 && (s1.rcu().0 / d - s1f.rcu().0 / df).abs() < 0.005;
                    summary.add("2 a payload filter: AWS calls and units (S1F vs S1)", if same { "the same".into() } else { "differ".into() }, "the same", if same { "OK" } else { "FAR" });
                }
                let s2 = scenario(&ctx, "S2: ten subscriptions per event", "wide", plan.f2_events_ten, 10, false).await;
                print_scenario(&s2);
                let s3 = scenario(&ctx, "S3: failing endpoint (first attempt of each)", "fail", plan.f2_failing, 1, true).await;
                print_scenario(&s3);
                for s in [&s1, &s2] {
                    let d = s.deliveries as f64;
                    let short = if s.per_event == 1 { "1 sub/event" } else { "10 subs/event" };
                    summary.add(&format!("2 SQS requests per delivery ({short})"), format!("{:.2}", s.sqs_billed() / d), "<= 1.3", verdict(s.sqs_billed() / d, 1.3));
                    summary.add(&format!("2 DynamoDB WCU per delivery ({short})"), format!("{:.2}", s.wcu().0 / d), &format!("<= {}", goal_wcu(s.per_event)), verdict(s.wcu().0 / d, goal_wcu(s.per_event)));
                    summary.add(&format!("2 DynamoDB RCU per delivery ({short})"), format!("{:.2}", s.rcu().0 / d), &format!("<= {GOAL_RCU}"), verdict(s.rcu().0 / d, GOAL_RCU));
                }
                let cpu = cpu_ms_per_message(&s1.del);
                summary.add("2 delivery CPU per message (1 sub/event)", format!("{cpu:.3} ms"), &format!("<= {:.1} ms", BASELINE_DELIVERY_CPU_MS / 2.0), verdict(cpu, BASELINE_DELIVERY_CPU_MS / 2.0));

                if args.wants(3) {
                    section("Figure 3: cost per million deliveries");
                    let (key, _) = shared::api::auth::issue_key(&ctx.deps, &TenantId::parse("acme").unwrap(), &Scope::ALL).await.expect("key");
                    let sub = ctx.deps.subscriptions.list_page(&TenantId::parse("acme").unwrap(), None, 1).await.expect("subs").items.remove(0);
                    let api = api_sample(&ctx, &key, sub.subscription_id.as_str()).await;
                    let logs = f1.iter().find(|f| f.logs);
                    println!(
                        "  inputs: handler times and CPU from figure 2 (LocalStack on this host); Lambda bills ceil(ms) per invocation at 128 MB and gets"
                    );
                    println!("  128/1769 of a vCPU, so CPU time is stretched x{LAMBDA_CPU_STRETCH:.1}; log bytes from figure 1 (logs on); API: GET …/deliveries?limit=20,");
                    println!(
                        "  median {:.1} ms, {:.2} ms CPU, {:.1} RCU per request, through the router on LocalStack.",
                        median(&api.ms),
                        api.cpu_ms,
                        api.rcu_per_request
                    );
                    let g1 = print_costs(&s1, logs, Some(&api));
                    let g2 = print_costs(&s2, logs, Some(&api));
                    let fail_per = 1e6 / s3.deliveries as f64;
                    let fail_usd = (s3.sqs_billed() * SQS_PER_REQUEST + s3.wcu().0 * DDB_PER_WRU + s3.rcu().0 * DDB_PER_RRU) * fail_per
                        + s3.del.batches.len() as f64 * fail_per * LAMBDA_PER_REQUEST
                        + billed_ms(&s3.del, true).iter().sum::<f64>() / 1e3 * LAMBDA_MEMORY_GB * fail_per * LAMBDA_PER_GB_S;
                    println!(
                        "\n  each failing attempt (S3) costs ${:.2} per million attempts on top (the attempt record, health, the retry's visibility change)   [goal <= ${GOAL_FAILED_ATTEMPT_USD:.2}: {}]",
                        fail_usd,
                        verdict(fail_usd, GOAL_FAILED_ATTEMPT_USD)
                    );
                    summary.add("3 cost per 1M deliveries (1 sub/event)", format!("${g1:.2}"), &format!("<= ${:.2}", goal_usd(1)), verdict(g1, goal_usd(1)));
                    summary.add("3 cost per 1M deliveries (10 subs/event)", format!("${g2:.2}"), &format!("<= ${:.2}", goal_usd(10)), verdict(g2, goal_usd(10)));
                    summary.add("3 cost per 1M failed attempts", format!("${fail_usd:.2}"), &format!("<= ${GOAL_FAILED_ATTEMPT_USD:.2}"), verdict(fail_usd, GOAL_FAILED_ATTEMPT_USD));
                }
            }

            if args.wants(5) {
                match fig5(&ctx).await {
                    Ok(f) => summary.add("5 peak RSS, delivery, 10 x 256 KB", format!("{:.1} MB", f.hwm_kb as f64 / 1024.0), "<= 48 MB", verdict(f.hwm_kb as f64 / 1024.0, 48.0)),
                    Err(e) => println!("  figure 5 not measured: {e}"),
                }
            }
        }

        if args.wants(6) {
            let rows = fig6(&sdk, &sink, &plan.f6_sizes).await;
            if let (Some(a), Some(b)) = (rows.first(), rows.last()) {
                summary.add(
                    "6 fan-out 1 -> 1,000 subscriptions",
                    format!("{:.0} ms -> {:.0} ms, {} -> {} SendMessageBatch", a.ms, b.ms, a.send_batches, b.send_batches),
                    "linear",
                    if b.send_batches as usize == b.n.div_ceil(10) { "OK" } else { "FAR" },
                );
            }
        }

        if args.wants(7) {
            let f = fig7(&sdk, &sink, &plan).await;
            summary.add(
                "7 end to end, LocalStack (burst)",
                format!("{:.0} events/s, p50 {:.0} ms, p99 {:.0} ms", f.burst_ls.rate(), median(&f.burst_ls.lat_ms), percentile(&f.burst_ls.lat_ms, 99.0)),
                "(report)",
                "",
            );
            summary.add(
                &format!("7 end to end, LocalStack ({:.0}/s)", f.rate),
                format!("p50 {:.0} ms, p99 {:.0} ms", median(&f.paced_ls.lat_ms), percentile(&f.paced_ls.lat_ms, 99.0)),
                "(report)",
                "",
            );
            summary.add(
                "7 end to end, in-memory (burst)",
                format!("{:.0} events/s, p50 {:.0} ms, p99 {:.0} ms", f.burst_mem.rate(), median(&f.burst_mem.lat_ms), percentile(&f.burst_mem.lat_ms, 99.0)),
                "(report)",
                "",
            );
        }
    });

    section("Summary");
    println!("  {:<44} {:<48} {:<10} verdict", "figure", "measured", "goal");
    for (f, m, g, v) in &summary.0 {
        println!("  {:<44} {:<48} {:<10} {}", f, m, g, v);
    }
    println!("\n  total run time {:.0} s", started.elapsed().as_secs_f64());
    // The receiver threads and runtimes end with the process.
    std::process::exit(0);
}
