//! The delivery log: a subscription's deliveries (newest event first), one delivery with the
//! request it sends, its attempts; and the actions on them (redeliver, recover, test), which
//! live in `delivery::actions`. A delivery enters the log at its first record (its first
//! attempt, or its cancellation); before that it is queued, which `GET /v1/events/{id}` shows.

use super::auth::Caller;
use super::problem::ApiError;
use super::subscriptions::find;
use super::{page_limit, IdPath, JsonBody, ListOut, QueryParams};
use crate::delivery::actions::{self, ActionError};
use crate::delivery::request;
use crate::deps::Deps;
use crate::ids::DeliveryId;
use crate::model::{Attempt, DeliveryStatus, FailureClass, Scope};
use crate::ports::{Delivery, DeliveryFilter, PortError};
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
    /// The event's `occurred_at` (to the millisecond): what the log sorts and filters by.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error_class: Option<FailureClass>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_attempt_at: Option<OffsetDateTime>,
    /// When a `retrying` delivery is attempted next.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// Why it failed, was cancelled or dead-lettered.
    pub reason: Option<String>,
    /// When its first record was written (its first attempt, or its cancellation).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<&Delivery> for DeliveryOut {
    fn from(d: &Delivery) -> Self {
        let head = d.head();
        let last = d.last_attempt();
        Self {
            id: head.delivery_id.clone(),
            subscription_id: head.delivery_id.subscription().to_string(),
            event_id: head.event_id.clone(),
            event_type: head.event_type.clone(),
            occurred_at: head.delivery_id.occurred_at(),
            status: d.status(),
            attempts: head.attempts,
            last_status_code: last.and_then(|a| a.status_code),
            last_error_class: last.and_then(|a| a.error_class),
            last_attempt_at: last.map(|a| a.started_at),
            next_attempt_at: head.next_attempt_at.filter(|_| d.status() == DeliveryStatus::Retrying),
            reason: head.reason.clone(),
            created_at: d.records[0].written_at,
            updated_at: head.written_at,
        }
    }
}

/// The request a delivery sends. Signatures and endpoint credentials are redacted; the
/// timestamp and signatures are made anew at each attempt.
#[derive(Debug, Serialize, Deserialize)]
pub struct RequestOut {
    pub url: String,
    pub headers: BTreeMap<String, String>,
    /// What is POSTed: the event, or its thin form for a subscription with `payload: thin`.
    pub payload: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DeliveryDetailOut {
    #[serde(flatten)]
    pub delivery: DeliveryOut,
    pub request: RequestOut,
    /// The event's whole envelope (`null` if no record keeps it): where a receiver of thin
    /// payloads fetches `data`.
    pub event: serde_json::Value,
}

/// An attempt as the API shows it: the stored attempt's own serde form (its response headers are
/// already bounded and redacted when recorded).
pub type AttemptOut = Attempt;

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

pub fn timestamp(field: &str, v: &Option<String>) -> Result<Option<OffsetDateTime>, ApiError> {
    v.as_deref()
        .map(|s| timefmt::parse(s).ok_or_else(|| ApiError::invalid(field, "must be an RFC 3339 timestamp, e.g. 2026-11-22T10:00:00Z")))
        .transpose()
}

fn bad_cursor(e: PortError) -> ApiError {
    match e {
        PortError::BadCursor => ApiError::invalid("cursor", "is not a cursor this API returned"),
        other => other.into(),
    }
}

pub async fn list(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(id): IdPath, QueryParams(q): QueryParams<DeliveriesQuery>) -> Result<Json<ListOut<DeliveryOut>>, ApiError> {
    caller.require(Scope::Read)?;
    let sub = find(&deps, &caller, &id).await?;
    let filter = DeliveryFilter { status: q.status.into_iter().collect(), event_type: q.event_type.clone(), since: timestamp("since", &q.since)?, until: timestamp("until", &q.until)? };
    let page = deps.ledger.list(&sub.subscription_id, &filter, q.cursor.as_deref(), page_limit(q.limit)?).await.map_err(bad_cursor)?;
    Ok(Json(ListOut { data: page.items.iter().map(DeliveryOut::from).collect(), next_cursor: page.next }))
}

/// The caller's delivery, or 404 (also for another tenant's, and for one with no record yet).
async fn find_delivery(deps: &Deps, caller: &Caller, id: &str) -> Result<Delivery, ApiError> {
    let id = DeliveryId::parse(id).ok_or(ApiError::NotFound("delivery"))?;
    deps.subscriptions.get(&caller.tenant, &id.subscription()).await?.ok_or(ApiError::NotFound("delivery"))?;
    deps.ledger.delivery(&id).await?.ok_or(ApiError::NotFound("delivery"))
}

pub async fn get(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(id): IdPath) -> Result<Json<DeliveryDetailOut>, ApiError> {
    caller.require(Scope::Read)?;
    let d = find_delivery(&deps, &caller, &id).await?;
    let sub = deps.subscriptions.get(&caller.tenant, &d.id().subscription()).await?;
    let headers = request::shown_headers(d.id(), sub.as_ref(), &d.head().event_type);
    let json = |text: &str| serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
    let event = d.event().map(|e| json(&e.body)).unwrap_or(serde_json::Value::Null);
    let payload = match (d.event(), &sub) {
        (Some(e), Some(s)) => json(&request::payload(s, d.id(), &e.body)),
        _ => event.clone(),
    };
    let url = d.last_attempt().map(|a| a.url.clone()).or(sub.map(|s| s.url)).unwrap_or_default();
    Ok(Json(DeliveryDetailOut { delivery: DeliveryOut::from(&d), request: RequestOut { url, headers, payload }, event }))
}

pub async fn attempts(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(id): IdPath) -> Result<Json<ListOut<AttemptOut>>, ApiError> {
    caller.require(Scope::Read)?;
    let d = find_delivery(&deps, &caller, &id).await?;
    let data = d.records.iter().filter_map(|r| r.attempt.as_ref()).cloned().collect();
    Ok(Json(ListOut { data, next_cursor: None }))
}

fn action_error(e: ActionError) -> ApiError {
    match e {
        ActionError::NotReopenable(_) => ApiError::Conflict(e.to_string()),
        ActionError::Port(p) => p.into(),
    }
}

/// A failed, cancelled or dead-lettered delivery, again: same payload and `webhook-id`, a fresh
/// signature, the whole schedule.
pub async fn redeliver(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(id): IdPath) -> Result<(StatusCode, Json<DeliveryOut>), ApiError> {
    caller.require(Scope::Write)?;
    let d = find_delivery(&deps, &caller, &id).await?;
    let d = actions::redeliver(&deps, d).await.map_err(action_error)?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryOut::from(&d))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverIn {
    pub since: String,
    /// The `next_cursor` of the previous call, to go on.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RecoverOut {
    /// Deliveries queued again by this call.
    pub recovered: usize,
    /// More remain: call again with the same `since` and this cursor. Repeating a call (say,
    /// after a timeout) redelivers nothing twice.
    pub next_cursor: Option<String>,
}

/// Redelivers the failed, cancelled and dead-lettered deliveries of the subscription whose events
/// occurred since `since`, up to `RECOVER_LIMIT` per call.
pub async fn recover(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(id): IdPath, JsonBody(input): JsonBody<RecoverIn>) -> Result<(StatusCode, Json<RecoverOut>), ApiError> {
    caller.require(Scope::Write)?;
    let sub = find(&deps, &caller, &id).await?;
    let since = timestamp("since", &Some(input.since))?.expect("a given timestamp");
    let done = actions::recover(&deps, &sub.subscription_id, since, input.cursor).await.map_err(bad_cursor)?;
    Ok((StatusCode::ACCEPTED, Json(RecoverOut { recovered: done.reopened, next_cursor: done.next_cursor })))
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
    let (record, _) = actions::send_test(&deps, &sub).await?;
    let attempt = record.attempt.as_ref().expect("a test record reports its POST");
    Ok(Json(TestOut { delivery_id: record.delivery_id.clone(), event_id: record.event_id.clone(), status: record.status.public(), attempt: attempt.clone() }))
}
