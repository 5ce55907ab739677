//! OAuth2 client credentials (RFC 6749 section 4.4) for endpoints that take a bearer token: the
//! token is fetched from the subscription's token URL (SSRF-guarded, no redirects, like any
//! endpoint), cached per warm process until 10 % of its lifetime (at most 60 s) before it expires,
//! one fetch at a time per credential set, and fetched again when the endpoint answers 401.
//! Nothing here logs or returns the client secret or a token; a failure says what went wrong in
//! words (status, the OAuth2 `error` code) and is classed `auth`.

use super::http::{classify, read_capped};
use crate::model::{ClientAuth, EndpointAuth, FailureClass};
use crate::ssrf;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A token without `expires_in` is kept this long.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// Credential sets cached per process.
const MAX_ENTRIES: usize = 1024;

#[derive(Clone)]
struct Token {
    value: String,
    fresh_until: Instant,
}

type Slot = Arc<tokio::sync::Mutex<Option<Token>>>;

/// The process's tokens, one slot per distinct credential set (token URL, client, scope, audience).
#[derive(Default)]
pub struct Tokens {
    slots: Mutex<HashMap<[u8; 32], Slot>>,
}

/// What a token fetch goes through: the delivery client (guarded resolver, no redirects).
pub struct Fetch<'a> {
    pub client: &'a reqwest::Client,
    pub allow_http: bool,
    pub allow_private: bool,
}

fn key(auth: &EndpointAuth) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(auth).unwrap_or_default());
    h.finalize().into()
}

impl Tokens {
    /// A token for `auth` (an [`EndpointAuth::OAuth2`]): the cached one unless it is `stale` (the
    /// endpoint refused it), else a freshly fetched one. Concurrent deliveries with the same
    /// credentials wait for one fetch (and a refused token is replaced once, not by each).
    pub async fn token(&self, fetch: &Fetch<'_>, auth: &EndpointAuth, stale: Option<&str>, timeout: Duration) -> Result<String, (FailureClass, String)> {
        let slot = {
            let mut slots = self.slots.lock().expect("token cache");
            if slots.len() >= MAX_ENTRIES {
                slots.clear();
            }
            slots.entry(key(auth)).or_default().clone()
        };
        let started = Instant::now();
        let mut held = slot.lock().await;
        if let Some(t) = held.as_ref().filter(|t| t.fresh_until > Instant::now() && Some(t.value.as_str()) != stale) {
            return Ok(t.value.clone());
        }
        let token = fetch_token(fetch, auth, timeout.saturating_sub(started.elapsed())).await;
        *held = token.as_ref().ok().cloned();
        token.map(|t| t.value)
    }
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
    error: Option<String>,
}

/// An OAuth2 `error` code is short and plain; anything else is not echoed.
fn error_code(e: Option<String>) -> String {
    match e {
        Some(c) if c.len() <= 64 && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') => format!(" ({c})"),
        _ => String::new(),
    }
}

/// The client credentials grant's form body (the client's id and secret in it for `body`).
fn token_form(scope: Option<&str>, audience: Option<&str>, client: Option<(&str, &str)>) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    for (k, v) in [("scope", scope), ("audience", audience)] {
        if let Some(v) = v {
            form.append_pair(k, v);
        }
    }
    if let Some((id, secret)) = client {
        form.append_pair("client_id", id);
        form.append_pair("client_secret", secret);
    }
    form.finish()
}

async fn fetch_token(fetch: &Fetch<'_>, auth: &EndpointAuth, timeout: Duration) -> Result<Token, (FailureClass, String)> {
    let EndpointAuth::OAuth2 { token_url, client_id, client_secret, scope, audience, client_auth } = auth else {
        return Err((FailureClass::Auth, "not an OAuth2 endpoint".into()));
    };
    let url = ssrf::validate_url(token_url, fetch.allow_http, fetch.allow_private).map_err(|e| (FailureClass::Blocked, format!("token URL: {e}")))?;
    let mut request = fetch.client.post(url).timeout(timeout).header(ACCEPT, "application/json").header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    let in_body = (*client_auth == ClientAuth::Body).then_some((client_id.as_str(), client_secret.as_str()));
    let body = token_form(scope.as_deref(), audience.as_deref(), in_body);
    if *client_auth == ClientAuth::Basic {
        // RFC 6749 section 2.3.1: each part form-encoded, then HTTP Basic.
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{}:{}", enc(client_id), enc(client_secret)));
        let mut v = reqwest::header::HeaderValue::from_str(&format!("Basic {basic}")).map_err(|_| (FailureClass::Auth, "client credentials are not a valid header value".to_owned()))?;
        v.set_sensitive(true);
        request = request.header(AUTHORIZATION, v);
    }
    let resp = request.body(body).send().await.map_err(|e| {
        let (class, message) = classify(&e);
        (if class == FailureClass::Blocked { class } else { FailureClass::Auth }, format!("token endpoint: {message}"))
    })?;
    let status = resp.status();
    let text = read_capped(resp).await.map_err(|e| (FailureClass::Auth, format!("token endpoint: {}", classify(&e).1)))?;
    let parsed: Option<TokenResponse> = serde_json::from_str(&text).ok();
    if !status.is_success() {
        let code = error_code(parsed.and_then(|p| p.error));
        return Err((FailureClass::Auth, format!("token endpoint answered {status}{code}")));
    }
    let Some(TokenResponse { access_token: Some(value), token_type, expires_in, .. }) = parsed else {
        return Err((FailureClass::Auth, "token endpoint's answer has no access_token".into()));
    };
    if token_type.is_some_and(|t| !t.eq_ignore_ascii_case("bearer")) {
        return Err((FailureClass::Auth, "token endpoint's token_type is not Bearer".into()));
    }
    // `expires_in` is a number of seconds; some servers send it as a string.
    let lifetime = expires_in.and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok())).map_or(DEFAULT_LIFETIME, Duration::from_secs);
    let margin = (lifetime / 10).min(Duration::from_secs(60));
    Ok(Token { value, fresh_until: Instant::now() + lifetime - margin })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_error_codes_are_echoed() {
        assert_eq!(error_code(Some("invalid_client".into())), " (invalid_client)");
        assert_eq!(error_code(Some("secret s3cr3t in text".into())), "");
        assert_eq!(error_code(None), "");
    }

    #[test]
    fn credential_sets_have_distinct_slots() {
        let a = EndpointAuth::OAuth2 { token_url: "https://a/t".into(), client_id: "c".into(), client_secret: "s".into(), scope: None, audience: None, client_auth: ClientAuth::Basic };
        let EndpointAuth::OAuth2 { token_url, client_id, scope, audience, client_auth, .. } = a.clone() else { unreachable!() };
        let b = EndpointAuth::OAuth2 { token_url, client_id, client_secret: "other".into(), scope, audience, client_auth };
        assert_ne!(key(&a), key(&b), "a changed secret fetches a new token");
        assert_eq!(key(&a), key(&a.clone()));
    }
}
