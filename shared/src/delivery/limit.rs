//! The per-subscription rate limit (`rate_limit_per_second`), held across every worker: each
//! POST takes a ticket of its subscription's current one-second window (one atomic counter in
//! the ledger table, `Ledger::ticket`). Ticket `n` of second `S` is the slot `S + (n-1)/limit`:
//! the first `limit` tickets go within that second, spaced `1/limit` apart (so no sliding
//! one-second window sees more than `limit`, give or take a POST's jitter); a later ticket's
//! message waits on the queue (visibility) until its slot's second and takes a new ticket then.
//! A wait is no attempt. Subscriptions without a limit never reach this module: they pay
//! nothing.

use std::time::Duration;
use time::OffsetDateTime;

/// What a ticket says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admit {
    /// POST after this pause (within the current second).
    Go(Duration),
    /// Over the rate: hide the message this long, then ask again.
    Wait(Duration),
}

/// The slot of ticket `n` (1-based) of the window starting at `second`, seen at `now`.
pub fn admit(limit: u32, second: i64, n: u64, now: OffsetDateTime) -> Admit {
    let limit = u64::from(limit.max(1));
    let slot_ns = i128::from(second) * 1_000_000_000 + i128::from((n - 1) * 1_000_000_000 / limit);
    let ahead_ns = (slot_ns - now.unix_timestamp_nanos()).max(0);
    let ahead = Duration::from_nanos(ahead_ns as u64);
    if n <= limit {
        return Admit::Go(ahead);
    }
    // Visibility is whole seconds: back early in the slot's second (after at least one).
    let window_ns = i128::from(second + ((n - 1) / limit) as i64) * 1_000_000_000 - now.unix_timestamp_nanos();
    Admit::Wait(Duration::from_secs(((window_ns.max(0) as f64) / 1e9).ceil().max(1.0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_limit_tickets_of_a_second_are_spaced_within_it_and_later_ones_wait_their_turn() {
        let second = 1_800_000_000;
        let now = OffsetDateTime::from_unix_timestamp(second).unwrap() + time::Duration::milliseconds(100);
        assert_eq!(admit(5, second, 1, now), Admit::Go(Duration::ZERO), "its slot has passed: at once");
        assert_eq!(admit(5, second, 2, now), Admit::Go(Duration::from_millis(100)));
        assert_eq!(admit(5, second, 5, now), Admit::Go(Duration::from_millis(700)));
        assert_eq!(admit(5, second, 6, now), Admit::Wait(Duration::from_secs(1)), "slot S+1.0");
        assert_eq!(admit(5, second, 12, now), Admit::Wait(Duration::from_secs(2)), "slot S+2.2: back early in second S+2");
        assert_eq!(admit(1, second, 1, now), Admit::Go(Duration::ZERO));
        assert_eq!(admit(1, second, 2, now), Admit::Wait(Duration::from_secs(1)));
    }
}
