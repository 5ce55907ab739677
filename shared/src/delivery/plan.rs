//! The delivery state machine, as pure functions of a task and the delivery's head record: what
//! a worker does with a task ([`plan`]), the record that reports its attempt ([`next_record`]),
//! and what that record becomes when another writer appended first ([`rebase`]). The worker
//! (`delivery/mod.rs`) does the I/O around them; docs/architecture.md draws the machine.

use crate::model::{Attempt, Deliver, FailureClass, Record, RecordStatus, RecordedEvent};
use std::time::Duration;
use time::OffsetDateTime;

/// What a worker does with a task.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// POST now; the record that reports it follows `prev` (`None`: it is the first).
    Attempt { prev: Option<Record> },
    /// Claim the queued redelivery (the head), then POST.
    Claim { head: Record },
    /// This message owns the delivery, whose next attempt is later: hide it until then.
    Wait(Duration),
    /// Nothing for this message to do (settled, or owned by another message): delete it.
    Drop(&'static str),
}

/// A worker came back this close to the due time: attempt now rather than wait again.
const EARLY: time::Duration = time::Duration::seconds(1);

/// What to do with `task`, received as message `message_id`, given the delivery's `head` (`None`:
/// no record yet, or the worker did not read it).
pub fn plan(task: &Deliver, message_id: &str, head: Option<Record>, now: OffsetDateTime, takeover_after: Duration) -> Plan {
    let Some(h) = head else {
        return match task.token {
            Some(_) => Plan::Drop("a redelivery of a delivery without records"),
            None => Plan::Attempt { prev: None },
        };
    };
    let mine = h.owner.as_deref() == Some(message_id);
    match h.status {
        RecordStatus::Delivered | RecordStatus::Failed | RecordStatus::Cancelled => Plan::Drop("already settled"),
        RecordStatus::Queued if task.token.is_some() && task.token == h.token => Plan::Claim { head: h },
        RecordStatus::Queued => Plan::Drop("queued for a redelivery by another task"),
        RecordStatus::Attempting if mine => Plan::Attempt { prev: Some(h) },
        RecordStatus::Attempting => Plan::Drop("being attempted by another message"),
        RecordStatus::Retrying => {
            let due = h.next_attempt_at.unwrap_or(now);
            if mine && due > now + EARLY {
                Plan::Wait((due - now).try_into().unwrap_or_default())
            } else if mine || due + takeover_after < now {
                // Ours and due, or so overdue that its owner's message must be gone.
                Plan::Attempt { prev: Some(h) }
            } else {
                Plan::Drop("owned by another message")
            }
        }
        // Its message went to the DLQ; whichever task comes now (the redriven one, or a check
        // from a second fan-out) resumes it.
        RecordStatus::DeadLettered => Plan::Attempt { prev: Some(h) },
    }
}

/// How an attempt ended, for the state machine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    Delivered,
    /// Failed; try again after this wait (schedule, 429/timeout floor and `Retry-After` applied).
    Retry(Duration),
    /// Failed and the run's attempts are used up.
    Exhausted,
    /// 410 Gone: failed at once, the subscription disabled.
    Gone,
}

/// The wait before the next attempt, or why there is none: the schedule's wait after attempt
/// `run` of the run, at least `min_throttle` after a 429 or a timeout, at least the endpoint's
/// `Retry-After` (capped at SQS's 12 h).
pub fn verdict(policy: &crate::retry::RetryPolicy, min_throttle: Duration, run: u32, failure: Option<(FailureClass, Option<u16>, Option<Duration>)>) -> Verdict {
    let Some((class, status, retry_after)) = failure else {
        return Verdict::Delivered;
    };
    if status == Some(410) {
        return Verdict::Gone;
    }
    let Some(mut delay) = policy.delay_after(run) else {
        return Verdict::Exhausted;
    };
    if status == Some(429) || class == FailureClass::Timeout {
        delay = delay.max(min_throttle);
    }
    if let Some(ra) = retry_after {
        delay = delay.max(ra);
    }
    Verdict::Retry(delay.min(crate::retry::MAX_VISIBILITY))
}

/// The record that comes after `prev` (a state change without a POST when `attempt` is `None`).
pub struct Next<'a> {
    pub task: &'a Deliver,
    pub prev: Option<&'a Record>,
    pub message_id: &'a str,
    pub now: OffsetDateTime,
    pub expires_at: i64,
}

impl Next<'_> {
    fn base(&self, status: RecordStatus, attempt: Option<Attempt>) -> Record {
        let seq = self.prev.map_or(1, |p| p.seq + 1);
        let posted = u32::from(attempt.is_some());
        // A claimed redelivery starts a new run with the whole schedule.
        let run_before = match self.prev {
            Some(p) if p.status != RecordStatus::Attempting => p.run,
            _ => 0,
        };
        let attempts = self.prev.map_or(0, |p| p.attempts) + posted;
        Record {
            delivery_id: self.task.delivery_id.clone(),
            seq,
            event_id: self.task.event_id.clone(),
            event_type: self.task.event_type.clone(),
            status,
            attempts,
            run: run_before + posted,
            owner: None,
            next_attempt_at: None,
            token: None,
            queued_at: None,
            attempt: attempt.map(|a| Attempt { attempt: attempts, ..a }),
            reason: None,
            event: (seq == 1).then(|| RecordedEvent { tenant_id: self.task.tenant_id.clone(), body: self.task.body.get().to_owned() }),
            written_at: self.now,
            expires_at: self.expires_at,
        }
    }

    /// The run number the attempt about to be made will have.
    pub fn run(&self) -> u32 {
        match self.prev {
            Some(p) if p.status != RecordStatus::Attempting => p.run + 1,
            _ => 1,
        }
    }

    /// The record of an attempt and its verdict.
    pub fn attempted(&self, attempt: Attempt, verdict: Verdict, max_attempts: u32) -> Record {
        let (status, reason) = match verdict {
            Verdict::Delivered => (RecordStatus::Delivered, None),
            Verdict::Retry(_) => (RecordStatus::Retrying, None),
            Verdict::Exhausted => (RecordStatus::Failed, Some(format!("retries exhausted: {max_attempts} attempts failed"))),
            Verdict::Gone => (RecordStatus::Failed, Some("the endpoint answered 410 Gone".to_owned())),
        };
        let mut r = self.base(status, Some(attempt));
        r.reason = reason;
        if let Verdict::Retry(wait) = verdict {
            r.owner = Some(self.message_id.to_owned());
            r.next_attempt_at = Some(self.now + wait);
        }
        r
    }

    /// A state change without a POST (cancelled, dead-lettered), with its reason.
    pub fn changed(&self, status: RecordStatus, reason: String) -> Record {
        let mut r = self.base(status, None);
        r.reason = Some(reason);
        r
    }
}

/// `mine` could not be appended: `head` was written first. Returns the record to append after
/// `head` instead, and whether this message still owns the delivery afterwards. A success stands
/// whoever reports it; a live owner other than this message keeps the delivery (this message
/// records its POST and leaves); otherwise this message's outcome decides.
pub fn rebase(mut mine: Record, head: &Record, message_id: &str) -> (Record, bool) {
    mine.seq = head.seq + 1;
    mine.attempts = head.attempts + u32::from(mine.attempt.is_some());
    if let Some(a) = &mut mine.attempt {
        a.attempt = mine.attempts;
    }
    mine.event = None; // record 1 exists: it is the head or older
    let live_elsewhere = matches!(head.status, RecordStatus::Retrying | RecordStatus::Attempting | RecordStatus::Queued) && head.owner.as_deref() != Some(message_id);
    if mine.status == RecordStatus::Delivered {
        return (mine, false);
    }
    if head.status == RecordStatus::Delivered || live_elsewhere {
        mine.status = head.status;
        mine.owner = head.owner.clone();
        mine.next_attempt_at = head.next_attempt_at;
        mine.token = head.token.clone();
        mine.queued_at = head.queued_at;
        mine.run = head.run;
        mine.reason = head.reason.clone();
        return (mine, false);
    }
    let owner = mine.status == RecordStatus::Retrying;
    (mine, owner)
}

#[cfg(test)]
mod tests;
