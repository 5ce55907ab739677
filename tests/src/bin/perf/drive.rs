//! An SQS event source mapping in miniature: the loop that feeds the handlers of figures 2 and 3.

use crate::lambda;
use crate::ledger::Ledger;
use crate::procfs::{self, CpuDelta};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use shared::Deps;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Fanout,
    Delivery,
}

#[derive(Debug, Default)]
pub struct DriveOut {
    /// (messages, handler wall time) per batch.
    pub batches: Vec<(usize, Duration)>,
    pub wall: Duration,
    pub cpu: CpuDelta,
    pub messages: usize,
    pub failed: usize,
}

/// An SQS event source mapping in miniature (as functions/runner/src/poller.rs): `pollers` loops
/// that receive up to 10 messages, build the Lambda event, call the handler, delete what it did
/// not report failed; until `expect` messages were handled. Receives are billed here (what came
/// back, 64 KB chunks; empty receives apart).
#[allow(clippy::too_many_arguments)]
pub async fn drive(kind: Kind, deps: &Deps, sqs: &aws_sdk_sqs::Client, queue_url: &str, expect: usize, ledger: &Ledger, exclude_tid: u32, deadline: Duration) -> DriveOut {
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
