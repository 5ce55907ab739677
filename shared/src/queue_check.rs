//! Cold-start checks that the queues fit what the handlers rely on, so that a misconfigured stack
//! refuses to start instead of losing messages.
//!
//! - The delivery queue must fit the retry schedule: SQS must hand a message back exactly
//!   `len(schedule) + 1` times, keep it long enough for the whole schedule, and not redeliver it
//!   while an attempt may still be running.
//! - The events queue must dead-letter an event that keeps failing (infrastructure errors are
//!   batch item failures), and keep it long enough to get there: otherwise SQS drops it silently
//!   when its retention ends.

use crate::config::Config;
use aws_sdk_sqs::types::QueueAttributeName;
use std::time::Duration;

/// The settings of a queue that these checks read.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSettings {
    pub max_receive_count: Option<u32>,
    pub retention: Duration,
    pub visibility_timeout: Duration,
}

/// Every way the delivery queue does not fit `config`; empty when it does.
pub fn delivery_problems(config: &Config, q: &QueueSettings) -> Vec<String> {
    let mut out = Vec::new();
    let attempts = config.retry.max_attempts();
    match q.max_receive_count {
        None => out.push("the delivery queue has no RedrivePolicy (no DLQ)".to_owned()),
        Some(n) if n != attempts => out.push(format!(
            "the delivery queue's maxReceiveCount is {n}, but RETRY_SCHEDULE makes {attempts} attempts: set DeliveryMaxReceiveCount to {attempts}"
        )),
        Some(_) => {}
    }
    let total = config.retry.total_delay();
    if q.retention <= total {
        out.push(format!(
            "the delivery queue keeps messages {}s, less than the retry schedule's {}s",
            q.retention.as_secs(),
            total.as_secs()
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
pub fn events_problems(q: &QueueSettings) -> Vec<String> {
    let Some(receives) = q.max_receive_count else {
        return vec!["the events queue has no RedrivePolicy (no DLQ): an event that keeps failing would be dropped when its retention ends".to_owned()];
    };
    let needed = q.visibility_timeout * receives;
    if q.retention <= needed {
        return vec![format!(
            "the events queue keeps messages {}s, but an event that keeps failing needs {}s ({receives} receives x {}s visibility timeout) to reach the DLQ: raise RetentionSeconds",
            q.retention.as_secs(),
            needed.as_secs(),
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
    verdict(delivery_problems(config, &fetch(sqs, &config.delivery_queue_url, "delivery").await?))
}

/// The fan-out function's check: fetches the events queue's settings.
pub async fn check_events_queue(sqs: &aws_sdk_sqs::Client, config: &Config) -> Result<(), String> {
    verdict(events_problems(&fetch(sqs, &config.events_queue_url, "events").await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::tests::config;

    fn fitting() -> QueueSettings {
        QueueSettings { max_receive_count: Some(3), retention: Duration::from_secs(1_209_600), visibility_timeout: Duration::from_secs(180) }
    }

    #[test]
    fn a_fitting_queue_has_no_problems() {
        let c = config(&[("RETRY_SCHEDULE", "5,300")]);
        assert!(delivery_problems(&c, &fitting()).is_empty());
    }

    #[test]
    fn names_each_mismatch() {
        let c = config(&[("RETRY_SCHEDULE", "5,300")]);
        let wrong_count = QueueSettings { max_receive_count: Some(9), ..fitting() };
        assert!(delivery_problems(&c, &wrong_count)[0].contains("set DeliveryMaxReceiveCount to 3"));
        let no_dlq = QueueSettings { max_receive_count: None, ..fitting() };
        assert!(delivery_problems(&c, &no_dlq)[0].contains("no RedrivePolicy"));
        let short = QueueSettings { retention: Duration::from_secs(60), ..fitting() };
        assert!(delivery_problems(&c, &short)[0].contains("keeps messages 60s"));
        let quick = QueueSettings { visibility_timeout: Duration::from_secs(5), ..fitting() };
        assert!(delivery_problems(&c, &quick)[0].contains("visibility timeout"));
    }

    #[test]
    fn an_events_queue_without_a_dlq_or_that_drops_before_it_is_refused() {
        let template = QueueSettings { max_receive_count: Some(5), retention: Duration::from_secs(1_209_600), visibility_timeout: Duration::from_secs(60) };
        assert!(events_problems(&template).is_empty());
        let no_dlq = QueueSettings { max_receive_count: None, ..template.clone() };
        assert!(events_problems(&no_dlq)[0].contains("no RedrivePolicy"));
        // The template allows RetentionSeconds down to 60: 5 receives x 60 s need 300 s.
        let short = QueueSettings { retention: Duration::from_secs(300), ..template };
        assert!(events_problems(&short)[0].contains("needs 300s (5 receives x 60s visibility timeout)"), "{:?}", events_problems(&short));
    }
}
