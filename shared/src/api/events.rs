//! `POST /v1/events` (the HTTP path onto the event queue), `GET /v1/events/{id}` (which
//! subscriptions an event matched and each one's state), and the event-type catalogue.

use super::auth::Caller;
use super::catalogue::{self, EventType};
use super::deliveries::timestamp;
use super::problem::ApiError;
use super::{IdPath, JsonBody, ListOut, QueryParams};
use crate::deps::Deps;
use crate::envelope::parse_event;
use crate::ids::{is_token, DeliveryId, EventId, EventSource, TenantId};
use crate::model::{DeliveryStatus, EventIn, Scope, StoredEvent};
use crate::ports::{Created, Read};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;

/// The SQS envelope, with `event_id` and `occurred_at` optional and the tenant from the key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventPostIn {
    pub event_id: Option<String>,
    pub event_type: String,
    /// Optional; if sent it must be the key's tenant.
    pub tenant_id: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub occurred_at: Option<OffsetDateTime>,
    pub data: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct EventAcceptedOut {
    pub event_id: String,
    pub event_type: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// `true` when this event id was accepted before: nothing new was queued.
    pub duplicate: bool,
}

/// Queues an event for fan-out (scope `events:publish`). Idempotent on `event_id` for as long as
/// events are retained (`RETENTION_DAYS`): a repeat answers 200 with the first result. Its
/// deliveries are its own: an event on the queue with the same id is another event.
pub async fn publish(State(deps): State<Arc<Deps>>, caller: Caller, JsonBody(input): JsonBody<EventPostIn>) -> Result<(StatusCode, Json<EventAcceptedOut>), ApiError> {
    caller.require(Scope::Publish)?;
    if input.tenant_id.as_deref().is_some_and(|t| TenantId::parse(t).as_ref() != Some(&caller.tenant)) {
        return Err(ApiError::invalid("tenant_id", "must be your API key's tenant (or omitted)"));
    }
    let event_id = match input.event_id {
        Some(id) if is_token(&id, 128) => id,
        Some(_) => return Err(ApiError::invalid("event_id", "must be 1-128 of [A-Za-z0-9_.:-]")),
        None => EventId::generate().to_string(),
    };
    let event = EventIn {
        event_id,
        event_type: input.event_type,
        tenant_id: caller.tenant.clone(),
        occurred_at: input.occurred_at.unwrap_or_else(OffsetDateTime::now_utc),
        data: input.data,
    };
    let expires_at = (OffsetDateTime::now_utc() + deps.config.retention).unix_timestamp();
    let stored = StoredEvent::from_event(&event, expires_at);
    // The same checks fan-out applies, so what is accepted here is never rejected there.
    parse_event(&stored.body).map_err(|e| match e {
        crate::envelope::Rejection::Invalid(field) => ApiError::invalid(field.clone(), format!("{field} is not valid")),
        other => ApiError::invalid("body", other.to_string()),
    })?;

    let accepted = |e: &StoredEvent, duplicate| EventAcceptedOut { event_id: e.event_id.clone(), event_type: e.event_type.clone(), occurred_at: e.occurred_at, duplicate };
    if let Some(first) = deps.events.get(&caller.tenant, &event.event_id).await? {
        return Ok((StatusCode::OK, Json(accepted(&first, true))));
    }
    // Queue first, then record: a crash in between makes a retry queue it again, which yields
    // the same deliveries; the reverse order could record an event that was never queued.
    deps.queues.publish_event(&stored.body, EventSource::Http).await?;
    match deps.events.put(&stored).await? {
        Created::New => Ok((StatusCode::ACCEPTED, Json(accepted(&stored, false)))),
        Created::Existed => {
            let first = deps.events.get(&caller.tenant, &event.event_id).await?.unwrap_or(stored);
            Ok((StatusCode::OK, Json(accepted(&first, true))))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// The event's `occurred_at`: needed for an event published on the queue (the service
    /// stores nothing per queued event; its deliveries are found by their ids, which it is part
    /// of). Not needed for one published over HTTP.
    pub occurred_at: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct EventDeliveryOut {
    pub subscription_id: String,
    pub delivery_id: DeliveryId,
    pub status: DeliveryStatus,
    /// `true`: no record yet; the subscription matches the event now, so its delivery is queued
    /// (or was never made, if the subscription was changed after the event was fanned out).
    pub inferred: bool,
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    pub last_status_code: Option<u16>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct EventOut {
    pub event_id: String,
    /// `None` if neither a record nor an HTTP publication names it.
    pub event_type: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub source: EventSource,
    pub deliveries: Vec<EventDeliveryOut>,
}

/// Whether a subscription without a record of the event would have one queued: its types and,
/// where it has a filter, the filter on the event's data (unknown for an event published on the
/// queue, which then shows only once its delivery has a record).
fn wanted(sub: &crate::ports::Subscriber, event_type: &str, data: Option<&serde_json::Value>) -> bool {
    match (&sub.filter, data) {
        (None, _) => sub.wants_type(event_type),
        (Some(_), Some(data)) => sub.wants(event_type, data),
        (Some(_), None) => false,
    }
}

/// Which active subscriptions an event matched and each delivery's state.
pub async fn get(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(event_id): IdPath, QueryParams(q): QueryParams<EventQuery>) -> Result<Json<EventOut>, ApiError> {
    caller.require(Scope::Read)?;
    if !is_token(&event_id, 128) {
        return Err(ApiError::NotFound("event"));
    }
    let given = timestamp("occurred_at", &q.occurred_at)?;
    let stored = match given {
        Some(_) => None,
        None => deps.events.get(&caller.tenant, &event_id).await?,
    };
    let (source, occurred_at, mut event_type) = match (&stored, given) {
        (Some(e), _) => (EventSource::Http, e.occurred_at, Some(e.event_type.clone())),
        (None, Some(t)) => (EventSource::Queue, t, None),
        (None, None) => return Err(ApiError::invalid("occurred_at", "is required for an event published on the queue (its own occurred_at)")),
    };
    let subs = deps.subscriptions.subscribers(&caller.tenant).await?;
    // The event's data, if it was stored (published over HTTP): what filters select on.
    let data = stored.as_ref().and_then(|e| serde_json::from_str::<EventIn>(&e.body).ok()).map(|e| e.data);
    let ids: Vec<DeliveryId> = subs.iter().map(|s| DeliveryId::derive(source, &caller.tenant, &event_id, occurred_at, &s.subscription_id)).collect();
    let heads = futures::future::try_join_all(ids.iter().map(|id| deps.ledger.head(id, Read::Eventual))).await?;
    if event_type.is_none() {
        event_type = heads.iter().flatten().next().map(|h| h.event_type.clone());
    }
    let mut deliveries = Vec::new();
    for ((sub, id), head) in subs.iter().zip(ids).zip(heads) {
        let out = match head {
            Some(h) => EventDeliveryOut {
                subscription_id: sub.subscription_id.to_string(),
                status: h.status.public(),
                inferred: false,
                attempts: h.attempts,
                next_attempt_at: h.next_attempt_at.filter(|_| h.status.public() == DeliveryStatus::Retrying),
                last_status_code: h.attempt.as_ref().and_then(|a| a.status_code),
                delivery_id: id,
            },
            None if event_type.as_deref().is_some_and(|t| wanted(sub, t, data.as_ref())) => EventDeliveryOut {
                subscription_id: sub.subscription_id.to_string(),
                delivery_id: id,
                status: DeliveryStatus::Queued,
                inferred: true,
                attempts: 0,
                next_attempt_at: None,
                last_status_code: None,
            },
            None => continue,
        };
        deliveries.push(out);
    }
    if stored.is_none() && deliveries.is_empty() {
        return Err(ApiError::NotFound("event (no delivery of it has a record yet, and it was not published over HTTP)"));
    }
    Ok(Json(EventOut { event_id, event_type, occurred_at, source, deliveries }))
}

pub async fn event_types(caller: Caller) -> Result<Json<ListOut<EventType>>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(ListOut { data: catalogue::all().to_vec(), next_cursor: None }))
}
