//! The HTTP side of a delivery: one POST, classified into an outcome. One client per warm
//! process (connection reuse), no redirects, the SSRF-guarded resolver, bounded response reads.

use crate::model::FailureClass;
use crate::ssrf::{self, BlockedAddress, DnsFailure, GuardedResolver};
use reqwest::header::HeaderMap;
use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How much of a response body is kept for the attempt log.
pub const MAX_RESPONSE_BODY: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    Delivered { status: u16, ms: u64, body: String },
    Failed { class: FailureClass, status: Option<u16>, message: String, ms: u64, body: Option<String> },
}

impl DeliveryOutcome {
    pub fn ms(&self) -> u64 {
        match self {
            Self::Delivered { ms, .. } | Self::Failed { ms, .. } => *ms,
        }
    }
}

#[derive(Clone)]
pub struct HttpSender {
    client: reqwest::Client,
    allow_http: bool,
    allow_private: bool,
}

impl HttpSender {
    pub fn new(timeout: Duration, allow_http: bool, allow_private: bool) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5).min(timeout))
            .timeout(timeout)
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .user_agent(concat!("webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("static reqwest configuration is valid");
        Self { client, allow_http, allow_private }
    }

    pub async fn post(&self, url: &str, headers: HeaderMap, body: Vec<u8>) -> DeliveryOutcome {
        let started = Instant::now();
        let elapsed = || started.elapsed().as_millis() as u64;
        // IP-literal hosts never reach the resolver, so the URL is vetted again here.
        if let Err(e) = ssrf::validate_url(url, self.allow_http, self.allow_private) {
            return DeliveryOutcome::Failed { class: FailureClass::Blocked, status: None, message: e.to_string(), ms: 0, body: None };
        }
        let resp = match self.client.post(url).headers(headers).body(body).send().await {
            Ok(r) => r,
            Err(e) => {
                let (class, message) = classify(&e);
                return DeliveryOutcome::Failed { class, status: None, message, ms: elapsed(), body: None };
            }
        };
        let status = resp.status();
        let location = resp.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = match read_capped(resp).await {
            Ok(b) => b,
            Err(e) => {
                let (class, message) = classify(&e);
                return DeliveryOutcome::Failed { class, status: Some(status.as_u16()), message, ms: elapsed(), body: None };
            }
        };
        let ms = elapsed();
        if status.is_success() {
            DeliveryOutcome::Delivered { status: status.as_u16(), ms, body }
        } else if status.is_redirection() {
            let message = format!("redirect not followed (Location: {})", location.as_deref().unwrap_or("-"));
            DeliveryOutcome::Failed { class: FailureClass::Redirect, status: Some(status.as_u16()), message, ms, body: Some(body) }
        } else {
            let message = format!("endpoint answered {status}");
            DeliveryOutcome::Failed { class: FailureClass::Http, status: Some(status.as_u16()), message, ms, body: Some(body) }
        }
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
