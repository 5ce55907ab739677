//! The ledger's layout, shared by its adapters: a subscription's partition holds every record of
//! its deliveries under the sort key `<delivery key>#<seq>` (the key sorts by the event's
//! `occurred_at`, see [`DeliveryId`]), so one descending Query lists deliveries newest first with
//! each head before its older records, and `begins_with(<key>#)` reads one delivery.

use crate::ids::{key_at, DeliveryId, SubscriptionId, KEY_CHARS};
use crate::model::Record;
use crate::ports::{Delivery, DeliveryFilter, PortError, PortResult};

/// Records of one delivery: `#001` … `#999`.
pub const MAX_SEQ: u32 = 999;

/// The sort key of record `seq` of a delivery.
pub fn sort_key(id: &DeliveryId, seq: u32) -> String {
    format!("{}#{seq:03}", id.key())
}

/// (delivery key, seq) of a sort key.
pub fn parse_sort_key(k: &str) -> Option<(&str, u32)> {
    let (key, seq) = k.split_once('#')?;
    (key.len() == KEY_CHARS && seq.len() == 3).then_some(())?;
    Some((key, seq.parse().ok()?))
}

/// The sort-key range `[lo, hi)` a listing reads: the filter's time range, and below the
/// cursor's delivery. No sort key equals either bound (they lack the `#seq` part), so DynamoDB's
/// inclusive `BETWEEN lo AND hi` reads exactly this range.
pub fn key_range(filter: &DeliveryFilter, cursor: Option<&str>) -> PortResult<Option<(String, String)>> {
    let lo = filter.since.map(key_at).unwrap_or_else(|| "0".into());
    let mut hi = filter.until.map(key_at).unwrap_or_else(|| "{".into()); // '{' sorts after [0-9a-z]
    if let Some(c) = cursor {
        let key = decode_cursor(c)?;
        if key.as_str() < lo.as_str() || key.as_str() >= hi.as_str() {
            return Err(PortError::BadCursor);
        }
        hi = key;
    }
    Ok((lo < hi).then_some((lo, hi)))
}

/// A listing's cursor: the key of the last delivery returned.
pub fn encode_cursor(d: &Delivery) -> String {
    format!("d{}", d.id().key())
}

fn decode_cursor(c: &str) -> PortResult<String> {
    let key = c.strip_prefix('d').ok_or(PortError::BadCursor)?;
    let ok = key.len() == KEY_CHARS && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    ok.then(|| key.to_owned()).ok_or(PortError::BadCursor)
}

/// Whether a listing shows this delivery.
pub fn accepts(filter: &DeliveryFilter, d: &Delivery) -> bool {
    (filter.status.is_empty() || filter.status.contains(&d.status())) && filter.event_type.as_deref().is_none_or(|t| d.head().event_type == t)
}

/// Groups records read newest first (a descending query of one partition) into deliveries.
/// `complete` says whether the read reached the end of its range: if not, the last group may
/// lack older records and is held back (the caller reads on before it).
#[derive(Default)]
pub struct Grouper {
    done: Vec<Delivery>,
    open: Vec<Record>,
}

impl Grouper {
    pub fn push(&mut self, r: Record) {
        if self.open.last().is_some_and(|o| o.delivery_id != r.delivery_id) {
            self.close();
        }
        self.open.push(r);
    }

    fn close(&mut self) {
        let mut records = std::mem::take(&mut self.open);
        if !records.is_empty() {
            records.reverse(); // oldest first
            self.done.push(Delivery { records });
        }
    }

    /// Complete deliveries so far.
    pub fn complete(&self) -> usize {
        self.done.len()
    }

    /// The deliveries, the open one included when the read reached the end of its range.
    pub fn finish(mut self, reached_end: bool) -> Vec<Delivery> {
        if reached_end {
            self.close();
        }
        self.done
    }
}

/// Most records one listing request reads before it answers (with a cursor to go on): a
/// filter that matches little must not read a whole partition in one request.
pub const MAX_RECORDS_PER_LISTING: usize = 2_000;

/// The page a listing answers: up to `limit` accepted deliveries out of `examined` (complete
/// deliveries, newest first). `more` says whether the range holds more beyond them; then the
/// cursor continues after what was examined even if the page is short.
pub fn page(examined: Vec<Delivery>, filter: &DeliveryFilter, limit: usize, more: bool) -> crate::ports::Page<Delivery> {
    let last_examined = examined.last().map(encode_cursor);
    let mut items: Vec<Delivery> = examined.into_iter().filter(|d| accepts(filter, d)).take(limit + 1).collect();
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(encode_cursor)
    } else if more {
        last_examined
    } else {
        None
    };
    crate::ports::Page { items, next }
}

/// Whether a listing has read enough: `limit + 1` accepted deliveries, or its record budget.
pub fn enough(g: &Grouper, filter: &DeliveryFilter, limit: usize, records_read: usize) -> bool {
    records_read >= MAX_RECORDS_PER_LISTING || g.done.iter().filter(|d| accepts(filter, d)).count() > limit
}

/// The partition (subscription) a delivery's records live in.
pub fn partition(id: &DeliveryId) -> SubscriptionId {
    id.subscription()
}
