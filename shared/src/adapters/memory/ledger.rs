//! The ledger in memory: one ordered map per the DynamoDB table's (partition, sort key).

use crate::ids::{DeliveryId, SubscriptionId};
use crate::ledger::{self, Grouper};
use crate::model::Record;
use crate::ports::*;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;
use time::OffsetDateTime;

#[derive(Default)]
pub struct MemoryLedger(Mutex<BTreeMap<(SubscriptionId, String), Record>>, Mutex<BTreeMap<(SubscriptionId, i64), u64>>);

impl MemoryLedger {
    fn prefix(id: &DeliveryId) -> (SubscriptionId, String) {
        (id.subscription(), format!("{}#", id.key()))
    }

    /// Moves a retrying delivery's next attempt to `at` (tests: as if its wait had passed).
    pub fn set_due(&self, id: &DeliveryId, at: OffsetDateTime) {
        let (sub, prefix) = Self::prefix(id);
        let mut map = self.0.lock().unwrap();
        if let Some((_, r)) = map.range_mut((sub.clone(), prefix.clone())..).take_while(|((s, k), _)| *s == sub && k.starts_with(&prefix)).last() {
            r.next_attempt_at = Some(at);
        }
    }

    /// Every record, for tests that inspect the whole ledger.
    pub fn all(&self) -> Vec<Record> {
        self.0.lock().unwrap().values().cloned().collect()
    }
}

fn apply(r: &mut Record, mark: &Mark) {
    match mark {
        Mark::Queue { token, at } => {
            r.status = crate::model::RecordStatus::Queued;
            r.token = Some(token.clone());
            r.queued_at = Some(*at);
            r.owner = None;
            r.next_attempt_at = None;
        }
        Mark::Claim { owner } => {
            r.status = crate::model::RecordStatus::Attempting;
            r.owner = Some(owner.clone());
            r.queued_at = None;
        }
        Mark::Resent { at } => r.queued_at = Some(*at),
        Mark::Unqueue => r.queued_at = None,
    }
}

#[async_trait]
impl Ledger for MemoryLedger {
    async fn append(&self, record: &Record) -> PortResult<()> {
        let key = (record.delivery_id.subscription(), ledger::sort_key(&record.delivery_id, record.seq));
        let mut map = self.0.lock().unwrap();
        if map.contains_key(&key) {
            return Err(PortError::Conflict);
        }
        map.insert(key, record.clone());
        Ok(())
    }

    async fn head(&self, id: &DeliveryId, _read: Read) -> PortResult<Option<Record>> {
        let (sub, prefix) = Self::prefix(id);
        let map = self.0.lock().unwrap();
        Ok(map.range((sub.clone(), prefix.clone())..).take_while(|((s, k), _)| *s == sub && k.starts_with(&prefix)).last().map(|(_, r)| r.clone()))
    }

    async fn delivery(&self, id: &DeliveryId) -> PortResult<Option<Delivery>> {
        let (sub, prefix) = Self::prefix(id);
        let map = self.0.lock().unwrap();
        let records: Vec<Record> = map.range((sub.clone(), prefix.clone())..).take_while(|((s, k), _)| *s == sub && k.starts_with(&prefix)).map(|(_, r)| r.clone()).collect();
        Ok((!records.is_empty()).then_some(Delivery { records }))
    }

    async fn mark(&self, id: &DeliveryId, seq: u32, expect: &Expect, mark: &Mark) -> PortResult<()> {
        let mut map = self.0.lock().unwrap();
        let r = map.get_mut(&(id.subscription(), ledger::sort_key(id, seq))).ok_or(PortError::Conflict)?;
        let token_ok = expect.token.as_ref().is_none_or(|t| r.token.as_ref() == Some(t));
        if !expect.status.contains(&r.status) || !token_ok {
            return Err(PortError::Conflict);
        }
        apply(r, mark);
        Ok(())
    }

    async fn list(&self, sub: &SubscriptionId, filter: &DeliveryFilter, cursor: Option<&str>, limit: usize) -> PortResult<Page<Delivery>> {
        let Some((lo, hi)) = ledger::key_range(filter, cursor)? else {
            return Ok(Page { items: Vec::new(), next: None });
        };
        let map = self.0.lock().unwrap();
        let mut g = Grouper::default();
        let mut read = 0;
        let mut rest = map.range((sub.clone(), lo)..(sub.clone(), hi)).rev().peekable();
        while let Some((_, r)) = rest.next() {
            g.push(r.clone());
            read += 1;
            // Stop only between deliveries, as the DynamoDB adapter does.
            let boundary = rest.peek().is_none_or(|(_, n)| n.delivery_id != r.delivery_id);
            if boundary && ledger::enough(&g, filter, limit, read) {
                break;
            }
        }
        let more = rest.peek().is_some();
        Ok(ledger::page(g.finish(true), filter, limit, more))
    }

    async fn queued_before(&self, before: OffsetDateTime, limit: usize) -> PortResult<Vec<(DeliveryId, u32)>> {
        let map = self.0.lock().unwrap();
        Ok(map.values().filter(|r| r.queued_at.is_some_and(|t| t < before)).take(limit).map(|r| (r.delivery_id.clone(), r.seq)).collect())
    }

    async fn ticket(&self, sub: &SubscriptionId, second: i64) -> PortResult<u64> {
        let mut tickets = self.1.lock().unwrap();
        let n = tickets.entry((sub.clone(), second)).or_default();
        *n += 1;
        Ok(*n)
    }
}
