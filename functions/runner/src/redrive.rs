//! `webhooks-local redrive events|deliveries`: moves every message of a DLQ back to its source
//! queue with SQS's own message-move task (StartMessageMoveTask), and waits until it is done.
//! For the delivery DLQ a sweep runs first, so each delivery is marked `dead_lettered` before
//! its task is handed out again (whatever id SQS gives the moved message, it may then resume it).

use aws_sdk_sqs::types::QueueAttributeName;
use shared::Deps;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dlq {
    Events,
    Deliveries,
}

/// How a redrive went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redriven {
    pub moved: i64,
    pub status: String,
}

pub async fn redrive(sqs: &aws_sdk_sqs::Client, deps: &Deps, which: Dlq) -> Result<Redriven, String> {
    let url = match which {
        Dlq::Events => &deps.config.events_dlq_url,
        Dlq::Deliveries => &deps.config.delivery_dlq_url,
    };
    if which == Dlq::Deliveries {
        let swept = shared::sweeper::sweep(deps).await.map_err(|e| format!("sweep before the redrive: {e}"))?;
        tracing::info!(?swept, "marked before the redrive");
    }
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| format!("cannot read the DLQ's ARN: {}", e.into_service_error()))?;
    let arn = attrs.attributes.and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned()).ok_or("the DLQ has no ARN")?;
    sqs.start_message_move_task().source_arn(&arn).send().await.map_err(|e| format!("cannot start the message move task: {}", e.into_service_error()))?;
    for _ in 0..600 {
        let tasks = sqs.list_message_move_tasks().source_arn(&arn).max_results(1).send().await.map_err(|e| format!("cannot read the move task: {}", e.into_service_error()))?;
        if let Some(t) = tasks.results.unwrap_or_default().into_iter().next() {
            let status = t.status.unwrap_or_default();
            if matches!(status.as_str(), "COMPLETED" | "FAILED" | "CANCELLED") {
                if status != "COMPLETED" {
                    return Err(format!("the move task ended {status}: {}", t.failure_reason.unwrap_or_default()));
                }
                return Ok(Redriven { moved: t.approximate_number_of_messages_moved, status });
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err("the move task did not finish within 5 minutes".into())
}
