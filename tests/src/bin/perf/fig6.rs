//! Figure 6: fan-out to 1 … 1,000 subscriptions

use crate::args::Plan;
use crate::fixtures::{envelope, DATA_LEN};
use crate::format::section;
use crate::lambda;
use crate::ledger::Ledger;
use crate::sink::Sink;
use crate::stacks::{create_subscriptions, metered_deps, provision_stack};
use crate::summary::Summary;
use shared::adapters::calls::CallCounter;
use shared::ids::TenantId;
use shared::model::Scope;
use std::time::Instant;

pub struct F6Row {
    pub n: usize,
    pub ms: f64,
    pub send_batches: u64,
    pub puts: u64,
    pub queries: u64,
    pub gets: u64,
    pub failures: usize,
}

pub async fn fig6(sdk: &aws_config::SdkConfig, sink: &Sink, sizes: &[usize]) -> Vec<F6Row> {
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

/// Figure 6 and its row of the summary.
pub async fn run(sdk: &aws_config::SdkConfig, sink: &Sink, plan: &Plan, summary: &mut Summary) {
    let rows = fig6(sdk, sink, &plan.f6_sizes).await;
    if let (Some(a), Some(b)) = (rows.first(), rows.last()) {
        summary.add(
            "6 fan-out 1 -> 1,000 subscriptions",
            format!("{:.0} ms -> {:.0} ms, {} -> {} SendMessageBatch", a.ms, b.ms, a.send_batches, b.send_batches),
            "linear",
            if b.send_batches as usize == b.n.div_ceil(10) { "OK" } else { "FAR" },
        );
    }
}
