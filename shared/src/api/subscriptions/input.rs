//! What the subscription routes take: the create and PATCH bodies, each validated field by field
//! into a subscription or a change of exactly the fields sent, and the rotation's body.

use super::super::problem::ApiError;
use super::super::validate;
use super::DEFAULT_EVENTS;
use crate::config::Config;
use crate::model::{EndpointAuth, Ordering, PayloadMode, Profile, RetrySettings, SignatureSettings, Subscription, TlsSettings};
use crate::ports::SubscriptionChange;
use crate::signing::{Scheme, Secret};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::BTreeMap;
use time::OffsetDateTime;

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
    /// At most this many POSTs per second to the endpoint (1-10000); absent or `null`: none.
    pub rate_limit_per_second: Option<u32>,
    /// `fifo`: one at a time in publish order; absent or `unordered`: unordered.
    pub ordering: Option<Ordering>,
}

/// The rate limit's bounds.
pub const MAX_RATE: u32 = 10_000;

fn rate(v: Option<u32>) -> Result<(), ApiError> {
    match v {
        Some(n) if n == 0 || n > MAX_RATE => Err(ApiError::invalid("rate_limit_per_second", "must be between 1 and 10000 (omit it, or send null, for no limit)")),
        _ => Ok(()),
    }
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
        rate(self.rate_limit_per_second)?;
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
        sub.rate_limit_per_second = self.rate_limit_per_second;
        sub.ordering = self.ordering.unwrap_or_default();
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
    #[serde(default, deserialize_with = "present")]
    pub rate_limit_per_second: Option<Option<u32>>,
    /// Applies to events fanned out after the change; tasks already queued stay where they are.
    pub ordering: Option<Ordering>,
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
        if let Some(r) = self.rate_limit_per_second {
            rate(r)?;
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
            rate_limit_per_second: self.rate_limit_per_second,
            ordering: self.ordering,
            rotate: None,
            at: Some(now),
        })
    }
}

/// Distinguishes a field sent as `null` (`Some(None)`) from one not sent (`None`).
pub(in crate::api) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(de: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(de).map(Some)
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
