//! `/v1/subscriptions`: create (returns the signing secret once), list, get, update (PATCH),
//! soft delete and restore, and secret rotation.
//!
//! Every change writes only its own fields (a PATCH the fields it names, a rotation the secrets,
//! delete and restore `active`), so concurrent changes never undo each other; each bumps the
//! subscription's `version`, which responses carry as `ETag` and which `If-Match` makes a
//! condition of the change (412 `precondition-failed` when someone changed it meanwhile).

use super::auth::Caller;
use super::problem::ApiError;
use super::{page_limit, validate, IdPath, JsonBody, ListOut, MaybeJsonBody, QueryParams};

mod input;
mod output;

pub(super) use input::present;
pub use input::{RotateIn, SignatureIn, SubscriptionIn, SubscriptionPatch};
pub use output::{AuthOut, RotatedOut, SignatureOut, SubscriptionCreatedOut, SubscriptionOut, TlsOut};
use crate::deps::Deps;
use crate::ids::SubscriptionId;
use crate::model::{Profile, Scope, Subscription};
use crate::ports::{ActiveChange, PortError, SubscriptionChange};
use crate::signing::{Scheme, Secret};
use axum::extract::{FromRequestParts, State};
use axum::http::header::{ETAG, IF_MATCH};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;

/// Events a subscription gets when it names none: all of them.
pub const DEFAULT_EVENTS: &[&str] = &["*"];

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

/// `If-Match`: the version a change expects (`None` without the header, or with `*`).
pub struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(IF_MATCH) else { return Ok(Self(None)) };
        let text = value.to_str().map_err(|_| ApiError::invalid("If-Match", "must be an ETag this API returned, e.g. \"3\""))?.trim();
        if text == "*" {
            return Ok(Self(None));
        }
        let tag = text.strip_prefix("W/").unwrap_or(text);
        tag.strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .and_then(|t| t.parse().ok())
            .map(|v| Self(Some(v)))
            .ok_or_else(|| ApiError::invalid("If-Match", "must be an ETag this API returned, e.g. \"3\""))
    }
}

/// A subscription in a response, with its `ETag`.
fn tagged<T: Serialize>(status: StatusCode, sub: &Subscription, body: T) -> Response {
    let mut resp = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", sub.version)) {
        resp.headers_mut().insert(ETAG, v);
    }
    resp
}

/// A store's answer to a change, as the API says it.
fn changed(e: PortError, max: usize) -> ApiError {
    match e {
        PortError::Missing(_) => ApiError::NotFound("subscription"),
        PortError::Conflict => ApiError::PreconditionFailed,
        PortError::LimitReached => ApiError::Conflict(format!("a tenant may have at most {max} active subscriptions")),
        other => other.into(),
    }
}

pub async fn create(State(deps): State<Arc<Deps>>, caller: Caller, JsonBody(input): JsonBody<SubscriptionIn>) -> Result<Response, ApiError> {
    caller.require(Scope::Write)?;
    let sub = input.validate(&deps.config, &deps.sender, caller.tenant.clone(), OffsetDateTime::now_utc())?;
    let max = deps.config.max_subscriptions;
    deps.subscriptions.create(&sub, max).await.map_err(|e| match e {
        PortError::LimitReached => ApiError::Conflict(format!("a tenant may have at most {max} active subscriptions")),
        other => other.into(),
    })?;
    tracing::info!(tenant = %sub.tenant_id, subscription_id = %sub.subscription_id, "subscription created");
    let out = SubscriptionCreatedOut { subscription: SubscriptionOut::from(&sub), secret: sub.secret.shown().map(str::to_owned) };
    Ok(tagged(StatusCode::CREATED, &sub, out))
}

pub async fn list(State(deps): State<Arc<Deps>>, caller: Caller, QueryParams(q): QueryParams<ListQuery>) -> Result<Json<ListOut<SubscriptionOut>>, ApiError> {
    caller.require(Scope::Read)?;
    let limit = page_limit(q.limit)?;
    let cursor = match &q.cursor {
        Some(c) => Some(SubscriptionId::parse(c).ok_or_else(|| ApiError::invalid("cursor", "is not a cursor this API returned"))?),
        None => None,
    };
    // One Query per page (a tenant may keep many deleted subscriptions); the filter applies
    // within the page, which may then be short.
    let page = deps.subscriptions.list_page(&caller.tenant, cursor.as_ref(), limit).await?;
    let data = page.items.iter().filter(|s| q.enabled.is_none_or(|e| s.enabled == e)).map(SubscriptionOut::from).collect();
    Ok(Json(ListOut { data, next_cursor: page.next }))
}

pub async fn get(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(id): IdPath) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let sub = find(&deps, &caller, &id).await?;
    Ok(tagged(StatusCode::OK, &sub, SubscriptionOut::from(&sub)))
}

fn parse_id(id: &str) -> Result<SubscriptionId, ApiError> {
    SubscriptionId::parse(id).ok_or(ApiError::NotFound("subscription"))
}

/// Changes exactly the fields sent (with `If-Match`, only if nobody changed it meanwhile).
pub async fn update(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(id): IdPath, IfMatch(expect): IfMatch, JsonBody(patch): JsonBody<SubscriptionPatch>) -> Result<Response, ApiError> {
    caller.require(Scope::Write)?;
    let id = parse_id(&id)?;
    let now = OffsetDateTime::now_utc();
    // Enabling a disabled subscription is an operational event (`endpoint.enabled`), and a new
    // signature profile must suit the stored scheme: read first when either is asked.
    let current = match (patch.enabled, &patch.signature) {
        (Some(true), _) | (_, Some(_)) => Some(deps.subscriptions.get(&caller.tenant, &id).await?.ok_or(ApiError::NotFound("subscription"))?),
        _ => None,
    };
    let scheme = current.as_ref().map_or(Scheme::V1, |s| s.secret.scheme());
    let change = patch.validate(&deps.config, &deps.sender, scheme, now)?;
    let was_disabled = change.enabled == Some(true) && current.as_ref().is_some_and(|s| !s.enabled);
    // The profile was checked against this version's scheme; a rotation in between must not pass.
    let expect = match (&change.signature, &current) {
        (Some(_), Some(c)) => expect.or(Some(c.version)),
        _ => expect,
    };
    let sub = deps.subscriptions.update(&caller.tenant, &id, &change, expect).await.map_err(|e| changed(e, deps.config.max_subscriptions))?;
    if was_disabled && sub.enabled {
        crate::operational::publish(&deps, &caller.tenant, &id, crate::operational::Occurrence::Enabled, now).await;
    }
    Ok(tagged(StatusCode::OK, &sub, SubscriptionOut::from(&sub)))
}

/// Soft delete: `active = false`; it gets no deliveries, can be restored, and is purged
/// `RETENTION_DAYS` later.
pub async fn delete(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(id): IdPath, IfMatch(expect): IfMatch) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Delete)?;
    let id = parse_id(&id)?;
    let now = OffsetDateTime::now_utc();
    let purge_at = (now + deps.config.retention).unix_timestamp();
    deps.subscriptions.set_active(&caller.tenant, &id, ActiveChange::Delete { at: now, purge_at }, expect).await.map_err(|e| changed(e, deps.config.max_subscriptions))?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn restore(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(id): IdPath, IfMatch(expect): IfMatch) -> Result<Response, ApiError> {
    caller.require(Scope::Write)?;
    let id = parse_id(&id)?;
    let max = deps.config.max_subscriptions;
    let change = ActiveChange::Restore { at: OffsetDateTime::now_utc(), max_active: max };
    let sub = deps.subscriptions.set_active(&caller.tenant, &id, change, expect).await.map_err(|e| changed(e, max))?;
    Ok(tagged(StatusCode::OK, &sub, SubscriptionOut::from(&sub)))
}

/// A new secret; the previous one keeps signing (alongside) for the configured overlap.
pub async fn rotate_secret(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(id): IdPath, IfMatch(expect): IfMatch, MaybeJsonBody(input): MaybeJsonBody<RotateIn>) -> Result<Response, ApiError> {
    caller.require(Scope::Write)?;
    let current = find(&deps, &caller, &id).await?;
    let now = OffsetDateTime::now_utc();
    let until = now + deps.config.secret_overlap;
    let input = input.unwrap_or_default();
    let scheme = input.scheme.unwrap_or(current.secret.scheme());
    let secret = match (input.secret, scheme) {
        (Some(_), Scheme::V1a) => return Err(ApiError::invalid("secret", "a `v1a` key is generated here; omit `secret`")),
        (Some(text), Scheme::V1) => validate::secret(&text)?,
        (None, Scheme::V1) => Secret::generate(),
        (None, Scheme::V1a) => {
            if current.signature.profile != Profile::Standard {
                return Err(ApiError::invalid("scheme", "the subscription's signature profile is an HMAC of the body; set `signature.profile` to `standard` first"));
            }
            Secret::generate_ed25519()
        }
    };
    // A change of scheme was checked against this version's profile.
    let expect = if scheme != current.secret.scheme() { expect.or(Some(current.version)) } else { expect };
    let change = SubscriptionChange { rotate: Some((secret.clone(), until)), at: Some(now), ..Default::default() };
    let sub = deps.subscriptions.update(&caller.tenant, &current.subscription_id, &change, expect).await.map_err(|e| changed(e, deps.config.max_subscriptions))?;
    tracing::info!(tenant = %sub.tenant_id, subscription_id = %sub.subscription_id, "signing secret rotated");
    let out = RotatedOut { secret: secret.shown().map(str::to_owned), public_key: secret.public_key(), previous_secret_expires_at: until };
    Ok(tagged(StatusCode::OK, &sub, out))
}
