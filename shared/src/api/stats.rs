//! `GET /v1/subscriptions/{id}/stats?window=24h|7d`: a subscription's deliveries by outcome, its
//! success rate, attempt durations (p50/p95) and failures by class, in hourly (24h) or daily (7d)
//! buckets. Computed from the delivery log (the ledger), so it costs no write: one bounded scan of
//! the window's deliveries (at most [`MAX_DELIVERIES`], newest event first; `truncated` says when
//! the window held more). Deliveries fall into the bucket of their event's `occurred_at` (what the
//! log is keyed by); attempts into the bucket of their own start.

use super::auth::Caller;
use super::problem::ApiError;
use super::subscriptions::find;
use super::{IdPath, QueryParams};
use crate::deps::Deps;
use crate::model::{DeliveryStatus, FailureClass, Scope};
use crate::ports::DeliveryFilter;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// The most deliveries one stats request reads (pages of [`PAGE`]).
pub const MAX_DELIVERIES: usize = 5_000;
const PAGE: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    pub window: Option<String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Counts {
    /// Deliveries of events in the window (bucket), by status.
    pub deliveries: u64,
    pub delivered: u64,
    pub failed: u64,
    /// Queued or retrying: not settled yet.
    pub pending: u64,
    /// Cancelled or dead-lettered.
    pub other: u64,
    /// `delivered / (delivered + failed)`; `null` when nothing settled.
    pub success_rate: Option<f64>,
    /// POSTs made, and how many of them failed.
    pub attempts: u64,
    pub failed_attempts: u64,
    /// Of the attempts' durations, in ms; `null` without attempts.
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Bucket {
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StatsOut {
    pub window: String,
    /// `1h` or `1d`.
    pub bucket: String,
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    pub totals: Counts,
    /// Failed attempts by class (`http`, `timeout`, `connect`, …).
    pub failures_by_class: BTreeMap<String, u64>,
    /// Oldest first; every bucket of the window, empty ones included.
    pub buckets: Vec<Bucket>,
    /// The window held more than [`MAX_DELIVERIES`]: the figures cover the newest of them.
    pub truncated: bool,
}

/// Accumulates one bucket (or the totals).
#[derive(Default)]
struct Acc {
    counts: Counts,
    durations: Vec<u64>,
}

impl Acc {
    fn delivery(&mut self, status: DeliveryStatus) {
        let c = &mut self.counts;
        c.deliveries += 1;
        match status {
            DeliveryStatus::Delivered => c.delivered += 1,
            DeliveryStatus::Failed => c.failed += 1,
            DeliveryStatus::Queued | DeliveryStatus::Retrying => c.pending += 1,
            DeliveryStatus::Cancelled | DeliveryStatus::DeadLettered => c.other += 1,
        }
    }

    fn attempt(&mut self, ms: u64, failed: bool) {
        self.counts.attempts += 1;
        self.counts.failed_attempts += u64::from(failed);
        self.durations.push(ms);
    }

    fn finish(mut self) -> Counts {
        let mut c = self.counts;
        let settled = c.delivered + c.failed;
        c.success_rate = (settled > 0).then(|| c.delivered as f64 / settled as f64);
        self.durations.sort_unstable();
        c.p50_ms = percentile(&self.durations, 50);
        c.p95_ms = percentile(&self.durations, 95);
        c
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

fn class_name(c: FailureClass) -> String {
    serde_json::to_value(c).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

pub async fn stats(State(deps): State<Arc<Deps>>, caller: Caller, IdPath(id): IdPath, QueryParams(q): QueryParams<StatsQuery>) -> Result<Json<StatsOut>, ApiError> {
    caller.require(Scope::Read)?;
    let (window, bucket, n) = match q.window.as_deref().unwrap_or("24h") {
        "24h" => ("24h", Duration::HOUR, 24),
        "7d" => ("7d", Duration::DAY, 7),
        _ => return Err(ApiError::invalid("window", "must be 24h or 7d")),
    };
    let sub = find(&deps, &caller, &id).await?;
    let now = OffsetDateTime::now_utc();
    // Buckets end at the next whole hour (day), so they are stable between calls.
    let step = bucket.whole_seconds();
    let to = OffsetDateTime::from_unix_timestamp((now.unix_timestamp() / step + 1) * step).map_err(|_| ApiError::invalid("window", "out of range"))?;
    let from = to - bucket * n;
    let filter = DeliveryFilter { since: Some(from), until: Some(to), ..Default::default() };

    let mut buckets: Vec<Acc> = (0..n).map(|_| Acc::default()).collect();
    let mut totals = Acc::default();
    let mut by_class: BTreeMap<String, u64> = BTreeMap::new();
    let index = |t: OffsetDateTime| ((t - from).whole_seconds().div_euclid(step)).clamp(0, n as i64 - 1) as usize;
    let (mut cursor, mut read, mut truncated) = (None::<String>, 0usize, false);
    loop {
        let page = deps.ledger.list(&sub.subscription_id, &filter, cursor.as_deref(), PAGE.min(MAX_DELIVERIES - read)).await?;
        for d in &page.items {
            let status = d.status();
            let occurred = d.head().delivery_id.occurred_at();
            buckets[index(occurred)].delivery(status);
            totals.delivery(status);
            for a in d.records.iter().filter_map(|r| r.attempt.as_ref()) {
                let failed = a.error_class.is_some();
                buckets[index(a.started_at)].attempt(a.duration_ms, failed);
                totals.attempt(a.duration_ms, failed);
                if let Some(c) = a.error_class {
                    *by_class.entry(class_name(c)).or_default() += 1;
                }
            }
        }
        read += page.items.len();
        match page.next {
            Some(next) if read < MAX_DELIVERIES => cursor = Some(next),
            Some(_) => {
                truncated = true;
                break;
            }
            None => break,
        }
    }
    let buckets = buckets.into_iter().enumerate().map(|(i, acc)| Bucket { start: from + bucket * i as i32, counts: acc.finish() }).collect();
    Ok(Json(StatsOut {
        window: window.to_owned(),
        bucket: if bucket == Duration::HOUR { "1h" } else { "1d" }.to_owned(),
        from,
        to,
        totals: totals.finish(),
        failures_by_class: by_class,
        buckets,
        truncated,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 95), Some(7));
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!((percentile(&v, 50), percentile(&v, 95)), (Some(50), Some(95)));
        assert_eq!(percentile(&[1, 2, 3], 50), Some(2));
    }

    #[test]
    fn counts_settle_into_a_success_rate() {
        let mut a = Acc::default();
        for s in [DeliveryStatus::Delivered, DeliveryStatus::Delivered, DeliveryStatus::Failed, DeliveryStatus::Retrying, DeliveryStatus::Cancelled] {
            a.delivery(s);
        }
        a.attempt(10, false);
        a.attempt(30, true);
        let c = a.finish();
        assert_eq!((c.deliveries, c.delivered, c.failed, c.pending, c.other, c.attempts, c.failed_attempts), (5, 2, 1, 1, 1, 2, 1));
        assert_eq!(c.success_rate, Some(2.0 / 3.0));
        assert_eq!((c.p50_ms, c.p95_ms), (Some(10), Some(30)));
        assert_eq!(Acc::default().finish().success_rate, None);
    }
}
