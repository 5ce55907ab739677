//! The SQS adapter: the delivery queue, the event queue and the event dead-letter queue.

use crate::config::Config;
use crate::model::DeliveryTask;
use crate::ports::*;
use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use std::time::Duration;

pub struct SqsQueues {
    client: Client,
    delivery_queue_url: String,
    events_queue_url: String,
    events_dlq_url: String,
}

impl SqsQueues {
    pub fn new(client: Client, config: &Config) -> Self {
        Self {
            client,
            delivery_queue_url: config.delivery_queue_url.clone(),
            events_queue_url: config.events_queue_url.clone(),
            events_dlq_url: config.events_dlq_url.clone(),
        }
    }
}

fn string_attr(v: &str) -> StoreResult<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(v)
        .build()
        .map_err(|e| StoreError::backend("build message attribute", e))
}

#[async_trait]
impl Queues for SqsQueues {
    async fn enqueue_deliveries(&self, tasks: &[DeliveryTask]) -> StoreResult<Vec<usize>> {
        let mut failed = Vec::new();
        for (chunk_no, chunk) in tasks.chunks(10).enumerate() {
            let base = chunk_no * 10;
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, task)| {
                    let body = serde_json::to_string(task).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    SendMessageBatchRequestEntry::builder()
                        .id((base + i).to_string())
                        .message_body(body)
                        .build()
                        .map_err(|e| StoreError::backend("build batch entry", e))
                })
                .collect::<StoreResult<Vec<_>>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.delivery_queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| StoreError::backend("send delivery batch", e.into_service_error()))?;
            for f in out.failed {
                let idx = f.id.parse::<usize>().map_err(|_| StoreError::Corrupt(format!("batch entry id {}", f.id)))?;
                tracing::warn!(code = %f.code, sender_fault = f.sender_fault, "delivery task not enqueued");
                failed.push(idx);
            }
        }
        Ok(failed)
    }

    async fn retry_after(&self, handle: &MessageHandle, delay: Duration) -> StoreResult<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.delivery_queue_url)
            .receipt_handle(&handle.0)
            .visibility_timeout(delay.as_secs().min(43_200) as i32)
            .send()
            .await
            .map_err(|e| StoreError::backend("change message visibility", e.into_service_error()))?;
        Ok(())
    }

    async fn publish_event(&self, body: &str) -> StoreResult<()> {
        self.client
            .send_message()
            .queue_url(&self.events_queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| StoreError::backend("send event", e.into_service_error()))?;
        Ok(())
    }

    async fn dead_letter_event(&self, body: &str, reason: &str, source_message_id: &str) -> StoreResult<()> {
        self.client
            .send_message()
            .queue_url(&self.events_dlq_url)
            .message_body(body)
            .message_attributes("reason", string_attr(reason)?)
            .message_attributes("source_message_id", string_attr(source_message_id)?)
            .send()
            .await
            .map_err(|e| StoreError::backend("send to event DLQ", e.into_service_error()))?;
        Ok(())
    }
}
