//! Cold-start checks that the queues fit what the handlers rely on, so that a misconfigured stack
//! refuses to start instead of losing messages.
//!
//! - The delivery queue must leave receives for our own infrastructure's errors beyond the
//!   attempts the retry schedule makes (`maxReceiveCount` ≥ attempts + [`RECEIVE_HEADROOM`]),
//!   keep a message for the whole schedule plus the longest time infrastructure errors can take
//!   to dead-letter it, and not redeliver it while an attempt may still be running.
//! - The events queue must dead-letter an event that keeps failing, and keep it long enough to
//!   get there: otherwise SQS drops it silently when its retention ends.

use crate::config::Config;
use crate::retry::{worst_time_to_dead_letter, RECEIVE_HEADROOM};
use aws_sdk_sqs::types::QueueAttributeName;
use std::time::Duration;

/// The settings of a queue that these checks read.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSettings {
    pub max_receive_count: Option<u32>,
    pub retention: Duration,
    pub visibility_timeout: Duration,
}

/// The longest an event or task that keeps hitting infrastructure errors stays on `q`.
fn worst_stay(config: &Config, q: &QueueSettings, receives: u32) -> Duration {
    worst_time_to_dead_letter(config.infra_backoff, config.infra_backoff_max, q.visibility_timeout, receives)
}

/// Every way the delivery queue does not fit `config`; empty when it does.
pub fn delivery_problems(config: &Config, q: &QueueSettings) -> Vec<String> {
    let mut out = Vec::new();
    let attempts = config.retry.max_attempts();
    let Some(receives) = q.max_receive_count else {
        return vec!["the delivery queue has no RedrivePolicy (no DLQ)".to_owned()];
    };
    if receives < attempts + RECEIVE_HEADROOM {
        out.push(format!(
            "the delivery queue's maxReceiveCount is {receives}, but RETRY_SCHEDULE makes {attempts} attempts and infrastructure errors need {RECEIVE_HEADROOM} receives beyond them: set DeliveryMaxReceiveCount to at least {}",
            attempts + RECEIVE_HEADROOM
        ));
    }
    let needed = config.retry.total_delay() + worst_stay(config, q, receives);
    if q.retention <= needed {
        out.push(format!(
            "the delivery queue keeps messages {}s, but the retry schedule ({}s) plus {receives} receives of infrastructure backoff can take {}s: raise RetentionSeconds or lower INFRA_BACKOFF_MAX_SECS",
            q.retention.as_secs(),
            config.retry.total_delay().as_secs(),
            needed.as_secs()
        ));
    }
    if q.visibility_timeout < config.delivery_timeout {
        out.push(format!(
            "the delivery queue's visibility timeout ({}s) is shorter than DELIVERY_TIMEOUT_MS ({}ms)",
            q.visibility_timeout.as_secs(),
            config.delivery_timeout.as_millis()
        ));
    }
    out
}

/// Every way the events queue could lose an event that keeps failing; empty when it cannot.
pub fn events_problems(config: &Config, q: &QueueSettings) -> Vec<String> {
    let Some(receives) = q.max_receive_count else {
        return vec!["the events queue has no RedrivePolicy (no DLQ): an event that keeps failing would be dropped when its retention ends".to_owned()];
    };
    let needed = worst_stay(config, q, receives);
    if q.retention <= needed {
        return vec![format!(
            "the events queue keeps messages {}s, but an event that keeps failing can take {}s ({receives} receives, backoff up to {}s, visibility timeout {}s) to reach the DLQ: raise RetentionSeconds",
            q.retention.as_secs(),
            needed.as_secs(),
            config.infra_backoff_max.as_secs(),
            q.visibility_timeout.as_secs()
        )];
    }
    Vec::new()
}

/// Reads a queue's settings; `which` names it in the error.
pub async fn fetch(sqs: &aws_sdk_sqs::Client, queue_url: &str, which: &str) -> Result<QueueSettings, String> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .attribute_names(QueueAttributeName::MessageRetentionPeriod)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .map_err(|e| format!("cannot read the {which} queue's attributes: {}", e.into_service_error()))?;
    let attrs = out.attributes.unwrap_or_default();
    let secs = |name: QueueAttributeName| attrs.get(&name).and_then(|v| v.parse::<u64>().ok()).map(Duration::from_secs).unwrap_or_default();
    let max_receive_count = attrs
        .get(&QueueAttributeName::RedrivePolicy)
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .and_then(|p| match &p["maxReceiveCount"] {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        })
        .map(|n| n as u32);
    Ok(QueueSettings {
        max_receive_count,
        retention: secs(QueueAttributeName::MessageRetentionPeriod),
        visibility_timeout: secs(QueueAttributeName::VisibilityTimeout),
    })
}

fn verdict(found: Vec<String>) -> Result<(), String> {
    if found.is_empty() {
        Ok(())
    } else {
        Err(found.join("; "))
    }
}

/// The delivery function's check: fetches the delivery queue's settings; the error lists every
/// problem.
pub async fn check_delivery_queue(sqs: &aws_sdk_sqs::Client, config: &Config) -> Result<(), String> {
    verdict(delivery_problems(config, &fetch(sqs, &config.delivery_queue_url, "delivery").await?))?;
    verdict(delivery_problems(config, &fetch(sqs, &config.ordered_delivery_queue_url, "ordered delivery").await?))
}

/// The fan-out function's check: fetches the events queue's settings.
pub async fn check_events_queue(sqs: &aws_sdk_sqs::Client, config: &Config) -> Result<(), String> {
    verdict(events_problems(config, &fetch(sqs, &config.events_queue_url, "events").await?))?;
    verdict(events_problems(config, &fetch(sqs, &config.ordered_events_queue_url, "ordered events").await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::config;

    fn fitting() -> QueueSettings {
        QueueSettings { max_receive_count: Some(13), retention: Duration::from_secs(1_209_600), visibility_timeout: Duration::from_secs(180) }
    }

    #[test]
    fn a_fitting_queue_has_no_problems() {
        let c = config(&[("RETRY_SCHEDULE", "5,300")]);
        assert!(delivery_problems(&c, &fitting()).is_empty(), "{:?}", delivery_problems(&c, &fitting()));
    }

    #[test]
    fn names_each_mismatch() {
        let c = config(&[("RETRY_SCHEDULE", "5,300")]);
        let no_headroom = QueueSettings { max_receive_count: Some(3), ..fitting() };
        assert!(delivery_problems(&c, &no_headroom)[0].contains("set DeliveryMaxReceiveCount to at least 13"), "{:?}", delivery_problems(&c, &no_headroom));
        let no_dlq = QueueSettings { max_receive_count: None, ..fitting() };
        assert!(delivery_problems(&c, &no_dlq)[0].contains("no RedrivePolicy"));
        let short = QueueSettings { retention: Duration::from_secs(3600), ..fitting() };
        assert!(delivery_problems(&c, &short)[0].contains("keeps messages 3600s"));
        let quick = QueueSettings { visibility_timeout: Duration::from_secs(5), ..fitting() };
        assert!(delivery_problems(&c, &quick)[0].contains("visibility timeout"));
    }

    #[test]
    fn the_template_defaults_fit_and_a_long_backoff_does_not() {
        // infra/data.yaml: 30 receives, 14 days, 180 s; the default schedule (≈ 46 h) and backoff.
        let c = config(&[]);
        let template = QueueSettings { max_receive_count: Some(30), retention: Duration::from_secs(1_209_600), visibility_timeout: Duration::from_secs(180) };
        assert!(delivery_problems(&c, &template).is_empty(), "{:?}", delivery_problems(&c, &template));
        // 50 receives with up to 12 h each could outlast the 14 days.
        let slow = config(&[("INFRA_BACKOFF_MAX_SECS", "43200")]);
        let many = QueueSettings { max_receive_count: Some(50), ..template };
        assert!(delivery_problems(&slow, &many)[0].contains("lower INFRA_BACKOFF_MAX_SECS"));
    }

    #[test]
    fn the_longest_schedule_the_template_holds_is_nine_days() {
        // The template's queue (30 receives, 14 days, 180 s) and the default backoff: 18 waits of
        // 12 h (9 days, 19 attempts) fit; a 19th does not, so a 14-day horizon (TRST's) cannot
        // leave room for infrastructure retries on a 14-day queue.
        let template = QueueSettings { max_receive_count: Some(30), retention: Duration::from_secs(1_209_600), visibility_timeout: Duration::from_secs(180) };
        let nine = config(&[("RETRY_SCHEDULE", vec!["43200"; 18].join(",").as_str())]);
        assert!(delivery_problems(&nine, &template).is_empty(), "{:?}", delivery_problems(&nine, &template));
        let more = config(&[("RETRY_SCHEDULE", vec!["43200"; 19].join(",").as_str())]);
        assert!(delivery_problems(&more, &template).first().is_some_and(|p| p.contains("keeps messages")), "{:?}", delivery_problems(&more, &template));
    }

    #[test]
    fn an_events_queue_without_a_dlq_or_that_drops_before_it_is_refused() {
        let c = config(&[]);
        let template = QueueSettings { max_receive_count: Some(20), retention: Duration::from_secs(1_209_600), visibility_timeout: Duration::from_secs(60) };
        assert!(events_problems(&c, &template).is_empty());
        let no_dlq = QueueSettings { max_receive_count: None, ..template.clone() };
        assert!(events_problems(&c, &no_dlq)[0].contains("no RedrivePolicy"));
        // The template allows RetentionSeconds down to 60.
        let short = QueueSettings { retention: Duration::from_secs(300), ..template };
        assert!(events_problems(&c, &short)[0].contains("to reach the DLQ"), "{:?}", events_problems(&c, &short));
    }
}
