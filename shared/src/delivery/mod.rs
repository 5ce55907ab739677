//! The delivery worker: one SQS message = one delivery task, which carries its event. A
//! message owns its delivery until it is deleted: each attempt appends a record to the ledger
//! (conditionally: a lost race is rebased, never an overwrite); a failure hides the message for
//! the retry wait (one batched visibility change per batch) and leaves it on the queue. The
//! attempt number comes from the ledger; SQS's receive count only says whether to read it.

pub mod actions;
pub mod circuit;
pub mod enqueue;
pub mod health;
pub mod http;
pub mod limit;
pub mod oauth;
pub mod plan;
pub mod request;

use crate::deps::Deps;
use crate::ledger::MAX_SEQ;
use crate::metrics::{self, Metric};
use crate::operational::{self, Occurrence};
use crate::model::{Attempt, Deliver, DeliveryTask, FailureClass, Record, RecordStatus, Subscription, Trigger};
use crate::ports::{CircuitChange, Expect, HealthAfter, HealthChange, Mark, PortError, PortResult, QueueName, Read};
use circuit::{Breaker, Gate};
use crate::retry::infra_backoff;
use crate::sqs_batch::{self, Ack, Received};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use http::DeliveryOutcome;
use plan::{Next, Plan, Verdict};
use std::sync::Arc;
use time::OffsetDateTime;
use tracing::Instrument;

/// Handles one batch from the delivery queue; messages are processed concurrently.
pub async fn handle_batch(event: SqsEvent, deps: &Deps) -> SqsBatchResponse {
    let figures = metrics::Batch::new("delivery");
    // The ordered queue's batches go one message at a time per message group (subscription).
    let (acks, queue) = match sqs_batch::is_fifo(&event) {
        true => (sqs_batch::run_ordered(event, |msg, r| handle_message(msg, r, deps, &figures)).await, QueueName::OrderedDeliveries),
        false => (sqs_batch::run(event, |msg, r| handle_message(msg, r, deps, &figures)).await, QueueName::Deliveries),
    };
    let response = sqs_batch::finish(deps, queue, acks).await;
    deps.faults.point("delivery.after_visibility").await;
    figures.emit();
    crate::telemetry::flush();
    response
}

fn count(name: &'static str) -> Metric<'static> {
    Metric { name, value: 1.0, unit: "Count" }
}

async fn handle_message(msg: SqsMessage, r: Received, deps: &Deps, figures: &metrics::Batch) -> Ack {
    let backoff = || Ack::Keep(Some(infra_backoff(deps.config.infra_backoff, deps.config.infra_backoff_max, r.receive)));
    let task = match msg.body.as_deref().map(DeliveryTask::parse) {
        Some(Ok(t)) => t,
        _ => {
            // Our own bug: no receive can fix it, so it goes to the DLQ for an operator.
            tracing::error!(receive = r.receive, "unreadable delivery task; leaving it to the DLQ");
            figures.add(&[count("InfraErrors")]);
            return backoff();
        }
    };
    let span = tracing::info_span!("deliver", delivery_id = %task.delivery_id(), receive = r.receive);
    match deliver(task.deliver(), &r, deps, figures).instrument(span.clone()).await {
        Ok(ack) => ack,
        Err(e) => {
            span.in_scope(|| tracing::error!(error = %e, "delivery infrastructure error; the message will be retried"));
            figures.add(&[count("InfraErrors")]);
            backoff()
        }
    }
}

/// The subscription, from the per-process cache unless the task names a newer version.
async fn subscription(deps: &Deps, d: &Deliver) -> PortResult<Option<Arc<Subscription>>> {
    let key = (d.tenant_id.clone(), d.delivery_id.subscription());
    let want = d.subscription_version;
    deps.subscription_cache
        .get(&key, |v| v.as_ref().is_some_and(|s| s.version >= want), |_| true, || async {
            Ok(deps.subscriptions.get(&key.0, &key.1).await?.map(Arc::new))
        })
        .await
}

async fn deliver(d: &Deliver, r: &Received, deps: &Deps, figures: &metrics::Batch) -> PortResult<Ack> {
    let read = r.receive > 1 || d.check || d.token.is_some();
    let head = match read {
        true => deps.ledger.head(&d.delivery_id, if d.token.is_some() { Read::Strong } else { Read::Eventual }).await?,
        false => None,
    };
    let now = OffsetDateTime::now_utc();
    let prev = match plan::plan(d, &r.message_id, head, now, deps.config.takeover_after) {
        Plan::Drop(why) => {
            tracing::info!(why, "nothing to do for this task; deleting it");
            figures.add(&[count("Dropped")]);
            return Ok(Ack::Delete);
        }
        Plan::Wait(wait) => return Ok(Ack::Keep(Some(wait))),
        Plan::Claim { mut head } => {
            let expect = Expect { status: vec![RecordStatus::Queued], token: d.token.clone() };
            match deps.ledger.mark(&d.delivery_id, head.seq, &expect, &Mark::Claim { owner: r.message_id.clone() }).await {
                Ok(()) => {}
                Err(PortError::Conflict) => return Ok(Ack::Delete), // another copy of the task claimed it
                Err(e) => return Err(e),
            }
            head.status = RecordStatus::Attempting;
            head.owner = Some(r.message_id.clone());
            Some(head)
        }
        Plan::Attempt { prev } => prev,
    };
    let next = Next { task: d, prev: prev.as_ref(), message_id: &r.message_id, now, expires_at: (now + deps.config.retention).unix_timestamp() };

    let sub = match subscription(deps, d).await? {
        Some(s) if s.enabled && s.active => s,
        _ => {
            tracing::warn!("subscription deleted or disabled; delivery cancelled without an attempt");
            append(deps, next.changed(RecordStatus::Cancelled, "the subscription was deleted or disabled".into()), &r.message_id).await?;
            figures.add(&[count("Cancelled")]);
            return Ok(Ack::Delete);
        }
    };

    let timeout = sub.delivery_timeout(deps.config.delivery_timeout);
    let breaker = breaker(&deps.config);
    let gate = breaker.gate(&sub, now, r.receive, rand::random::<f64>());
    if let Gate::Defer(wait) = gate {
        tracing::info!(circuit = sub.circuit_state.as_str(), wait_s = wait.as_secs(), "the endpoint's circuit is open; deferred without an attempt");
        figures.add(&[count("Deferred")]);
        return Ok(Ack::Keep(Some(wait)));
    }
    if let Some(limit) = sub.rate_limit_per_second {
        if let Some(wait) = admit(deps, &sub, limit).await? {
            figures.add(&[count("Throttled")]);
            return Ok(Ack::Keep(Some(wait)));
        }
    }
    let probing = gate == Gate::Probe;
    if probing {
        let lease_until = now + timeout + std::time::Duration::from_secs(5);
        if !move_circuit(deps, &sub, CircuitChange::Probe { at: now, lease_until }).await? {
            figures.add(&[count("Deferred")]);
            return Ok(Ack::Keep(Some(breaker.probe))); // another worker probes
        }
        tracing::info!("probing the endpoint (circuit half-open)");
    }

    let (attempt, outcome) = post(deps, &sub, d, d.trigger, timeout).await;
    deps.faults.point("delivery.after_post").await;
    let failure = match &outcome {
        DeliveryOutcome::Delivered(_) => None,
        DeliveryOutcome::Failed { class, retry_after, response, .. } => Some((*class, response.status, *retry_after)),
    };
    let policy = sub.retry_policy(&deps.config.retry);
    let verdict = plan::verdict(&policy, deps.config.min_throttle_delay, next.run(), failure);
    let (written, owner) = append(deps, next.attempted(attempt, verdict, policy.max_attempts()), &r.message_id).await?;
    deps.faults.point("delivery.after_append").await;
    // Not for the delivery of an operational event: two failing subscribers of each other's
    // reports would otherwise send exhaustions back and forth for ever.
    if verdict == Verdict::Exhausted && written.status == RecordStatus::Failed && !operational::is_operational(&d.event_type) {
        let what = Occurrence::Exhausted { delivery: &d.delivery_id, event_id: &d.event_id, event_type: &d.event_type, attempts: written.attempts, status_code: written.attempt.as_ref().and_then(|a| a.status_code) };
        operational::publish(deps, &d.tenant_id, &sub.subscription_id, what, now).await;
    }
    // While the breaker can open, every failure is written (its count opens it).
    let eager = breaker.on() && sub.circuit_state == crate::model::CircuitState::Closed;
    let health = update_health(deps, &sub, &outcome, verdict, now, eager).await;
    if breaker.on() {
        if let Err(e) = update_circuit(deps, &sub, &breaker, &outcome, probing, health, now).await {
            tracing::warn!(error = %e, "cannot move the endpoint's circuit breaker");
        }
    }
    report(&written, verdict, &outcome, figures);
    Ok(match (written.status, verdict) {
        (RecordStatus::Retrying, Verdict::Retry(wait)) if owner => Ack::Keep(Some(wait)),
        _ => Ack::Delete,
    })
}

/// Appends `record`; when another writer got there first, rebases it onto the newer head (see
/// [`plan::rebase`]). Returns what was written and whether this message owns the delivery.
pub async fn append(deps: &Deps, mut record: Record, message_id: &str) -> PortResult<(Record, bool)> {
    let mut owner = record.status == RecordStatus::Retrying;
    loop {
        match deps.ledger.append(&record).await {
            Ok(()) => return Ok((record, owner)),
            Err(PortError::Conflict) if record.seq < MAX_SEQ => {
                let head = deps.ledger.head(&record.delivery_id, Read::Strong).await?.ok_or_else(|| PortError::Missing(format!("records of {}", record.delivery_id)))?;
                tracing::info!(seq = record.seq, head = head.seq, "another writer appended first; rebasing this record");
                (record, owner) = plan::rebase(record, &head, message_id);
            }
            Err(e) => return Err(e),
        }
    }
}

/// One POST of the task's event to `sub`, and its attempt record (numbered by the ledger when
/// appended).
pub async fn post(deps: &Deps, sub: &Subscription, d: &Deliver, trigger: Trigger, timeout: std::time::Duration) -> (Attempt, DeliveryOutcome) {
    let started_at = OffsetDateTime::now_utc();
    let body = request::payload(sub, &d.delivery_id, d.body.get()).into_owned().into_bytes();
    let headers = request::signed_headers(&d.delivery_id, sub, &d.event_type, &body, started_at);
    let to = http::Endpoint { url: &sub.url, auth: &sub.auth, tls: sub.tls.as_ref() };
    let outcome = deps.sender.deliver(to, headers, body, timeout).await;
    let response = outcome.response().clone();
    let (error_class, error_message) = match &outcome {
        DeliveryOutcome::Delivered(_) => (None, None),
        DeliveryOutcome::Failed { class, message, .. } => (Some(*class), Some(message.clone())),
    };
    let attempt = Attempt {
        attempt: 0,
        url: sub.url.clone(),
        started_at,
        duration_ms: response.ms,
        status_code: response.status,
        error_class,
        error_message,
        response_headers: response.headers,
        response_body: response.body,
        trigger,
    };
    (attempt, outcome)
}

/// Health: a success ends a run of failures; failures count towards auto-disable after a run
/// spanning `DISABLE_AFTER_SECS`; 410 disables at once. A failed health write is logged, not
/// retried: the delivery itself is recorded.
async fn update_health(deps: &Deps, sub: &Subscription, outcome: &DeliveryOutcome, verdict: Verdict, at: OffsetDateTime, eager: bool) -> Option<HealthAfter> {
    let (tenant, id) = (&sub.tenant_id, &sub.subscription_id);
    let every = deps.config.health_flush;
    let change = match (outcome, verdict) {
        (_, Verdict::Gone) => Some(HealthChange::Disable { reason: "endpoint answered 410 Gone".into(), at }),
        (DeliveryOutcome::Delivered(_), _) => deps.health.delivered(sub, at, every),
        (DeliveryOutcome::Failed { .. }, _) => deps.health.failed(sub, at, if eager { std::time::Duration::ZERO } else { every }),
    };
    let change = change?;
    let status_code = outcome.response().status;
    let updated = match deps.subscriptions.record_health(tenant, id, change.clone()).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "cannot write the subscription's health; counted again next time");
            deps.health.unwritten(id, &change);
            return None;
        }
    };
    if let HealthChange::Disable { reason, .. } = &change {
        tracing::error!(operational_event = "subscription.disabled", %reason, "subscription disabled");
        if updated.is_some() {
            operational::publish(deps, tenant, id, Occurrence::Disabled { reason }, at).await;
        }
        return None;
    }
    let disable_after = time::Duration::try_from(deps.config.disable_after).unwrap_or(time::Duration::MAX);
    let updated = updated?;
    // The first failure after a success (the count went from zero to this change's), and the
    // first success after failures: each seen by exactly one writer, the counter being atomic.
    match &change {
        HealthChange::Failed { count, .. } if updated.failure_count == *count => {
            operational::publish(deps, tenant, id, Occurrence::Failing { failure_count: updated.failure_count, status_code }, at).await;
        }
        HealthChange::Delivered { .. } if updated.ended_run => operational::publish(deps, tenant, id, Occurrence::Recovered, at).await,
        _ => {}
    }
    if let (true, Some(since)) = (sub.enabled, updated.first_failure_at.filter(|t| at - *t >= disable_after)) {
        let reason = format!("every delivery failed since {since} ({} consecutive failures)", updated.failure_count);
        match deps.subscriptions.record_health(tenant, id, HealthChange::Disable { reason: reason.clone(), at }).await {
            Ok(_) => {
                tracing::error!(operational_event = "subscription.disabled", %reason, "subscription disabled");
                operational::publish(deps, tenant, id, Occurrence::Disabled { reason: &reason }, at).await;
            }
            Err(e) => tracing::warn!(error = %e, "cannot disable the subscription"),
        }
    }
    Some(updated)
}

/// Takes a rate-limit ticket and waits for its slot (`None`: POST now), or says how long the
/// message waits on the queue. A ticket whose second ended while it was taken (a slow write) is
/// taken again in the new second, so a second never admits more than the limit.
async fn admit(deps: &Deps, sub: &Subscription, limit: u32) -> PortResult<Option<std::time::Duration>> {
    for _ in 0..3 {
        let second = OffsetDateTime::now_utc().unix_timestamp();
        let ticket = deps.ledger.ticket(&sub.subscription_id, second).await?;
        let now = OffsetDateTime::now_utc();
        if now.unix_timestamp() != second {
            continue;
        }
        match limit::admit(limit, second, ticket, now) {
            limit::Admit::Go(pause) => {
                tokio::time::sleep(pause).await;
                return Ok(None);
            }
            limit::Admit::Wait(wait) => {
                tracing::info!(limit, ticket, wait_s = wait.as_secs(), "over the subscription's rate limit; waiting without an attempt");
                return Ok(Some(wait));
            }
        }
    }
    Ok(Some(std::time::Duration::from_secs(1)))
}

fn breaker(config: &crate::config::Config) -> Breaker {
    Breaker { failures: config.circuit_failures, probe: config.circuit_probe, probe_max: config.circuit_probe_max }
}

/// Makes a move of `sub`'s circuit and keeps this worker's cached copy in step: `false` if the
/// circuit was not in the state the move starts from (another worker moved it; the cache is
/// reloaded).
async fn move_circuit(deps: &Deps, sub: &Subscription, change: CircuitChange) -> PortResult<bool> {
    let key = (sub.tenant_id.clone(), sub.subscription_id.clone());
    match deps.subscriptions.move_circuit(&key.0, &key.1, &change).await {
        Ok(()) => {
            let mut now = sub.clone();
            if !change.apply(&mut now) {
                // Our copy was stale in a way the move did not care about: read it.
                let fresh = deps.subscriptions.get(&key.0, &key.1).await?;
                deps.subscription_cache.put(&key, fresh.map(Arc::new));
                return Ok(true);
            }
            deps.subscription_cache.put(&key, Some(Arc::new(now)));
            Ok(true)
        }
        Err(PortError::Conflict) => {
            let fresh = deps.subscriptions.get(&key.0, &key.1).await?;
            deps.subscription_cache.put(&key, fresh.map(Arc::new));
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// The circuit after an attempt: a success closes an open (or probed) one; a failed probe
/// reopens it for a longer interval; a failure that makes the run of failures reach the
/// threshold opens a closed one. Each move made publishes its operational event.
async fn update_circuit(deps: &Deps, sub: &Subscription, breaker: &Breaker, outcome: &DeliveryOutcome, probing: bool, health: Option<HealthAfter>, at: OffsetDateTime) -> PortResult<()> {
    let (tenant, id) = (&sub.tenant_id, &sub.subscription_id);
    match outcome {
        // A probe's success, or one that was in flight while the circuit opened.
        DeliveryOutcome::Delivered(_) if sub.circuit_state != crate::model::CircuitState::Closed => {
            if move_circuit(deps, sub, CircuitChange::Close { at }).await? {
                tracing::warn!(operational_event = "circuit.closed", "the endpoint's circuit closed");
                // The run of failures ends with it, whatever this worker last wrote.
                deps.subscriptions.record_health(tenant, id, HealthChange::Delivered { at }).await?;
                operational::publish(deps, tenant, id, Occurrence::CircuitClosed { opened_at: sub.circuit_since }, at).await;
            }
        }
        DeliveryOutcome::Delivered(_) => {}
        DeliveryOutcome::Failed { .. } if probing => {
            let probe_at = at + breaker.interval(sub.circuit_probes + 1);
            move_circuit(deps, sub, CircuitChange::Reopen { probe_at }).await?;
            tracing::warn!(probes = sub.circuit_probes + 1, "the probe failed; the circuit stays open");
        }
        DeliveryOutcome::Failed { .. } => {
            let Some(h) = health.filter(|h| h.failure_count >= breaker.failures) else { return Ok(()) };
            if sub.circuit_state != crate::model::CircuitState::Closed {
                return Ok(());
            }
            let probe_at = at + breaker.interval(0);
            if move_circuit(deps, sub, CircuitChange::Open { at, probe_at }).await? {
                tracing::error!(operational_event = "circuit.opened", failure_count = h.failure_count, "the endpoint's circuit opened");
                operational::publish(deps, tenant, id, Occurrence::CircuitOpened { failure_count: h.failure_count, next_probe_at: probe_at }, at).await;
            }
        }
    }
    Ok(())
}


fn report(written: &Record, verdict: Verdict, outcome: &DeliveryOutcome, figures: &metrics::Batch) {
    let response = outcome.response();
    let latency = Metric { name: "LatencyMs", value: response.ms as f64, unit: "Milliseconds" };
    let (status, ms, attempt) = (response.status, response.ms, written.attempts);
    match (written.status, verdict, outcome) {
        (RecordStatus::Delivered, _, _) => {
            tracing::info!(status, ms, attempt, "delivered");
            figures.add(&[count("Delivered"), latency]);
        }
        (_, Verdict::Retry(wait), DeliveryOutcome::Failed { class, .. }) => {
            tracing::warn!(?class, status, ms, attempt, retry_in_s = wait.as_secs(), "attempt failed; will retry");
            let mut counted = vec![count("Retried"), latency];
            counted.extend((*class == FailureClass::Blocked).then(|| count("Blocked")));
            figures.add(&counted);
        }
        (_, Verdict::Gone, _) => figures.add(&[count("Failed"), count("Disabled"), latency]),
        _ => {
            tracing::error!(operational_event = "delivery.exhausted", status, attempt, "retries exhausted; delivery failed");
            figures.add(&[count("Failed"), latency]);
        }
    }
}

#[cfg(test)]
mod tests;
