//! The SQS delivery-queue adapter.

use crate::config::Config;
use crate::model::DeliveryTask;
use crate::ports::*;
use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;
use std::time::Duration;

pub struct SqsDeliveryQueue {
    client: Client,
    queue_url: String,
}

impl SqsDeliveryQueue {
    pub fn new(client: Client, config: &Config) -> Self {
        Self { client, queue_url: config.delivery_queue_url.clone() }
    }
}

#[async_trait]
impl DeliveryQueue for SqsDeliveryQueue {
    async fn enqueue(&self, tasks: &[DeliveryTask]) -> StoreResult<Vec<usize>> {
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
                .queue_url(&self.queue_url)
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
            .queue_url(&self.queue_url)
            .receipt_handle(&handle.0)
            .visibility_timeout(delay.as_secs().min(43_200) as i32)
            .send()
            .await
            .map_err(|e| StoreError::backend("change message visibility", e.into_service_error()))?;
        Ok(())
    }
}
