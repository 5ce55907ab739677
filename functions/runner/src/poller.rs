//! An SQS event source mapping in miniature: receive up to 10 messages (long poll), hand them to
//! the handler as an `SqsEvent`, delete the ones not reported as batch item failures.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use aws_sdk_sqs::Client;
use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Counters a test or benchmark can read.
#[derive(Debug, Default)]
pub struct PollStats {
    pub receives: AtomicU64,
    pub messages: AtomicU64,
    pub deleted: AtomicU64,
    pub failed: AtomicU64,
}

impl PollStats {
    pub fn get(&self, counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Where and how a poller receives.
#[derive(Debug, Clone)]
pub struct Source {
    pub queue_url: String,
    pub queue_arn: String,
    /// Messages per batch (1-10).
    pub batch_size: i32,
    pub wait_seconds: i32,
}

pub fn spawn<H, Fut>(sqs: Client, source: Source, stats: Arc<PollStats>, handler: H) -> JoinHandle<()>
where
    H: Fn(SqsEvent) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = SqsBatchResponse> + Send,
{
    tokio::spawn(async move {
        loop {
            if let Err(e) = poll_once(&sqs, &source, &stats, &handler).await {
                tracing::warn!(queue = %source.queue_url, error = %e, "poll failed; backing off");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    })
}

async fn poll_once<H, Fut>(sqs: &Client, source: &Source, stats: &PollStats, handler: &H) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    H: Fn(SqsEvent) -> Fut,
    Fut: Future<Output = SqsBatchResponse>,
{
    let out = sqs
        .receive_message()
        .queue_url(&source.queue_url)
        .max_number_of_messages(source.batch_size)
        .wait_time_seconds(source.wait_seconds)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .map_err(|e| e.into_service_error())?;
    stats.receives.fetch_add(1, Ordering::Relaxed);
    let messages = out.messages.unwrap_or_default();
    if messages.is_empty() {
        return Ok(());
    }
    stats.messages.fetch_add(messages.len() as u64, Ordering::Relaxed);
    let receipts: Vec<(String, String)> = messages.iter().filter_map(|m| Some((m.message_id.clone()?, m.receipt_handle.clone()?))).collect();
    let mut event = SqsEvent::default();
    event.records = messages.into_iter().map(|m| to_lambda_record(m, &source.queue_arn)).collect();

    let response = handler(event).await;
    let failed: HashSet<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    stats.failed.fetch_add(failed.len() as u64, Ordering::Relaxed);
    let entries: Vec<DeleteMessageBatchRequestEntry> = receipts
        .iter()
        .filter(|(id, _)| !failed.contains(id.as_str()))
        .enumerate()
        .map(|(i, (_, receipt))| DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(receipt).build())
        .collect::<Result<_, _>>()?;
    for chunk in entries.chunks(10) {
        let n = chunk.len() as u64;
        let out = sqs.delete_message_batch().queue_url(&source.queue_url).set_entries(Some(chunk.to_vec())).send().await.map_err(|e| e.into_service_error())?;
        stats.deleted.fetch_add(n - out.failed.len() as u64, Ordering::Relaxed);
        for f in out.failed {
            tracing::warn!(code = %f.code, "delete failed; message will be redelivered");
        }
    }
    Ok(())
}

/// The record Lambda would deliver for this message (system attributes as strings, message
/// attributes as Lambda shows them).
pub fn to_lambda_record(m: Message, queue_arn: &str) -> SqsMessage {
    let mut r = SqsMessage::default();
    r.message_id = m.message_id;
    r.receipt_handle = m.receipt_handle;
    r.body = m.body;
    r.md5_of_body = m.md5_of_body;
    r.attributes = m.attributes.unwrap_or_default().into_iter().map(|(k, v)| (k.as_str().to_owned(), v)).collect();
    r.message_attributes = m
        .message_attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let mut a = SqsMessageAttribute::default();
            a.string_value = v.string_value;
            a.data_type = Some(v.data_type);
            (k, a)
        })
        .collect();
    r.event_source = Some("aws:sqs".into());
    r.event_source_arn = Some(queue_arn.to_owned());
    r.aws_region = Some("us-east-1".into());
    r
}
