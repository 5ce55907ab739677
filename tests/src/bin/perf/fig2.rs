//! Figure 2: AWS calls per delivery

use crate::args::{Args, Plan};
use crate::drive::{drive, DriveOut, Kind};
use crate::fig1::F1;
use crate::fig3;
use crate::fixtures::{envelope, passing_filter, DATA_LEN};
use crate::format::{section, thousands, verdict};
use crate::ledger::{purpose, Row, Rows};
use crate::stacks::{create_subscriptions, publish, AwsCtx};
use crate::stats::{mean, median, percentile};
use crate::summary::Summary;
use shared::ids::TenantId;
use shared::model::Scope;
use std::collections::BTreeMap;
use std::time::Duration;

pub struct Scenario {
    pub label: String,
    pub events: usize,
    pub per_event: usize,
    pub deliveries: usize,
    pub failing: bool,
    pub fan_rows: Rows,
    pub del_rows: Rows,
    pub fan: DriveOut,
    pub del: DriveOut,
    pub fan_calls: BTreeMap<String, u64>,
    pub del_calls: BTreeMap<String, u64>,
    pub received: u64,
}

impl Scenario {
    pub fn rows(&self) -> impl Iterator<Item = (&'static str, &(String, String), &Row)> {
        self.fan_rows.iter().map(|(k, r)| ("fan-out", k, r)).chain(self.del_rows.iter().map(|(k, r)| ("delivery", k, r)))
    }

    pub fn sqs_billed(&self) -> f64 {
        self.rows().filter(|(_, (op, _), _)| is_sqs(op)).map(|(_, _, r)| r.billed).sum()
    }

    pub fn sqs_calls(&self) -> f64 {
        self.rows().filter(|(_, (op, _), _)| is_sqs(op)).map(|(_, (op, _), r)| if op == "ReceiveMessage" { (r.calls - r.empty) as f64 } else { r.calls as f64 }).sum()
    }

    pub fn empty_receives(&self) -> u64 {
        self.rows().map(|(_, _, r)| r.empty).sum()
    }

    pub fn ddb_writes(&self) -> f64 {
        self.rows().filter(|(_, (op, _), _)| is_write(op)).map(|(_, _, r)| r.calls as f64).sum()
    }

    pub fn wcu(&self) -> (f64, f64) {
        let rows: Vec<_> = self.rows().filter(|(_, (op, _), _)| is_write(op)).collect();
        (rows.iter().map(|(_, _, r)| r.wcu + r.wcu_gsi).sum(), rows.iter().map(|(_, _, r)| r.size_units).sum())
    }

    pub fn rcu(&self) -> (f64, f64) {
        let rows: Vec<_> = self.rows().filter(|(_, (op, _), _)| op == "GetItem" || op == "Query").collect();
        (rows.iter().map(|(_, _, r)| r.rcu).sum(), rows.iter().map(|(_, _, r)| r.size_units).sum())
    }
}

/// The goals of figures 2 and 3 (issue 14: the delivery ledger): write units per delivery, read
/// units per delivery and the per-request charges per million deliveries, by shape.
pub const GOAL_RCU: f64 = 0.3;
pub const GOAL_FAILED_ATTEMPT_USD: f64 = 1.00;
/// The delivery handler's CPU per delivered message before the ledger (figure 2, 12-02: ~2 ms on
/// this host); the goal is half of it.
pub const BASELINE_DELIVERY_CPU_MS: f64 = 2.0;

pub fn goal_wcu(per_event: usize) -> f64 {
    if per_event == 1 { 1.2 } else { 1.1 }
}

pub fn goal_usd(per_event: usize) -> f64 {
    if per_event == 1 { 1.20 } else { 0.90 }
}

/// CPU of the delivery phase per message handled, in ms (the handler, its SDK calls and the
/// poller loop, on this host's full vCPU).
pub fn cpu_ms_per_message(o: &DriveOut) -> f64 {
    o.cpu.client_ns as f64 / 1e6 / o.messages.max(1) as f64
}

pub fn is_sqs(op: &str) -> bool {
    matches!(op, "ReceiveMessage" | "DeleteMessageBatch" | "SendMessageBatch" | "SendMessage" | "ChangeMessageVisibility" | "ChangeMessageVisibilityBatch" | "GetQueueAttributes")
}

pub fn is_write(op: &str) -> bool {
    matches!(op, "PutItem" | "UpdateItem" | "DeleteItem")
}

pub async fn scenario(ctx: &AwsCtx<'_>, label: &str, tenant: &str, events: usize, per_event: usize, failing: bool) -> Scenario {
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

pub fn print_scenario(s: &Scenario) {
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

/// Figures 2 and (if asked for) 3 on stack A, and their rows of the summary.
pub async fn run(ctx: &AwsCtx<'_>, args: &Args, plan: &Plan, f1: &[F1], summary: &mut Summary) {
    section("Figure 2: AWS calls per delivery (real SDK against LocalStack, CallCounter + capacity meter)");
    println!("  handlers: fanout::handle_batch / delivery::handle_batch with Deps::aws_counted clients; an event-source-mapping loop like the");
    println!("  runner's poller (2 pollers, ReceiveMessage of 10, DeleteMessageBatch of what succeeded). WCU/RCU: ConsumedCapacity as");
    println!("  DynamoDB Local reports it (ReturnConsumedCapacity=INDEXES added by the meter); size model: 1 WCU per started KB per write,");
    println!("  + 1 for the keys-only GSI item of a new delivery (updates change no key: none), 1 RCU per 4 KB strongly consistent read (half for eventually consistent).");
    println!("  SQS: 1 request per 64 KB chunk.");
    for (tenant, n, code, filter) in [("acme", 1, 200, None), ("acmef", 1, 200, Some(passing_filter())), ("wide", 10, 200, None), ("fail", 1, 500, None)] {
        let t = TenantId::parse(tenant).unwrap();
        shared::api::auth::issue_key(&ctx.deps, &t, &Scope::ALL).await.expect("tenant");
        create_subscriptions(&ctx.deps, tenant, &ctx.sink.url(code), n, filter).await;
    }
    let s1 = scenario(ctx, "S1: one subscription per event", "acme", plan.f2_events_one, 1, false).await;
    print_scenario(&s1);
    let s1f = scenario(ctx, "S1F: as S1, the subscription with a payload filter (4 conditions, all pass)", "acmef", plan.f2_events_one, 1, false).await;
    print_scenario(&s1f);
    compare_filters(&s1, &s1f, summary);
    let s2 = scenario(ctx, "S2: ten subscriptions per event", "wide", plan.f2_events_ten, 10, false).await;
    print_scenario(&s2);
    let s3 = scenario(ctx, "S3: failing endpoint (first attempt of each)", "fail", plan.f2_failing, 1, true).await;
    print_scenario(&s3);
    for s in [&s1, &s2] {
        let d = s.deliveries as f64;
        let short = if s.per_event == 1 { "1 sub/event" } else { "10 subs/event" };
        summary.add(&format!("2 SQS requests per delivery ({short})"), format!("{:.2}", s.sqs_billed() / d), "<= 1.3", verdict(s.sqs_billed() / d, 1.3));
        summary.add(&format!("2 DynamoDB WCU per delivery ({short})"), format!("{:.2}", s.wcu().0 / d), &format!("<= {}", goal_wcu(s.per_event)), verdict(s.wcu().0 / d, goal_wcu(s.per_event)));
        summary.add(&format!("2 DynamoDB RCU per delivery ({short})"), format!("{:.2}", s.rcu().0 / d), &format!("<= {GOAL_RCU}"), verdict(s.rcu().0 / d, GOAL_RCU));
    }
    // The rate limiter's tickets are UpdateItems of the ledger table; a subscription without a
    // limit takes none (S1's workers make no UpdateItem there at all).
    let tickets: u64 = s1.del_rows.iter().filter(|((op, target), _)| op == "UpdateItem" && target.contains("Deliveries")).map(|(_, r)| r.calls).sum();
    println!("  rate limiter: {tickets} ticket writes for S1's {} deliveries (subscriptions without rate_limit_per_second pay nothing)", s1.deliveries);
    summary.add("2 rate-limiter writes per delivery (no limit set)", format!("{:.2}", tickets as f64 / s1.deliveries as f64), "0", verdict(tickets as f64, 0.0));
    let cpu = cpu_ms_per_message(&s1.del);
    summary.add("2 delivery CPU per message (1 sub/event)", format!("{cpu:.3} ms"), &format!("<= {:.1} ms", BASELINE_DELIVERY_CPU_MS / 2.0), verdict(cpu, BASELINE_DELIVERY_CPU_MS / 2.0));

    if args.wants(3) {
        fig3::run(ctx, f1, &s1, &s2, &s3, summary).await;
    }
}

/// S1 and S1F side by side: a payload filter should change no AWS call and no unit.
fn compare_filters(s1: &Scenario, s1f: &Scenario, summary: &mut Summary) {
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
