//! `POST /v1/subscriptions/{id}/filter/test`: whether fan-out would deliver an event of a type
//! with some `data` to a subscription now, which check decided, and why (docs/filters.md).

use super::auth::Caller;
use super::problem::ApiError;
use super::subscriptions::{find, present};
use super::{validate, IdPath, JsonBody};
use crate::deps::Deps;
use crate::model::Scope;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// `POST …/filter/test`: would this subscription get an event of this type with this `data`,
/// and why (or why not)? With `filter` in the body, tries that filter instead of the saved one
/// (validated as at update), so a filter can be tested before it is saved.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterTestIn {
    pub event_type: String,
    #[serde(default)]
    pub data: Value,
    #[serde(default, deserialize_with = "present")]
    pub filter: Option<Option<Value>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FilterTestOut {
    /// Whether fan-out would make a delivery of such an event to this subscription now.
    pub delivered: bool,
    /// Which check decided: `enabled`, `events` (the type patterns) or `filter`.
    pub decided_by: String,
    pub reason: String,
}

pub async fn test_filter(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(id): IdPath, JsonBody(input): JsonBody<FilterTestIn>) -> Result<Json<FilterTestOut>, ApiError> {
    caller.require(Scope::Read)?;
    let sub = find(&deps, &caller, &id).await?;
    if !crate::matching::is_valid_event_type(&input.event_type) {
        return Err(ApiError::invalid("event_type", "must be a dotted name of [a-z0-9_] segments, e.g. project.created"));
    }
    let filter = match input.filter {
        Some(Some(f)) if !f.is_null() => Some(validate::filter(f)?),
        Some(_) => None,
        None => sub.filter.clone(),
    };
    let out = |delivered: bool, decided_by: &str, reason: String| Json(FilterTestOut { delivered, decided_by: decided_by.into(), reason });
    if !(sub.enabled && sub.active) {
        let state = if sub.active { "disabled" } else { "deleted" };
        return Ok(out(false, "enabled", format!("the subscription is {state}: it gets no events")));
    }
    let subscriber = crate::ports::Subscriber { filter: None, ..crate::ports::Subscriber::from(&sub) };
    if !subscriber.wants_type(&input.event_type) {
        return Ok(out(false, "events", format!("{} matches none of its event types ({})", input.event_type, sub.events.join(", "))));
    }
    Ok(match filter {
        None => out(true, "events", format!("{} matches its event types and it has no filter", input.event_type)),
        Some(f) => match f.explain(&input.event_type, &input.data) {
            Ok(()) => out(true, "filter", "its event types and its filter both match".into()),
            Err(why) => out(false, "filter", why),
        },
    })
}
