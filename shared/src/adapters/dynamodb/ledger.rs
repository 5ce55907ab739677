//! The Deliveries table, the ledger: partition `s` (subscription id), sort key `k`
//! (`<delivery key>#<seq>`), sparse GSI `queued` (`qs`, `qa`; keys only) of the records the API
//! queued for redelivery. Every write is conditional: an append on its sort key being free, a
//! mark on the status (and token) it expects.

use super::record::{self, status_attr, QUEUED_SHARD};
use super::{n, s, Item};
use crate::config::Config;
use crate::ids::{DeliveryId, SubscriptionId};
use crate::ledger::{self, Grouper};
use crate::model::Record;
use crate::ports::*;
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use time::OffsetDateTime;

/// Items per Query page of a listing.
const LIST_PAGE: i32 = 100;

pub struct DynamoLedger {
    client: Client,
    table: String,
}

impl DynamoLedger {
    pub fn new(client: Client, config: &Config) -> Self {
        Self { client, table: config.deliveries_table.clone() }
    }

    /// The records of one delivery, newest first if `newest_first`; at most `limit`.
    async fn query_delivery(&self, id: &DeliveryId, strong: bool, newest_first: bool, limit: Option<i32>) -> PortResult<Vec<Record>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("s = :s AND begins_with(k, :p)")
                .expression_attribute_values(":s", s(id.subscription().as_str()))
                .expression_attribute_values(":p", s(&format!("{}#", id.key())))
                .scan_index_forward(!newest_first)
                .consistent_read(strong)
                .set_limit(limit)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| PortError::backend("query delivery records", e.into_service_error()))?;
            for item in page.items.unwrap_or_default() {
                out.push(record::from_item(item)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() && limit.is_none() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}

#[async_trait]
impl Ledger for DynamoLedger {
    async fn append(&self, r: &Record) -> PortResult<()> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record::to_item(r)?))
            .condition_expression("attribute_not_exists(k)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                PutItemError::ConditionalCheckFailedException(_) => Err(PortError::Conflict),
                other => Err(PortError::backend("append delivery record", other)),
            },
        }
    }

    async fn head(&self, id: &DeliveryId, read: Read) -> PortResult<Option<Record>> {
        Ok(self.query_delivery(id, read == Read::Strong, true, Some(1)).await?.pop())
    }

    async fn delivery(&self, id: &DeliveryId) -> PortResult<Option<Delivery>> {
        let records = self.query_delivery(id, true, false, None).await?;
        Ok((!records.is_empty()).then_some(Delivery { records }))
    }

    async fn mark(&self, id: &DeliveryId, seq: u32, expect: &Expect, mark: &Mark) -> PortResult<()> {
        let mut values: Item = HashMap::new();
        let mut allowed = Vec::new();
        for (i, st) in expect.status.iter().enumerate() {
            values.insert(format!(":e{i}"), status_attr(*st));
            allowed.push(format!(":e{i}"));
        }
        let mut condition = format!("st IN ({})", allowed.join(", "));
        if let Some(t) = &expect.token {
            condition.push_str(" AND tk = :etk");
            values.insert(":etk".into(), s(t));
        }
        let update = match mark {
            Mark::Queue { token, at } => {
                values.insert(":st".into(), status_attr(crate::model::RecordStatus::Queued));
                values.insert(":tk".into(), s(token));
                values.insert(":qs".into(), s(QUEUED_SHARD));
                values.insert(":qa".into(), n(record::ms(*at)));
                "SET st = :st, tk = :tk, qs = :qs, qa = :qa REMOVE m, na"
            }
            Mark::Claim { owner } => {
                values.insert(":st".into(), status_attr(crate::model::RecordStatus::Attempting));
                values.insert(":m".into(), s(owner));
                "SET st = :st, m = :m REMOVE qs, qa"
            }
            Mark::Resent { at } => {
                values.insert(":qa".into(), n(record::ms(*at)));
                "SET qa = :qa"
            }
            Mark::Unqueue => "REMOVE qs, qa",
        };
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("s", s(id.subscription().as_str()))
            .key("k", s(&ledger::sort_key(id, seq)))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        super::updated(res, "mark delivery record").map(|_| ())
    }

    async fn list(&self, sub: &SubscriptionId, filter: &DeliveryFilter, cursor: Option<&str>, limit: usize) -> PortResult<Page<Delivery>> {
        let Some((lo, hi)) = ledger::key_range(filter, cursor)? else {
            return Ok(Page { items: Vec::new(), next: None });
        };
        let mut g = Grouper::default();
        let mut read = 0;
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("s = :s AND k BETWEEN :lo AND :hi")
                .expression_attribute_values(":s", s(sub.as_str()))
                .expression_attribute_values(":lo", s(&lo))
                .expression_attribute_values(":hi", s(&hi))
                .scan_index_forward(false)
                .consistent_read(true)
                .limit(LIST_PAGE)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| PortError::backend("query deliveries", e.into_service_error()))?;
            for item in out.items.unwrap_or_default() {
                g.push(record::from_item(item)?);
                read += 1;
            }
            let reached_end = !matches!(&out.last_evaluated_key, Some(k) if !k.is_empty());
            // The open delivery may continue on the next page: only complete ones count.
            if reached_end || ledger::enough(&g, filter, limit, read) {
                return Ok(ledger::page(g.finish(reached_end), filter, limit, !reached_end));
            }
            start = out.last_evaluated_key;
        }
    }

    async fn queued_before(&self, before: OffsetDateTime, limit: usize) -> PortResult<Vec<(DeliveryId, u32)>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("queued")
            .key_condition_expression("qs = :q AND qa < :t")
            .expression_attribute_values(":q", s(QUEUED_SHARD))
            .expression_attribute_values(":t", AttributeValue::N(record::ms(before).to_string()))
            .limit(limit as i32)
            .send()
            .await
            .map_err(|e| PortError::backend("query queued deliveries", e.into_service_error()))?;
        let mut found = Vec::new();
        for item in out.items.unwrap_or_default() {
            let (Some(AttributeValue::S(sub)), Some(AttributeValue::S(k))) = (item.get("s"), item.get("k")) else { continue };
            let parsed = SubscriptionId::parse(sub).zip(ledger::parse_sort_key(k)).and_then(|(sub, (key, seq))| Some((DeliveryId::from_key(&sub, key)?, seq)));
            found.extend(parsed);
        }
        Ok(found)
    }

    async fn ticket(&self, sub: &SubscriptionId, second: i64) -> PortResult<u64> {
        // Its own partition per subscription and second (`rate#<sub>#<second>`, never a
        // subscription id), so a busy limit spreads over partitions and no listing of the
        // subscription's deliveries meets it; it expires a minute later (TTL `x`).
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("s", s(&format!("{RATE_PREFIX}{sub}#{second}")))
            .key("k", s("n"))
            .update_expression("ADD n :one SET x = :x")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":x", n(second + 60))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| PortError::backend("take a rate-limit ticket", e.into_service_error()))?;
        match out.attributes.as_ref().and_then(|a| a.get("n")) {
            Some(AttributeValue::N(v)) => v.parse().map_err(|_| PortError::Corrupt(format!("rate ticket {v}"))),
            _ => Err(PortError::Corrupt("rate ticket missing".into())),
        }
    }
}

/// The partition-key prefix of the rate limiter's counters in the ledger table.
pub const RATE_PREFIX: &str = "rate#";
