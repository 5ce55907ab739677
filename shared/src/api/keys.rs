//! `/v1/api-keys` (scope `webhooks:admin`): create, list and revoke the tenant's API keys.

use super::auth::{issue_key, Caller};
use super::problem::ApiError;
use super::{IdPath, JsonBody, ListOut};
use crate::deps::Deps;
use crate::ids::{ApiKeyId, TenantId};
use crate::ports::PortError;
use crate::model::{ApiKeyRecord, Scope};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyIn {
    pub scopes: Vec<Scope>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ApiKeyOut {
    pub id: ApiKeyId,
    pub scopes: Vec<Scope>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Only in the creation response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl From<&ApiKeyRecord> for ApiKeyOut {
    fn from(r: &ApiKeyRecord) -> Self {
        Self { id: r.key_id.clone(), scopes: r.scopes.clone(), created_at: r.created_at, key: None }
    }
}

pub async fn create(State(deps): State<Arc<Deps>>, caller: Caller, JsonBody(input): JsonBody<ApiKeyIn>) -> Result<(StatusCode, Json<ApiKeyOut>), ApiError> {
    caller.require(Scope::Admin)?;
    if input.scopes.is_empty() {
        return Err(ApiError::invalid("scopes", "must name at least one scope"));
    }
    let (key, record) = issue_key(&deps, &caller.tenant, &input.scopes).await?;
    let mut out = ApiKeyOut::from(&record);
    out.key = Some(key);
    Ok((StatusCode::CREATED, Json(out)))
}

pub async fn list(State(deps): State<Arc<Deps>>, caller: Caller) -> Result<Json<ListOut<ApiKeyOut>>, ApiError> {
    caller.require(Scope::Admin)?;
    let keys = deps.api_keys.list_for_tenant(&caller.tenant).await?;
    Ok(Json(ListOut { data: keys.iter().map(ApiKeyOut::from).collect(), next_cursor: None }))
}

/// Revokes the tenant's key `key_id`; `false` if the tenant has no such key. (The route and the
/// operator command `webhooks-local revoke-key` both call it.)
pub async fn revoke_key(deps: &Deps, tenant: &TenantId, key_id: &str) -> Result<bool, PortError> {
    let keys = deps.api_keys.list_for_tenant(tenant).await?;
    let Some(key) = keys.iter().find(|k| k.key_id.as_str() == key_id) else {
        return Ok(false);
    };
    deps.api_keys.delete(&key.key_hash).await?;
    tracing::info!(%tenant, key_id = %key.key_id, "api key revoked");
    Ok(true)
}

pub async fn revoke(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(id): IdPath) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Admin)?;
    match revoke_key(&deps, &caller.tenant, &id).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::NotFound("api key")),
    }
}
