//! Cold-start check that the delivery queue fits the retry schedule: SQS must hand a message
//! back exactly `len(schedule) + 1` times, keep it long enough for the whole schedule, and not
//! redeliver it while an attempt may still be running.

use crate::config::Config;
use aws_sdk_sqs::types::QueueAttributeName;
use std::time::Duration;

/// The delivery queue's settings that matter to the schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSettings {
    pub max_receive_count: Option<u32>,
    pub retention: Duration,
    pub visibility_timeout: Duration,
}

/// Every way the queue does not fit `config`; empty when it does.
pub fn problems(config: &Config, q: &QueueSettings) -> Vec<String> {
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

/// Reads the delivery queue's settings.
pub async fn fetch(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<QueueSettings, String> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .attribute_names(QueueAttributeName::MessageRetentionPeriod)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .map_err(|e| format!("cannot read the delivery queue's attributes: {}", e.into_service_error()))?;
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

/// Fetches and checks; the error lists every problem.
pub async fn check(sqs: &aws_sdk_sqs::Client, config: &Config) -> Result<(), String> {
    let settings = fetch(sqs, &config.delivery_queue_url).await?;
    let found = problems(config, &settings);
    if found.is_empty() {
        Ok(())
    } else {
        Err(found.join("; "))
    }
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
        assert!(problems(&c, &fitting()).is_empty());
    }

    #[test]
    fn names_each_mismatch() {
        let c = config(&[("RETRY_SCHEDULE", "5,300")]);
        let wrong_count = QueueSettings { max_receive_count: Some(9), ..fitting() };
        assert!(problems(&c, &wrong_count)[0].contains("set DeliveryMaxReceiveCount to 3"));
        let no_dlq = QueueSettings { max_receive_count: None, ..fitting() };
        assert!(problems(&c, &no_dlq)[0].contains("no RedrivePolicy"));
        let short = QueueSettings { retention: Duration::from_secs(60), ..fitting() };
        assert!(problems(&c, &short)[0].contains("keeps messages 60s"));
        let quick = QueueSettings { visibility_timeout: Duration::from_secs(5), ..fitting() };
        assert!(problems(&c, &quick)[0].contains("visibility timeout"));
    }
}
