//! The retry schedule: after failed attempt `n` (1-based), wait `schedule[n-1]` (±20 % jitter),
//! then try again; after attempt `schedule.len() + 1` the delivery is exhausted. The wait is
//! carried out by SQS: the delivery worker sets the message's visibility timeout to it. The
//! attempt number comes from the delivery's ledger, never from SQS's receive count.
//!
//! Infrastructure errors (our DynamoDB or SQS failing) are not attempts: the message is hidden for
//! [`infra_backoff`], which doubles with each receive, so a long outage costs few receives.

use rand::Rng;
use std::time::Duration;

/// SQS caps a visibility timeout at 12 hours.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    schedule: Vec<Duration>,
}

impl RetryPolicy {
    pub fn new(schedule: Vec<Duration>) -> Self {
        Self { schedule }
    }

    /// Parses comma-separated seconds, e.g. `5,300,1800`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let schedule = s
            .split(',')
            .map(|part| {
                let secs: u64 = part.trim().parse().map_err(|_| format!("`{part}` is not a whole number of seconds"))?;
                let d = Duration::from_secs(secs);
                (d <= MAX_VISIBILITY).then_some(d).ok_or_else(|| format!("{secs}s exceeds SQS's 12 h visibility limit"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { schedule })
    }

    /// Total attempts, the first included. The delivery queue's `maxReceiveCount` must exceed it
    /// by [`RECEIVE_HEADROOM`].
    pub fn max_attempts(&self) -> u32 {
        self.schedule.len() as u32 + 1
    }

    /// The sum of the scheduled waits (without jitter).
    pub fn total_delay(&self) -> Duration {
        self.schedule.iter().sum()
    }

    /// The wait after failed attempt `attempt` (1-based), jittered by ±20 %; `None` once the
    /// schedule is exhausted.
    pub fn delay_after(&self, attempt: u32) -> Option<Duration> {
        let base = *self.schedule.get(attempt.checked_sub(1)? as usize)?;
        let factor = rand::thread_rng().gen_range(0.8..=1.2);
        Some(base.mul_f64(factor).min(MAX_VISIBILITY))
    }
}

/// Receives a queue allows beyond what attempts use: room for infrastructure errors, Lambda
/// timeouts and throttled batches, none of which use up a customer's retries.
pub const RECEIVE_HEADROOM: u32 = 10;

/// The wait after an infrastructure error on the `receive`-th receive of a message: `base`
/// doubled per receive, at most `cap`.
pub fn infra_backoff(base: Duration, cap: Duration, receive: u32) -> Duration {
    let doublings = receive.saturating_sub(1).min(30);
    base.saturating_mul(1 << doublings).min(cap).min(MAX_VISIBILITY)
}

/// The longest a message can take to use up `receives` receives when each infrastructure error
/// hides it for [`infra_backoff`] (or, if the handler never ran, the queue's `visibility`).
pub fn worst_time_to_dead_letter(base: Duration, cap: Duration, visibility: Duration, receives: u32) -> Duration {
    (1..=receives).map(|r| infra_backoff(base, cap, r).max(visibility)).sum()
}

impl Default for RetryPolicy {
    /// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 12 h, 12 h: nine attempts over about 46 hours.
    fn default() -> Self {
        Self::parse("5,300,1800,7200,18000,36000,43200,43200").expect("valid default schedule")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_follow_the_schedule_within_jitter_then_stop() {
        let p = RetryPolicy::parse("10,100").unwrap();
        assert_eq!(p.max_attempts(), 3);
        for _ in 0..100 {
            let d = p.delay_after(1).unwrap().as_secs_f64();
            assert!((8.0..=12.0).contains(&d), "{d}");
            let d = p.delay_after(2).unwrap().as_secs_f64();
            assert!((80.0..=120.0).contains(&d), "{d}");
        }
        assert_eq!(p.delay_after(3), None);
        assert_eq!(p.delay_after(0), None);
    }

    #[test]
    fn parse_rejects_garbage_and_waits_over_12_hours() {
        assert!(RetryPolicy::parse("5,x").is_err());
        assert!(RetryPolicy::parse("43201").is_err());
        assert_eq!(RetryPolicy::default().max_attempts(), 9);
    }

    #[test]
    fn infra_backoff_doubles_per_receive_up_to_its_cap() {
        let (base, cap) = (Duration::from_secs(5), Duration::from_secs(3600));
        let waits: Vec<u64> = (1..=12).map(|r| infra_backoff(base, cap, r).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]);
        assert_eq!(infra_backoff(base, Duration::MAX, 99), MAX_VISIBILITY);
        let worst = worst_time_to_dead_letter(base, cap, Duration::from_secs(180), 12);
        assert_eq!(worst.as_secs(), 180 * 6 + 320 + 640 + 1280 + 2560 + 3600 * 2);
    }

    #[test]
    fn jitter_never_exceeds_the_sqs_cap() {
        let p = RetryPolicy::parse("43200").unwrap();
        for _ in 0..100 {
            assert!(p.delay_after(1).unwrap() <= MAX_VISIBILITY);
        }
    }
}
