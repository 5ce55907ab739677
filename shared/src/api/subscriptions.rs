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
use crate::config::Config;
use crate::deps::Deps;
use crate::ids::SubscriptionId;
use crate::model::{ClientAuth, EndpointAuth, PayloadMode, Profile, RetrySettings, Scope, SignatureSettings, Subscription, TlsSettings};
use crate::ports::{ActiveChange, PortError, SubscriptionChange};
use crate::signing::{Scheme, Secret};
use axum::extract::{FromRequestParts, State};
use axum::http::header::{ETAG, IF_MATCH};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
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
    /// A payload filter (see `docs/filters.md`); `null` or absent: every event of its types.
    pub filter: Option<Value>,
    /// `full` (absent or `null`) or `thin`.
    pub payload: Option<PayloadMode>,
    /// Its own retry policy within the stack's; absent or `null`: the stack's.
    pub retry: Option<RetrySettings>,
    /// A signing secret of the customer's own (`whsec_…` or raw); absent: one is generated.
    pub secret: Option<String>,
    /// The signature scheme (`v1` HMAC, `v1a` ed25519) and the receiver's header formats.
    pub signature: Option<SignatureIn>,
    /// A client certificate for mutual TLS and CAs pinning the endpoint's certificate.
    pub tls: Option<TlsSettings>,
    pub enabled: Option<bool>,
    pub headers: Option<BTreeMap<String, String>>,
    pub auth: Option<EndpointAuth>,
}

/// `signature` at create: the settings plus the scheme (PATCH takes the settings only; the scheme
/// changes by a rotation, which keeps the old key signing beside the new one).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureIn {
    pub scheme: Option<Scheme>,
    #[serde(default)]
    pub profile: Profile,
    pub header: Option<String>,
    pub event_header: Option<String>,
}

impl SubscriptionIn {
    /// Checks every field (each rejection names it) and makes the subscription.
    pub fn validate(self, config: &Config, sender: &crate::delivery::http::HttpSender, tenant: crate::ids::TenantId, now: OffsetDateTime) -> Result<Subscription, ApiError> {
        if let Some(t) = &self.tls {
            validate::tls(sender, t)?;
        }
        validate::url(config, &self.url)?;
        validate::text("name", &self.name, validate::MAX_NAME)?;
        validate::text("description", &self.description, validate::MAX_DESCRIPTION)?;
        let events = self.events.unwrap_or_else(|| DEFAULT_EVENTS.iter().map(|s| s.to_string()).collect());
        validate::events(&events)?;
        let filter = self.filter.filter(|f| !f.is_null()).map(validate::filter).transpose()?;
        if let Some(r) = &self.retry {
            validate::retry(config, r)?;
        }
        let signature_in = self.signature.unwrap_or_default();
        let scheme = signature_in.scheme.unwrap_or_default();
        let signature = SignatureSettings { profile: signature_in.profile, header: signature_in.header, event_header: signature_in.event_header };
        validate::signature(&signature, scheme)?;
        let secret = match (self.secret.as_deref(), scheme) {
            (Some(_), Scheme::V1a) => return Err(ApiError::invalid("secret", "a `v1a` subscription's ed25519 key is generated here (it never leaves the service); omit `secret`")),
            (Some(text), Scheme::V1) => Some(validate::secret(text)?),
            (None, Scheme::V1a) => Some(Secret::generate_ed25519()),
            (None, Scheme::V1) => None,
        };
        let headers = self.headers.unwrap_or_default();
        validate::headers(&headers)?;
        let auth = self.auth.unwrap_or_default();
        validate::auth(config, &auth)?;
        let mut sub = Subscription::new(tenant, self.url, events, now);
        sub.name = self.name;
        sub.description = self.description;
        sub.filter = filter;
        sub.payload = self.payload.unwrap_or_default();
        sub.retry = self.retry;
        if let Some(s) = secret {
            sub.secret = s;
        }
        sub.enabled = self.enabled.unwrap_or(true);
        sub.headers = headers;
        sub.auth = auth;
        sub.signature = signature;
        sub.tls = self.tls;
        Ok(sub)
    }
}

/// PATCH: absent fields stay; `null` clears `name`, `description`, `filter` and `retry`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionPatch {
    pub url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    pub events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub filter: Option<Option<Value>>,
    pub payload: Option<PayloadMode>,
    #[serde(default, deserialize_with = "present")]
    pub retry: Option<Option<RetrySettings>>,
    pub enabled: Option<bool>,
    pub headers: Option<BTreeMap<String, String>>,
    pub auth: Option<EndpointAuth>,
    /// The profile and header names (not the scheme: see [`SignatureIn`]).
    pub signature: Option<SignatureSettings>,
    #[serde(default, deserialize_with = "present")]
    pub tls: Option<Option<TlsSettings>>,
}

impl SubscriptionPatch {
    /// Checks the fields sent and makes the change of exactly those (`scheme`: the stored
    /// subscription's, which a `signature` must suit).
    pub fn validate(self, config: &Config, sender: &crate::delivery::http::HttpSender, scheme: Scheme, now: OffsetDateTime) -> Result<SubscriptionChange, ApiError> {
        if let Some(s) = &self.signature {
            validate::signature(s, scheme)?;
        }
        if let Some(Some(t)) = &self.tls {
            validate::tls(sender, t)?;
        }
        if let Some(url) = &self.url {
            validate::url(config, url)?;
        }
        if let Some(name) = &self.name {
            validate::text("name", name, validate::MAX_NAME)?;
        }
        if let Some(description) = &self.description {
            validate::text("description", description, validate::MAX_DESCRIPTION)?;
        }
        if let Some(events) = &self.events {
            validate::events(events)?;
        }
        if let Some(headers) = &self.headers {
            validate::headers(headers)?;
        }
        if let Some(auth) = &self.auth {
            validate::auth(config, auth)?;
        }
        if let Some(Some(r)) = &self.retry {
            validate::retry(config, r)?;
        }
        let filter = match self.filter {
            Some(Some(f)) if !f.is_null() => Some(Some(validate::filter(f)?)),
            Some(_) => Some(None),
            None => None,
        };
        Ok(SubscriptionChange {
            url: self.url,
            name: self.name,
            description: self.description,
            events: self.events,
            filter,
            payload: self.payload,
            retry: self.retry,
            enabled: self.enabled,
            headers: self.headers,
            auth: self.auth,
            signature: self.signature,
            tls: self.tls,
            rotate: None,
            at: Some(now),
        })
    }
}

/// Distinguishes a field sent as `null` (`Some(None)`) from one not sent (`None`).
pub(super) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(de: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(de).map(Some)
}

/// Endpoint auth as shown: the type and non-secret parts only.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuthOut {
    None,
    Basic { username: String },
    ApiKey { header: String },
    #[serde(rename = "oauth2")]
    OAuth2 { token_url: String, client_id: String, scope: Option<String>, audience: Option<String>, client_auth: ClientAuth },
}

/// The signature settings as shown, with their effective header names and the public keys of a
/// `v1a` subscription (the previous one while it still signs).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct SignatureOut {
    pub scheme: Scheme,
    pub profile: Profile,
    /// The body signature's header (`null`: none, an ed25519 subscription has no shared secret).
    pub header: Option<String>,
    pub event_header: String,
    pub public_key: Option<String>,
    pub previous_public_key: Option<String>,
}

impl SignatureOut {
    fn of(s: &Subscription, now: OffsetDateTime) -> Self {
        let previous = s.signing_secrets(now).into_iter().nth(1);
        Self {
            scheme: s.secret.scheme(),
            profile: s.signature.profile,
            header: s.secret.body_hex(b"").map(|_| s.signature.body_header().0),
            event_header: s.signature.event_header(),
            public_key: s.secret.public_key(),
            previous_public_key: previous.and_then(Secret::public_key),
        }
    }
}

/// mTLS as shown: which certificate (by fingerprint), and how many pinned CAs; never the key.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct TlsOut {
    pub client_certificate_sha256: Option<String>,
    pub ca_certificates: usize,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SubscriptionOut {
    pub id: SubscriptionId,
    pub url: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub events: Vec<String>,
    pub filter: Option<Value>,
    pub payload: PayloadMode,
    /// Its own retry policy as given (`null`: the stack's).
    pub retry: Option<RetrySettings>,
    pub enabled: bool,
    pub active: bool,
    /// Custom header names; values are write-only (they often carry credentials).
    pub headers: BTreeMap<String, String>,
    pub auth: AuthOut,
    pub signature: SignatureOut,
    pub tls: Option<TlsOut>,
    pub failure_count: u32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_delivered_at: Option<OffsetDateTime>,
    pub disabled_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Counts the changes made through the API; the `ETag` is `"<version>"`.
    pub version: u64,
}

impl From<&Subscription> for SubscriptionOut {
    fn from(s: &Subscription) -> Self {
        Self {
            id: s.subscription_id.clone(),
            url: s.url.clone(),
            name: s.name.clone(),
            description: s.description.clone(),
            events: s.events.clone(),
            filter: s.filter.as_ref().map(|f| f.as_value().clone()),
            payload: s.payload,
            retry: s.retry.clone(),
            enabled: s.enabled,
            active: s.active,
            headers: s.headers.keys().map(|k| (k.clone(), REDACTED.to_owned())).collect(),
            auth: match &s.auth {
                EndpointAuth::None => AuthOut::None,
                EndpointAuth::Basic { username, .. } => AuthOut::Basic { username: username.clone() },
                EndpointAuth::ApiKey { header, .. } => AuthOut::ApiKey { header: header.clone() },
                EndpointAuth::OAuth2 { token_url, client_id, scope, audience, client_auth, .. } => {
                    AuthOut::OAuth2 { token_url: token_url.clone(), client_id: client_id.clone(), scope: scope.clone(), audience: audience.clone(), client_auth: *client_auth }
                }
            },
            signature: SignatureOut::of(s, OffsetDateTime::now_utc()),
            tls: s.tls.as_ref().map(|t| TlsOut {
                client_certificate_sha256: t.client_certificate.as_deref().and_then(validate::certificate_fingerprint),
                ca_certificates: t.ca_certificates.as_deref().map_or(0, |c| c.matches("-----BEGIN CERTIFICATE-----").count()),
            }),
            failure_count: s.failure_count,
            last_delivered_at: s.last_delivered_at,
            disabled_reason: s.disabled_reason.clone(),
            created_at: s.created_at,
            updated_at: s.updated_at,
            version: s.version,
        }
    }
}

/// Create and rotate responses: the only ones that carry a secret (a `v1` one: a `v1a`
/// subscription's key never leaves the service; its public key is in `signature`).
#[derive(Debug, Serialize, Deserialize)]
pub struct SubscriptionCreatedOut {
    #[serde(flatten)]
    pub subscription: SubscriptionOut,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RotatedOut {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
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

/// `POST …/rotate-secret` may name the new secret (`{"secret": "whsec_…"}`, `v1` only) or the
/// scheme of the new key (`{"scheme": "v1a"}` migrates to ed25519 with the usual overlap);
/// without a body a new key of the current scheme is generated.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateIn {
    pub secret: Option<String>,
    pub scheme: Option<Scheme>,
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
