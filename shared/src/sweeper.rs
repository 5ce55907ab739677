//! The sweeper: a scheduled function (every 5 minutes in the template; the local runner runs it
//! too) that repairs what a crash between a write and a send can leave, and makes dead-lettered
//! work visible:
//!
//! 1. A redelivery the API queued (a `queued` head with a token) whose task no worker claimed
//!    within `SWEEP_QUEUED_AFTER_SECS`: its task is sent again (the token makes a duplicate
//!    harmless). A queued mark that a newer record superseded is cleared.
//! 2. A task in the delivery DLQ (its message used up its receives on infrastructure errors)
//!    whose delivery it still owns, or that has no record yet: a `dead_lettered` record makes it
//!    visible and recoverable through the API; the message stays for `redrive deliveries`.
//!
//! It reports what it did as metrics (`Swept*`) and returns the counts.

use crate::delivery::actions::task_of;
use crate::delivery::append;
use crate::delivery::plan::Next;
use crate::deps::Deps;
use crate::delivery::enqueue::send_all;
use crate::metrics::{self, Metric};
use crate::model::{DeliveryTask, Record, RecordStatus, Trigger};
use crate::ports::{Expect, Mark, PortResult, QueueName, Read};
use std::time::Duration;
use time::OffsetDateTime;

/// A retrying delivery whose next attempt is this overdue has no live owner.
const OVERDUE: time::Duration = time::Duration::minutes(5);
/// At most this many DLQ messages per sweep.
const DLQ_PER_SWEEP: usize = 1_000;

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Swept {
    /// Queued redeliveries whose task was sent again.
    pub resent: usize,
    /// Queued marks cleared because a newer record superseded them.
    pub unqueued: usize,
    /// Deliveries marked dead-lettered (their task is in the delivery DLQ).
    pub dead_lettered: usize,
    /// DLQ messages that are not delivery tasks.
    pub unreadable: usize,
}

pub async fn sweep(deps: &Deps) -> PortResult<Swept> {
    let mut swept = Swept::default();
    let now = OffsetDateTime::now_utc();
    resend_queued(deps, now, &mut swept).await?;
    mark_dead_lettered(deps, now, &mut swept).await?;
    let figures = metrics::Batch::new("sweeper");
    for (name, v) in [("SweptResent", swept.resent), ("SweptUnqueued", swept.unqueued), ("SweptDeadLettered", swept.dead_lettered), ("SweptUnreadable", swept.unreadable)] {
        figures.add(&[Metric { name, value: v as f64, unit: "Count" }]);
    }
    figures.emit();
    tracing::info!(?swept, "sweep done");
    crate::telemetry::flush();
    Ok(swept)
}

async fn resend_queued(deps: &Deps, now: OffsetDateTime, swept: &mut Swept) -> PortResult<()> {
    let stale = deps.ledger.queued_before(now - deps.config.sweep_queued_after, 100).await?;
    let any = Expect { status: vec![RecordStatus::Queued, RecordStatus::Attempting, RecordStatus::Retrying, RecordStatus::Delivered, RecordStatus::Failed, RecordStatus::Cancelled, RecordStatus::DeadLettered], token: None };
    for (id, seq) in stale {
        let Some(d) = deps.ledger.delivery(&id).await? else { continue };
        let head = d.head();
        if head.seq != seq || head.status != RecordStatus::Queued {
            deps.ledger.mark(&id, seq, &any, &Mark::Unqueue).await?;
            swept.unqueued += 1;
            continue;
        }
        let mut task = task_of(&d, Trigger::Redeliver, head.token.clone())?;
        task.set_ordered(crate::delivery::actions::ordered(deps, &d).await?);
        if send_all(deps, std::slice::from_ref(&task)).await.is_empty() {
            let expect = Expect { status: vec![RecordStatus::Queued], token: head.token.clone() };
            // A claim in between is fine: the task just sent will find it claimed and drop.
            let _ = deps.ledger.mark(&id, seq, &expect, &Mark::Resent { at: now }).await;
            tracing::warn!(delivery_id = %id, "sweeper: re-sent a queued redelivery that no worker claimed");
            swept.resent += 1;
        }
    }
    Ok(())
}

/// Whether the DLQ message `message_id` with this task still owns the delivery whose head is
/// `head` (or nobody recorded it yet).
fn still_owned(head: Option<&Record>, task: &DeliveryTask, message_id: &str, now: OffsetDateTime) -> bool {
    let Some(h) = head else { return true };
    match h.status {
        RecordStatus::Retrying | RecordStatus::Attempting => {
            h.owner.as_deref() == Some(message_id) || h.next_attempt_at.is_some_and(|t| t + OVERDUE < now)
        }
        RecordStatus::Queued => task.deliver().token.is_some() && task.deliver().token == h.token,
        _ => false,
    }
}

async fn mark_dead_lettered(deps: &Deps, now: OffsetDateTime, swept: &mut Swept) -> PortResult<()> {
    let peeked = deps.queues.peek_dead_tasks(DLQ_PER_SWEEP, Duration::from_secs(120)).await?;
    let mut release: Vec<(QueueName, (crate::ports::MessageHandle, Duration))> = Vec::with_capacity(peeked.len());
    for m in peeked {
        release.push((m.queue, (m.handle.clone(), Duration::ZERO)));
        let Ok(task) = DeliveryTask::parse(&m.body) else {
            swept.unreadable += 1;
            continue;
        };
        let d = task.deliver();
        let head = deps.ledger.head(&d.delivery_id, Read::Strong).await?;
        if !still_owned(head.as_ref(), &task, &m.message_id, now) {
            continue;
        }
        let next = Next { task: d, prev: head.as_ref(), message_id: &m.message_id, now, expires_at: (now + deps.config.retention).unix_timestamp() };
        let record = next.changed(RecordStatus::DeadLettered, "its queue message reached the delivery DLQ: our infrastructure failed it repeatedly".into());
        append(deps, record, &m.message_id).await?;
        tracing::error!(delivery_id = %d.delivery_id, operational_event = "delivery.dead_lettered", "delivery dead-lettered");
        swept.dead_lettered += 1;
    }
    // Visible again, for `redrive deliveries`.
    for queue in [QueueName::DeliveryDlq, QueueName::OrderedDeliveryDlq] {
        let handles: Vec<_> = release.iter().filter(|(q, _)| *q == queue).map(|(_, h)| h.clone()).collect();
        if !handles.is_empty() {
            deps.queues.set_visibility(queue, &handles).await?;
        }
    }
    Ok(())
}
