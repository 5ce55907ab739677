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

/// Whether the batch comes from a FIFO queue (ordered delivery): its messages of one message
/// group must be handled one at a time, in order.
pub fn is_fifo(event: &SqsEvent) -> bool {
    event.records.first().and_then(|m| m.event_source_arn.as_deref()).is_some_and(|arn| arn.ends_with(".fifo"))
}

fn group_of(msg: &SqsMessage) -> String {
    msg.attributes.get("MessageGroupId").cloned().unwrap_or_default()
}

/// For a FIFO batch: handles each message group's messages one after the other, in order (the
/// groups concurrently). Once one is kept, the group's later messages are not handled and are
/// kept with the same wait: SQS then hands them all back, in order, when it ends (a later one
/// visible before it would be taken first).
pub async fn run_ordered<F, Fut>(event: SqsEvent, handle: F) -> Vec<(Received, Ack)>
where
    F: Fn(SqsMessage, Received) -> Fut,
    Fut: Future<Output = Ack>,
{
    let n = event.records.len();
    let mut groups: Vec<(String, Vec<(usize, SqsMessage)>)> = Vec::new();
    for (i, msg) in event.records.into_iter().enumerate() {
        let g = group_of(&msg);
        match groups.iter_mut().find(|(k, _)| *k == g) {
            Some((_, v)) => v.push((i, msg)),
            None => groups.push((g, vec![(i, msg)])),
        }
    }
    let handle = &handle;
    let work = groups.into_iter().map(|(_, msgs)| async move {
        let mut out = Vec::with_capacity(msgs.len());
        let mut held: Option<Ack> = None;
        for (i, msg) in msgs {
            let r = Received::of(&msg);
            let ack = match held {
                Some(ack) => ack,
                None => {
                    let span = tracing::info_span!("message", message_id = %r.message_id);
                    let ack = handle(msg, r.clone()).instrument(span).await;
                    if let Ack::Keep(_) = ack {
                        held = Some(ack);
                    }
                    ack
                }
            };
            out.push((i, (r, ack)));
        }
        out
    });
    let mut all: Vec<(usize, (Received, Ack))> = futures::future::join_all(work).await.into_iter().flatten().collect();
    all.sort_by_key(|(i, _)| *i);
    debug_assert_eq!(all.len(), n);
    all.into_iter().map(|(_, x)| x).collect()
}

/// For a FIFO batch handled all together (fan-out): once a message of a group is kept, its
/// group's later messages are kept too, with the same wait. `groups[i]` is message i's group.
pub fn hold_groups(acks: &mut [(Received, Ack)], groups: &[String]) {
    let mut held: Vec<(&str, Ack)> = Vec::new();
    for (i, (_, ack)) in acks.iter_mut().enumerate() {
        let g = groups[i].as_str();
        if let Some((_, first)) = held.iter().find(|(k, _)| *k == g) {
            *ack = *first;
        } else if let Ack::Keep(_) = ack {
            held.push((g, *ack));
        }
    }
}

/// The message groups of a batch's messages, in order.
pub fn groups(event: &SqsEvent) -> Vec<String> {
    event.records.iter().map(group_of).collect()
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
