//! `POST /v1/events` (the HTTP path onto the event queue) and the event-type catalogue.

use super::auth::Caller;
use super::catalogue::{self, EventType};
use super::problem::ApiError;
use super::{JsonBody, ListOut};
use crate::deps::Deps;
use crate::fanout::parse_event;
use crate::ids::{is_token, EventId, TenantId};
use crate::model::{EventIn, Scope, StoredEvent};
use crate::ports::Created;
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
    /// `true` when this event id was accepted before: nothing new was queued.
    pub duplicate: bool,
}

/// Queues an event for fan-out. Idempotent on `event_id` for as long as events are retained
/// (`RETENTION_DAYS`, 30 by default, so at least 24 h): a repeat answers 200 with the first result.
pub async fn publish(State(deps): State<Arc<Deps>>, caller: Caller, JsonBody(input): JsonBody<EventPostIn>) -> Result<(StatusCode, Json<EventAcceptedOut>), ApiError> {
    caller.require(Scope::Write)?;
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
    let body = stored.body.clone();
    // The same checks fan-out applies, so what is accepted here is never rejected there.
    parse_event(&body).map_err(|e| ApiError::invalid(if e.to_string().contains("event_type") { "event_type" } else { "body" }, e.to_string()))?;

    if let Some(first) = deps.deliveries.get_event(&caller.tenant, &event.event_id).await? {
        return Ok((StatusCode::OK, Json(EventAcceptedOut { event_id: first.event_id, event_type: first.event_type, duplicate: true })));
    }
    // Queue first, then record: a crash in between makes a retry queue it again, which fan-out
    // dedupes; the reverse order could record an event that was never queued.
    deps.queues.publish_event(&body).await?;
    let duplicate = deps.deliveries.put_event(&stored).await? == Created::Existed;
    let status = if duplicate { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok((status, Json(EventAcceptedOut { event_id: event.event_id, event_type: event.event_type, duplicate })))
}

pub async fn event_types(caller: Caller) -> Result<Json<ListOut<EventType>>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(ListOut { data: catalogue::all().to_vec(), next_cursor: None }))
}
