//! Figure 3: cost per million deliveries

use crate::drive::DriveOut;
use crate::fig1::F1;
use crate::fig2::{goal_usd, Scenario, GOAL_FAILED_ATTEMPT_USD};
use crate::format::{section, verdict};
use crate::prices::*;
use crate::procfs;
use crate::stacks::AwsCtx;
use crate::stats::median;
use crate::summary::Summary;
use shared::ids::TenantId;
use shared::model::Scope;
use std::sync::Arc;
use std::time::Instant;

pub struct ApiSample {
    pub ms: Vec<f64>,
    pub cpu_ms: f64,
    pub rcu_per_request: f64,
}

pub async fn api_sample(ctx: &AwsCtx<'_>, api_key: &str, sub_id: &str) -> ApiSample {
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

pub struct CostLine {
    pub item: String,
    pub price: String,
    pub units: f64,
    pub usd: f64,
    pub in_goal: bool,
}

/// Billed Lambda milliseconds of a batch at 128 MB: the measured handler time plus the CPU time
/// stretched to 128/1769 of a vCPU.
pub fn billed_ms(o: &DriveOut, stretch: bool) -> Vec<f64> {
    let cpu_ms = o.cpu.client_ns as f64 / 1e6 / o.batches.len().max(1) as f64;
    o.batches.iter().map(|(_, t)| (t.as_secs_f64() * 1e3 + if stretch { cpu_ms * (LAMBDA_CPU_STRETCH - 1.0) } else { 0.0 }).ceil()).collect()
}

pub fn costs(s: &Scenario, logs: Option<&F1>, api: Option<&ApiSample>, stretch: bool) -> Vec<CostLine> {
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

pub fn print_costs(s: &Scenario, logs: Option<&F1>, api: Option<&ApiSample>) -> f64 {
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

/// Figure 3 from the scenarios of figure 2 (and the log bytes of figure 1), and its rows of the summary.
pub async fn run(ctx: &AwsCtx<'_>, f1: &[F1], s1: &Scenario, s2: &Scenario, s3: &Scenario, summary: &mut Summary) {
    section("Figure 3: cost per million deliveries");
    let (key, _) = shared::api::auth::issue_key(&ctx.deps, &TenantId::parse("acme").unwrap(), &Scope::ALL).await.expect("key");
    let sub = ctx.deps.subscriptions.list_page(&TenantId::parse("acme").unwrap(), None, 1).await.expect("subs").items.remove(0);
    let api = api_sample(ctx, &key, sub.subscription_id.as_str()).await;
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
    let g1 = print_costs(s1, logs, Some(&api));
    let g2 = print_costs(s2, logs, Some(&api));
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
