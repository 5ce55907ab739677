//! A subscription's health as deliveries change it, written sparingly: a success at most once a
//! minute per worker while the subscription is healthy; failures counted in memory and added at
//! the first failure of a run, then at most once a minute (`HEALTH_FLUSH_SECS`). So a healthy
//! endpoint costs no write per delivery and a failing one none per retry; `failure_count` lags
//! by at most a minute of one worker's failures (and loses those if the worker dies).

use crate::ids::SubscriptionId;
use crate::model::Subscription;
use crate::ports::HealthChange;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

#[derive(Default)]
pub struct HealthBook(Mutex<HashMap<SubscriptionId, Entry>>);

#[derive(Default, Clone)]
struct Entry {
    /// Failures seen since the last write of this subscription's health.
    failures: u32,
    /// When the first of them happened.
    since: Option<OffsetDateTime>,
    /// When this worker last wrote a failure, or a success.
    failure_written: Option<Instant>,
    success_written: Option<Instant>,
}

impl HealthBook {
    /// The write a successful delivery calls for, if any.
    pub fn delivered(&self, sub: &Subscription, at: OffsetDateTime, every: Duration) -> Option<HealthChange> {
        let mut book = self.0.lock().unwrap();
        let e = book.entry(sub.subscription_id.clone()).or_default();
        // Within a minute of this worker's own success write, with no failure seen since, the
        // (possibly older) cached copy of the subscription says nothing new.
        let recent_success = e.success_written.is_some_and(|t| t.elapsed() < every);
        let local_failures = e.failures > 0 || e.failure_written.is_some();
        if recent_success && !local_failures {
            return None;
        }
        *e = Entry { success_written: Some(Instant::now()), ..Entry::default() };
        Some(HealthChange::Delivered { at })
    }

    /// The write a failed attempt calls for, if any (the run's first, then once per `every`).
    pub fn failed(&self, sub: &Subscription, at: OffsetDateTime, every: Duration) -> Option<HealthChange> {
        let mut book = self.0.lock().unwrap();
        let e = book.entry(sub.subscription_id.clone()).or_default();
        e.failures += 1;
        e.since.get_or_insert(at);
        if e.failure_written.is_some_and(|t| t.elapsed() < every) {
            return None;
        }
        let change = HealthChange::Failed { count: e.failures, since: e.since.unwrap_or(at) };
        e.failures = 0;
        e.since = None;
        e.failure_written = Some(Instant::now());
        Some(change)
    }

    /// A write that did not happen: its failures are counted again.
    pub fn unwritten(&self, sub: &SubscriptionId, change: &HealthChange) {
        if let HealthChange::Failed { count, since } = change {
            let mut book = self.0.lock().unwrap();
            let e = book.entry(sub.clone()).or_default();
            e.failures += count;
            e.since = Some(e.since.map_or(*since, |s| s.min(*since)));
            e.failure_written = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TenantId;

    #[test]
    fn healthy_endpoints_write_once_a_minute_and_failing_ones_once_per_run_then_per_minute() {
        let book = HealthBook::default();
        let minute = Duration::from_secs(60);
        let mut sub = Subscription::new(TenantId::parse("acme").unwrap(), "https://x".into(), vec!["*".into()], OffsetDateTime::now_utc());
        let now = OffsetDateTime::now_utc();
        // A healthy endpoint: the first success writes, the next ones within the minute do not.
        assert!(matches!(book.delivered(&sub, now, minute), Some(HealthChange::Delivered { .. })));
        assert_eq!(book.delivered(&sub, now, minute), None);
        // Failures: the first of a run writes at once, the next ones are counted.
        assert_eq!(book.failed(&sub, now, minute), Some(HealthChange::Failed { count: 1, since: now }));
        assert_eq!(book.failed(&sub, now, minute), None);
        assert_eq!(book.failed(&sub, now, minute), None);
        // A success after failures writes (ends the run), whatever the minute says.
        sub.failure_count = 1;
        assert!(book.delivered(&sub, now, minute).is_some());
        // With no flush interval, every change writes.
        let exact = HealthBook::default();
        assert!(exact.failed(&sub, now, Duration::ZERO).is_some());
        assert_eq!(exact.failed(&sub, now, Duration::ZERO), Some(HealthChange::Failed { count: 1, since: now }));
        // A failed write gives its failures back.
        let change = book.failed(&sub, now, minute).unwrap();
        book.unwritten(&sub.subscription_id, &change);
        assert_eq!(book.failed(&sub, now, minute), Some(HealthChange::Failed { count: 2, since: now }));
    }
}
