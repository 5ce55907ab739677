//! Shared shape of the SQS handlers: process every message of a batch concurrently, each in its
//! own span, and report only the ones to retry as batch item failures.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use std::future::Future;
use tracing::Instrument;

/// What to do with one message after handling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Delete it from the queue.
    Done,
    /// Leave it: report it as a batch item failure so SQS delivers it again (or dead-letters it).
    Retry,
}

pub async fn process<F, Fut>(event: SqsEvent, handle: F) -> SqsBatchResponse
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Ack>,
{
    response(run(event, handle).await)
}

/// Handles every message of the batch concurrently, each in a span with its message id; returns
/// each message's id and outcome, in order.
pub async fn run<F, Fut, T>(event: SqsEvent, handle: F) -> Vec<(String, T)>
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = T>,
{
    let work = event.records.into_iter().map(|msg| {
        let id = msg.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("message", message_id = %id);
        let fut = handle(msg).instrument(span);
        async move { (id, fut.await) }
    });
    futures::future::join_all(work).await
}

/// The batch response naming the messages to retry.
pub fn response(acks: impl IntoIterator<Item = (String, Ack)>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for (id, ack) in acks {
        if ack == Ack::Retry {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}
