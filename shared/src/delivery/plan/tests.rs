use super::*;
use crate::ids::{DeliveryId, EventSource, SubscriptionId, TenantId};
use crate::model::Trigger;

fn task(token: Option<&str>) -> Deliver {
    let tenant = TenantId::parse("acme").unwrap();
    Deliver {
        delivery_id: DeliveryId::derive(EventSource::Queue, &tenant, "e1", OffsetDateTime::UNIX_EPOCH, &SubscriptionId::parse("sub_1").unwrap()),
        tenant_id: tenant,
        event_id: "e1".into(),
        event_type: "a.b".into(),
        trigger: Trigger::Live,
        check: true,
        token: token.map(str::to_owned),
        subscription_version: 1,
        body: serde_json::value::RawValue::from_string("{}".into()).unwrap(),
        ordered: false,
    }
}

fn head(status: RecordStatus, owner: Option<&str>, due_in_s: i64, now: OffsetDateTime) -> Record {
    let t = task(None);
    let next = Next { task: &t, prev: None, message_id: owner.unwrap_or("x"), now, expires_at: 0 };
    let mut r = next.changed(status, "test".into());
    r.owner = owner.map(str::to_owned);
    r.next_attempt_at = Some(now + time::Duration::seconds(due_in_s));
    r.token = Some("tok".into());
    r
}

#[test]
fn the_plan_for_each_head() {
    let now = OffsetDateTime::now_utc();
    let hour = Duration::from_secs(3600);
    let p = |t: &Deliver, h: Option<Record>, msg: &str| plan(t, msg, h, now, hour);
    let live = task(None);
    let redo = task(Some("tok"));
    assert_eq!(p(&live, None, "m"), Plan::Attempt { prev: None });
    assert!(matches!(p(&redo, None, "m"), Plan::Drop(_)));
    for settled in [RecordStatus::Delivered, RecordStatus::Failed, RecordStatus::Cancelled] {
        assert!(matches!(p(&live, Some(head(settled, None, 0, now)), "m"), Plan::Drop("already settled")));
        assert!(matches!(p(&redo, Some(head(settled, None, 0, now)), "m"), Plan::Drop(_)));
    }
    // Retrying: the owner waits until due, then attempts; others leave it unless long overdue.
    assert_eq!(p(&live, Some(head(RecordStatus::Retrying, Some("m"), 30, now)), "m"), Plan::Wait(Duration::from_secs(30)));
    assert!(matches!(p(&live, Some(head(RecordStatus::Retrying, Some("m"), 0, now)), "m"), Plan::Attempt { .. }));
    assert!(matches!(p(&live, Some(head(RecordStatus::Retrying, Some("o"), -60, now)), "m"), Plan::Drop("owned by another message")));
    assert!(matches!(p(&live, Some(head(RecordStatus::Retrying, Some("o"), -7200, now)), "m"), Plan::Attempt { .. }));
    // Queued: only the task with its token claims it.
    assert!(matches!(p(&redo, Some(head(RecordStatus::Queued, None, 0, now)), "m"), Plan::Claim { .. }));
    assert!(matches!(p(&live, Some(head(RecordStatus::Queued, None, 0, now)), "m"), Plan::Drop(_)));
    // Attempting: its claimer goes on (after a crash); nobody else.
    assert!(matches!(p(&redo, Some(head(RecordStatus::Attempting, Some("m"), 0, now)), "m"), Plan::Attempt { .. }));
    assert!(matches!(p(&redo, Some(head(RecordStatus::Attempting, Some("o"), 0, now)), "m"), Plan::Drop(_)));
    // Dead-lettered: whoever comes resumes it.
    assert!(matches!(p(&live, Some(head(RecordStatus::DeadLettered, Some("o"), 0, now)), "m"), Plan::Attempt { .. }));
}

fn attempt(code: u16) -> Attempt {
    Attempt {
        attempt: 0,
        url: "https://x".into(),
        started_at: OffsetDateTime::now_utc(),
        duration_ms: 1,
        status_code: Some(code),
        error_class: (code >= 300).then_some(FailureClass::Http),
        error_message: None,
        response_headers: Default::default(),
        response_body: None,
        trigger: Trigger::Live,
    }
}

#[test]
fn records_number_attempts_and_runs_and_keep_the_event_once() {
    let now = OffsetDateTime::now_utc();
    let t = task(None);
    let first = Next { task: &t, prev: None, message_id: "m", now, expires_at: 9 }.attempted(attempt(500), Verdict::Retry(Duration::from_secs(5)), 3);
    assert_eq!((first.seq, first.attempts, first.run, first.status, first.owner.as_deref()), (1, 1, 1, RecordStatus::Retrying, Some("m")));
    assert_eq!(first.next_attempt_at, Some(now + time::Duration::seconds(5)));
    assert!(first.event.is_some());
    let second = Next { task: &t, prev: Some(&first), message_id: "m", now, expires_at: 9 }.attempted(attempt(200), Verdict::Delivered, 3);
    assert_eq!((second.seq, second.attempts, second.run, second.attempt.as_ref().unwrap().attempt), (2, 2, 2, 2));
    assert!(second.event.is_none() && second.owner.is_none());
    // A claimed redelivery starts a new run.
    let mut claimed = second.clone();
    claimed.status = RecordStatus::Attempting;
    let redo = Next { task: &t, prev: Some(&claimed), message_id: "r", now, expires_at: 9 };
    assert_eq!(redo.run(), 1);
    assert_eq!(redo.attempted(attempt(500), Verdict::Exhausted, 1).reason.as_deref(), Some("retries exhausted: 1 attempts failed"));
}

#[test]
fn a_rebased_record_keeps_a_success_and_a_live_owner() {
    let now = OffsetDateTime::now_utc();
    let t = task(None);
    let base = Next { task: &t, prev: None, message_id: "me", now, expires_at: 9 };
    let my_failure = base.attempted(attempt(500), Verdict::Retry(Duration::from_secs(5)), 3);
    let my_success = base.attempted(attempt(200), Verdict::Delivered, 3);
    // Their success stands over my failure.
    let theirs = Next { task: &t, prev: None, message_id: "them", now, expires_at: 9 }.attempted(attempt(200), Verdict::Delivered, 3);
    let (r, owner) = rebase(my_failure.clone(), &theirs, "me");
    assert_eq!((r.seq, r.attempts, r.status, owner), (2, 2, RecordStatus::Delivered, false));
    assert!(r.event.is_none());
    // My success stands over their retrying.
    let retrying = Next { task: &t, prev: None, message_id: "them", now, expires_at: 9 }.attempted(attempt(500), Verdict::Retry(Duration::from_secs(60)), 3);
    let (r, owner) = rebase(my_success, &retrying, "me");
    assert_eq!((r.status, owner), (RecordStatus::Delivered, false));
    // Their live retry keeps its owner; my failure is recorded and I leave.
    let (r, owner) = rebase(my_failure.clone(), &retrying, "me");
    assert_eq!((r.status, r.owner.as_deref(), owner), (RecordStatus::Retrying, Some("them"), false));
    // The same message twice (racing handlers of one message): it stays the owner.
    let (r, owner) = rebase(my_failure.clone(), &my_failure, "me");
    assert_eq!((r.seq, r.status, owner), (2, RecordStatus::Retrying, true));
}

#[test]
fn the_verdict_applies_the_schedule_the_throttle_floor_and_retry_after() {
    let policy = crate::retry::RetryPolicy::parse("10").unwrap();
    let min = Duration::from_secs(60);
    assert_eq!(verdict(&policy, min, 1, None), Verdict::Delivered);
    assert_eq!(verdict(&policy, min, 1, Some((FailureClass::Http, Some(410), None))), Verdict::Gone);
    assert_eq!(verdict(&policy, min, 1, Some((FailureClass::Http, Some(429), None))), Verdict::Retry(min));
    assert_eq!(verdict(&policy, min, 1, Some((FailureClass::Http, Some(503), Some(Duration::from_secs(90))))), Verdict::Retry(Duration::from_secs(90)));
    assert_eq!(verdict(&policy, min, 2, Some((FailureClass::Http, Some(503), None))), Verdict::Exhausted);
}
