//! The delivery log and its actions: list a subscription's deliveries, get one (with the request
//! it sends), list its attempts, redeliver a failed one, recover failures since a time, and send
//! a test event now.

use super::auth::Caller;
use super::problem::ApiError;
use super::subscriptions::find;
use super::{IdPath, JsonBody, ListOut, QueryParams, page_limit};
use crate::delivery;
use crate::deps::Deps;
use crate::fanout::enqueue_all;
use crate::ids::{DeliveryId, EventId};
use crate::model::{Attempt, Delivery, DeliveryStatus, DeliveryTask, EventIn, FailureClass, Scope, StoredEvent, Trigger};
use crate::ports::{DeliveryFilter, StoreError};
use crate::timefmt;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use time::OffsetDateTime;

#[derive(Debug, Serialize, Deserialize)]
pub struct DeliveryOut {
    pub id: DeliveryId,
    pub subscription_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error_class: Option<FailureClass>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_attempt_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&Delivery> for DeliveryOut {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.delivery_id.clone(),
            subscription_id: d.subscription_id.to_string(),
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            status: d.status,
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error_class: d.last_error_class,
            last_attempt_at: d.last_attempt_at,
            created_at: d.created_at,
        }
    }
}

/// The request a delivery sends. Signatures and endpoint credentials are redacted; the
/// timestamp and signatures are made anew at each attempt.
#[derive(Debug, Serialize, Deserialize)]
pub struct RequestOut {
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub payload: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DeliveryDetailOut {
    #[serde(flatten)]
    pub delivery: DeliveryOut,
    pub request: RequestOut,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AttemptOut {
    pub attempt: u32,
    pub url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    pub duration_ms: u64,
    pub status_code: Option<u16>,
    pub error_class: Option<FailureClass>,
    pub error_message: Option<String>,
    pub response_headers: BTreeMap<String, String>,
    pub response_body: Option<String>,
    pub trigger: Trigger,
}

impl From<&Attempt> for AttemptOut {
    fn from(a: &Attempt) -> Self {
        Self {
            attempt: a.attempt,
            url: a.url.clone(),
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            error_class: a.error_class,
            error_message: a.error_message.clone(),
            response_headers: a.response_headers.clone(),
            response_body: a.response_body.clone(),
            trigger: a.trigger,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    pub status: Option<DeliveryStatus>,
    pub event_type: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

fn timestamp(field: &str, v: &Option<String>) -> Result<Option<OffsetDateTime>, ApiError> {
    v.as_deref()
        .map(|s| timefmt::parse(s).ok_or_else(|| ApiError::invalid(field, "must be an RFC 3339 timestamp, e.g. 2026-11-22T10:00:00Z")))
        .transpose()
}

pub async fn list(
    State(deps): State<Arc<Deps>>,
    caller: Caller,
    IdPath(id): IdPath,
    QueryParams(q): QueryParams<DeliveriesQuery>,
) -> Result<Json<ListOut<DeliveryOut>>, ApiError> {
    caller.require(Scope::Read)?;
    let sub = find(&deps, &caller, &id).await?;
    let filter = DeliveryFilter { status: q.status, event_type: q.event_type.clone(), since: timestamp("since", &q.since)?, until: timestamp("until", &q.until)? };
    let page = deps
        .deliveries
        .list_deliveries(&sub.subscription_id, &filter, q.cursor.as_deref(), page_limit(q.limit)?)
        .await
        .map_err(|e| match e {
            StoreError::BadCursor => ApiError::invalid("cursor", "is not a cursor this API returned"),
            other => other.into(),
        })?;
    Ok(Json(ListOut { data: page.items.iter().map(DeliveryOut::from).collect(), next_cursor: page.next }))
}

/// The caller's delivery, or 404 (also for another tenant's).
async fn find_delivery(deps: &Deps, caller: &Caller, id: &str) -> Result<Delivery, ApiError> {
    let id = DeliveryId::parse(id).ok_or(ApiError::NotFound("delivery"))?;
    deps.deliveries.get_delivery(&id).await?.filter(|d| d.tenant_id == caller.tenant).ok_or(ApiError::NotFound("delivery"))
}

pub async fn get(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(id): IdPath) -> Result<Json<DeliveryDetailOut>, ApiError> {
    caller.require(Scope::Read)?;
    let d = find_delivery(&deps, &caller, &id).await?;
    let sub = deps.subscriptions.get(&d.tenant_id, &d.subscription_id).await?;
    let event = deps.deliveries.get_event(&d.tenant_id, &d.event_id).await?;
    let mut headers = BTreeMap::from([
        ("content-type".to_owned(), "application/json".to_owned()),
        ("webhook-id".to_owned(), d.delivery_id.to_string()),
        ("webhook-timestamp".to_owned(), "<time of each attempt>".to_owned()),
        ("webhook-signature".to_owned(), "<redacted>".to_owned()),
        ("x-webhook-signature".to_owned(), "<redacted>".to_owned()),
        ("x-webhook-event".to_owned(), d.event_type.clone()),
    ]);
    if let Some(s) = &sub {
        headers.extend(s.headers.keys().map(|k| (k.to_ascii_lowercase(), "<redacted>".to_owned())));
        match &s.auth {
            crate::model::EndpointAuth::None => {}
            crate::model::EndpointAuth::Basic { .. } => {
                headers.insert("authorization".into(), "<redacted>".into());
            }
            crate::model::EndpointAuth::ApiKey { header, .. } => {
                headers.insert(header.to_ascii_lowercase(), "<redacted>".into());
            }
        }
    }
    let payload = event.map(|e| serde_json::from_str(&e.body).unwrap_or(serde_json::Value::Null)).unwrap_or(serde_json::Value::Null);
    let request = RequestOut { url: sub.map(|s| s.url).unwrap_or_default(), headers, payload };
    Ok(Json(DeliveryDetailOut { delivery: DeliveryOut::from(&d), request }))
}

pub async fn attempts(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(id): IdPath) -> Result<Json<ListOut<AttemptOut>>, ApiError> {
    caller.require(Scope::Read)?;
    let d = find_delivery(&deps, &caller, &id).await?;
    let attempts = deps.deliveries.list_attempts(&d.delivery_id).await?;
    Ok(Json(ListOut { data: attempts.iter().map(AttemptOut::from).collect(), next_cursor: None }))
}

fn redeliver_task(d: &Delivery) -> DeliveryTask {
    DeliveryTask::Deliver {
        delivery_id: d.delivery_id.clone(),
        tenant_id: d.tenant_id.clone(),
        subscription_id: d.subscription_id.clone(),
        event_id: d.event_id.clone(),
        trigger: Trigger::Redeliver,
    }
}

/// Only a failed delivery can be redelivered: same payload and `webhook-id`, fresh signature.
pub async fn redeliver(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(id): IdPath) -> Result<(StatusCode, Json<DeliveryOut>), ApiError> {
    caller.require(Scope::Write)?;
    let mut d = find_delivery(&deps, &caller, &id).await?;
    match deps.deliveries.reopen(&d.delivery_id).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Err(ApiError::Conflict(format!("only failed deliveries can be redelivered; this one is {:?}", d.status).to_lowercase())),
        Err(e) => return Err(e.into()),
    }
    enqueue_all(&deps, &[redeliver_task(&d)]).await?;
    d.status = DeliveryStatus::Pending;
    Ok((StatusCode::ACCEPTED, Json(DeliveryOut::from(&d))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverIn {
    pub since: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RecoverOut {
    pub recovered: usize,
}

/// Redelivers every failed delivery of the subscription created since `since`.
pub async fn recover(
    State(deps): State<Arc<Deps>>,
    caller: Caller,
    IdPath(id): IdPath,
    JsonBody(input): JsonBody<RecoverIn>,
) -> Result<(StatusCode, Json<RecoverOut>), ApiError> {
    caller.require(Scope::Write)?;
    let sub = find(&deps, &caller, &id).await?;
    let since = timestamp("since", &Some(input.since))?;
    let filter = DeliveryFilter { status: Some(DeliveryStatus::Failed), since, ..Default::default() };
    let mut tasks = Vec::new();
    let mut cursor = None;
    loop {
        let page = deps.deliveries.list_deliveries(&sub.subscription_id, &filter, cursor.as_deref(), 100).await?;
        for d in &page.items {
            match deps.deliveries.reopen(&d.delivery_id).await {
                Ok(()) => tasks.push(redeliver_task(d)),
                Err(StoreError::Conflict) => {} // settled meanwhile
                Err(e) => return Err(e.into()),
            }
        }
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    enqueue_all(&deps, &tasks).await?;
    Ok((StatusCode::ACCEPTED, Json(RecoverOut { recovered: tasks.len() })))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TestOut {
    pub delivery_id: DeliveryId,
    pub event_id: String,
    pub status: DeliveryStatus,
    pub attempt: AttemptOut,
}

/// Sends a `webhook.test` event to the subscription now and reports the outcome (no retries).
pub async fn test(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(id): IdPath) -> Result<Json<TestOut>, ApiError> {
    caller.require(Scope::Write)?;
    let sub = find(&deps, &caller, &id).await?;
    let now = OffsetDateTime::now_utc();
    let event = EventIn {
        event_id: EventId::generate().to_string(),
        event_type: "webhook.test".into(),
        tenant_id: caller.tenant.clone(),
        occurred_at: now,
        data: serde_json::json!({"subscription_id": sub.subscription_id, "message": "This is a test event."}),
    };
    let expires_at = (now + deps.config.retention).unix_timestamp();
    let stored = StoredEvent::from_event(&event, expires_at);
    deps.deliveries.put_event(&stored).await?;
    let delivery = Delivery::pending(&event, &sub.subscription_id, now, expires_at);
    deps.deliveries.create_delivery(&delivery).await?;
    let (record, outcome) = delivery::attempt(&deps, &sub, &delivery, stored, Trigger::Test).await;
    let status = match outcome {
        delivery::http::DeliveryOutcome::Delivered(_) => DeliveryStatus::Delivered,
        delivery::http::DeliveryOutcome::Failed { .. } => DeliveryStatus::Failed,
    };
    deps.deliveries.record_attempt(&record, status).await?;
    Ok(Json(TestOut { delivery_id: delivery.delivery_id, event_id: event.event_id, status, attempt: AttemptOut::from(&record) }))
}
