//! `/v1/subscriptions`: create (returns the signing secret once), list, get.

use super::auth::Caller;
use super::problem::ApiError;
use super::JsonBody;
use crate::deps::Deps;
use crate::ids::SubscriptionId;
use crate::matching::is_valid_pattern;
use crate::model::{Scope, Subscription};
use crate::ssrf;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;

/// Active subscriptions a tenant may have.
pub const MAX_SUBSCRIPTIONS: usize = 25;
/// Events a subscription gets when it names none: all of them.
pub const DEFAULT_EVENTS: &[&str] = &["*"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionIn {
    pub url: String,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SubscriptionOut {
    pub id: SubscriptionId,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub active: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<&Subscription> for SubscriptionOut {
    fn from(s: &Subscription) -> Self {
        Self {
            id: s.subscription_id.clone(),
            url: s.url.clone(),
            events: s.events.clone(),
            enabled: s.enabled,
            active: s.active,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// The creation response: the only one that carries the secret.
#[derive(Debug, Serialize, Deserialize)]
pub struct SubscriptionCreatedOut {
    #[serde(flatten)]
    pub subscription: SubscriptionOut,
    pub secret: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ListOut<T> {
    pub data: Vec<T>,
}

fn validate_events(events: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let events = events.unwrap_or_else(|| DEFAULT_EVENTS.iter().map(|s| s.to_string()).collect());
    if events.is_empty() {
        return Err(ApiError::invalid("events", "must name at least one event type (omit it to receive all)"));
    }
    if let Some((i, bad)) = events.iter().enumerate().find(|(_, e)| !is_valid_pattern(e)) {
        return Err(ApiError::invalid(format!("events[{i}]"), format!("`{bad}` is not an event type or pattern like `project.*`")));
    }
    Ok(events)
}

pub async fn create(
    State(deps): State<Arc<Deps>>,
    caller: Caller,
    JsonBody(input): JsonBody<SubscriptionIn>,
) -> Result<(StatusCode, Json<SubscriptionCreatedOut>), ApiError> {
    caller.require(Scope::Write)?;
    let cfg = &deps.config;
    ssrf::validate_url(&input.url, cfg.allow_http, cfg.allow_private_targets).map_err(|e| ApiError::invalid("url", e.to_string()))?;
    let events = validate_events(input.events)?;
    let existing = deps.subscriptions.list(&caller.tenant).await?;
    if existing.iter().filter(|s| s.active).count() >= MAX_SUBSCRIPTIONS {
        return Err(ApiError::Conflict(format!("a tenant may have at most {MAX_SUBSCRIPTIONS} active subscriptions")));
    }
    let now = OffsetDateTime::now_utc();
    let mut sub = Subscription::new(caller.tenant.clone(), input.url, events, now);
    sub.enabled = input.enabled.unwrap_or(true);
    deps.subscriptions.create(&sub).await?;
    tracing::info!(tenant = %sub.tenant_id, subscription_id = %sub.subscription_id, "subscription created");
    let out = SubscriptionCreatedOut { subscription: SubscriptionOut::from(&sub), secret: sub.secret.expose().to_owned() };
    Ok((StatusCode::CREATED, Json(out)))
}

pub async fn list(State(deps): State<Arc<Deps>>, caller: Caller) -> Result<Json<ListOut<SubscriptionOut>>, ApiError> {
    caller.require(Scope::Read)?;
    let subs = deps.subscriptions.list(&caller.tenant).await?;
    Ok(Json(ListOut { data: subs.iter().map(SubscriptionOut::from).collect() }))
}

pub async fn get(State(deps): State<Arc<Deps>>, caller: Caller, Path(id): Path<String>) -> Result<Json<SubscriptionOut>, ApiError> {
    caller.require(Scope::Read)?;
    let id = SubscriptionId::parse(&id).ok_or(ApiError::NotFound("subscription"))?;
    let sub = deps.subscriptions.get(&caller.tenant, &id).await?.ok_or(ApiError::NotFound("subscription"))?;
    Ok(Json(SubscriptionOut::from(&sub)))
}
