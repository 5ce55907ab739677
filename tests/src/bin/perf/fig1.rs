//! Figure 1: overhead of the delivery path over a bare POST (child process, so that Lambda's
//! logging — JSON lines and EMF on stdout — can be switched on and its bytes counted).

use crate::args::{Args, Plan};
use crate::cleanup::{track, untrack};
use crate::fixtures::{envelope, DATA_LEN};
use crate::format::{section, thousands, verdict};
use crate::lambda;
use crate::procfs;
use crate::sink::Sink;
use crate::stacks::{memory_config, memory_tenant};
use crate::stats::median;
use crate::summary::Summary;
use serde_json::{json, Value};
use shared::adapters::memory::MemoryQueues;
use shared::Deps;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Bare,
    Sender,
    Full,
}

impl Variant {
    pub fn key(self) -> &'static str {
        match self {
            Variant::Bare => "a",
            Variant::Sender => "c",
            Variant::Full => "b",
        }
    }
}

pub fn child_marker(phase: &str) {
    println!("@@perf-phase {phase}");
    let _ = std::io::stdout().flush();
}

pub fn child_overhead(args: &Args) {
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

        let (batches, body) = fan_out(&deps, &queues, total).await;
        let _ = &sub;

        let bare = reqwest::Client::new();
        let sender = shared::delivery::http::HttpSender::new(Duration::from_secs(15), true, true);
        let headers = signed_headers();

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

/// The deliveries: fanned out through the fan-out handler (its log bytes are counted too).
/// Returns the delivery tasks as SQS events of 10 and the body of the first.
async fn fan_out(deps: &Deps, queues: &MemoryQueues, total: usize) -> (Vec<String>, String) {
    child_marker("fanout");
    let mut i = 0;
    while i < total {
        let recs = (i..(i + 10).min(total)).map(|k| lambda::record(k, &envelope("acme", &format!("evt-{k:07}"), DATA_LEN), 1, false)).collect();
        assert!(lambda::fanout(&lambda::event(recs), deps).await.is_empty());
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
    (batches, body)
}

/// The headers of a signed delivery, for variant (c).
fn signed_headers() -> reqwest::header::HeaderMap {
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
    headers
}

#[derive(Debug, Clone, Default)]
pub struct F1Variant {
    pub cpu_us: f64,
    pub wall_us: f64,
    pub recv_us: f64,
}

#[derive(Debug, Clone, Default)]
pub struct F1 {
    pub logs: bool,
    pub n: usize,
    pub rounds: usize,
    pub body_len: usize,
    pub a: F1Variant,
    pub c: F1Variant,
    pub b: F1Variant,
    pub cpu_ratio: f64,
    pub wall_ratio: f64,
    pub cpu_ratio_rounds: Vec<f64>,
    pub log_bytes_per_delivery: f64,
    pub log_bytes_per_event: f64,
    pub cpu_check: String,
}

pub fn fig1_child(plan: &Plan, logs: bool) -> Result<F1, String> {
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

pub fn fig1(plan: &Plan) -> Vec<F1> {
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

/// Figure 1 (also run for figure 3, which takes its log bytes), and its rows of the summary.
pub fn run(args: &Args, plan: &Plan, summary: &mut Summary) -> Vec<F1> {
    let f1 = if args.wants(1) || args.wants(3) { fig1(plan) } else { Vec::new() };
    for f in &f1 {
        let label = if f.logs { "1 delivery overhead b/a (logs on)" } else { "1 delivery overhead b/a (logs off)" };
        summary.add(label, format!("CPU {:.2}x, wall {:.2}x", f.cpu_ratio, f.wall_ratio), "<= 1.15x", verdict(f.cpu_ratio.max(f.wall_ratio), 1.15));
    }
    f1
}
