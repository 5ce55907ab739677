//! What people do to deliveries, outside the worker: redeliver one, recover a subscription's
//! failures since a time, send a test event now. Each writes the ledger before it sends (so a
//! repeated call sees its own work) and tolerates being killed between the two: the queued mark
//! carries a token that only the task sent for it can claim, a repeated recover re-sends the
//! tasks of its own marks, and the sweeper re-sends any mark left without a task.

use super::plan::{Next, Verdict};
use crate::deps::Deps;
use crate::envelope::EventIn;
use crate::delivery::enqueue::send_all;
use crate::ids::{DeliveryId, EventId, EventSource, SubscriptionId};
use crate::model::{Deliver, DeliveryStatus, DeliveryTask, Record, RecordStatus, Subscription, Trigger};
use crate::ports::{Delivery, DeliveryFilter, Expect, Mark, PortError, PortResult};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The statuses redeliver and recover reopen.
pub const REOPENABLE: [RecordStatus; 3] = [RecordStatus::Failed, RecordStatus::Cancelled, RecordStatus::DeadLettered];

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("only failed, cancelled or dead-lettered deliveries can be redelivered; this one is {0}")]
    NotReopenable(&'static str),
    #[error(transparent)]
    Port(#[from] PortError),
}

fn status_name(s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Queued => "queued",
        DeliveryStatus::Retrying => "retrying",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::Cancelled => "cancelled",
        DeliveryStatus::DeadLettered => "dead_lettered",
    }
}

/// The task that (re)delivers `d`, from its first record's event.
pub fn task_of(d: &Delivery, trigger: Trigger, token: Option<String>) -> PortResult<DeliveryTask> {
    let event = d.event().ok_or_else(|| PortError::Corrupt(format!("delivery {} has no first record", d.id())))?;
    let head = d.head();
    let body = serde_json::value::RawValue::from_string(event.body.clone()).map_err(|e| PortError::Corrupt(format!("recorded body: {e}")))?;
    Ok(DeliveryTask::new(Deliver {
        delivery_id: head.delivery_id.clone(),
        tenant_id: event.tenant_id.clone(),
        event_id: head.event_id.clone(),
        event_type: head.event_type.clone(),
        trigger,
        check: true,
        token,
        subscription_version: 0,
        body,
        ordered: false,
    }))
}

/// Whether the delivery's subscription is ordered (its task goes to the FIFO queue).
pub async fn ordered(deps: &Deps, d: &crate::ports::Delivery) -> PortResult<bool> {
    let Some(event) = d.event() else { return Ok(false) };
    let sub = deps.subscriptions.get(&event.tenant_id, &d.id().subscription()).await?;
    Ok(sub.is_some_and(|s| s.ordering == crate::model::Ordering::Fifo))
}

fn random_token() -> String {
    let mut raw = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
    hex::encode(raw)
}

/// Marks `d`'s head queued with `token` (if it is still reopenable).
async fn mark_queued(deps: &Deps, d: &Delivery, token: &str, now: OffsetDateTime) -> PortResult<bool> {
    let expect = Expect { status: REOPENABLE.to_vec(), token: None };
    match deps.ledger.mark(d.id(), d.head().seq, &expect, &Mark::Queue { token: token.to_owned(), at: now }).await {
        Ok(()) => Ok(true),
        Err(PortError::Conflict) => Ok(false), // changed meanwhile
        Err(e) => Err(e),
    }
}

/// Reopens one delivery and sends its task: same payload and `webhook-id`, a fresh signature,
/// the whole retry schedule again. Returns the delivery as it is now (queued).
pub async fn redeliver(deps: &Deps, mut d: Delivery) -> Result<Delivery, ActionError> {
    let id = &d.id().clone();
    if !d.status().is_recoverable() {
        return Err(ActionError::NotReopenable(status_name(d.status())));
    }
    let token = random_token();
    let now = OffsetDateTime::now_utc();
    if !mark_queued(deps, &d, &token, now).await? {
        let now_status = deps.ledger.head(id, crate::ports::Read::Strong).await?.map(|h| h.status.public()).unwrap_or(DeliveryStatus::Queued);
        return Err(ActionError::NotReopenable(status_name(now_status)));
    }
    deps.faults.point("redeliver.after_mark").await;
    let mut task = task_of(&d, Trigger::Redeliver, Some(token.clone()))?;
    task.set_ordered(ordered(deps, &d).await?);
    if !send_all(deps, std::slice::from_ref(&task)).await.is_empty() {
        // Queued all the same: the sweeper sends it within SWEEP_QUEUED_AFTER_SECS.
        tracing::error!(delivery_id = %id, "redelivery task not sent; the sweeper will send it");
    }
    let head = d.records.last_mut().expect("a delivery has records");
    head.status = RecordStatus::Queued;
    head.token = Some(token);
    head.queued_at = Some(now);
    Ok(d)
}

/// A recover's token for one delivery: the same for every repetition of the call, so a repeated
/// call recognises (and re-sends) what a killed one marked.
fn recover_token(sub: &SubscriptionId, since: OffsetDateTime, id: &DeliveryId) -> String {
    let mut h = Sha256::new();
    h.update(sub.as_str());
    h.update(since.unix_timestamp_nanos().to_be_bytes());
    h.update(id.as_str());
    format!("rc{}", hex::encode(&h.finalize()[..10]))
}

/// What one recover call did.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovered {
    /// Deliveries reopened (or re-sent after an earlier, interrupted call).
    pub reopened: usize,
    /// Call again with this to go on; `None` when every delivery since `since` was seen.
    pub next_cursor: Option<String>,
}

/// Redelivers the reopenable deliveries of `sub` whose events occurred since `since`, page by
/// page (each page's tasks are sent before the next page is read), at most `RECOVER_LIMIT` per
/// call.
pub async fn recover(deps: &Deps, sub: &SubscriptionId, since: OffsetDateTime, cursor: Option<String>) -> PortResult<Recovered> {
    let mut statuses: Vec<DeliveryStatus> = REOPENABLE.iter().map(|s| s.public()).collect();
    statuses.push(DeliveryStatus::Queued); // its own marks, from an interrupted call
    let filter = DeliveryFilter { status: statuses, since: Some(since), ..Default::default() };
    let now = OffsetDateTime::now_utc();
    let mut reopened = 0;
    let mut cursor = cursor;
    let mut ordered_sub = None;
    loop {
        let page = deps.ledger.list(sub, &filter, cursor.as_deref(), 100).await?;
        // An ordered subscription's page goes to its FIFO queue oldest event first.
        let ordered_page = match (&ordered_sub, page.items.first()) {
            (Some(o), _) => *o,
            (None, Some(d)) => *ordered_sub.insert(ordered(deps, d).await?),
            (None, None) => false,
        };
        let mut tasks = Vec::new();
        for d in &page.items {
            let token = recover_token(sub, since, d.id());
            let head = d.head();
            let ours = matches!(head.status, RecordStatus::Queued) && head.token.as_deref() == Some(&token);
            if ours || (REOPENABLE.contains(&head.status) && mark_queued(deps, d, &token, now).await?) {
                tasks.push(task_of(d, Trigger::Redeliver, Some(token))?);
            }
        }
        if ordered_page {
            tasks.reverse();
            tasks.iter_mut().for_each(|t| t.set_ordered(true));
        }
        deps.faults.point("recover.after_mark").await;
        let unsent = send_all(deps, &tasks).await;
        if !unsent.is_empty() {
            tracing::error!(unsent = unsent.len(), "recover: tasks not sent; the sweeper will send them");
        }
        deps.faults.point("recover.after_send").await;
        reopened += tasks.len();
        cursor = page.next;
        if cursor.is_none() || reopened >= deps.config.recover_limit {
            return Ok(Recovered { reopened, next_cursor: cursor });
        }
    }
}

/// Sends a `webhook.test` event to `sub` now (no retries, a timeout below the API function's)
/// and records it in the ledger as a delivery of its own.
pub async fn send_test(deps: &Deps, sub: &Subscription) -> PortResult<(Record, super::http::DeliveryOutcome)> {
    let now = OffsetDateTime::now_utc();
    let event = EventIn {
        event_id: EventId::generate().to_string(),
        event_type: "webhook.test".into(),
        tenant_id: sub.tenant_id.clone(),
        occurred_at: now,
        data: serde_json::json!({"subscription_id": sub.subscription_id, "message": "This is a test event."}),
    };
    let id = DeliveryId::derive(EventSource::Test, &sub.tenant_id, &event.event_id, now, &sub.subscription_id);
    let body = serde_json::value::RawValue::from_string(event.body()).map_err(|e| PortError::Corrupt(e.to_string()))?;
    let task = Deliver::of_event(&event, id, Trigger::Test, false, sub.version, body);
    let (attempt, outcome) = super::post(deps, sub, &task, Trigger::Test, deps.config.test_timeout).await;
    let next = Next { task: &task, prev: None, message_id: "test", now, expires_at: (now + deps.config.retention).unix_timestamp() };
    let verdict = match outcome {
        super::http::DeliveryOutcome::Delivered(_) => Verdict::Delivered,
        super::http::DeliveryOutcome::Failed { .. } => Verdict::Exhausted,
    };
    let mut record = next.attempted(attempt, verdict, 1);
    if verdict == Verdict::Exhausted {
        record.reason = Some("a test delivery is not retried".into());
    }
    deps.ledger.append(&record).await?;
    Ok((record, outcome))
}
