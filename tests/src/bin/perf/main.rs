//! Performance figures of the webhook service, each printed by one command (docs/performance.md).
//!
//! A module per figure (`fig1` … `fig8`, each with a `run` that prints it and adds its rows to the
//! summary), beside what they share: the meters (`ledger`, `ddb_meter`, `sqs_meter`), the
//! loopback receiver (`sink`), the runtime API stub (`stub`) and the bootstraps it serves
//! (`bootstrap`), the /proc reader (`procfs`), the stacks (`stacks`, `drive`, `lambda`,
//! `fixtures`) and the small helpers (`stats`, `format`). `main` only dispatches.
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

mod args;
mod bootstrap;
mod cleanup;
mod ddb_meter;
mod drive;
mod fig1;
mod fig2;
mod fig3;
mod fig4;
mod fig5;
mod fig6;
mod fig7;
mod fig8;
mod fixtures;
mod format;
mod host;
mod lambda;
mod ledger;
mod prices;
mod procfs;
mod sink;
mod sqs_meter;
mod stacks;
mod stats;
mod stub;
mod summary;

use args::{Args, Plan};
use fig1::F1;
use host::{git_head, machine};
use ledger::Ledger;
use shared::adapters::calls::CallCounter;
use sink::Sink;
use stacks::{metered_deps, provision_stack, AwsCtx};
use std::time::Instant;
use summary::Summary;
use time::OffsetDateTime;

fn main() {
    let args = Args::parse();
    if let Some(child) = &args.child {
        match child.as_str() {
            "overhead" => fig1::child_overhead(&args),
            other => {
                eprintln!("perf: unknown child {other}");
                std::process::exit(2);
            }
        }
        return;
    }
    cleanup::install_panic_cleanup();
    let plan = Plan::new(args.quick);
    let started = Instant::now();
    println!("webhooks performance figures ({} run)", if plan.quick { "--quick" } else { "full" });
    println!("date: {} UTC; machine: {}; commit {}", OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(), machine(), git_head());
    println!("binary: release profile of the workspace (opt-level \"z\", fat LTO, sha2 at opt-level 3), as the Lambda bootstraps (which are also non-PIE, see Cargo.toml)");

    let mut summary = Summary(Vec::new());
    let f1 = fig1::run(&args, &plan, &mut summary);

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(aws_figures(&args, &plan, &f1, &mut summary));

    summary.print();
    println!("\n  total run time {:.0} s", started.elapsed().as_secs_f64());
    // The receiver threads and runtimes end with the process.
    std::process::exit(0);
}

/// Figures 2-8: on LocalStack, so only with AWS_ENDPOINT_URL set.
async fn aws_figures(args: &Args, plan: &Plan, f1: &[F1], summary: &mut Summary) {
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        println!("\nAWS_ENDPOINT_URL is not set: figures 2-7 need LocalStack (scripts/perf.sh starts one).");
        return;
    }
    let sdk = shared::load_sdk_config().await;
    let sink = Sink::start();
    let needs_a = [2, 3, 4, 5].iter().any(|f| args.wants(*f));
    if needs_a {
        stack_a_figures(&sdk, &sink, args, plan, f1, summary).await;
    }

    if args.wants(6) {
        fig6::run(&sdk, &sink, plan, summary).await;
    }

    if args.wants(7) {
        fig7::run(&sdk, &sink, plan, summary).await;
    }

    if args.wants(8) {
        fig8::run(&sdk, &sink, summary).await;
    }
}

/// Figures 4, 2, 3 and 5, in that order, on one stack ("a") with metered dependencies.
async fn stack_a_figures(sdk: &aws_config::SdkConfig, sink: &Sink, args: &Args, plan: &Plan, f1: &[F1], summary: &mut Summary) {
    // The breaker off: figures 2 and 3 price every failed attempt of S3 (the breaker would defer them).
    let extra = [("RETRY_SCHEDULE", "300"), ("ALLOW_HTTP", "true"), ("ALLOW_PRIVATE_TARGETS", "true"), ("CIRCUIT_FAILURES", "0")];
    let stack = provision_stack("a", &[("DeliveryMaxReceiveCount", "12".into())], &extra);
    shared::queue_check::check_delivery_queue(&aws_sdk_sqs::Client::new(sdk), &stack.config).await.expect("queue fits the schedule");
    let counter = CallCounter::default();
    let ledger = Ledger::new(&stack.config);
    let (deps, sqs) = metered_deps(sdk, &stack.config, &counter, &ledger);
    let ctx = AwsCtx { stack, deps, sqs, upstream: aws_sdk_sqs::Client::new(sdk), ledger, counter, sink };

    if args.wants(4) {
        fig4::run(&ctx.stack, plan.f4_runs, summary).await;
    }

    if args.wants(2) || args.wants(3) {
        fig2::run(&ctx, args, plan, f1, summary).await;
    }

    if args.wants(5) {
        fig5::run(&ctx, summary).await;
    }
}
