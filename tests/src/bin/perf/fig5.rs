//! Figure 5: peak RSS of the delivery bootstrap delivering 10 events of 256 KB

use crate::bootstrap::{bootstrap_path, finish, lambda_env, launch};
use crate::fixtures::envelope;
use crate::format::{section, verdict};
use crate::lambda;
use crate::procfs;
use crate::stacks::{create_subscriptions, AwsCtx};
use crate::summary::Summary;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use serde_json::Value;
use shared::ids::TenantId;
use shared::model::Scope;
use std::time::{Duration, Instant};

pub struct F5 {
    pub hwm_kb: u64,
    pub rss_kb: u64,
    pub ms: f64,
    pub body_bytes: usize,
    pub received: u64,
    pub received_bytes: u64,
    pub failures: usize,
}

pub async fn fig5(ctx: &AwsCtx<'_>) -> Result<F5, String> {
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
        if !shared::delivery::enqueue::send_all(&ctx.deps, &tasks).await.is_empty() {
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

/// Figure 5 and its row of the summary.
pub async fn run(ctx: &AwsCtx<'_>, summary: &mut Summary) {
    match fig5(ctx).await {
        Ok(f) => summary.add("5 peak RSS, delivery, 10 x 256 KB", format!("{:.1} MB", f.hwm_kb as f64 / 1024.0), "<= 48 MB", verdict(f.hwm_kb as f64 / 1024.0, 48.0)),
        Err(e) => println!("  figure 5 not measured: {e}"),
    }
}
