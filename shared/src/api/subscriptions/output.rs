//! What the subscription routes return: a subscription as shown (credentials, keys and custom
//! header values never), and the create and rotate responses, the only ones with a secret.

use super::super::validate;
use crate::ids::SubscriptionId;
use crate::model::{ClientAuth, EndpointAuth, PayloadMode, Profile, RetrySettings, Subscription};
use crate::signing::{Scheme, Secret};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use time::OffsetDateTime;

const REDACTED: &str = "<redacted>";

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
            header: (s.secret.scheme() == Scheme::V1).then(|| s.signature.body_header().0),
            event_header: s.signature.event_header(),
            public_key: s.secret.public_key(),
            previous_public_key: previous.and_then(Secret::public_key),
        }
    }
}

/// The circuit breaker as shown: its state, since when, and (open) when the next probe may go.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct CircuitOut {
    pub state: crate::model::CircuitState,
    #[serde(with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_probe_at: Option<OffsetDateTime>,
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
    pub rate_limit_per_second: Option<u32>,
    pub ordering: crate::model::Ordering,
    /// The endpoint's circuit breaker.
    pub circuit: CircuitOut,
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
            rate_limit_per_second: s.rate_limit_per_second,
            ordering: s.ordering,
            circuit: CircuitOut { state: s.circuit_state, since: s.circuit_since, next_probe_at: s.circuit_probe_at.filter(|_| !s.circuit_state.is_closed()) },
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
