//! The delivery worker: one SQS message = one attempt to POST one event to one subscription.
//! Failures set the message's visibility timeout to the next retry delay and report the message
//! as a batch item failure; SQS redelivers it then, and dead-letters it after the last attempt.

pub mod http;

use crate::deps::Deps;
use crate::ids::DeliveryId;
use crate::model::{Attempt, Delivery, DeliveryStatus, DeliveryTask, StoredEvent, Subscription, Trigger};
use crate::ports::{MessageHandle, StoreError};
use crate::signing;
use crate::sqs_batch::{self, Ack};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use http::DeliveryOutcome;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use std::time::Duration;
use time::OffsetDateTime;
use tracing::Instrument;

/// Handles one batch from the delivery queue; messages are processed concurrently.
pub async fn handle_batch(event: SqsEvent, deps: &Deps) -> SqsBatchResponse {
    sqs_batch::process(event, |msg| handle_message(msg, deps)).await
}

async fn handle_message(msg: SqsMessage, deps: &Deps) -> Ack {
    let attempt: u32 = msg.attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1);
    let task: DeliveryTask = match msg.body.as_deref().map(serde_json::from_str) {
        Some(Ok(t)) => t,
        other => {
            let reason = other.map(|r| r.err().map(|e| e.to_string())).flatten().unwrap_or_else(|| "empty body".into());
            tracing::error!(%reason, "unreadable delivery task; leaving it to the DLQ");
            return Ack::Retry;
        }
    };
    let DeliveryTask::Deliver { delivery_id, .. } = &task;
    let span = tracing::info_span!("deliver", delivery_id = %delivery_id, attempt);
    let handle = msg.receipt_handle.map(MessageHandle);
    match deliver(&task, attempt, handle.as_ref(), deps).instrument(span.clone()).await {
        Ok(ack) => ack,
        Err(e) => {
            span.in_scope(|| tracing::error!(error = %e, "delivery infrastructure error; message will be retried"));
            Ack::Retry
        }
    }
}

async fn deliver(task: &DeliveryTask, attempt: u32, handle: Option<&MessageHandle>, deps: &Deps) -> Result<Ack, StoreError> {
    let DeliveryTask::Deliver { delivery_id, tenant_id, subscription_id, event_id } = task;
    let Some(delivery) = deps.deliveries.get_delivery(delivery_id).await? else {
        return Err(StoreError::Corrupt(format!("delivery {delivery_id} not found")));
    };
    if delivery.status != DeliveryStatus::Pending {
        tracing::info!(status = ?delivery.status, "delivery already settled; dropping duplicate message");
        return Ok(Ack::Done);
    }
    let Some(sub) = deps.subscriptions.get(tenant_id, subscription_id).await?.filter(|s| s.enabled && s.active) else {
        tracing::warn!(subscription_id = %subscription_id, "subscription gone or disabled; delivery dropped");
        return Ok(Ack::Done);
    };
    let Some(event) = deps.deliveries.get_event(tenant_id, event_id).await? else {
        return Err(StoreError::Corrupt(format!("event {event_id} not found")));
    };

    let started_at = OffsetDateTime::now_utc();
    let outcome = deps.sender.post(&sub.url, headers(&delivery, &sub, &event, started_at), event.body.clone().into_bytes()).await;
    let exhausted = attempt >= deps.config.retry.max_attempts();
    let status = match (&outcome, exhausted) {
        (DeliveryOutcome::Delivered { .. }, _) => DeliveryStatus::Delivered,
        (DeliveryOutcome::Failed { .. }, true) => DeliveryStatus::Failed,
        (DeliveryOutcome::Failed { .. }, false) => DeliveryStatus::Pending,
    };
    let record = attempt_record(&delivery.delivery_id, attempt, &sub.url, started_at, &outcome, deps);
    deps.deliveries.record_attempt(&record, status).await?;

    match outcome {
        DeliveryOutcome::Delivered { status, ms, .. } => {
            tracing::info!(status, ms, "delivered");
            Ok(Ack::Done)
        }
        DeliveryOutcome::Failed { class, status, ms, .. } => {
            match deps.config.retry.delay_after(attempt) {
                Some(delay) => {
                    tracing::warn!(?class, ?status, ms, retry_in_s = delay.as_secs(), "attempt failed; will retry");
                    if let Some(h) = handle {
                        deps.delivery_queue.retry_after(h, delay).await?;
                    }
                }
                None => {
                    tracing::error!(?class, ?status, ms, "attempt failed; retries exhausted, message goes to the DLQ");
                    if let Some(h) = handle {
                        deps.delivery_queue.retry_after(h, Duration::ZERO).await?;
                    }
                }
            }
            Ok(Ack::Retry)
        }
    }
}

/// The request headers: Standard Webhooks plus the legacy signature and event name.
fn headers(delivery: &Delivery, sub: &Subscription, event: &StoredEvent, at: OffsetDateTime) -> HeaderMap {
    let ts = at.unix_timestamp();
    let body = event.body.as_bytes();
    let msg_id = delivery.delivery_id.as_str();
    let pairs = [
        ("webhook-id", msg_id.to_owned()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", signing::signature_header(&[&sub.secret], msg_id, ts, body)),
        ("x-webhook-signature", sub.secret.sign_body_hex(body)),
        ("x-webhook-event", event.event_type.clone()),
    ];
    let mut map = HeaderMap::new();
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in pairs {
        if let Ok(v) = HeaderValue::from_str(&value) {
            map.insert(HeaderName::from_static(name), v);
        }
    }
    map
}

fn attempt_record(id: &DeliveryId, attempt: u32, url: &str, started_at: OffsetDateTime, outcome: &DeliveryOutcome, deps: &Deps) -> Attempt {
    let (status_code, error_class, error_message, response_body) = match outcome {
        DeliveryOutcome::Delivered { status, body, .. } => (Some(*status), None, None, Some(body.clone())),
        DeliveryOutcome::Failed { class, status, message, body, .. } => (*status, Some(*class), Some(message.clone()), body.clone()),
    };
    Attempt {
        delivery_id: id.clone(),
        attempt,
        url: url.to_owned(),
        started_at,
        duration_ms: outcome.ms(),
        status_code,
        error_class,
        error_message,
        response_body,
        trigger: Trigger::Live,
        expires_at: (started_at + deps.config.retention).unix_timestamp(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::ids::{SubscriptionId, TenantId};
    use crate::model::EventIn;
    use crate::signing::Secret;
    use std::sync::atomic::{AtomicU16, Ordering};
    use std::sync::Arc;

    fn config() -> Config {
        Config::from_lookup(|k| match k {
            "RETRY_SCHEDULE" => Some("10,20".into()),
            "ALLOW_HTTP" | "ALLOW_PRIVATE_TARGETS" => Some("true".into()),
            "DELIVERY_TIMEOUT_MS" | "RETENTION_DAYS" => None,
            other => Some(format!("test-{other}")),
        })
        .unwrap()
    }

    /// A loopback receiver answering with whatever status `code` holds.
    async fn receiver(code: Arc<AtomicU16>) -> String {
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move || {
                let code = code.clone();
                async move { axum::http::StatusCode::from_u16(code.load(Ordering::SeqCst)).unwrap() }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    async fn setup(url: &str) -> (Deps, Arc<crate::adapters::memory::MemoryQueue>, DeliveryTask) {
        let (deps, queue) = Deps::memory(config());
        let now = OffsetDateTime::now_utc();
        let sub = Subscription {
            tenant_id: TenantId::parse("acme").unwrap(),
            subscription_id: SubscriptionId::generate(),
            url: url.into(),
            events: vec!["*".into()],
            enabled: true,
            active: true,
            secret: Secret::generate(),
            created_at: now,
            updated_at: now,
        };
        deps.subscriptions.create(&sub).await.unwrap();
        let event: EventIn = serde_json::from_value(serde_json::json!({
            "event_id": "e1", "event_type": "a.b", "tenant_id": "acme",
            "occurred_at": "2026-11-22T10:00:00Z", "data": {}
        }))
        .unwrap();
        crate::fanout::fan_out(&event, false, &deps).await.unwrap();
        let task = queue.sent.lock().unwrap()[0].clone();
        (deps, queue, task)
    }

    fn message(task: &DeliveryTask, receive_count: u32) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(format!("m{receive_count}"));
        m.receipt_handle = Some(format!("rh{receive_count}"));
        m.body = Some(serde_json::to_string(task).unwrap());
        m.attributes.insert("ApproximateReceiveCount".into(), receive_count.to_string());
        m
    }

    fn delivery_id(task: &DeliveryTask) -> &DeliveryId {
        let DeliveryTask::Deliver { delivery_id, .. } = task;
        delivery_id
    }

    #[tokio::test]
    async fn failure_schedules_a_retry_then_success_settles_the_delivery() {
        let code = Arc::new(AtomicU16::new(503));
        let url = receiver(code.clone()).await;
        let (deps, queue, task) = setup(&url).await;

        // WHEN the first attempt gets a 503
        assert_eq!(handle_message(message(&task, 1), &deps).await, Ack::Retry);
        // THEN the message is hidden for the first delay (10 s ± 20 %) and the delivery stays pending
        let (handle, delay) = queue.retries.lock().unwrap()[0].clone();
        assert_eq!(handle, MessageHandle("rh1".into()));
        assert!((8..=12).contains(&delay.as_secs()), "{delay:?}");
        let d = deps.deliveries.get_delivery(delivery_id(&task)).await.unwrap().unwrap();
        assert_eq!((d.status, d.attempts), (DeliveryStatus::Pending, 1));

        // WHEN the second attempt succeeds
        code.store(204, Ordering::SeqCst);
        assert_eq!(handle_message(message(&task, 2), &deps).await, Ack::Done);
        let d = deps.deliveries.get_delivery(delivery_id(&task)).await.unwrap().unwrap();
        assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 2));
        let attempts = deps.deliveries.list_attempts(delivery_id(&task)).await.unwrap();
        assert_eq!(attempts.iter().map(|a| a.status_code).collect::<Vec<_>>(), vec![Some(503), Some(204)]);
        assert_eq!(attempts[0].error_class, Some(crate::model::FailureClass::Http));

        // AND a duplicate message for the settled delivery is dropped without a POST
        code.store(500, Ordering::SeqCst);
        assert_eq!(handle_message(message(&task, 1), &deps).await, Ack::Done);
        assert_eq!(deps.deliveries.list_attempts(delivery_id(&task)).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn the_last_attempt_marks_the_delivery_failed_and_releases_the_message_to_the_dlq() {
        let code = Arc::new(AtomicU16::new(500));
        let url = receiver(code).await;
        let (deps, queue, task) = setup(&url).await;
        // Schedule "10,20": attempt 3 is the last.
        assert_eq!(handle_message(message(&task, 3), &deps).await, Ack::Retry);
        let d = deps.deliveries.get_delivery(delivery_id(&task)).await.unwrap().unwrap();
        assert_eq!(d.status, DeliveryStatus::Failed);
        assert_eq!(queue.retries.lock().unwrap()[0].1, Duration::ZERO);
    }

    #[tokio::test]
    async fn connection_refused_is_a_connect_failure_and_unreadable_tasks_are_retried() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        let (deps, _queue, task) = setup(&url).await;
        assert_eq!(handle_message(message(&task, 1), &deps).await, Ack::Retry);
        let attempts = deps.deliveries.list_attempts(delivery_id(&task)).await.unwrap();
        assert_eq!(attempts[0].error_class, Some(crate::model::FailureClass::Connect));
        assert_eq!(attempts[0].status_code, None);

        let mut garbage = SqsMessage::default();
        garbage.body = Some("{not json".into());
        assert_eq!(handle_message(garbage, &deps).await, Ack::Retry);
    }
}
