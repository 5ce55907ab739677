//! The SQS adapter: the delivery queue and its DLQ, the event queue and the event DLQ.

use crate::config::Config;
use crate::model::DeliveryTask;
use crate::ports::*;
use async_trait::async_trait;
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use std::time::Duration;

/// SQS's cap on one `SendMessageBatch`: 10 entries and 256 KiB of payload (an entry larger than
/// that goes alone; the delivery queue takes messages up to 1 MiB).
const BATCH_ENTRIES: usize = 10;
const BATCH_BYTES: usize = 256 * 1024;

pub struct SqsQueues {
    client: Client,
    delivery_queue_url: String,
    delivery_dlq_url: String,
    events_queue_url: String,
    events_dlq_url: String,
    ordered_delivery_queue_url: String,
    ordered_delivery_dlq_url: String,
    ordered_events_queue_url: String,
}

impl SqsQueues {
    pub fn new(client: Client, config: &Config) -> Self {
        Self {
            client,
            delivery_queue_url: config.delivery_queue_url.clone(),
            delivery_dlq_url: config.delivery_dlq_url.clone(),
            events_queue_url: config.events_queue_url.clone(),
            events_dlq_url: config.events_dlq_url.clone(),
            ordered_delivery_queue_url: config.ordered_delivery_queue_url.clone(),
            ordered_delivery_dlq_url: config.ordered_delivery_dlq_url.clone(),
            ordered_events_queue_url: config.ordered_events_queue_url.clone(),
        }
    }

    fn url(&self, q: QueueName) -> &str {
        match q {
            QueueName::Events => &self.events_queue_url,
            QueueName::Deliveries => &self.delivery_queue_url,
            QueueName::DeliveryDlq => &self.delivery_dlq_url,
            QueueName::OrderedEvents => &self.ordered_events_queue_url,
            QueueName::OrderedDeliveries => &self.ordered_delivery_queue_url,
            QueueName::OrderedDeliveryDlq => &self.ordered_delivery_dlq_url,
        }
    }
}

fn string_attr(v: &str) -> PortResult<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(v)
        .build()
        .map_err(|e| PortError::backend("build message attribute", e))
}

/// The FIFO deduplication id of an ordered task: a live task's delivery id (fan-out running an
/// event again within SQS's 5 minutes sends it once); a redelivery's token and a fresh nonce (a
/// re-send must go).
fn dedup_id(d: &crate::model::Deliver) -> String {
    match &d.token {
        None if d.trigger == crate::model::Trigger::Live => d.delivery_id.as_str().to_owned(),
        _ => {
            let mut raw = [0u8; 8];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
            format!("{}.{}", d.token.as_deref().unwrap_or("x"), hex::encode(raw))
        }
    }
}

/// Index ranges of `sizes` that make batches within SQS's limits.
pub fn batches(sizes: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, &size) in sizes.iter().enumerate() {
        if i > start && (i - start == BATCH_ENTRIES || bytes + size > BATCH_BYTES) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

#[async_trait]
impl Queues for SqsQueues {
    async fn send_tasks(&self, tasks: &[DeliveryTask]) -> PortResult<Vec<usize>> {
        // Ordered subscriptions' tasks go to the FIFO queue, in the order given (SQS keeps the
        // order of a batch's entries within a message group); the others to the standard one.
        let (ordered, unordered): (Vec<usize>, Vec<usize>) = (0..tasks.len()).partition(|&i| tasks[i].deliver().ordered);
        let mut failed = Vec::new();
        for (queue, picked) in [(QueueName::Deliveries, unordered), (QueueName::OrderedDeliveries, ordered)] {
            if picked.is_empty() {
                continue;
            }
            let bodies = picked.iter().map(|&i| serde_json::to_string(&tasks[i]).map_err(|e| PortError::Corrupt(e.to_string()))).collect::<PortResult<Vec<_>>>()?;
            for range in batches(&bodies.iter().map(String::len).collect::<Vec<_>>()) {
                let entries = range
                    .clone()
                    .map(|j| {
                        let entry = SendMessageBatchRequestEntry::builder().id(picked[j].to_string()).message_body(&bodies[j]);
                        let entry = match queue {
                            QueueName::OrderedDeliveries => {
                                let d = tasks[picked[j]].deliver();
                                entry.message_group_id(d.delivery_id.subscription().as_str()).message_deduplication_id(dedup_id(d))
                            }
                            _ => entry,
                        };
                        entry.build().map_err(|e| PortError::backend("build batch entry", e))
                    })
                    .collect::<PortResult<Vec<_>>>()?;
                let out = self
                    .client
                    .send_message_batch()
                    .queue_url(self.url(queue))
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| PortError::backend("send delivery batch", e.into_service_error()))?;
                for f in out.failed {
                    let idx = f.id.parse::<usize>().map_err(|_| PortError::Corrupt(format!("batch entry id {}", f.id)))?;
                    tracing::warn!(code = %f.code, sender_fault = f.sender_fault, "delivery task not enqueued");
                    failed.push(idx);
                }
            }
        }
        failed.sort_unstable();
        Ok(failed)
    }

    async fn set_visibility(&self, queue: QueueName, changes: &[(MessageHandle, Duration)]) -> PortResult<Vec<usize>> {
        let mut failed = Vec::new();
        for (chunk_no, chunk) in changes.chunks(BATCH_ENTRIES).enumerate() {
            let base = chunk_no * BATCH_ENTRIES;
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, (h, d))| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id((base + i).to_string())
                        .receipt_handle(&h.0)
                        .visibility_timeout(d.as_secs().min(43_200) as i32)
                        .build()
                        .map_err(|e| PortError::backend("build visibility entry", e))
                })
                .collect::<PortResult<Vec<_>>>()?;
            let out = self
                .client
                .change_message_visibility_batch()
                .queue_url(self.url(queue))
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| PortError::backend("change message visibility", e.into_service_error()))?;
            for f in out.failed {
                tracing::warn!(code = %f.code, "visibility change failed; the message comes back after the queue's timeout");
                failed.extend(f.id.parse::<usize>().ok());
            }
        }
        Ok(failed)
    }

    async fn publish_event(&self, body: &str, source: crate::ids::EventSource) -> PortResult<()> {
        self.client
            .send_message()
            .queue_url(&self.events_queue_url)
            .message_body(body)
            .message_attributes("source", string_attr(source.as_str())?)
            .send()
            .await
            .map_err(|e| PortError::backend("send event", e.into_service_error()))?;
        Ok(())
    }

    async fn dead_letter_event(&self, body: &str, reason: &str, source_message_id: &str) -> PortResult<()> {
        self.client
            .send_message()
            .queue_url(&self.events_dlq_url)
            .message_body(body)
            .message_attributes("reason", string_attr(reason)?)
            .message_attributes("source_message_id", string_attr(source_message_id)?)
            .send()
            .await
            .map_err(|e| PortError::backend("send to event DLQ", e.into_service_error()))?;
        Ok(())
    }

    async fn peek_dead_tasks(&self, max: usize, hide: Duration) -> PortResult<Vec<Peeked>> {
        let mut out = Vec::new();
        for dlq in [&self.delivery_dlq_url, &self.ordered_delivery_dlq_url] {
            while out.len() < max {
                let got = self
                    .client
                    .receive_message()
                    .queue_url(dlq)
                    .max_number_of_messages((max - out.len()).min(10) as i32)
                    .visibility_timeout(hide.as_secs() as i32)
                    .wait_time_seconds(0)
                    .send()
                    .await
                    .map_err(|e| PortError::backend("receive from delivery DLQ", e.into_service_error()))?
                    .messages
                    .unwrap_or_default();
                if got.is_empty() {
                    break;
                }
                for m in got {
                    if let (Some(handle), Some(id)) = (m.receipt_handle, m.message_id) {
                        let queue = if std::ptr::eq(dlq, &self.delivery_dlq_url) { QueueName::DeliveryDlq } else { QueueName::OrderedDeliveryDlq };
                        out.push(Peeked { queue, handle: MessageHandle(handle), message_id: id, body: m.body.unwrap_or_default() });
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn batches_stay_within_ten_entries_and_256_kib() {
        assert_eq!(super::batches(&[1; 25]), vec![0..10, 10..20, 20..25]);
        assert_eq!(super::batches(&[100_000, 100_000, 100_000]), vec![0..2, 2..3]);
        assert_eq!(super::batches(&[300_000, 10, 10]), vec![0..1, 1..3], "a large entry goes alone");
        assert!(super::batches(&[]).is_empty());
    }
}
