//! `/v1/subscriptions`: create (returns the signing secret once), list, get, update (PATCH),
//! soft delete and restore, and secret rotation.

use super::auth::Caller;
use super::problem::ApiError;
use super::{IdPath, JsonBody, ListOut, QueryParams, page_limit, validate};
use crate::deps::Deps;
use crate::ids::SubscriptionId;
use crate::model::{EndpointAuth, Scope, Subscription};
use crate::signing::Secret;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use time::OffsetDateTime;

/// Events a subscription gets when it names none: all of them.
pub const DEFAULT_EVENTS: &[&str] = &["*"];
const REDACTED: &str = "<redacted>";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionIn {
    pub url: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub headers: Option<BTreeMap<String, String>>,
    pub auth: Option<EndpointAuth>,
}

/// PATCH: absent fields stay; `null` clears `name` / `description`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionPatch {
    pub url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub headers: Option<BTreeMap<String, String>>,
    pub auth: Option<EndpointAuth>,
}

/// Distinguishes a field sent as `null` (`Some(None)`) from one not sent (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(de: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(de).map(Some)
}

/// Endpoint auth as shown: the type and non-secret parts only.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuthOut {
    None,
    Basic { username: String },
    ApiKey { header: String },
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SubscriptionOut {
    pub id: SubscriptionId,
    pub url: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub events: Vec<String>,
    pub enabled: bool,
    pub active: bool,
    /// Custom header names; values are write-only (they often carry credentials).
    pub headers: BTreeMap<String, String>,
    pub auth: AuthOut,
    pub failure_count: u32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_delivered_at: Option<OffsetDateTime>,
    pub disabled_reason: Option<String>,
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
            name: s.name.clone(),
            description: s.description.clone(),
            events: s.events.clone(),
            enabled: s.enabled,
            active: s.active,
            headers: s.headers.keys().map(|k| (k.clone(), REDACTED.to_owned())).collect(),
            auth: match &s.auth {
                EndpointAuth::None => AuthOut::None,
                EndpointAuth::Basic { username, .. } => AuthOut::Basic { username: username.clone() },
                EndpointAuth::ApiKey { header, .. } => AuthOut::ApiKey { header: header.clone() },
            },
            failure_count: s.failure_count,
            last_delivered_at: s.last_delivered_at,
            disabled_reason: s.disabled_reason.clone(),
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// Create and rotate responses: the only ones that carry a secret.
#[derive(Debug, Serialize, Deserialize)]
pub struct SubscriptionCreatedOut {
    #[serde(flatten)]
    pub subscription: SubscriptionOut,
    pub secret: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RotatedOut {
    pub secret: String,
    /// Until then deliveries are signed with both the new and the previous secret.
    #[serde(with = "time::serde::rfc3339")]
    pub previous_secret_expires_at: OffsetDateTime,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    pub enabled: Option<bool>,
}

/// The caller's subscription, or 404 (also for another tenant's id).
pub async fn find(deps: &Deps, caller: &Caller, id: &str) -> Result<Subscription, ApiError> {
    let id = SubscriptionId::parse(id).ok_or(ApiError::NotFound("subscription"))?;
    deps.subscriptions.get(&caller.tenant, &id).await?.ok_or(ApiError::NotFound("subscription"))
}

async fn check_limit(deps: &Deps, caller: &Caller) -> Result<(), ApiError> {
    let active = deps.subscriptions.list(&caller.tenant).await?.iter().filter(|s| s.active).count();
    let max = deps.config.max_subscriptions;
    if active >= max {
        return Err(ApiError::Conflict(format!("a tenant may have at most {max} active subscriptions")));
    }
    Ok(())
}

pub async fn create(
    State(deps): State<Arc<Deps>>,
    caller: Caller,
    JsonBody(input): JsonBody<SubscriptionIn>,
) -> Result<(StatusCode, Json<SubscriptionCreatedOut>), ApiError> {
    caller.require(Scope::Write)?;
    validate::url(&deps.config, &input.url)?;
    validate::text("name", &input.name, validate::MAX_NAME)?;
    validate::text("description", &input.description, validate::MAX_DESCRIPTION)?;
    let events = input.events.unwrap_or_else(|| DEFAULT_EVENTS.iter().map(|s| s.to_string()).collect());
    validate::events(&events)?;
    let headers = input.headers.unwrap_or_default();
    validate::headers(&headers)?;
    let auth = input.auth.unwrap_or_default();
    validate::auth(&auth)?;
    check_limit(&deps, &caller).await?;

    let mut sub = Subscription::new(caller.tenant.clone(), input.url, events, OffsetDateTime::now_utc());
    sub.name = input.name;
    sub.description = input.description;
    sub.enabled = input.enabled.unwrap_or(true);
    sub.headers = headers;
    sub.auth = auth;
    deps.subscriptions.create(&sub).await?;
    tracing::info!(tenant = %sub.tenant_id, subscription_id = %sub.subscription_id, "subscription created");
    let out = SubscriptionCreatedOut { subscription: SubscriptionOut::from(&sub), secret: sub.secret.expose().to_owned() };
    Ok((StatusCode::CREATED, Json(out)))
}

pub async fn list(State(deps): State<Arc<Deps>>, caller: Caller, QueryParams(q): QueryParams<ListQuery>) -> Result<Json<ListOut<SubscriptionOut>>, ApiError> {
    caller.require(Scope::Read)?;
    let limit = page_limit(q.limit)?;
    if let Some(c) = &q.cursor {
        SubscriptionId::parse(c).ok_or_else(|| ApiError::invalid("cursor", "is not a cursor this API returned"))?;
    }
    // A tenant's partition is small (at most `max_subscriptions` active): one Query, then filter
    // and page by id in order.
    let matching: Vec<Subscription> = deps
        .subscriptions
        .list(&caller.tenant)
        .await?
        .into_iter()
        .filter(|s| q.enabled.is_none_or(|e| s.enabled == e))
        .filter(|s| q.cursor.as_deref().is_none_or(|c| s.subscription_id.as_str() > c))
        .collect();
    let next = (matching.len() > limit).then(|| matching[limit - 1].subscription_id.to_string());
    Ok(Json(ListOut { data: matching.iter().take(limit).map(SubscriptionOut::from).collect(), next_cursor: next }))
}

pub async fn get(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(id): IdPath) -> Result<Json<SubscriptionOut>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(SubscriptionOut::from(&find(&deps, &caller, &id).await?)))
}

pub async fn update(
    State(deps): State<Arc<Deps>>,
    caller: Caller,
    IdPath(id): IdPath,
    JsonBody(patch): JsonBody<SubscriptionPatch>,
) -> Result<Json<SubscriptionOut>, ApiError> {
    caller.require(Scope::Write)?;
    let mut sub = find(&deps, &caller, &id).await?;
    if let Some(url) = patch.url {
        validate::url(&deps.config, &url)?;
        sub.url = url;
    }
    if let Some(name) = patch.name {
        validate::text("name", &name, validate::MAX_NAME)?;
        sub.name = name;
    }
    if let Some(description) = patch.description {
        validate::text("description", &description, validate::MAX_DESCRIPTION)?;
        sub.description = description;
    }
    if let Some(events) = patch.events {
        validate::events(&events)?;
        sub.events = events;
    }
    if let Some(headers) = patch.headers {
        validate::headers(&headers)?;
        sub.headers = headers;
    }
    if let Some(auth) = patch.auth {
        validate::auth(&auth)?;
        sub.auth = auth;
    }
    if let Some(enabled) = patch.enabled {
        if enabled && !sub.enabled {
            // Re-enabling starts a fresh health record.
            sub.disabled_reason = None;
            sub.failure_count = 0;
            sub.first_failure_at = None;
        }
        sub.enabled = enabled;
    }
    sub.updated_at = OffsetDateTime::now_utc();
    deps.subscriptions.replace(&sub).await?;
    Ok(Json(SubscriptionOut::from(&sub)))
}

/// Soft delete: `active = false`; it gets no deliveries and can be restored.
pub async fn delete(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(id): IdPath) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Delete)?;
    let mut sub = find(&deps, &caller, &id).await?;
    if sub.active {
        sub.active = false;
        sub.updated_at = OffsetDateTime::now_utc();
        deps.subscriptions.replace(&sub).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn restore(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(id): IdPath) -> Result<Json<SubscriptionOut>, ApiError> {
    caller.require(Scope::Write)?;
    let mut sub = find(&deps, &caller, &id).await?;
    if !sub.active {
        check_limit(&deps, &caller).await?;
        sub.active = true;
        sub.updated_at = OffsetDateTime::now_utc();
        deps.subscriptions.replace(&sub).await?;
    }
    Ok(Json(SubscriptionOut::from(&sub)))
}

/// A new secret; the previous one keeps signing (alongside) for the configured overlap.
pub async fn rotate_secret(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(id): IdPath) -> Result<Json<RotatedOut>, ApiError> {
    caller.require(Scope::Write)?;
    let mut sub = find(&deps, &caller, &id).await?;
    let now = OffsetDateTime::now_utc();
    let until = now + deps.config.secret_overlap;
    sub.previous_secret = Some(std::mem::replace(&mut sub.secret, Secret::generate()));
    sub.previous_secret_expires_at = Some(until);
    sub.updated_at = now;
    deps.subscriptions.replace(&sub).await?;
    tracing::info!(tenant = %sub.tenant_id, subscription_id = %sub.subscription_id, "signing secret rotated");
    Ok(Json(RotatedOut { secret: sub.secret.expose().to_owned(), previous_secret_expires_at: until }))
}
