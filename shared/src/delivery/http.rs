//! The HTTP side of a delivery: one POST, classified into an outcome. One client per warm
//! process (connection reuse), plus one per client certificate (mTLS); no redirects, the
//! SSRF-guarded resolver, bounded response reads; OAuth2 bearer tokens from `delivery::oauth`.

use crate::model::{EndpointAuth, FailureClass, TlsSettings};
use crate::ssrf::{self, BlockedAddress, DnsFailure, GuardedResolver};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::error::Error as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How much of a response body is kept for the attempt log.
pub const MAX_RESPONSE_BODY: usize = 16 * 1024;

/// Response headers kept per attempt: each whole, in the order received, while within both bounds.
pub const MAX_RESPONSE_HEADERS: usize = 50;
pub const MAX_RESPONSE_HEADER_BYTES: usize = 8 * 1024;

/// Clients with a certificate kept per process (one per distinct certificate, key and CAs).
const MAX_TLS_CLIENTS: usize = 256;

/// Response header values never kept: cookies, credentials and anything named like one.
fn redacted(name: &str) -> bool {
    const EXACT: [&str; 4] = ["set-cookie", "cookie", "authorization", "proxy-authorization"];
    const PARTS: [&str; 7] = ["token", "secret", "password", "api-key", "apikey", "session", "credential"];
    EXACT.contains(&name) || PARTS.iter().any(|p| name.contains(p))
}

/// The response headers an attempt keeps (names lower-case, repeated ones joined by `, `).
pub fn kept_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut bytes = 0;
    for name in headers.keys() {
        if out.len() == MAX_RESPONSE_HEADERS {
            break;
        }
        let value = match redacted(name.as_str()) {
            true => crate::delivery::request::REDACTED.to_owned(),
            false => headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect::<Vec<_>>().join(", "),
        };
        let size = name.as_str().len() + value.len();
        if bytes + size > MAX_RESPONSE_HEADER_BYTES {
            continue; // whole or not at all; a smaller one after it may still fit
        }
        bytes += size;
        out.insert(name.as_str().to_owned(), value);
    }
    out
}

/// What the endpoint answered, if it answered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    pub status: Option<u16>,
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    pub ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    Delivered(Response),
    Failed {
        class: FailureClass,
        message: String,
        response: Response,
        /// The endpoint's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
}

impl DeliveryOutcome {
    pub fn response(&self) -> &Response {
        match self {
            Self::Delivered(r) | Self::Failed { response: r, .. } => r,
        }
    }

    fn failed(class: FailureClass, message: String, response: Response) -> Self {
        Self::Failed { class, message, response, retry_after: None }
    }
}

/// `Retry-After` as seconds or an HTTP date, relative to `now`.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Where and how a delivery goes: the subscription's URL, endpoint auth and TLS settings.
#[derive(Clone, Copy)]
pub struct Endpoint<'a> {
    pub url: &'a str,
    pub auth: &'a EndpointAuth,
    pub tls: Option<&'a TlsSettings>,
}

#[derive(Clone)]
pub struct HttpSender {
    client: reqwest::Client,
    allow_http: bool,
    allow_private: bool,
    timeout: Duration,
    proxy: Option<String>,
    tls_clients: Arc<Mutex<HashMap<[u8; 32], reqwest::Client>>>,
    tokens: Arc<super::oauth::Tokens>,
}

impl HttpSender {
    pub fn new(timeout: Duration, allow_http: bool, allow_private: bool) -> Self {
        let client = Self::builder(timeout, allow_private, None).build().expect("static reqwest configuration is valid");
        Self { client, allow_http, allow_private, timeout, proxy: None, tls_clients: Arc::default(), tokens: Arc::default() }
    }

    fn builder(timeout: Duration, allow_private: bool, proxy: Option<&str>) -> reqwest::ClientBuilder {
        let b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5).min(timeout))
            .timeout(timeout)
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .user_agent(concat!("webhooks/", env!("CARGO_PKG_VERSION")));
        match proxy {
            Some(url) => b.proxy(reqwest::Proxy::all(url).expect("DELIVERY_PROXY is a proxy URL")),
            None => b.no_proxy(),
        }
    }

    /// Routes every delivery through `proxy` (testing only; see `Config::delivery_proxy`).
    pub fn with_proxy(mut self, proxy: Option<&str>) -> Self {
        if let Some(url) = proxy {
            self.client = Self::builder(self.timeout, self.allow_private, Some(url)).build().expect("static reqwest configuration is valid");
            self.proxy = Some(url.to_owned());
        }
        self
    }

    /// A client presenting `tls`'s certificate and trusting only its CAs (when it names some);
    /// the API validates settings with it before storing them.
    pub fn tls_client(&self, tls: &TlsSettings) -> Result<reqwest::Client, String> {
        let mut h = Sha256::new();
        for part in [&tls.client_certificate, &tls.client_key, &tls.ca_certificates] {
            h.update(part.as_deref().unwrap_or_default());
            h.update([0]);
        }
        let key: [u8; 32] = h.finalize().into();
        if let Some(c) = self.tls_clients.lock().expect("tls client cache").get(&key) {
            return Ok(c.clone());
        }
        let mut b = Self::builder(self.timeout, self.allow_private, self.proxy.as_deref()).use_rustls_tls();
        if let (Some(cert), Some(pem_key)) = (&tls.client_certificate, &tls.client_key) {
            let identity = reqwest::Identity::from_pem(format!("{cert}\n{pem_key}").as_bytes()).map_err(|e| format!("client certificate and key: {}", error_chain(&e)))?;
            b = b.identity(identity);
        }
        if let Some(ca) = &tls.ca_certificates {
            let roots = reqwest::Certificate::from_pem_bundle(ca.as_bytes()).map_err(|e| format!("CA certificates: {}", error_chain(&e)))?;
            if roots.is_empty() {
                return Err("CA certificates: no PEM certificate found".into());
            }
            b = roots.into_iter().fold(b.tls_built_in_root_certs(false), |b, c| b.add_root_certificate(c));
        }
        let client = b.build().map_err(|e| format!("client certificate: {}", error_chain(&e)))?;
        let mut cache = self.tls_clients.lock().expect("tls client cache");
        if cache.len() >= MAX_TLS_CLIENTS {
            cache.clear();
        }
        cache.insert(key, client.clone());
        Ok(client)
    }

    pub async fn post(&self, url: &str, headers: HeaderMap, body: Vec<u8>) -> DeliveryOutcome {
        self.post_within(url, headers, body, self.timeout).await
    }

    /// [`HttpSender::post`] with a total time of at most `timeout` (the test route's, shorter than
    /// its function's).
    pub async fn post_within(&self, url: &str, headers: HeaderMap, body: Vec<u8>, timeout: Duration) -> DeliveryOutcome {
        self.post_with(&self.client, url, headers, body, timeout).await
    }

    /// A delivery's POST to `to`: over its client certificate if it has one, with a bearer token
    /// if it uses OAuth2 (fetched or cached; on a 401 fetched again and the POST repeated once,
    /// within the same attempt and `timeout`).
    pub async fn deliver(&self, to: Endpoint<'_>, mut headers: HeaderMap, body: Vec<u8>, timeout: Duration) -> DeliveryOutcome {
        let started = Instant::now();
        let left = || timeout.saturating_sub(started.elapsed());
        let client = match to.tls {
            Some(tls) => match self.tls_client(tls) {
                Ok(c) => c,
                Err(e) => return DeliveryOutcome::failed(FailureClass::Tls, e, Response::default()),
            },
            None => self.client.clone(),
        };
        let EndpointAuth::OAuth2 { .. } = to.auth else {
            return self.post_with(&client, to.url, headers, body, timeout).await;
        };
        let token_failed = |(class, message): (FailureClass, String)| {
            DeliveryOutcome::failed(class, message, Response { ms: started.elapsed().as_millis() as u64, ..Default::default() })
        };
        let fetch = super::oauth::Fetch { client: &self.client, allow_http: self.allow_http, allow_private: self.allow_private };
        let mut refused_token: Option<String> = None;
        loop {
            let token = match self.tokens.token(&fetch, to.auth, refused_token.as_deref(), left()).await {
                Ok(t) => t,
                Err(e) => return token_failed(e),
            };
            match HeaderValue::from_str(&format!("Bearer {token}")) {
                Ok(mut v) => {
                    v.set_sensitive(true);
                    headers.insert(AUTHORIZATION, v);
                }
                Err(_) => return token_failed((FailureClass::Auth, "the token endpoint's access_token is not a valid header value".into())),
            }
            let mut outcome = self.post_with(&client, to.url, headers.clone(), body.clone(), left()).await;
            let refused = outcome.response().status == Some(401);
            if refused && refused_token.is_none() {
                refused_token = Some(token);
                continue;
            }
            if let (true, DeliveryOutcome::Failed { class, message, .. }) = (refused, &mut outcome) {
                *class = FailureClass::Auth;
                *message = "the endpoint answered 401 to a freshly fetched OAuth2 token".into();
            }
            let (DeliveryOutcome::Delivered(r) | DeliveryOutcome::Failed { response: r, .. }) = &mut outcome;
            r.ms = started.elapsed().as_millis() as u64;
            return outcome;
        }
    }

    async fn post_with(&self, client: &reqwest::Client, url: &str, headers: HeaderMap, body: Vec<u8>, timeout: Duration) -> DeliveryOutcome {
        let started = Instant::now();
        let elapsed = || started.elapsed().as_millis() as u64;
        // IP-literal hosts never reach the resolver, so the URL is vetted again here.
        let url = match ssrf::validate_url(url, self.allow_http, self.allow_private) {
            Ok(parsed) => parsed, // handed on: reqwest does not parse it again
            Err(e) => return DeliveryOutcome::failed(FailureClass::Blocked, e.to_string(), Response::default()),
        };
        let resp = match client.post(url).timeout(timeout.min(self.timeout)).headers(headers).body(body).send().await {
            Ok(r) => r,
            Err(e) => {
                let (class, message) = classify(&e);
                return DeliveryOutcome::failed(class, message, Response { ms: elapsed(), ..Default::default() });
            }
        };
        let status = resp.status();
        let kept = kept_headers(resp.headers());
        let mut response = Response { status: Some(status.as_u16()), headers: kept, body: None, ms: 0 };
        match read_capped(resp).await {
            Ok(b) => response.body = Some(b),
            Err(e) => {
                let (class, message) = classify(&e);
                response.ms = elapsed();
                return DeliveryOutcome::failed(class, message, response);
            }
        }
        response.ms = elapsed();
        if status.is_success() {
            return DeliveryOutcome::Delivered(response);
        }
        let retry_after = response.headers.get("retry-after").and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
        let (class, message) = if status.is_redirection() {
            let location = response.headers.get("location").map(String::as_str).unwrap_or("-");
            (FailureClass::Redirect, format!("redirect not followed (Location: {location})"))
        } else {
            (FailureClass::Http, format!("endpoint answered {status}"))
        };
        DeliveryOutcome::Failed { class, message, response, retry_after }
    }
}

/// Reads at most [`MAX_RESPONSE_BODY`] bytes, then drops the rest of the response.
pub(super) async fn read_capped(mut resp: reqwest::Response) -> Result<String, reqwest::Error> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = MAX_RESPONSE_BODY - buf.len();
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= MAX_RESPONSE_BODY {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

pub(super) fn classify(e: &reqwest::Error) -> (FailureClass, String) {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(b) = s.downcast_ref::<BlockedAddress>() {
            return (FailureClass::Blocked, b.to_string());
        }
        if let Some(d) = s.downcast_ref::<DnsFailure>() {
            return (FailureClass::Dns, d.to_string());
        }
        source = s.source();
    }
    let chain = error_chain(e);
    let class = if e.is_timeout() {
        FailureClass::Timeout
    } else if ["certificate", "tls", "handshake", "fatal alert"].iter().any(|w| chain.to_ascii_lowercase().contains(w)) {
        // rustls says `received fatal alert: CertificateRequired` when the server wants ours.
        FailureClass::Tls
    } else {
        FailureClass::Connect
    };
    (class, chain)
}

fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[tokio::test]
    async fn refused_targets_are_blocked_at_delivery_time_without_a_connection() {
        let sender = HttpSender::new(Duration::from_secs(2), true, false);
        for url in crate::ssrf::REFUSED_TARGETS {
            match sender.post(url, HeaderMap::new(), b"{}".to_vec()).await {
                DeliveryOutcome::Failed { class: FailureClass::Blocked, response, .. } => assert_eq!(response.status, None, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn the_resolver_vets_names_before_connecting() {
        // `localhost` passes no name check here (allow_private on for names only would be wrong),
        // so go through the resolver directly: every resolved address must be public.
        use reqwest::dns::Resolve;
        let r = GuardedResolver { allow_private: false };
        let err = r.resolve("localhost".parse().unwrap()).await.err().expect("refused");
        assert!(err.downcast_ref::<BlockedAddress>().is_some());
    }

    #[test]
    fn response_headers_are_kept_whole_within_bounds_with_credentials_redacted() {
        let mut h = HeaderMap::new();
        h.append("set-cookie", HeaderValue::from_static("sid=abc"));
        h.append("set-cookie", HeaderValue::from_static("b=c"));
        h.insert("x-auth-token", HeaderValue::from_static("t0ken"));
        h.append("vary", HeaderValue::from_static("accept"));
        h.append("vary", HeaderValue::from_static("origin"));
        h.insert("x-big", HeaderValue::from_str(&"a".repeat(MAX_RESPONSE_HEADER_BYTES)).unwrap());
        for i in 0..60 {
            h.insert(reqwest::header::HeaderName::try_from(format!("x-h{i:02}")).unwrap(), HeaderValue::from_static("1"));
        }
        let kept = kept_headers(&h);
        assert_eq!(kept["set-cookie"], "<redacted>");
        assert_eq!(kept["x-auth-token"], "<redacted>");
        assert_eq!(kept["vary"], "accept, origin");
        assert!(!kept.contains_key("x-big"), "a header past the byte bound is left out whole");
        assert_eq!(kept.len(), MAX_RESPONSE_HEADERS);
        assert!(!format!("{kept:?}").contains("abc") && !format!("{kept:?}").contains("t0ken"));
    }

    #[test]
    fn tls_settings_are_checked_when_the_client_is_built() {
        let sender = HttpSender::new(Duration::from_secs(2), true, false);
        let bad = TlsSettings { client_certificate: Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into()), client_key: Some("not a key".into()), ca_certificates: None };
        assert!(sender.tls_client(&bad).is_err());
        let no_ca = TlsSettings { client_certificate: None, client_key: None, ca_certificates: Some("nothing here".into()) };
        assert!(sender.tls_client(&no_ca).is_err());
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
