//! The HTTP side of a delivery: one POST, classified into an outcome. One client per warm
//! process (connection reuse), no redirects, the SSRF-guarded resolver, bounded response reads.

use crate::model::FailureClass;
use crate::ssrf::{self, BlockedAddress, DnsFailure, GuardedResolver};
use reqwest::header::HeaderMap;
use std::collections::BTreeMap;
use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How much of a response body is kept for the attempt log.
pub const MAX_RESPONSE_BODY: usize = 16 * 1024;

/// Response headers kept in the attempt log (the rest are dropped).
pub const KEPT_RESPONSE_HEADERS: &[&str] =
    &["content-type", "content-length", "date", "location", "retry-after", "server", "x-request-id"];

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

#[derive(Clone)]
pub struct HttpSender {
    client: reqwest::Client,
    allow_http: bool,
    allow_private: bool,
    timeout: Duration,
}

impl HttpSender {
    pub fn new(timeout: Duration, allow_http: bool, allow_private: bool) -> Self {
        let client = Self::builder(timeout, allow_private).no_proxy().build().expect("static reqwest configuration is valid");
        Self { client, allow_http, allow_private, timeout }
    }

    fn builder(timeout: Duration, allow_private: bool) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5).min(timeout))
            .timeout(timeout)
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .user_agent(concat!("webhooks/", env!("CARGO_PKG_VERSION")))
    }

    /// Routes every delivery through `proxy` (testing only; see `Config::delivery_proxy`).
    pub fn with_proxy(mut self, proxy: Option<&str>) -> Self {
        if let Some(url) = proxy {
            let proxy = reqwest::Proxy::all(url).expect("DELIVERY_PROXY is a proxy URL");
            self.client = Self::builder(self.timeout, self.allow_private).proxy(proxy).build().expect("static reqwest configuration is valid");
        }
        self
    }

    pub async fn post(&self, url: &str, headers: HeaderMap, body: Vec<u8>) -> DeliveryOutcome {
        self.post_within(url, headers, body, self.timeout).await
    }

    /// [`HttpSender::post`] with a total time of at most `timeout` (the test route's, shorter than
    /// its function's).
    pub async fn post_within(&self, url: &str, headers: HeaderMap, body: Vec<u8>, timeout: Duration) -> DeliveryOutcome {
        let started = Instant::now();
        let elapsed = || started.elapsed().as_millis() as u64;
        // IP-literal hosts never reach the resolver, so the URL is vetted again here.
        let url = match ssrf::validate_url(url, self.allow_http, self.allow_private) {
            Ok(parsed) => parsed, // handed on: reqwest does not parse it again
            Err(e) => return DeliveryOutcome::failed(FailureClass::Blocked, e.to_string(), Response::default()),
        };
        let resp = match self.client.post(url).timeout(timeout.min(self.timeout)).headers(headers).body(body).send().await {
            Ok(r) => r,
            Err(e) => {
                let (class, message) = classify(&e);
                return DeliveryOutcome::failed(class, message, Response { ms: elapsed(), ..Default::default() });
            }
        };
        let status = resp.status();
        let kept: BTreeMap<String, String> = KEPT_RESPONSE_HEADERS
            .iter()
            .filter_map(|h| Some((h.to_string(), resp.headers().get(*h)?.to_str().ok()?.to_owned())))
            .collect();
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
async fn read_capped(mut resp: reqwest::Response) -> Result<String, reqwest::Error> {
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

fn classify(e: &reqwest::Error) -> (FailureClass, String) {
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
    } else if chain.contains("certificate") || chain.contains("tls") || chain.contains("TLS") {
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
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
