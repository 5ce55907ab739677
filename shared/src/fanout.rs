//! Fan-out: one upstream event → one delivery per matching subscription of its tenant.
//!
//! Idempotent: the event body is stored once under (tenant, event_id); each delivery id is
//! derived from (tenant, event_id, subscription) and created with a conditional write, so an
//! event that SQS hands us twice creates no second delivery.

use crate::deps::Deps;
use crate::ids::{is_token, DeliveryId};
use crate::matching::is_valid_event_type;
use crate::model::{Delivery, DeliveryStatus, DeliveryTask, EventIn, StoredEvent};
use crate::ports::{Created, StoreError};
use crate::sqs_batch::{self, Ack};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use time::OffsetDateTime;
use tracing::Instrument;

/// Bodies above this are refused: a delivery's body must fit DynamoDB's 400 KB item with room
/// to spare, and SQS caps a message at 256 KB.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

pub async fn handle_batch(event: SqsEvent, deps: &Deps) -> SqsBatchResponse {
    sqs_batch::process(event, |msg| handle_message(msg, deps)).await
}

#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("body is not a valid event envelope: {0}")]
    Invalid(String),
    #[error("body exceeds {MAX_EVENT_BYTES} bytes")]
    TooLarge,
}

/// Parses and checks an upstream envelope.
pub fn parse_event(body: &str) -> Result<EventIn, Rejection> {
    if body.len() > MAX_EVENT_BYTES {
        return Err(Rejection::TooLarge);
    }
    let event: EventIn = serde_json::from_str(body).map_err(|e| Rejection::Invalid(e.to_string()))?;
    if !is_token(&event.event_id, 128) {
        return Err(Rejection::Invalid("event_id must be 1-128 of [A-Za-z0-9_.:-]".into()));
    }
    if !is_valid_event_type(&event.event_type) {
        return Err(Rejection::Invalid("event_type must be dotted lowercase segments".into()));
    }
    Ok(event)
}

async fn handle_message(msg: SqsMessage, deps: &Deps) -> Ack {
    let event = match parse_event(msg.body.as_deref().unwrap_or_default()) {
        Ok(e) => e,
        Err(reason) => {
            // Retried until the event queue's maxReceiveCount moves it to the event DLQ.
            tracing::error!(%reason, "rejected event");
            return Ack::Retry;
        }
    };
    let span = tracing::info_span!("fanout", tenant = %event.tenant_id, event_id = %event.event_id, event_type = %event.event_type);
    let redelivered = msg.attributes.get("ApproximateReceiveCount").is_some_and(|c| c != "1");
    let result = fan_out(&event, redelivered, deps).instrument(span.clone()).await;
    span.in_scope(|| match result {
        Ok(matched) => {
            tracing::info!(matched, "fanned out");
            Ack::Done
        }
        Err(e) => {
            tracing::error!(error = %e, "fan-out failed; event will be retried");
            Ack::Retry
        }
    })
}

/// Creates and enqueues the deliveries of one event; returns how many subscriptions matched.
///
/// A delivery that already exists is enqueued again only when `redelivered` (SQS handed us this
/// message before, so an earlier run may have stopped between creating it and enqueuing it) and it
/// was never attempted. The same event published twice by upstream enqueues nothing new.
pub async fn fan_out(event: &EventIn, redelivered: bool, deps: &Deps) -> Result<usize, StoreError> {
    let now = OffsetDateTime::now_utc();
    let expires_at = (now + deps.config.retention).unix_timestamp();
    let body = serde_json::to_string(event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let stored = StoredEvent {
        tenant_id: event.tenant_id.clone(),
        event_id: event.event_id.clone(),
        event_type: event.event_type.clone(),
        body,
        expires_at,
    };
    deps.deliveries.put_event(&stored).await?;

    let subs = deps.subscriptions.list(&event.tenant_id).await?;
    let matching: Vec<_> = subs.into_iter().filter(|s| s.wants(&event.event_type)).collect();
    let mut tasks = Vec::with_capacity(matching.len());
    for sub in &matching {
        let delivery = Delivery {
            delivery_id: DeliveryId::derive(&event.tenant_id, &event.event_id, &sub.subscription_id),
            tenant_id: event.tenant_id.clone(),
            subscription_id: sub.subscription_id.clone(),
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            created_at: now,
            updated_at: now,
            expires_at,
        };
        let enqueue = match deps.deliveries.create_delivery(&delivery).await? {
            Created::New => true,
            // The worker drops a task whose delivery is already settled.
            Created::Existed if redelivered => matches!(
                deps.deliveries.get_delivery(&delivery.delivery_id).await?,
                Some(d) if d.status == DeliveryStatus::Pending && d.attempts == 0
            ),
            Created::Existed => false,
        };
        if enqueue {
            tasks.push(DeliveryTask::Deliver {
                delivery_id: delivery.delivery_id,
                tenant_id: delivery.tenant_id,
                subscription_id: delivery.subscription_id,
                event_id: delivery.event_id,
            });
        }
    }
    let failed = deps.delivery_queue.enqueue(&tasks).await?;
    if !failed.is_empty() {
        let again: Vec<_> = failed.iter().map(|&i| tasks[i].clone()).collect();
        let still = deps.delivery_queue.enqueue(&again).await?;
        if !still.is_empty() {
            return Err(StoreError::Corrupt(format!("{} delivery tasks could not be enqueued", still.len())));
        }
    }
    Ok(matching.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::ids::{SubscriptionId, TenantId};
    use crate::model::Subscription;
    use crate::signing::Secret;

    fn config() -> Config {
        Config::from_lookup(|k| match k {
            "RETRY_SCHEDULE" | "DELIVERY_TIMEOUT_MS" | "ALLOW_HTTP" | "ALLOW_PRIVATE_TARGETS" | "RETENTION_DAYS" => None,
            other => Some(format!("test-{other}")),
        })
        .unwrap()
    }

    async fn subscribe(deps: &Deps, tenant: &str, events: &[&str], enabled: bool) -> SubscriptionId {
        let now = OffsetDateTime::now_utc();
        let sub = Subscription {
            tenant_id: TenantId::parse(tenant).unwrap(),
            subscription_id: SubscriptionId::generate(),
            url: "https://example.com/hook".into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            enabled,
            active: true,
            secret: Secret::generate(),
            created_at: now,
            updated_at: now,
        };
        deps.subscriptions.create(&sub).await.unwrap();
        sub.subscription_id
    }

    fn event(id: &str, event_type: &str) -> EventIn {
        serde_json::from_value(serde_json::json!({
            "event_id": id, "event_type": event_type, "tenant_id": "acme",
            "occurred_at": "2026-11-22T10:00:00Z", "data": {"k": 1}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn one_delivery_per_matching_subscription_and_none_on_repeat() {
        // GIVEN three matching and two non-matching subscriptions (one of another tenant)
        let (deps, queue) = Deps::memory(config());
        let mut matching = vec![
            subscribe(&deps, "acme", &["project.created"], true).await,
            subscribe(&deps, "acme", &["project.*"], true).await,
            subscribe(&deps, "acme", &["*"], true).await,
        ];
        subscribe(&deps, "acme", &["project.created"], false).await;
        subscribe(&deps, "other", &["*"], true).await;
        subscribe(&deps, "acme", &["enrollment.completed"], true).await;

        // WHEN the event is fanned out, then published again by upstream
        assert_eq!(fan_out(&event("e1", "project.created"), false, &deps).await.unwrap(), 3);
        assert_eq!(fan_out(&event("e1", "project.created"), false, &deps).await.unwrap(), 3);

        // THEN exactly three tasks were enqueued, one per matching subscription
        let sent = queue.sent.lock().unwrap().clone();
        let mut subs: Vec<_> = sent.iter().map(|DeliveryTask::Deliver { subscription_id, .. }| subscription_id.clone()).collect();
        subs.sort();
        matching.sort();
        assert_eq!(subs, matching);
        let stored = deps.deliveries.get_event(&TenantId::parse("acme").unwrap(), "e1").await.unwrap().unwrap();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&stored.body).unwrap()["data"]["k"], 1);
    }

    #[tokio::test]
    async fn a_redelivered_event_re_enqueues_only_unattempted_deliveries() {
        let (deps, queue) = Deps::memory(config());
        subscribe(&deps, "acme", &["*"], true).await;
        fan_out(&event("e2", "a.b"), false, &deps).await.unwrap();
        fan_out(&event("e2", "a.b"), true, &deps).await.unwrap();
        assert_eq!(queue.sent.lock().unwrap().len(), 2, "never attempted: sent again, nothing lost");
    }

    #[test]
    fn rejects_malformed_envelopes() {
        assert!(matches!(parse_event("not json"), Err(Rejection::Invalid(_))));
        assert!(matches!(parse_event(&"x".repeat(MAX_EVENT_BYTES + 1)), Err(Rejection::TooLarge)));
        let bad_id = r#"{"event_id":"a b","event_type":"a.b","tenant_id":"t","occurred_at":"2026-11-22T10:00:00Z","data":{}}"#;
        assert!(matches!(parse_event(bad_id), Err(Rejection::Invalid(_))));
        let bad_type = bad_id.replace("a b", "ab").replace("a.b", "A.B");
        assert!(matches!(parse_event(&bad_type), Err(Rejection::Invalid(_))));
        assert!(parse_event(&bad_type.replace("A.B", "a.b")).is_ok());
    }
}
