//! The delivery worker: one SQS message = one attempt to POST one event to one subscription.
//! Failures set the message's visibility timeout to the next retry delay and report the message
//! as a batch item failure; SQS redelivers it then, and dead-letters it after the last attempt.

pub mod http;

use crate::deps::Deps;
use crate::metrics::{self, Metric};
use crate::model::{Attempt, Delivery, DeliveryStatus, DeliveryTask, EndpointAuth, FailureClass, StoredEvent, Subscription, Trigger};
use crate::ports::{HealthChange, MessageHandle, StoreError};
use crate::retry::MAX_VISIBILITY;
use crate::signing;
use crate::sqs_batch::{self, Ack};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use base64::Engine;
use http::DeliveryOutcome;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use std::time::Duration;
use time::OffsetDateTime;
use tracing::Instrument;

/// A success refreshes `last_delivered_at` at most this often (saves a write per delivery).
const HEALTH_REFRESH: time::Duration = time::Duration::minutes(1);

/// Handles one batch from the delivery queue; messages are processed concurrently.
pub async fn handle_batch(event: SqsEvent, deps: &Deps) -> SqsBatchResponse {
    let figures = metrics::Batch::new("delivery");
    let response = sqs_batch::process(event, |msg| handle_message(msg, deps, &figures)).await;
    figures.emit();
    crate::telemetry::flush();
    response
}

async fn handle_message(msg: SqsMessage, deps: &Deps, figures: &metrics::Batch) -> Ack {
    let receive: u32 = msg.attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1);
    let task: DeliveryTask = match msg.body.as_deref().map(serde_json::from_str) {
        Some(Ok(t)) => t,
        other => {
            let reason = other.and_then(|r| r.err().map(|e| e.to_string())).unwrap_or_else(|| "empty body".into());
            tracing::error!(%reason, "unreadable delivery task; leaving it to the DLQ");
            return Ack::Retry;
        }
    };
    let DeliveryTask::Deliver { delivery_id, .. } = &task;
    let span = tracing::info_span!("deliver", delivery_id = %delivery_id, receive);
    let handle = msg.receipt_handle.map(MessageHandle);
    match deliver(&task, receive, handle.as_ref(), deps, figures).instrument(span.clone()).await {
        Ok(ack) => ack,
        Err(e) => {
            span.in_scope(|| tracing::error!(error = %e, "delivery infrastructure error; message will be retried"));
            Ack::Retry
        }
    }
}

/// What to do after an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Next {
    RetryIn(Duration),
    /// Retries exhausted: the delivery is failed and the message goes to the DLQ.
    Exhausted,
    /// The endpoint is gone (410): failed at once, no retries.
    Gone,
}

/// The wait before the next attempt: the schedule's, at least `min_throttle` after a 429 or a
/// timeout, and at least the endpoint's `Retry-After` (capped at SQS's 12 h).
fn next_step(deps: &Deps, receive: u32, class: FailureClass, status: Option<u16>, retry_after: Option<Duration>) -> Next {
    if status == Some(410) {
        return Next::Gone;
    }
    let Some(mut delay) = deps.config.retry.delay_after(receive) else {
        return Next::Exhausted;
    };
    if status == Some(429) || class == FailureClass::Timeout {
        delay = delay.max(deps.config.min_throttle_delay);
    }
    if let Some(ra) = retry_after {
        delay = delay.max(ra);
    }
    Next::RetryIn(delay.min(MAX_VISIBILITY))
}

async fn deliver(task: &DeliveryTask, receive: u32, handle: Option<&MessageHandle>, deps: &Deps, figures: &metrics::Batch) -> Result<Ack, StoreError> {
    let DeliveryTask::Deliver { delivery_id, tenant_id, subscription_id, event_id, trigger } = task;
    let Some(delivery) = deps.deliveries.get_delivery(delivery_id).await? else {
        return Err(StoreError::Corrupt(format!("delivery {delivery_id} not found")));
    };
    if delivery.status != DeliveryStatus::Pending {
        tracing::info!(status = ?delivery.status, "delivery already settled; dropping duplicate message");
        return Ok(Ack::Done);
    }
    let sub = match deps.subscriptions.get(tenant_id, subscription_id).await? {
        Some(s) if s.enabled && s.active => s,
        _ => {
            tracing::warn!(subscription_id = %subscription_id, "subscription deleted or disabled; delivery failed without an attempt");
            deps.deliveries.set_status(delivery_id, DeliveryStatus::Failed).await?;
            return Ok(Ack::Done);
        }
    };
    let Some(event) = deps.deliveries.get_event(tenant_id, event_id).await? else {
        return Err(StoreError::Corrupt(format!("event {event_id} not found")));
    };

    let (record, outcome) = attempt(deps, &sub, &delivery, event, *trigger).await;
    let status_code = outcome.response().status;
    let ms = outcome.response().ms;
    let next = match &outcome {
        DeliveryOutcome::Delivered(_) => None,
        DeliveryOutcome::Failed { class, retry_after, .. } => Some(next_step(deps, receive, *class, status_code, *retry_after)),
    };
    let status = match next {
        None => DeliveryStatus::Delivered,
        Some(Next::RetryIn(_)) => DeliveryStatus::Pending,
        Some(Next::Exhausted | Next::Gone) => DeliveryStatus::Failed,
    };
    deps.deliveries.record_attempt(&record, status).await?;
    update_health(deps, &sub, &outcome, record.started_at).await?;

    let latency = Metric { name: "LatencyMs", value: ms as f64, unit: "Milliseconds" };
    let one = |name| Metric { name, value: 1.0, unit: "Count" };
    match (next, &outcome) {
        (None, _) => {
            tracing::info!(status = status_code, ms, attempt = record.attempt, "delivered");
            figures.add(&[one("Delivered"), latency]);
            Ok(Ack::Done)
        }
        (Some(Next::RetryIn(delay)), DeliveryOutcome::Failed { class, .. }) => {
            tracing::warn!(?class, status = status_code, ms, attempt = record.attempt, retry_in_s = delay.as_secs(), "attempt failed; will retry");
            let mut counted = vec![one("Retried"), latency];
            counted.extend((*class == FailureClass::Blocked).then(|| one("Blocked")));
            figures.add(&counted);
            if let Some(h) = handle {
                deps.queues.retry_after(h, delay).await?;
            }
            Ok(Ack::Retry)
        }
        (Some(Next::Gone), _) => {
            let reason = "endpoint answered 410 Gone".to_owned();
            deps.subscriptions.record_health(tenant_id, subscription_id, HealthChange::Disable { reason: reason.clone(), at: OffsetDateTime::now_utc() }).await?;
            tracing::error!(operational_event = "subscription.disabled", %reason, "subscription disabled");
            figures.add(&[one("Failed"), one("Disabled"), latency]);
            Ok(Ack::Done)
        }
        (Some(_), _) => {
            tracing::error!(operational_event = "delivery.exhausted", status = status_code, attempt = record.attempt, "retries exhausted; message goes to the DLQ");
            figures.add(&[one("Failed"), latency]);
            if let Some(h) = handle {
                deps.queues.retry_after(h, Duration::ZERO).await?;
            }
            Ok(Ack::Retry)
        }
    }
}

/// One POST of `event` for `delivery` to `sub`, and its attempt record (numbered after the
/// delivery's previous attempts, whichever message or route made them). The event's body becomes
/// the request body: it is not copied (a 256 KB body would be held twice).
pub async fn attempt(deps: &Deps, sub: &Subscription, delivery: &Delivery, event: StoredEvent, trigger: Trigger) -> (Attempt, DeliveryOutcome) {
    let started_at = OffsetDateTime::now_utc();
    let headers = headers(delivery, sub, &event, started_at);
    let outcome = deps.sender.post(&sub.url, headers, event.body.into_bytes()).await;
    let response = outcome.response().clone();
    let (error_class, error_message) = match &outcome {
        DeliveryOutcome::Delivered(_) => (None, None),
        DeliveryOutcome::Failed { class, message, .. } => (Some(*class), Some(message.clone())),
    };
    let record = Attempt {
        delivery_id: delivery.delivery_id.clone(),
        attempt: delivery.attempts + 1,
        url: sub.url.clone(),
        started_at,
        duration_ms: response.ms,
        status_code: response.status,
        error_class,
        error_message,
        response_headers: response.headers,
        response_body: response.body,
        trigger,
        expires_at: (started_at + deps.config.retention).unix_timestamp(),
    };
    (record, outcome)
}

/// Consecutive failures and auto-disable after a run of failures spanning `disable_after`.
async fn update_health(deps: &Deps, sub: &Subscription, outcome: &DeliveryOutcome, at: OffsetDateTime) -> Result<(), StoreError> {
    let (tenant, id) = (&sub.tenant_id, &sub.subscription_id);
    match outcome {
        DeliveryOutcome::Delivered(_) => {
            let fresh = sub.last_delivered_at.is_some_and(|t| at - t < HEALTH_REFRESH);
            if sub.failure_count > 0 || !fresh {
                deps.subscriptions.record_health(tenant, id, HealthChange::Delivered { at }).await?;
            }
        }
        DeliveryOutcome::Failed { .. } => {
            let Some(updated) = deps.subscriptions.record_health(tenant, id, HealthChange::Failed { at }).await? else {
                return Ok(());
            };
            let disable_after = time::Duration::try_from(deps.config.disable_after).unwrap_or(time::Duration::MAX);
            if let Some(since) = updated.first_failure_at.filter(|t| at - *t >= disable_after) {
                if updated.enabled {
                    let reason = format!("every delivery failed since {since} ({} consecutive failures)", updated.failure_count);
                    deps.subscriptions.record_health(tenant, id, HealthChange::Disable { reason: reason.clone(), at }).await?;
                    tracing::error!(operational_event = "subscription.disabled", %reason, "subscription disabled");
                }
            }
        }
    }
    Ok(())
}

/// The request headers: the subscription's own and its endpoint auth, then Standard Webhooks,
/// the legacy signature and the event name (ours win over custom ones of the same name).
fn headers(delivery: &Delivery, sub: &Subscription, event: &StoredEvent, at: OffsetDateTime) -> HeaderMap {
    let ts = at.unix_timestamp();
    let body = event.body.as_bytes();
    let msg_id = delivery.delivery_id.as_str();
    let mut map = HeaderMap::new();
    for (name, value) in &sub.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name.as_str()), HeaderValue::from_str(value)) {
            map.insert(n, v);
        }
    }
    match &sub.auth {
        EndpointAuth::None => {}
        EndpointAuth::Basic { username, password } => {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            if let Ok(mut v) = HeaderValue::from_str(&format!("Basic {token}")) {
                v.set_sensitive(true);
                map.insert(AUTHORIZATION, v);
            }
        }
        EndpointAuth::ApiKey { header, value } => {
            if let (Ok(n), Ok(mut v)) = (HeaderName::try_from(header.as_str()), HeaderValue::from_str(value)) {
                v.set_sensitive(true);
                map.insert(n, v);
            }
        }
    }
    let pairs = [
        ("webhook-id", msg_id.to_owned()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", signing::signature_header(&sub.signing_secrets(at), msg_id, ts, body)),
        ("x-webhook-signature", sub.secret.sign_body_hex(body)),
        ("x-webhook-event", event.event_type.clone()),
    ];
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in pairs {
        if let Ok(v) = HeaderValue::from_str(&value) {
            map.insert(HeaderName::from_static(name), v);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryQueues;
    use crate::fanout::tests::{config, event, subscribe, tenant};
    use crate::ids::DeliveryId;
    use axum::http::StatusCode;
    use std::sync::atomic::{AtomicU16, Ordering};
    use std::sync::{Arc, Mutex};

    /// A loopback receiver answering with whatever status `code` holds (and `extra` headers);
    /// it records the request headers it saw.
    async fn receiver(code: Arc<AtomicU16>, extra: &'static [(&'static str, &'static str)]) -> (String, Arc<Mutex<Vec<axum::http::HeaderMap>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let code = code.clone();
                let seen = seen2.clone();
                async move {
                    seen.lock().unwrap().push(headers);
                    let mut resp = axum::response::IntoResponse::into_response(StatusCode::from_u16(code.load(Ordering::SeqCst)).unwrap());
                    for (k, v) in extra {
                        resp.headers_mut().insert(*k, v.parse().unwrap());
                    }
                    resp
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }

    async fn setup(url: &str, env: &[(&str, &str)]) -> (Deps, Arc<MemoryQueues>, DeliveryTask, Subscription) {
        let mut all = vec![("RETRY_SCHEDULE", "10,20"), ("ALLOW_HTTP", "true"), ("ALLOW_PRIVATE_TARGETS", "true"), ("MIN_THROTTLE_DELAY_SECS", "60")];
        all.extend_from_slice(env);
        let (deps, queues) = Deps::memory(config(&all));
        tenant(&deps, "acme").await;
        let sub = subscribe(&deps, "acme", url, &["*"], true).await;
        crate::fanout::fan_out(&event("e1", "a.b"), false, &deps).await.unwrap();
        let task = queues.deliveries.lock().unwrap()[0].clone();
        (deps, queues, task, sub)
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

    async fn sub_now(deps: &Deps, sub: &Subscription) -> Subscription {
        deps.subscriptions.get(&sub.tenant_id, &sub.subscription_id).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn failure_schedules_a_retry_then_success_settles_the_delivery() {
        let code = Arc::new(AtomicU16::new(503));
        let (url, _) = receiver(code.clone(), &[]).await;
        let (deps, queues, task, sub) = setup(&url, &[]).await;

        // WHEN the first attempt gets a 503
        assert_eq!(handle_message(message(&task, 1), &deps, &metrics::Batch::new("delivery")).await, Ack::Retry);
        // THEN the message is hidden for the first delay (10 s ± 20 %) and the delivery stays pending
        let (handle, delay) = queues.retries.lock().unwrap()[0].clone();
        assert_eq!(handle, MessageHandle("rh1".into()));
        assert!((8..=12).contains(&delay.as_secs()), "{delay:?}");
        let d = deps.deliveries.get_delivery(delivery_id(&task)).await.unwrap().unwrap();
        assert_eq!((d.status, d.attempts, d.last_status_code), (DeliveryStatus::Pending, 1, Some(503)));
        assert_eq!(sub_now(&deps, &sub).await.failure_count, 1);

        // WHEN the second attempt succeeds
        code.store(204, Ordering::SeqCst);
        assert_eq!(handle_message(message(&task, 2), &deps, &metrics::Batch::new("delivery")).await, Ack::Done);
        let d = deps.deliveries.get_delivery(delivery_id(&task)).await.unwrap().unwrap();
        assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 2));
        let attempts = deps.deliveries.list_attempts(delivery_id(&task)).await.unwrap();
        assert_eq!(attempts.iter().map(|a| a.status_code).collect::<Vec<_>>(), vec![Some(503), Some(204)]);
        assert_eq!(attempts[0].error_class, Some(FailureClass::Http));
        let health = sub_now(&deps, &sub).await;
        assert_eq!((health.failure_count, health.first_failure_at), (0, None));
        assert!(health.last_delivered_at.is_some());

        // AND a duplicate message for the settled delivery is dropped without a POST
        code.store(500, Ordering::SeqCst);
        assert_eq!(handle_message(message(&task, 1), &deps, &metrics::Batch::new("delivery")).await, Ack::Done);
        assert_eq!(deps.deliveries.list_attempts(delivery_id(&task)).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn the_last_attempt_marks_the_delivery_failed_and_releases_the_message_to_the_dlq() {
        let (url, _) = receiver(Arc::new(AtomicU16::new(500)), &[]).await;
        let (deps, queues, task, _) = setup(&url, &[]).await;
        // Schedule "10,20": attempt 3 is the last.
        assert_eq!(handle_message(message(&task, 3), &deps, &metrics::Batch::new("delivery")).await, Ack::Retry);
        let d = deps.deliveries.get_delivery(delivery_id(&task)).await.unwrap().unwrap();
        assert_eq!(d.status, DeliveryStatus::Failed);
        assert_eq!(queues.retries.lock().unwrap()[0].1, Duration::ZERO);
    }

    #[tokio::test]
    async fn throttling_and_retry_after_stretch_the_wait() {
        let (url, _) = receiver(Arc::new(AtomicU16::new(429)), &[]).await;
        let (deps, queues, task, _) = setup(&url, &[]).await;
        handle_message(message(&task, 1), &deps, &metrics::Batch::new("delivery")).await;
        assert_eq!(queues.retries.lock().unwrap()[0].1, Duration::from_secs(60), "429 waits at least a minute");

        let (url, _) = receiver(Arc::new(AtomicU16::new(503)), &[("retry-after", "120")]).await;
        let (deps, queues, task, _) = setup(&url, &[]).await;
        handle_message(message(&task, 1), &deps, &metrics::Batch::new("delivery")).await;
        assert_eq!(queues.retries.lock().unwrap()[0].1, Duration::from_secs(120), "Retry-After above the schedule wins");
        let attempts = deps.deliveries.list_attempts(delivery_id(&task)).await.unwrap();
        assert_eq!(attempts[0].response_headers.get("retry-after").map(String::as_str), Some("120"));
    }

    #[tokio::test]
    async fn gone_fails_at_once_and_disables_the_subscription() {
        let (url, _) = receiver(Arc::new(AtomicU16::new(410)), &[]).await;
        let (deps, queues, task, sub) = setup(&url, &[]).await;
        assert_eq!(handle_message(message(&task, 1), &deps, &metrics::Batch::new("delivery")).await, Ack::Done);
        assert!(queues.retries.lock().unwrap().is_empty());
        let d = deps.deliveries.get_delivery(delivery_id(&task)).await.unwrap().unwrap();
        assert_eq!(d.status, DeliveryStatus::Failed);
        let s = sub_now(&deps, &sub).await;
        assert!(!s.enabled);
        assert_eq!(s.disabled_reason.as_deref(), Some("endpoint answered 410 Gone"));
    }

    #[tokio::test]
    async fn a_run_of_failures_longer_than_the_limit_disables_the_subscription() {
        let (url, _) = receiver(Arc::new(AtomicU16::new(500)), &[]).await;
        let (deps, _, task, sub) = setup(&url, &[("DISABLE_AFTER_SECS", "3600")]).await;
        // GIVEN a run of failures that began two hours ago
        let mut old = sub_now(&deps, &sub).await;
        old.failure_count = 7;
        old.first_failure_at = Some(OffsetDateTime::now_utc() - time::Duration::hours(2));
        deps.subscriptions.replace(&old).await.unwrap();
        // WHEN one more attempt fails THEN the subscription is disabled with a reason
        handle_message(message(&task, 1), &deps, &metrics::Batch::new("delivery")).await;
        let s = sub_now(&deps, &sub).await;
        assert!(!s.enabled);
        assert_eq!(s.failure_count, 8);
        assert!(s.disabled_reason.unwrap().contains("8 consecutive failures"));
    }

    #[tokio::test]
    async fn custom_headers_auth_and_both_secrets_during_rotation_are_sent() {
        let (url, seen) = receiver(Arc::new(AtomicU16::new(200)), &[]).await;
        let (deps, _, task, sub) = setup(&url, &[]).await;
        let mut s = sub_now(&deps, &sub).await;
        s.headers.insert("x-tenant-tag".into(), "blue".into());
        s.auth = EndpointAuth::Basic { username: "u".into(), password: "p".into() };
        s.previous_secret = Some(signing::Secret::generate());
        s.previous_secret_expires_at = Some(OffsetDateTime::now_utc() + time::Duration::hours(1));
        deps.subscriptions.replace(&s).await.unwrap();
        assert_eq!(handle_message(message(&task, 1), &deps, &metrics::Batch::new("delivery")).await, Ack::Done);
        let h = seen.lock().unwrap()[0].clone();
        assert_eq!(h["x-tenant-tag"], "blue");
        assert_eq!(h["authorization"], "Basic dTpw");
        let sigs = h["webhook-signature"].to_str().unwrap();
        assert_eq!(sigs.split(' ').count(), 2, "{sigs}");
        assert_eq!(h["webhook-id"], delivery_id(&task).as_str());
    }

    #[tokio::test]
    async fn connection_refused_is_a_connect_failure_and_unreadable_tasks_are_retried() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        let (deps, _queues, task, _) = setup(&url, &[]).await;
        assert_eq!(handle_message(message(&task, 1), &deps, &metrics::Batch::new("delivery")).await, Ack::Retry);
        let attempts = deps.deliveries.list_attempts(delivery_id(&task)).await.unwrap();
        assert_eq!(attempts[0].error_class, Some(FailureClass::Connect));
        assert_eq!(attempts[0].status_code, None);

        let mut garbage = SqsMessage::default();
        garbage.body = Some("{not json".into());
        assert_eq!(handle_message(garbage, &deps, &metrics::Batch::new("delivery")).await, Ack::Retry);
    }

    #[tokio::test]
    async fn blocked_targets_are_refused_without_a_connection() {
        // Loopback allowed for http in general, but not private targets.
        let (url, seen) = receiver(Arc::new(AtomicU16::new(200)), &[]).await;
        let (deps, _, task, _) = setup(&url, &[("ALLOW_PRIVATE_TARGETS", "false")]).await;
        assert_eq!(handle_message(message(&task, 1), &deps, &metrics::Batch::new("delivery")).await, Ack::Retry);
        let attempts = deps.deliveries.list_attempts(delivery_id(&task)).await.unwrap();
        assert_eq!(attempts[0].error_class, Some(FailureClass::Blocked));
        assert!(seen.lock().unwrap().is_empty());
    }
}
