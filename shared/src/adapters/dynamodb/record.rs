//! The ledger record's item: short attribute names (they count towards the item size, and a
//! delivery's first record, with its event, should fit one write unit):
//!
//! | attr | meaning | | attr | meaning |
//! |---|---|---|---|---|
//! | `s` | subscription id (partition key) | | `k` | `<delivery key>#<seq>` (sort key) |
//! | `st` | status: `q a r d f c x` | | `n` / `rn` | attempts / attempts in this run |
//! | `e` / `y` | event id / type | | `tn`, `b` or `bz` | record 1: tenant, body (plain or deflated) |
//! | `m` | owner (message id) | | `na` | next attempt (Unix ms) |
//! | `tk` | redelivery token | | `qs` + `qa` | queued: index partition `q`, when (Unix ms) |
//! | `w` | written at (Unix ms) | | `x` | expires at (Unix s, the TTL) |
//! | `why` | reason | | `a*` | the attempt: `au` url, `at` start (ms), `ad` ms, `ac` status, `ae` class, `am` message, `ah` headers, `ab` body, `ar` trigger |

use super::{body_attr, n, s, take_body, Item};
use crate::ids::DeliveryId;
use crate::ledger;
use crate::model::{Attempt, FailureClass, Record, RecordStatus, RecordedEvent, Trigger};
use crate::ports::{PortError, PortResult};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;

/// The partition of the sparse `queued` index: every queued record is in it (the sweeper reads
/// them in `qa` order; there are few at any time).
pub const QUEUED_SHARD: &str = "q";

fn status_code(st: RecordStatus) -> &'static str {
    match st {
        RecordStatus::Queued => "q",
        RecordStatus::Attempting => "a",
        RecordStatus::Retrying => "r",
        RecordStatus::Delivered => "d",
        RecordStatus::Failed => "f",
        RecordStatus::Cancelled => "c",
        RecordStatus::DeadLettered => "x",
    }
}

pub fn status_attr(st: RecordStatus) -> AttributeValue {
    s(status_code(st))
}

fn status_of(code: &str) -> PortResult<RecordStatus> {
    Ok(match code {
        "q" => RecordStatus::Queued,
        "a" => RecordStatus::Attempting,
        "r" => RecordStatus::Retrying,
        "d" => RecordStatus::Delivered,
        "f" => RecordStatus::Failed,
        "c" => RecordStatus::Cancelled,
        "x" => RecordStatus::DeadLettered,
        other => return Err(PortError::Corrupt(format!("record status {other}"))),
    })
}

fn trigger_code(t: Trigger) -> &'static str {
    match t {
        Trigger::Live => "l",
        Trigger::Test => "t",
        Trigger::Redeliver => "r",
    }
}

pub fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn from_ms(v: i64) -> PortResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * 1_000_000).map_err(|e| PortError::Corrupt(e.to_string()))
}

pub fn to_item(r: &Record) -> PortResult<Item> {
    let mut item: Item = HashMap::with_capacity(24);
    item.insert("s".into(), s(r.delivery_id.subscription().as_str()));
    item.insert("k".into(), s(&ledger::sort_key(&r.delivery_id, r.seq)));
    item.insert("st".into(), status_attr(r.status));
    item.insert("n".into(), n(r.attempts));
    item.insert("rn".into(), n(r.run));
    item.insert("e".into(), s(&r.event_id));
    item.insert("y".into(), s(&r.event_type));
    item.insert("w".into(), n(ms(r.written_at)));
    item.insert("x".into(), n(r.expires_at));
    let mut opt = |k: &str, v: Option<AttributeValue>| {
        if let Some(v) = v {
            item.insert(k.into(), v);
        }
    };
    opt("m", r.owner.as_deref().map(s));
    opt("na", r.next_attempt_at.map(|t| n(ms(t))));
    opt("tk", r.token.as_deref().map(s));
    opt("why", r.reason.as_deref().map(s));
    if let Some(at) = r.queued_at {
        opt("qs", Some(s(QUEUED_SHARD)));
        opt("qa", Some(n(ms(at))));
    }
    if let Some(a) = &r.attempt {
        opt("au", Some(s(&a.url)));
        opt("at", Some(n(ms(a.started_at))));
        opt("ad", Some(n(a.duration_ms)));
        opt("ac", a.status_code.map(n));
        opt("ae", a.error_class.map(|c| s(class_code(c))));
        opt("am", a.error_message.as_deref().map(s));
        opt("ab", a.response_body.as_deref().map(s));
        if !a.response_headers.is_empty() {
            opt("ah", Some(AttributeValue::M(a.response_headers.iter().map(|(k, v)| (k.clone(), s(v))).collect())));
        }
        opt("ar", Some(s(trigger_code(a.trigger))));
        // The attempt's own number is the record's `n`.
        debug_assert_eq!(a.attempt, r.attempts);
    }
    if let Some(ev) = &r.event {
        opt("tn", Some(s(ev.tenant_id.as_str())));
        let (name, value) = body_attr(&ev.body, "b", "bz")?;
        opt(name, Some(value));
    }
    Ok(item)
}

fn class_code(c: FailureClass) -> &'static str {
    match c {
        FailureClass::Timeout => "timeout",
        FailureClass::Dns => "dns",
        FailureClass::Connect => "connect",
        FailureClass::Tls => "tls",
        FailureClass::Http => "http",
        FailureClass::Redirect => "redirect",
        FailureClass::Blocked => "blocked",
        FailureClass::Auth => "auth",
    }
}

fn class_of(code: &str) -> PortResult<FailureClass> {
    serde_json::from_value(serde_json::Value::String(code.to_owned())).map_err(|_| PortError::Corrupt(format!("failure class {code}")))
}

struct Fields(Item);

impl Fields {
    fn str(&mut self, k: &str) -> PortResult<Option<String>> {
        match self.0.remove(k) {
            None => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v)),
            Some(_) => Err(PortError::Corrupt(format!("ledger attribute {k} is not a string"))),
        }
    }

    fn req_str(&mut self, k: &str) -> PortResult<String> {
        self.str(k)?.ok_or_else(|| PortError::Corrupt(format!("ledger record without {k}")))
    }

    fn num(&mut self, k: &str) -> PortResult<Option<i64>> {
        match self.0.remove(k) {
            None => Ok(None),
            Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| PortError::Corrupt(format!("ledger attribute {k} = {v}"))),
            Some(_) => Err(PortError::Corrupt(format!("ledger attribute {k} is not a number"))),
        }
    }

    fn req_num(&mut self, k: &str) -> PortResult<i64> {
        self.num(k)?.ok_or_else(|| PortError::Corrupt(format!("ledger record without {k}")))
    }
}

pub fn from_item(item: Item) -> PortResult<Record> {
    let mut f = Fields(item);
    let sub = f.req_str("s")?;
    let k = f.req_str("k")?;
    let (key, seq) = ledger::parse_sort_key(&k).ok_or_else(|| PortError::Corrupt(format!("ledger sort key {k}")))?;
    let sub_id = crate::ids::SubscriptionId::parse(&sub).ok_or_else(|| PortError::Corrupt(format!("ledger partition {sub}")))?;
    let delivery_id = DeliveryId::from_key(&sub_id, key).ok_or_else(|| PortError::Corrupt(format!("ledger key {k}")))?;
    let attempts = f.req_num("n")? as u32;
    let attempt = match f.str("au")? {
        None => None,
        Some(url) => {
            let headers = match f.0.remove("ah") {
                Some(AttributeValue::M(m)) => m.into_iter().filter_map(|(k, v)| Some((k, v.as_s().ok()?.clone()))).collect(),
                _ => BTreeMap::new(),
            };
            Some(Attempt {
                attempt: attempts,
                url,
                started_at: from_ms(f.req_num("at")?)?,
                duration_ms: f.num("ad")?.unwrap_or(0) as u64,
                status_code: f.num("ac")?.map(|c| c as u16),
                error_class: f.str("ae")?.map(|c| class_of(&c)).transpose()?,
                error_message: f.str("am")?,
                response_headers: headers,
                response_body: f.str("ab")?,
                trigger: match f.str("ar")?.as_deref() {
                    Some("t") => Trigger::Test,
                    Some("r") => Trigger::Redeliver,
                    _ => Trigger::Live,
                },
            })
        }
    };
    let body = take_body(&mut f.0, "b", "bz")?;
    let event = match (f.str("tn")?, body) {
        (Some(t), Some(body)) => Some(RecordedEvent { tenant_id: crate::ids::TenantId::parse(&t).ok_or_else(|| PortError::Corrupt(format!("tenant {t}")))?, body }),
        _ => None,
    };
    Ok(Record {
        delivery_id,
        seq,
        event_id: f.req_str("e")?,
        event_type: f.req_str("y")?,
        status: status_of(&f.req_str("st")?)?,
        attempts,
        run: f.num("rn")?.unwrap_or(0) as u32,
        owner: f.str("m")?,
        next_attempt_at: f.num("na")?.map(from_ms).transpose()?,
        token: f.str("tk")?,
        queued_at: f.num("qa")?.map(from_ms).transpose()?,
        attempt,
        reason: f.str("why")?,
        event,
        written_at: from_ms(f.req_num("w")?)?,
        expires_at: f.req_num("x")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::dynamodb::item_size;
    use crate::ids::{EventSource, SubscriptionId, TenantId};

    /// The perf benchmark's typical envelope: 1,037 bytes.
    fn kilobyte_body() -> String {
        let data = serde_json::json!({"project": {"id": "prj_8f2c", "name": "Quarterly report", "owner": {"id": "usr_19", "email": "ana@example.com"}},
            "tags": ["finance", "q4", "board"], "description": "Lorem ipsum dolor sit amet, ".repeat(28)});
        serde_json::json!({"event_id": "evt_01jdw7a9k3", "event_type": "project.created", "tenant_id": "acme", "occurred_at": "2026-11-22T10:00:00Z", "data": data}).to_string()
    }

    pub fn first_record(body: String) -> Record {
        let at = time::macros::datetime!(2026-11-22 10:00:00.5 UTC);
        let sub = SubscriptionId::generate();
        let tenant = TenantId::parse("acme").unwrap();
        Record {
            delivery_id: DeliveryId::derive(EventSource::Queue, &tenant, "evt_01jdw7a9k3", at, &sub),
            seq: 1,
            event_id: "evt_01jdw7a9k3".into(),
            event_type: "project.created".into(),
            status: RecordStatus::Delivered,
            attempts: 1,
            run: 1,
            owner: None,
            next_attempt_at: None,
            token: None,
            queued_at: None,
            attempt: Some(Attempt {
                attempt: 1,
                url: "https://hooks.example.com/webhooks/trust".into(),
                started_at: at,
                duration_ms: 84,
                status_code: Some(200),
                error_class: None,
                error_message: None,
                response_headers: BTreeMap::from([("content-length".into(), "0".into()), ("date".into(), "Sun, 22 Nov 2026 10:00:00 GMT".into())]),
                response_body: Some(String::new()),
                trigger: Trigger::Live,
            }),
            reason: None,
            event: Some(RecordedEvent { tenant_id: tenant, body }),
            written_at: at,
            expires_at: 1_800_000_000,
        }
    }

    #[test]
    fn a_delivered_first_record_with_a_kilobyte_event_fits_one_write_unit() {
        let body = kilobyte_body();
        assert!((1000..1100).contains(&body.len()), "{}", body.len());
        let r = first_record(body);
        let item = to_item(&r).unwrap();
        assert!(item.contains_key("bz"), "the body is deflated");
        assert!(item_size(&item) <= 1024, "{} bytes", item_size(&item));
        assert_eq!(from_item(item).unwrap(), r);
    }

    #[test]
    fn every_field_round_trips() {
        let mut r = first_record("{\"short\":1}".into());
        r.seq = 7;
        r.status = RecordStatus::Retrying;
        r.owner = Some("7b50cad8-8a41-4bc0-963c-88bd8bf89730".into());
        r.next_attempt_at = Some(r.written_at + time::Duration::seconds(300));
        r.token = Some("tok".into());
        r.queued_at = Some(r.written_at);
        r.reason = Some("retries exhausted".into());
        let a = r.attempt.as_mut().unwrap();
        a.status_code = Some(503);
        a.error_class = Some(FailureClass::Http);
        a.error_message = Some("HTTP 503".into());
        a.response_body = Some("busy".into());
        a.trigger = Trigger::Redeliver;
        let item = to_item(&r).unwrap();
        assert_eq!(item["qs"].as_s().unwrap(), QUEUED_SHARD);
        assert_eq!(from_item(item).unwrap(), r);
        // A record without an attempt or event (a state change) reads back as one.
        let mut bare = r.clone();
        bare.attempt = None;
        bare.event = None;
        assert_eq!(from_item(to_item(&bare).unwrap()).unwrap(), bare);
    }
}
