//! Shared shape of the SQS handlers: process every message of a batch concurrently, each in its
//! own span; hide the messages to retry for their wait (one batched visibility change) and report
//! them as batch item failures, so the event source mapping deletes only the others.

use crate::deps::Deps;
use crate::ports::{MessageHandle, QueueName};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use std::future::Future;
use std::time::Duration;
use tracing::Instrument;

/// What to do with one message after handling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Done with it: the event source mapping deletes it.
    Delete,
    /// Leave it on the queue (a batch item failure), hidden for this long if given, else for the
    /// queue's visibility timeout; SQS hands it back then (or dead-letters it).
    Keep(Option<Duration>),
}

/// A message as the handlers see it: its ids and how often SQS handed it out.
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub handle: Option<MessageHandle>,
    /// `ApproximateReceiveCount` (1 on the first receive).
    pub receive: u32,
}

impl Received {
    pub fn of(msg: &SqsMessage) -> Self {
        Self {
            message_id: msg.message_id.clone().unwrap_or_default(),
            handle: msg.receipt_handle.clone().map(MessageHandle),
            receive: msg.attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1),
        }
    }
}

/// Handles every message of the batch concurrently, each in a span with its message id; returns
/// each message's identity and outcome, in order.
pub async fn run<F, Fut, T>(event: SqsEvent, handle: F) -> Vec<(Received, T)>
where
    F: Fn(SqsMessage, Received) -> Fut,
    Fut: Future<Output = T>,
{
    let work = event.records.into_iter().map(|msg| {
        let r = Received::of(&msg);
        let span = tracing::info_span!("message", message_id = %r.message_id);
        let fut = handle(msg, r.clone()).instrument(span);
        async move { (r, fut.await) }
    });
    futures::future::join_all(work).await
}

/// Applies the acks: one batched visibility change for the kept messages that wait, and the
/// batch response naming every kept message.
pub async fn finish(deps: &Deps, queue: QueueName, acks: Vec<(Received, Ack)>) -> SqsBatchResponse {
    let waits: Vec<(MessageHandle, Duration)> = acks
        .iter()
        .filter_map(|(r, a)| match a {
            Ack::Keep(Some(d)) => Some((r.handle.clone()?, *d)),
            _ => None,
        })
        .collect();
    if !waits.is_empty() {
        // A change that fails leaves the message to the queue's own visibility timeout.
        if let Err(e) = deps.queues.set_visibility(queue, &waits).await {
            tracing::warn!(error = %e, "cannot hide messages for their wait; they come back after the queue's visibility timeout");
        }
    }
    let mut response = SqsBatchResponse::default();
    for (r, ack) in acks {
        if let Ack::Keep(_) = ack {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = r.message_id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}
