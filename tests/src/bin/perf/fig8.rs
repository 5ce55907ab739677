//! Figure 8: isolation. Ten healthy endpoints take a paced stream of events while one endpoint
//! that hangs until the POST timeout has 1,000 deliveries queued beside them: the healthy ones'
//! publish-to-receipt latency with and without the bad neighbour, and how many POSTs the bad one
//! received (the circuit breaker's job: bounded by probes, not by queued deliveries).

use crate::fig7::{collect, Pipe};
use crate::fixtures::{envelope, envelope_time, DATA_LEN};
use crate::format::{section, verdict};
use crate::sink::Sink;
use crate::stacks::{create_subscriptions, provision_stack};
use crate::stats::{median, percentile};
use crate::summary::Summary;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use e2e::receiver::{Receiver, Reply};
use shared::ids::{DeliveryId, EventSource, TenantId};
use shared::model::Scope;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const HEALTHY: usize = 10;
const QUEUED_BAD: usize = 1000;
const TIMEOUT_MS: &str = "3000";
const RATE: f64 = 5.0; // events per second, each to the ten healthy endpoints
const SECS: f64 = 20.0;
/// The runner's delivery pollers stand for Lambda's concurrent invocations: the fixed pool of a
/// small deployment, and a larger one (Lambda scales towards `DeliveryMaxConcurrency`).
const POLLERS: [usize; 2] = [4, 16];

struct Run {
    healthy: Pipe,
    bad_posts: usize,
    circuit: String,
}

pub async fn run(sdk: &aws_config::SdkConfig, sink: &Sink, summary: &mut Summary) {
    section("Figure 8: isolation: ten healthy endpoints beside one that hangs to the timeout with 1,000 deliveries queued");
    println!("  the local runner (its delivery pollers stand for concurrent invocations, batches of 10) on a stack of its own per run;");
    println!("  DELIVERY_TIMEOUT_MS {TIMEOUT_MS}; the breaker at its defaults (opens after 10 consecutive failures, probes after 30 s doubling to 15 min);");
    println!("  healthy traffic {RATE:.0} events/s for {SECS:.0} s, each event to {HEALTHY} healthy subscriptions; beside the hanging endpoint, its {QUEUED_BAD} events are published first.");
    println!("  {:<48} {:>8} {:>9} {:>9} {:>9} {:>16}", "run", "healthy", "p50 ms", "p99 ms", "max ms", "POSTs to the bad");
    for pollers in POLLERS {
        let clean = one(sdk, sink, false, pollers, true).await;
        let noisy = one(sdk, sink, true, pollers, true).await;
        for (name, r) in [(format!("{pollers} pollers, clean: healthy endpoints only"), &clean), (format!("{pollers} pollers, beside the hanging endpoint"), &noisy)] {
            let p = &r.healthy;
            println!("  {:<48} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>16}", name, p.events, median(&p.lat_ms), percentile(&p.lat_ms, 99.0), p.lat_ms.iter().cloned().fold(0.0, f64::max), r.bad_posts);
        }
        let (p50, p99) = (median(&noisy.healthy.lat_ms) / median(&clean.healthy.lat_ms), percentile(&noisy.healthy.lat_ms, 99.0) / percentile(&clean.healthy.lat_ms, 99.0));
        println!("  {pollers} pollers: healthy latency beside the bad neighbour / clean: p50 x{p50:.2}, p99 x{p99:.2}; POSTs to the bad endpoint {} of {QUEUED_BAD} queued; its circuit at the end: {}", noisy.bad_posts, noisy.circuit);
        summary.add(&format!("8 healthy p50 beside a hanging endpoint / clean ({pollers} pollers)"), format!("x{p50:.2}"), "<= x1.5", verdict(p50, 1.5));
        summary.add(&format!("8 healthy p99 beside a hanging endpoint / clean ({pollers} pollers)"), format!("x{p99:.2}"), "<= x1.5", verdict(p99, 1.5));
        // The POSTs in flight when it opens (pollers x batch of 10) plus a few probes.
        let bound = (pollers * 10 + 10) as f64;
        summary.add(&format!("8 POSTs to the hanging endpoint, 1,000 queued ({pollers} pollers)"), noisy.bad_posts.to_string(), &format!("<= {bound:.0}"), verdict(noisy.bad_posts as f64, bound));
    }
    // The baseline the breaker is measured against: the same bad neighbour with the breaker off.
    let clean = one(sdk, sink, false, POLLERS[0], true).await;
    let off = one(sdk, sink, true, POLLERS[0], false).await;
    let p = &off.healthy;
    println!("  {:<48} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>16}", format!("{} pollers, beside it, breaker off", POLLERS[0]), p.events, median(&p.lat_ms), percentile(&p.lat_ms, 99.0), p.lat_ms.iter().cloned().fold(0.0, f64::max), off.bad_posts);
    println!(
        "  breaker off: healthy p50 x{:.2}, p99 x{:.2} of clean; {} POSTs to the bad endpoint in the run ({} healthy deliveries arrived of {})",
        median(&p.lat_ms) / median(&clean.healthy.lat_ms),
        percentile(&p.lat_ms, 99.0) / percentile(&clean.healthy.lat_ms, 99.0),
        off.bad_posts,
        p.events,
        (RATE * SECS) as usize * HEALTHY
    );
}

async fn one(sdk: &aws_config::SdkConfig, sink: &Sink, with_bad: bool, pollers: usize, breaker: bool) -> Run {
    let extra = [("RETRY_SCHEDULE", "60,300"), ("ALLOW_HTTP", "true"), ("ALLOW_PRIVATE_TARGETS", "true"), ("DELIVERY_TIMEOUT_MS", TIMEOUT_MS), ("CIRCUIT_FAILURES", if breaker { "10" } else { "0" })];
    let stack = provision_stack(&format!("f8{}{}{pollers}", if with_bad { "b" } else { "c" }, if breaker { "" } else { "x" }), &[("DeliveryMaxReceiveCount", "30".into())], &extra);
    let opts = runner::Options { wait_seconds: 1, fanout_pollers: 2, delivery_pollers: pollers, calls: None, ..Default::default() };
    let mut runner = runner::Runner::start(sdk, stack.config.clone(), opts).await.expect("runner starts");
    let (good, bad) = (TenantId::parse("good").unwrap(), TenantId::parse("bad").unwrap());
    for t in [&good, &bad] {
        shared::api::auth::issue_key(&runner.deps, t, &Scope::ALL).await.expect("tenant");
    }
    let subs = create_subscriptions(&runner.deps, "good", &sink.url(200), HEALTHY, None).await;
    let hanging = Receiver::start(Vec::new(), Reply::status(200).after(Duration::from_secs(3600))).await;
    let bad_sub = create_subscriptions(&runner.deps, "bad", &hanging.url, 1, None).await.remove(0);
    let upstream = aws_sdk_sqs::Client::new(sdk);
    let queue = stack.config.events_queue_url.clone();
    if with_bad {
        let ids: Vec<String> = (0..QUEUED_BAD).map(|i| format!("bad-{i:05}")).collect();
        for chunk in ids.chunks(10) {
            let entries = chunk.iter().enumerate().map(|(i, id)| SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(envelope("bad", id, DATA_LEN)).build().unwrap()).collect();
            upstream.send_message_batch().queue_url(&queue).set_entries(Some(entries)).send().await.expect("publish");
        }
    }
    sink.record(true);
    let mut published = HashMap::new();
    let n = (RATE * SECS) as usize;
    let t0 = Instant::now();
    for i in 0..n {
        let due = t0 + Duration::from_secs_f64(i as f64 / RATE);
        tokio::time::sleep_until(due.into()).await;
        let id = format!("good-{i:05}");
        let at = Instant::now();
        upstream.send_message().queue_url(&queue).message_body(envelope("good", &id, DATA_LEN)).send().await.expect("publish");
        for s in &subs {
            published.insert(DeliveryId::derive(EventSource::Queue, &good, &id, envelope_time(), &s.subscription_id).to_string(), at);
        }
    }
    let healthy = collect(sink, &published, Duration::from_secs(120)).await;
    sink.record(false);
    let shown = runner.deps.subscriptions.get(&bad, &bad_sub.subscription_id).await.expect("read").expect("exists");
    let circuit = format!("{} since {}", shown.circuit_state.as_str(), shown.circuit_since.map_or("-".into(), |t| t.to_string()));
    let bad_posts = hanging.received().len();
    runner.stop();
    Run { healthy, bad_posts, circuit }
}
