//! Fan-out: one upstream event → one delivery task per matching subscription of its tenant.
//!
//! Writes nothing: each task carries the event, and its delivery id is derived from (source,
//! tenant, event id, `occurred_at`, subscription), so an event that SQS hands us twice (or that an
//! operator redrives) yields the same deliveries, which the ledger's conditional writes keep to
//! one each. The event's message is deleted only once all its tasks are on the delivery queue:
//! until then it owns its deliveries. Poison events (unparseable, invalid, of an unknown tenant)
//! go to the event DLQ with their reason and never block their batch.

use crate::delivery::enqueue::send_all;
use crate::deps::{Deps, TenantSubscriptions};
use crate::envelope::{parse_event, EventIn, Rejection};
use crate::ids::{DeliveryId, EventSource};
use crate::metrics::{self, Metric};
use crate::model::{Deliver, DeliveryTask, Trigger};
use crate::ports::{PortError, QueueName, Subscriber};
use crate::retry::infra_backoff;
use crate::sqs_batch::{self, Ack, Received};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use std::sync::Arc;
use tracing::Instrument;

/// Handles a batch of upstream events: each is parsed and matched concurrently; then the tasks
/// of the whole batch are sent together (10 per `SendMessageBatch`, so ten events of one
/// subscription each cost one call). An event whose tasks were not all sent, or that met an
/// infrastructure error, stays on the queue (hidden for the infrastructure backoff) and is
/// fanned out again; the duplicate tasks that makes are marked to be checked against the ledger.
pub async fn handle_batch(event: SqsEvent, deps: &Deps) -> SqsBatchResponse {
    let figures = metrics::Batch::new("fanout");
    // The ordered event queue: its events' tasks were made (and are sent) in batch order; an
    // event kept holds the later ones of its message group.
    let fifo = sqs_batch::is_fifo(&event).then(|| sqs_batch::groups(&event));
    let results = sqs_batch::run(event, |msg, r| handle_message(msg, r, deps, &figures)).await;

    let mut acks = Vec::with_capacity(results.len());
    let mut tasks = Vec::new();
    let mut owners = Vec::new(); // tasks[i] belongs to acks[owners[i]]
    for (i, (r, outcome)) in results.into_iter().enumerate() {
        let ack = match outcome {
            Outcome::Ack(ack) => ack,
            Outcome::Send(mine) => {
                owners.extend(std::iter::repeat_n(i, mine.len()));
                tasks.extend(mine);
                Ack::Delete
            }
        };
        acks.push((r, ack));
    }
    deps.faults.point("fanout.before_send").await;
    for failed in send_all(deps, &tasks).await {
        let (r, ack) = &mut acks[owners[failed]];
        if *ack == Ack::Delete {
            tracing::error!(message_id = %r.message_id, "delivery tasks not enqueued; event will be fanned out again");
            figures.add(&[Metric { name: "InfraErrors", value: 1.0, unit: "Count" }]);
        }
        *ack = Ack::Keep(Some(infra_backoff(deps.config.infra_backoff, deps.config.infra_backoff_max, r.receive)));
    }
    deps.faults.point("fanout.after_send").await;
    let queue = match &fifo {
        Some(groups) => {
            sqs_batch::hold_groups(&mut acks, groups);
            QueueName::OrderedEvents
        }
        None => QueueName::Events,
    };
    let response = sqs_batch::finish(deps, queue, acks).await;
    figures.emit();
    crate::telemetry::flush();
    response
}

/// What one upstream message came to.
enum Outcome {
    Ack(Ack),
    /// Done once these tasks are on the queue.
    Send(Vec<DeliveryTask>),
}

#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error(transparent)]
    Port(#[from] PortError),
}

/// Where an event came from: `POST /v1/events` marks its messages (`source` attribute).
fn source_of(msg: &SqsMessage) -> EventSource {
    match msg.message_attributes.get("source").and_then(|a| a.string_value.as_deref()) {
        Some("http") => EventSource::Http,
        Some("operational") => EventSource::Operational,
        _ => EventSource::Queue,
    }
}

async fn handle_message(msg: SqsMessage, r: Received, deps: &Deps, figures: &metrics::Batch) -> Outcome {
    let body = msg.body.as_deref().unwrap_or_default();
    let event = match parse_event(body) {
        Ok(e) => e,
        Err(rejection) => return Outcome::Ack(reject(body, &r.message_id, rejection, deps, figures).await),
    };
    let span = tracing::info_span!("fanout", tenant = %event.tenant_id, event_id = %event.event_id, event_type = %event.event_type);
    // A message SQS handed out before may have sent some tasks already: their duplicates check.
    let check = r.receive > 1;
    match tasks_for(&event, source_of(&msg), check, deps).instrument(span.clone()).await {
        Ok(tasks) => {
            span.in_scope(|| tracing::info!(matched = tasks.len(), "fanned out"));
            figures.add(&[Metric { name: "Events", value: 1.0, unit: "Count" }, Metric { name: "Matched", value: tasks.len() as f64, unit: "Count" }]);
            Outcome::Send(tasks)
        }
        Err(FanoutError::Rejected(rejection)) => Outcome::Ack(reject(body, &r.message_id, rejection, deps, figures).instrument(span).await),
        Err(FanoutError::Port(e)) => {
            span.in_scope(|| tracing::error!(error = %e, "fan-out failed; event will be retried"));
            figures.add(&[Metric { name: "InfraErrors", value: 1.0, unit: "Count" }]);
            Outcome::Ack(Ack::Keep(Some(infra_backoff(deps.config.infra_backoff, deps.config.infra_backoff_max, r.receive))))
        }
    }
}

/// Moves a poison event to the event DLQ with its reason; if even that fails, leaves it to SQS
/// (retried, then redriven to the same DLQ).
async fn reject(body: &str, message_id: &str, rejection: Rejection, deps: &Deps, figures: &metrics::Batch) -> Ack {
    let reason = rejection.reason();
    tracing::warn!(%reason, "rejected event; moving it to the event DLQ");
    figures.add(&[Metric { name: "Rejected", value: 1.0, unit: "Count" }]);
    match deps.queues.dead_letter_event(body, &reason, message_id).await {
        Ok(()) => Ack::Delete,
        Err(e) => {
            tracing::error!(error = %e, "cannot move the rejected event to the DLQ; leaving it on the queue");
            Ack::Keep(None)
        }
    }
}

/// The tenant's active subscriptions (cached per process; a miss loads once per tenant, from the
/// sparse index of active subscriptions: however many deleted ones a tenant keeps, fan-out reads
/// and holds only its active ones).
pub async fn tenant_subscriptions(deps: &Deps, event: &EventIn) -> Result<Arc<Vec<Subscriber>>, FanoutError> {
    let tenant = &event.tenant_id;
    let found: TenantSubscriptions = deps
        .tenant_cache
        .get(tenant, |_| true, Option::is_some, || async {
            if !deps.tenants.exists(tenant).await? {
                return Ok::<_, PortError>(None);
            }
            let enabled: Vec<Subscriber> = deps.subscriptions.subscribers(tenant).await?.into_iter().filter(|s| s.enabled).collect();
            Ok(Some(Arc::new(enabled)))
        })
        .await?;
    found.ok_or(FanoutError::Rejected(Rejection::UnknownTenant))
}

/// The delivery tasks of one event: one per subscription that wants it.
pub async fn tasks_for(event: &EventIn, source: EventSource, check: bool, deps: &Deps) -> Result<Vec<DeliveryTask>, FanoutError> {
    let subs = tenant_subscriptions(deps, event).await?;
    let matching: Vec<&Subscriber> = subs.iter().filter(|s| s.wants(&event.event_type, &event.data)).collect();
    if matching.is_empty() {
        return Ok(Vec::new());
    }
    let body = serde_json::value::RawValue::from_string(event.body()).map_err(|e| PortError::Corrupt(format!("event body: {e}")))?;
    Ok(matching
        .into_iter()
        .map(|sub| {
            let id = DeliveryId::derive(source, &event.tenant_id, &event.event_id, event.occurred_at, &sub.subscription_id);
            let mut task = DeliveryTask::new(Deliver::of_event(event, id, Trigger::Live, check, sub.version, body.clone()));
            task.set_ordered(sub.ordering == crate::model::Ordering::Fifo);
            task
        })
        .collect())
}

#[cfg(test)]
mod tests;
