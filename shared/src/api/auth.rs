//! API keys: `whk_` + 48 hex characters, shown once; stored only as their SHA-256. Requests carry
//! `Authorization: Bearer <key>`; the tenant comes from the key, never from the request body.

use super::problem::ApiError;
use crate::deps::Deps;
use crate::ids::{ApiKeyId, TenantId};
use crate::model::{ApiKeyRecord, Scope, TenantRecord};
use crate::ports::PortError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Creates a key for `tenant` (registering the tenant if new) and returns it in clear, once,
/// with its stored record.
pub async fn issue_key(deps: &Deps, tenant: &TenantId, scopes: &[Scope]) -> Result<(String, ApiKeyRecord), PortError> {
    let now = time::OffsetDateTime::now_utc();
    deps.tenants.register(&TenantRecord { tenant_id: tenant.clone(), created_at: now }).await?;
    let mut raw = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let key = format!("whk_{}", hex::encode(raw));
    let record = ApiKeyRecord {
        key_hash: hash_key(&key),
        key_id: ApiKeyId::generate(),
        tenant_id: tenant.clone(),
        scopes: scopes.to_vec(),
        created_at: now,
    };
    deps.api_keys.put(&record).await?;
    Ok((key, record))
}

/// The authenticated caller. The lookup is by the key's hash: an attacker timing it learns about
/// hashes, not keys.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: TenantId,
    pub scopes: Vec<Scope>,
}

impl Caller {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        self.scopes.contains(&scope).then_some(()).ok_or(ApiError::Forbidden(scope.as_str()))
    }
}

impl FromRequestParts<Arc<Deps>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, deps: &Arc<Deps>) -> Result<Self, Self::Rejection> {
        let key = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| k.starts_with("whk_") && k.len() <= 128)
            .ok_or(ApiError::Unauthorized)?;
        let record = deps.api_keys.get(&hash_key(key)).await?.ok_or(ApiError::Unauthorized)?;
        Ok(Caller { tenant: record.tenant_id, scopes: record.scopes })
    }
}
