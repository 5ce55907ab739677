//! The per-endpoint circuit breaker. A run of `CIRCUIT_FAILURES` consecutive failed attempts
//! (the subscription's `failure_count`, written at every failure while the circuit is closed)
//! opens it; while open, the endpoint's deliveries are deferred on the queue without a POST (no
//! attempt, no write), and one probe at a time, at growing intervals (`CIRCUIT_PROBE_SECS`
//! doubling to `CIRCUIT_PROBE_MAX_SECS`), tests it: a delivery that finds the probe due takes a
//! lease (half-open) and POSTs; success closes the circuit, failure reopens it with the next
//! interval. Every move is a conditional write of the subscription's `circuit_*` fields, so of
//! racing workers one makes it (`SubscriptionStore::move_circuit`).

use crate::model::{CircuitState, Subscription};
use std::time::Duration;
use time::OffsetDateTime;

/// What the circuit says about a delivery about to be made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gate {
    /// Closed: POST.
    Pass,
    /// The probe is due: take the lease, then POST as the probe.
    Probe,
    /// Open, or another worker is probing: wait this long on the queue, no attempt used.
    Defer(Duration),
}

/// The settings of the breaker (from `Config`).
#[derive(Debug, Clone, Copy)]
pub struct Breaker {
    /// 0: no breaker.
    pub failures: u32,
    pub probe: Duration,
    pub probe_max: Duration,
}

impl Breaker {
    pub fn on(&self) -> bool {
        self.failures > 0
    }

    /// The wait after the `probes`-th failed probe (0: the first, when the circuit opens).
    pub fn interval(&self, probes: u32) -> Duration {
        self.probe.saturating_mul(1u32 << probes.min(20)).min(self.probe_max.max(self.probe))
    }

    /// What to do with a delivery of `sub` at `now`, the message received `receive` times. A
    /// deferred message waits until the probe is due, and at least an interval that doubles with
    /// its receives (up to the longest), so a long outage costs each message few receives.
    pub fn gate(&self, sub: &Subscription, now: OffsetDateTime, receive: u32, jitter: f64) -> Gate {
        if !self.on() || sub.circuit_state == CircuitState::Closed {
            return Gate::Pass;
        }
        let due = sub.circuit_probe_at.unwrap_or(now);
        if due <= now {
            return Gate::Probe;
        }
        let until_due: Duration = (due - now).try_into().unwrap_or_default();
        let own = self.interval(receive.saturating_sub(1));
        let wait = until_due.max(own);
        // Spread the deferred messages (up to +10 %), so they do not all come back at once.
        Gate::Defer(Duration::from_secs_f64((wait.as_secs_f64() * (1.0 + 0.1 * jitter.clamp(0.0, 1.0))).ceil().max(1.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TenantId;

    fn breaker() -> Breaker {
        Breaker { failures: 3, probe: Duration::from_secs(2), probe_max: Duration::from_secs(10) }
    }

    #[test]
    fn closed_passes_open_defers_until_the_probe_and_a_due_probe_is_taken() {
        let now = OffsetDateTime::now_utc();
        let mut sub = Subscription::new(TenantId::parse("acme").unwrap(), "https://x.test/".into(), vec!["*".into()], now);
        assert_eq!(breaker().gate(&sub, now, 1, 0.0), Gate::Pass);
        sub.circuit_state = CircuitState::Open;
        sub.circuit_probe_at = Some(now + time::Duration::seconds(5));
        assert_eq!(breaker().gate(&sub, now, 1, 0.0), Gate::Defer(Duration::from_secs(5)));
        assert_eq!(breaker().gate(&sub, now, 5, 0.0), Gate::Defer(Duration::from_secs(10)), "a message deferred often waits longer (capped)");
        sub.circuit_probe_at = Some(now - time::Duration::seconds(1));
        assert_eq!(breaker().gate(&sub, now, 1, 0.0), Gate::Probe);
        sub.circuit_state = CircuitState::HalfOpen;
        sub.circuit_probe_at = Some(now + time::Duration::seconds(3));
        assert_eq!(breaker().gate(&sub, now, 1, 0.0), Gate::Defer(Duration::from_secs(3)), "another worker holds the probe's lease");
        let off = Breaker { failures: 0, ..breaker() };
        assert_eq!(off.gate(&sub, now, 1, 0.0), Gate::Pass);
    }

    #[test]
    fn probe_intervals_double_up_to_the_longest() {
        let b = breaker();
        assert_eq!([0, 1, 2, 3, 30].map(|p| b.interval(p).as_secs()), [2, 4, 8, 10, 10]);
    }
}
