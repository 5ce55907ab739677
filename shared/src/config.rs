//! Deployment settings, read once from the environment (the SAM template sets them; the local
//! runner passes the values LocalStack provisioning printed).

use crate::retry::RetryPolicy;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    pub events_queue_url: String,
    pub events_dlq_url: String,
    pub delivery_queue_url: String,
    pub delivery_dlq_url: String,
    /// The ordered (FIFO) delivery queue, its DLQ, and the ordered event queue that upstream
    /// services publish events to when their order matters (docs/architecture.md).
    pub ordered_delivery_queue_url: String,
    pub ordered_delivery_dlq_url: String,
    pub ordered_events_queue_url: String,
    pub subscriptions_table: String,
    pub api_keys_table: String,
    pub tenants_table: String,
    /// Events published over HTTP (idempotency and the events view).
    pub events_table: String,
    /// The delivery ledger.
    pub deliveries_table: String,
    pub retry: RetryPolicy,
    /// Total time allowed for one delivery POST (connect timeout is 5 s within it).
    pub delivery_timeout: Duration,
    /// Accept `http://` subscription URLs. Local testing only; off in the SAM template.
    pub allow_http: bool,
    /// Deliver to loopback/private addresses. Local testing only; off in the SAM template.
    pub allow_private_targets: bool,
    /// How long deliveries, attempts and stored events are kept (DynamoDB TTL).
    pub retention: Duration,
    /// Active subscriptions a tenant may have.
    pub max_subscriptions: usize,
    /// How long a warm fan-out function reuses a tenant's subscription list.
    pub subscription_cache_ttl: Duration,
    /// How often a worker writes a subscription's health at most (see `delivery::health`).
    pub health_flush: Duration,
    /// The least wait after a 429 or a timeout (Svix waits at least a minute).
    pub min_throttle_delay: Duration,
    /// A run of failures spanning this long disables the subscription (default 5 days).
    pub disable_after: Duration,
    /// How long the previous secret keeps signing after a rotation.
    pub secret_overlap: Duration,
    /// The first wait after an infrastructure error (DynamoDB or SQS failing); it doubles with
    /// each receive of the message, up to SQS's 12 h, so a long outage costs few receives.
    pub infra_backoff: Duration,
    /// The longest such wait (bounded so that a message still reaches its DLQ within the queue's
    /// retention, which the cold-start check verifies).
    pub infra_backoff_max: Duration,
    /// A retrying delivery whose next attempt is this overdue may be taken over by another task
    /// (its owner's message is gone, e.g. purged).
    pub takeover_after: Duration,
    /// The test route's POST timeout: below the API function's own (10 s in the template).
    pub test_timeout: Duration,
    /// The sweeper re-sends a queued redelivery that no worker claimed for this long.
    pub sweep_queued_after: Duration,
    /// Deliveries one recover request reopens at most (it answers with a cursor to go on).
    pub recover_limit: usize,
    /// Send every delivery through this HTTP proxy (testing only: the API fuzzer's local sink).
    /// Unset, deliveries ignore the ambient proxy variables, which would bypass the SSRF resolver.
    pub delivery_proxy: Option<String>,
    /// Consecutive failed attempts that open an endpoint's circuit breaker (0: no breaker).
    pub circuit_failures: u32,
    /// The wait before the first probe of an open circuit; it doubles with each failed probe…
    pub circuit_probe: Duration,
    /// …up to this.
    pub circuit_probe_max: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let req = |name: &'static str| get(name).filter(|v| !v.is_empty()).ok_or(ConfigError::Missing(name));
        let flag = |name: &'static str| match get(name).as_deref() {
            None | Some("") | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(other) => Err(ConfigError::Invalid { name, reason: format!("`{other}` is not true/false") }),
        };
        let number = |name: &'static str, default: u64| match get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| ConfigError::Invalid { name, reason: format!("`{v}` is not a number") }),
        };
        let retry = match get("RETRY_SCHEDULE") {
            None => RetryPolicy::default(),
            Some(v) => RetryPolicy::parse(&v).map_err(|reason| ConfigError::Invalid { name: "RETRY_SCHEDULE", reason })?,
        };
        Ok(Self {
            events_queue_url: req("EVENTS_QUEUE_URL")?,
            events_dlq_url: req("EVENTS_DLQ_URL")?,
            delivery_queue_url: req("DELIVERY_QUEUE_URL")?,
            delivery_dlq_url: req("DELIVERY_DLQ_URL")?,
            ordered_delivery_queue_url: req("ORDERED_DELIVERY_QUEUE_URL")?,
            ordered_delivery_dlq_url: req("ORDERED_DELIVERY_DLQ_URL")?,
            ordered_events_queue_url: req("ORDERED_EVENTS_QUEUE_URL")?,
            subscriptions_table: req("SUBSCRIPTIONS_TABLE")?,
            api_keys_table: req("API_KEYS_TABLE")?,
            tenants_table: req("TENANTS_TABLE")?,
            events_table: req("EVENTS_TABLE")?,
            deliveries_table: req("DELIVERIES_TABLE")?,
            retry,
            delivery_timeout: Duration::from_millis(number("DELIVERY_TIMEOUT_MS", 15_000)?),
            allow_http: flag("ALLOW_HTTP")?,
            allow_private_targets: flag("ALLOW_PRIVATE_TARGETS")?,
            retention: Duration::from_secs(86_400 * number("RETENTION_DAYS", 30)?),
            max_subscriptions: number("MAX_SUBSCRIPTIONS_PER_TENANT", 25)? as usize,
            subscription_cache_ttl: Duration::from_millis(number("SUBSCRIPTION_CACHE_TTL_MS", 10_000)?),
            health_flush: Duration::from_secs(number("HEALTH_FLUSH_SECS", 60)?),
            min_throttle_delay: Duration::from_secs(number("MIN_THROTTLE_DELAY_SECS", 60)?),
            disable_after: Duration::from_secs(number("DISABLE_AFTER_SECS", 5 * 86_400)?),
            secret_overlap: Duration::from_secs(number("SECRET_OVERLAP_SECS", 86_400)?),
            infra_backoff: Duration::from_millis(number("INFRA_BACKOFF_MS", 5_000)?),
            infra_backoff_max: Duration::from_secs(number("INFRA_BACKOFF_MAX_SECS", 6 * 3_600)?),
            takeover_after: Duration::from_secs(number("TAKEOVER_AFTER_SECS", 3_600)?),
            test_timeout: Duration::from_millis(number("TEST_TIMEOUT_MS", 5_000)?),
            sweep_queued_after: Duration::from_secs(number("SWEEP_QUEUED_AFTER_SECS", 300)?),
            recover_limit: number("RECOVER_LIMIT", 1_000)? as usize,
            delivery_proxy: get("DELIVERY_PROXY").filter(|v| !v.is_empty()),
            circuit_failures: number("CIRCUIT_FAILURES", 10)? as u32,
            circuit_probe: Duration::from_secs(number("CIRCUIT_PROBE_SECS", 30)?),
            circuit_probe_max: Duration::from_secs(number("CIRCUIT_PROBE_MAX_SECS", 900)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, String> {
        [
            "EVENTS_QUEUE_URL",
            "EVENTS_DLQ_URL",
            "DELIVERY_QUEUE_URL",
            "DELIVERY_DLQ_URL",
            "ORDERED_DELIVERY_QUEUE_URL",
            "ORDERED_DELIVERY_DLQ_URL",
            "ORDERED_EVENTS_QUEUE_URL",
            "SUBSCRIPTIONS_TABLE",
            "API_KEYS_TABLE",
            "TENANTS_TABLE",
            "EVENTS_TABLE",
            "DELIVERIES_TABLE",
        ]
        .into_iter()
        .map(|k| (k, format!("v-{k}")))
        .collect()
    }

    #[test]
    fn names_the_missing_variable() {
        let mut env = base();
        env.remove("DELIVERIES_TABLE");
        let err = Config::from_lookup(|k| env.get(k).cloned()).unwrap_err();
        assert_eq!(err, ConfigError::Missing("DELIVERIES_TABLE"));
        assert!(err.to_string().contains("DELIVERIES_TABLE"));
    }

    #[test]
    fn defaults_are_production_safe() {
        let env = base();
        let c = Config::from_lookup(|k| env.get(k).cloned()).unwrap();
        assert!(!c.allow_http && !c.allow_private_targets);
        assert_eq!(c.delivery_timeout, Duration::from_secs(15));
        assert_eq!(c.retry.max_attempts(), 9);
    }

    #[test]
    fn rejects_bad_flags_and_schedules() {
        let mut env = base();
        env.insert("ALLOW_HTTP", "yes".into());
        assert!(matches!(Config::from_lookup(|k| env.get(k).cloned()), Err(ConfigError::Invalid { name: "ALLOW_HTTP", .. })));
        env.insert("ALLOW_HTTP", "true".into());
        env.insert("RETRY_SCHEDULE", "1,a".into());
        assert!(matches!(Config::from_lookup(|k| env.get(k).cloned()), Err(ConfigError::Invalid { name: "RETRY_SCHEDULE", .. })));
    }
}
