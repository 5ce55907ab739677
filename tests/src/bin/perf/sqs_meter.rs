//! The SQS meter: an SDK interceptor that counts every call and its billed requests (64 KB
//! chunks) in the [`Ledger`].

use crate::ledger::Ledger;
use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextMut;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;

#[derive(Debug)]
pub struct SqsMeter(pub Ledger);

impl Intercept for SqsMeter {
    fn name(&self) -> &'static str {
        "SqsMeter"
    }

    fn modify_before_serialization(&self, ctx: &mut BeforeSerializationInterceptorContextMut<'_>, _rc: &RuntimeComponents, _cfg: &mut ConfigBag) -> Result<(), BoxError> {
        use aws_sdk_sqs::operation::{
            change_message_visibility::ChangeMessageVisibilityInput, change_message_visibility_batch::ChangeMessageVisibilityBatchInput, delete_message_batch::DeleteMessageBatchInput, get_queue_attributes::GetQueueAttributesInput,
            receive_message::ReceiveMessageInput, send_message::SendMessageInput, send_message_batch::SendMessageBatchInput,
        };
        let input = ctx.input();
        let chunks = |bytes: usize| bytes.div_ceil(64 * 1024).max(1) as f64;
        if let Some(i) = input.downcast_ref::<ReceiveMessageInput>() {
            // Billed by the poller, which sees what came back.
            self.0.with("ReceiveMessage", &self.0.name(i.queue_url.as_deref()), |r| r.calls += 1);
        } else if let Some(i) = input.downcast_ref::<DeleteMessageBatchInput>() {
            self.0.with("DeleteMessageBatch", &self.0.name(i.queue_url.as_deref()), |r| {
                r.calls += 1;
                r.billed += 1.0;
                r.items += i.entries.as_ref().map(|e| e.len()).unwrap_or(0) as u64;
            });
        } else if let Some(i) = input.downcast_ref::<SendMessageBatchInput>() {
            let entries = i.entries.as_deref().unwrap_or_default();
            let bytes: usize = entries.iter().map(|e| e.message_body.len()).sum();
            self.0.with("SendMessageBatch", &self.0.name(i.queue_url.as_deref()), |r| {
                r.calls += 1;
                r.billed += chunks(bytes);
                r.bytes += bytes as u64;
                r.items += entries.len() as u64;
            });
        } else if let Some(i) = input.downcast_ref::<SendMessageInput>() {
            let bytes = i.message_body.as_deref().map(str::len).unwrap_or(0);
            self.0.with("SendMessage", &self.0.name(i.queue_url.as_deref()), |r| {
                r.calls += 1;
                r.billed += chunks(bytes);
                r.bytes += bytes as u64;
                r.items += 1;
            });
        } else if let Some(i) = input.downcast_ref::<ChangeMessageVisibilityInput>() {
            self.0.with("ChangeMessageVisibility", &self.0.name(i.queue_url.as_deref()), |r| {
                r.calls += 1;
                r.billed += 1.0;
            });
        } else if let Some(i) = input.downcast_ref::<ChangeMessageVisibilityBatchInput>() {
            self.0.with("ChangeMessageVisibilityBatch", &self.0.name(i.queue_url.as_deref()), |r| {
                r.calls += 1;
                r.billed += 1.0;
                r.items += i.entries.as_ref().map(|e| e.len()).unwrap_or(0) as u64;
            });
        } else if let Some(i) = input.downcast_ref::<GetQueueAttributesInput>() {
            self.0.with("GetQueueAttributes", &self.0.name(i.queue_url.as_deref()), |r| {
                r.calls += 1;
                r.billed += 1.0;
            });
        } else {
            self.0.with("other", "SQS", |r| {
                r.calls += 1;
                r.billed += 1.0;
            });
        }
        Ok(())
    }
}
