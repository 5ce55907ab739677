//! Figure 7: end to end

use crate::args::Plan;
use crate::fixtures::{envelope, envelope_time, DATA_LEN};
use crate::format::{section, thousands};
use crate::lambda;
use crate::sink::Sink;
use crate::stacks::{create_subscriptions, memory_config, memory_tenant, provision_stack};
use crate::stats::{median, percentile};
use crate::summary::Summary;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures::StreamExt;
use shared::adapters::memory::MemoryQueues;
use shared::ids::{DeliveryId, EventSource, TenantId};
use shared::model::Scope;
use shared::Deps;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Default, Clone)]
pub struct Pipe {
    pub events: usize,
    pub secs: f64,
    pub lat_ms: Vec<f64>,
}

impl Pipe {
    pub fn rate(&self) -> f64 {
        self.events as f64 / self.secs
    }
}

/// Waits until every expected delivery id arrived; returns publish-to-receipt latencies and the
/// time from the first publish to the last receipt.
pub async fn collect(sink: &Sink, published: &HashMap<String, Instant>, deadline: Duration) -> Pipe {
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

pub struct F7 {
    pub burst_ls: Pipe,
    pub paced_ls: Pipe,
    pub burst_mem: Pipe,
    pub paced_mem: Pipe,
    pub burst: usize,
    pub rate: f64,
}

pub async fn fig7(sdk: &aws_config::SdkConfig, sink: &Sink, plan: &Plan) -> F7 {
    section("Figure 7: end to end: publish -> fan-out -> delivery -> receipt, LocalStack beside in-memory adapters");
    let extra = [("RETRY_SCHEDULE", "60"), ("ALLOW_HTTP", "true"), ("ALLOW_PRIVATE_TARGETS", "true")];
    let (burst_ls, paced_ls) = localstack_runs(sdk, sink, plan, &extra).await;
    let (burst_mem, paced_mem) = memory_runs(sink, plan, &extra).await;

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

/// The pipeline on LocalStack: the local runner on its own stack; a burst, then a paced run.
async fn localstack_runs(sdk: &aws_config::SdkConfig, sink: &Sink, plan: &Plan, extra: &[(&str, &str)]) -> (Pipe, Pipe) {
    let stack = provision_stack("f7", &[("DeliveryMaxReceiveCount", "12".into())], extra);
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
    (burst_ls, paced_ls)
}

/// Figure 7 on in-memory adapters: a burst, then a paced run.
async fn memory_runs(sink: &Sink, plan: &Plan, extra: &[(&str, &str)]) -> (Pipe, Pipe) {
    // The same pipeline on in-memory adapters: 2 fan-out and 2 delivery workers taking batches of
    // up to 10 from in-process queues (a 1 ms nap when empty), same handlers, same receiver.
    let (mdeps, mqueues) = Deps::memory(memory_config(extra));
    let mdeps = Arc::new(mdeps);
    let msub = memory_tenant(&mdeps, "acme", &sink.url(200)).await;
    let events: Arc<Mutex<VecDeque<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let workers = spawn_workers(&mdeps, &mqueues, &events, &stop);
    let n = (plan.f7_rate * plan.f7_secs) as usize;
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
    (burst_mem, paced_mem)
}

/// 2 fan-out and 2 delivery workers taking batches of up to 10 from the in-process queues, until `stop`.
fn spawn_workers(mdeps: &Arc<Deps>, mqueues: &Arc<MemoryQueues>, events: &Arc<Mutex<VecDeque<String>>>, stop: &Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<()>> {
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
    workers
}

/// Figure 7 and its rows of the summary.
pub async fn run(sdk: &aws_config::SdkConfig, sink: &Sink, plan: &Plan, summary: &mut Summary) {
    let f = fig7(sdk, sink, plan).await;
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
