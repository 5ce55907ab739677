//! The Subscriptions table: (`tenant_id`, `subscription_id`), with a sparse GSI `active`
//! (`active_tenant`, `subscription_id`; projecting what fan-out matches: `events`, `filter`,
//! `enabled`, `version`, `ordering`) whose key the adapter sets only on active subscriptions, and the TTL `purge_at`
//! on deleted ones. A tenant's count of active subscriptions lives on its Tenants item
//! (`active_subscriptions`) and moves in the same transaction as the subscription.
//!
//! Every write touches only its own attributes: the API's changes name their fields, rotation
//! copies `secret` to `previous_secret` inside the update, deletion flips `active`, and the
//! worker's health and circuit-breaker updates touch only those fields. So concurrent writers never undo each
//! other; `version` counts the API's changes (the ETag) and conditions them when asked.

use super::{av, get_one, n, s, to_item, updated, Item};
use crate::config::Config;
use crate::ids::{SubscriptionId, TenantId};
use crate::model::Subscription;
use crate::ports::*;
use crate::timefmt;
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

pub struct DynamoSubscriptions {
    client: Client,
    table: String,
    tenants_table: String,
}

/// The sparse index of active subscriptions, and its key attribute.
const ACTIVE_INDEX: &str = "active";
const ACTIVE_KEY: &str = "active_tenant";

impl DynamoSubscriptions {
    pub fn new(client: Client, config: &Config) -> Self {
        Self { client, table: config.subscriptions_table.clone(), tenants_table: config.tenants_table.clone() }
    }

    fn key(tenant: &TenantId, id: &SubscriptionId) -> Item {
        HashMap::from([("tenant_id".into(), s(tenant.as_str())), ("subscription_id".into(), s(id.as_str()))])
    }

    fn tenant_key(tenant: &TenantId) -> Item {
        HashMap::from([("tenant_id".into(), s(tenant.as_str()))])
    }

    fn from_item(item: Item) -> PortResult<Subscription> {
        super::from_item(item)
    }

    async fn read(&self, tenant: &TenantId, id: &SubscriptionId) -> PortResult<Subscription> {
        get_one(&self.client, &self.table, Self::key(tenant, id), "get subscription").await?.ok_or_else(|| PortError::Missing(format!("subscription {id}")))
    }

    /// The tenant's counter moved by `delta`, within `max` when it grows.
    fn counter(&self, tenant: &TenantId, delta: i64, max: Option<usize>) -> PortResult<TransactWriteItem> {
        let mut u = Update::builder()
            .table_name(&self.tenants_table)
            .set_key(Some(Self::tenant_key(tenant)))
            .update_expression("SET active_subscriptions = if_not_exists(active_subscriptions, :zero) + :d")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":d", n(delta));
        if let Some(max) = max {
            u = u
                .condition_expression("attribute_exists(tenant_id) AND (attribute_not_exists(active_subscriptions) OR active_subscriptions < :max)")
                .expression_attribute_values(":max", n(max.min(i64::MAX as usize)))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        }
        Ok(TransactWriteItem::builder().update(u.build().map_err(|e| PortError::backend("build counter update", e))?).build())
    }

    /// Runs a transaction; returns which of its items' conditions failed (with the item as it
    /// was, if it existed).
    async fn transact(&self, items: Vec<TransactWriteItem>, ctx: &'static str) -> PortResult<Vec<Option<Option<Item>>>> {
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(Vec::new()),
            Err(e) => match e.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(t) => Ok(t
                    .cancellation_reasons()
                    .iter()
                    .map(|r| (r.code() == Some("ConditionalCheckFailed")).then(|| r.item().cloned()))
                    .collect()),
                other => Err(PortError::backend(ctx, other)),
            },
        }
    }
}

fn failed(reasons: &[Option<Option<Item>>], i: usize) -> Option<&Option<Item>> {
    reasons.get(i).and_then(Option::as_ref)
}

/// Why an expected-version condition failed: the item as it was says.
fn stale_or_missing(old: Option<&Item>, id: &SubscriptionId) -> PortError {
    match old {
        Some(_) => PortError::Conflict,
        None => PortError::Missing(format!("subscription {id}")),
    }
}

fn version_of(item: &Item) -> Option<u64> {
    item.get("version")?.as_n().ok()?.parse().ok()
}

#[async_trait]
impl SubscriptionStore for DynamoSubscriptions {
    async fn create(&self, sub: &Subscription, max_active: usize) -> PortResult<()> {
        let mut item = to_item(sub)?;
        if sub.active {
            item.insert(ACTIVE_KEY.into(), s(sub.tenant_id.as_str()));
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(subscription_id)")
            .build()
            .map_err(|e| PortError::backend("build subscription put", e))?;
        let reasons = self.transact(vec![self.counter(&sub.tenant_id, 1, Some(max_active))?, TransactWriteItem::builder().put(put).build()], "create subscription").await?;
        if let Some(tenant) = failed(&reasons, 0) {
            return Err(match tenant {
                Some(_) => PortError::LimitReached,
                None => PortError::Missing(format!("tenant {}", sub.tenant_id)),
            });
        }
        if failed(&reasons, 1).is_some() {
            return Err(PortError::Conflict);
        }
        Ok(())
    }

    async fn get(&self, tenant: &TenantId, id: &SubscriptionId) -> PortResult<Option<Subscription>> {
        get_one(&self.client, &self.table, Self::key(tenant, id), "get subscription").await
    }

    async fn list_page(&self, tenant: &TenantId, cursor: Option<&SubscriptionId>, limit: usize) -> PortResult<Page<Subscription>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("tenant_id = :t")
            .expression_attribute_values(":t", s(tenant.as_str()))
            .set_exclusive_start_key(cursor.map(|c| Self::key(tenant, c)))
            .limit(limit as i32 + 1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| PortError::backend("query subscriptions", e.into_service_error()))?;
        let mut items = out.items.unwrap_or_default().into_iter().map(Self::from_item).collect::<PortResult<Vec<_>>>()?;
        // A page may end early (DynamoDB reads at most 1 MB per call): go on after its last item.
        let more = items.len() > limit || out.last_evaluated_key.is_some_and(|k| !k.is_empty());
        items.truncate(limit);
        let next = more.then(|| items.last().map(|s| s.subscription_id.to_string())).flatten();
        Ok(Page { items, next })
    }

    async fn subscribers(&self, tenant: &TenantId) -> PortResult<Vec<Subscriber>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(ACTIVE_INDEX)
                .key_condition_expression("#k = :t")
                .expression_attribute_names("#k", ACTIVE_KEY)
                .expression_attribute_values(":t", s(tenant.as_str()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| PortError::backend("query active subscriptions", e.into_service_error()))?;
            for item in page.items.unwrap_or_default() {
                out.push(super::from_item::<Subscriber>(item)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    async fn update(&self, tenant: &TenantId, id: &SubscriptionId, change: &SubscriptionChange, expect: Option<u64>) -> PortResult<Subscription> {
        let mut set = vec!["version = if_not_exists(version, :zero) + :one".to_owned()];
        let mut remove: Vec<&str> = Vec::new();
        let mut names: HashMap<String, String> = HashMap::new();
        let mut values: Item = HashMap::from([(":zero".into(), n(0)), (":one".into(), n(1))]);
        let mut put = |field: &str, value: AttributeValue, set: &mut Vec<String>| {
            names.insert(format!("#{field}"), field.to_owned());
            values.insert(format!(":{field}"), value);
            set.push(format!("#{field} = :{field}"));
        };
        if let Some(v) = &change.url {
            put("url", s(v), &mut set);
        }
        for (field, v) in [("name", &change.name), ("description", &change.description)] {
            match v {
                Some(Some(text)) => put(field, s(text), &mut set),
                Some(None) => remove.push(field),
                None => {}
            }
        }
        if let Some(v) = &change.events {
            put("events", av(v)?, &mut set);
        }
        match &change.filter {
            Some(Some(f)) => put("filter", s(&f.to_text()), &mut set),
            Some(None) => remove.push("filter"),
            None => {}
        }
        if let Some(v) = change.payload {
            put("payload", s(v.as_str()), &mut set);
        }
        match &change.retry {
            Some(Some(r)) => put("retry", av(r)?, &mut set),
            Some(None) => remove.push("retry"),
            None => {}
        }
        if let Some(v) = &change.headers {
            put("headers", av(v)?, &mut set);
        }
        if let Some(v) = &change.auth {
            put("auth", av(v)?, &mut set);
        }
        match &change.signature {
            Some(v) if v.is_default() => remove.push("signature"),
            Some(v) => put("signature", av(v)?, &mut set),
            None => {}
        }
        match &change.tls {
            Some(Some(v)) => put("tls", av(v)?, &mut set),
            Some(None) => remove.push("tls"),
            None => {}
        }
        match change.rate_limit_per_second {
            Some(Some(v)) => put("rate_limit_per_second", n(v), &mut set),
            Some(None) => remove.push("rate_limit_per_second"),
            None => {}
        }
        match change.ordering {
            Some(crate::model::Ordering::Unordered) => remove.push("ordering"),
            Some(crate::model::Ordering::Fifo) => put("ordering", s("fifo"), &mut set),
            None => {}
        }
        match change.enabled {
            Some(true) => {
                put("enabled", AttributeValue::Bool(true), &mut set);
                set.push("failure_count = :zero".into());
                remove.extend(["disabled_reason", "first_failure_at"]);
            }
            Some(false) => {
                put("enabled", AttributeValue::Bool(false), &mut set);
                remove.push("disabled_reason");
            }
            None => {}
        }
        if let Some((secret, until)) = &change.rotate {
            // Copied inside the update: a concurrent rotation cannot lose the secret in between.
            set.push("previous_secret = secret".into());
            put("secret", s(&secret.stored()), &mut set);
            put("previous_secret_expires_at", s(&timefmt::format(*until)), &mut set);
        }
        if let Some(at) = change.at {
            put("updated_at", s(&timefmt::format(at)), &mut set);
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            for r in &remove {
                names.insert(format!("#{r}"), (*r).to_owned());
            }
            expression.push_str(&format!(" REMOVE {}", remove.iter().map(|r| format!("#{r}")).collect::<Vec<_>>().join(", ")));
        }
        let mut condition = "attribute_exists(subscription_id)".to_owned();
        if let Some(v) = expect {
            condition.push_str(" AND version = :expect");
            values.insert(":expect".into(), n(v));
        }
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(tenant, id)))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match res {
            Ok(out) => Self::from_item(out.attributes.unwrap_or_default()),
            Err(e) => match e.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(c) => Err(stale_or_missing(c.item(), id)),
                other => Err(PortError::backend("update subscription", other)),
            },
        }
    }

    async fn set_active(&self, tenant: &TenantId, id: &SubscriptionId, change: ActiveChange, expect: Option<u64>) -> PortResult<Subscription> {
        let (set_expr, active_now, was, delta, max, at) = match &change {
            ActiveChange::Delete { at, .. } => ("SET active = :to, updated_at = :at, purge_at = :purge, version = if_not_exists(version, :zero) + :one REMOVE active_tenant", false, true, -1, None, *at),
            ActiveChange::Restore { at, max_active } => ("SET active = :to, updated_at = :at, active_tenant = :tenant, version = if_not_exists(version, :zero) + :one REMOVE purge_at", true, false, 1, Some(*max_active), *at),
        };
        let mut values: Item = HashMap::from([
            (":to".into(), AttributeValue::Bool(active_now)),
            (":was".into(), AttributeValue::Bool(was)),
            (":at".into(), s(&timefmt::format(at))),
            (":zero".into(), n(0)),
            (":one".into(), n(1)),
        ]);
        match &change {
            ActiveChange::Delete { purge_at, .. } => values.insert(":purge".into(), n(*purge_at)),
            ActiveChange::Restore { .. } => values.insert(":tenant".into(), s(tenant.as_str())),
        };
        let mut condition = "active = :was".to_owned();
        if let Some(v) = expect {
            condition.push_str(" AND version = :expect");
            values.insert(":expect".into(), n(v));
        }
        let sub_update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(tenant, id)))
            .update_expression(set_expr)
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| PortError::backend("build subscription update", e))?;
        let reasons = self.transact(vec![TransactWriteItem::builder().update(sub_update).build(), self.counter(tenant, delta, max)?], "change subscription activity").await?;
        if let Some(old) = failed(&reasons, 0) {
            return match old {
                None => Err(PortError::Missing(format!("subscription {id}"))),
                Some(item) if expect.is_some_and(|v| version_of(item) != Some(v)) => Err(PortError::Conflict),
                // Already in that state: nothing to do.
                Some(item) => Self::from_item(item.clone()),
            };
        }
        if failed(&reasons, 1).is_some() {
            return Err(PortError::LimitReached);
        }
        self.read(tenant, id).await
    }

    async fn record_health(&self, tenant: &TenantId, id: &SubscriptionId, change: HealthChange) -> PortResult<Option<HealthAfter>> {
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(tenant, id)))
            .condition_expression("attribute_exists(subscription_id)");
        // Only what changed (the IAM policy's dynamodb:Attributes condition allows no more): the
        // new values, or for a success the old count (did it end a run of failures?).
        let success = matches!(change, HealthChange::Delivered { .. });
        let req = req.return_values(if success { ReturnValue::UpdatedOld } else { ReturnValue::UpdatedNew });
        let req = match change {
            HealthChange::Delivered { at } => req
                .update_expression("SET failure_count = :zero, last_delivered_at = :at REMOVE first_failure_at")
                .expression_attribute_values(":zero", AttributeValue::N("0".into()))
                .expression_attribute_values(":at", av(timefmt::format(at))?),
            HealthChange::Failed { count, since } => req
                .update_expression("SET failure_count = if_not_exists(failure_count, :zero) + :k, first_failure_at = if_not_exists(first_failure_at, :at)")
                .expression_attribute_values(":zero", AttributeValue::N("0".into()))
                .expression_attribute_values(":k", AttributeValue::N(count.to_string()))
                .expression_attribute_values(":at", av(timefmt::format(since))?),
            HealthChange::Disable { reason, at } => req
                .update_expression("SET enabled = :f, disabled_reason = :r, updated_at = :at")
                .expression_attribute_values(":f", AttributeValue::Bool(false))
                .expression_attribute_values(":r", s(&reason))
                .expression_attribute_values(":at", av(timefmt::format(at))?),
        };
        match updated(req.send().await, "update subscription health") {
            Ok(out) => {
                let mut a = out.attributes.unwrap_or_default();
                let failure_count = match a.remove("failure_count") {
                    Some(AttributeValue::N(n)) => n.parse().map_err(|_| PortError::Corrupt(format!("failure_count {n}")))?,
                    _ => 0,
                };
                let first_failure_at = match a.remove("first_failure_at") {
                    Some(AttributeValue::S(t)) => Some(timefmt::parse(&t).ok_or_else(|| PortError::Corrupt(format!("first_failure_at {t}")))?),
                    _ => None,
                };
                if success {
                    return Ok(Some(HealthAfter { failure_count: 0, first_failure_at: None, ended_run: failure_count > 0 }));
                }
                Ok(Some(HealthAfter { failure_count, first_failure_at, ended_run: false }))
            }
            Err(PortError::Conflict) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn move_circuit(&self, tenant: &TenantId, id: &SubscriptionId, change: &CircuitChange) -> PortResult<()> {
        let t = |at: time::OffsetDateTime| s(&timefmt::format(at));
        let req = self.client.update_item().table_name(&self.table).set_key(Some(Self::key(tenant, id)));
        let req = match change {
            CircuitChange::Open { at, probe_at } => req
                .update_expression("SET circuit_state = :open, circuit_since = :at, circuit_probe_at = :p, circuit_probes = :zero")
                .condition_expression("attribute_exists(subscription_id) AND (attribute_not_exists(circuit_state) OR circuit_state = :closed)")
                .expression_attribute_values(":closed", s("closed"))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":at", t(*at))
                .expression_attribute_values(":p", t(*probe_at)),
            // RFC 3339 UTC timestamps of one format compare as strings in time order.
            CircuitChange::Probe { at, lease_until } => req
                .update_expression("SET circuit_state = :half, circuit_probe_at = :p")
                .condition_expression("circuit_state IN (:open, :half) AND circuit_probe_at <= :at")
                .expression_attribute_values(":half", s("half_open"))
                .expression_attribute_values(":at", t(*at))
                .expression_attribute_values(":p", t(*lease_until)),
            CircuitChange::Reopen { probe_at } => req
                .update_expression("SET circuit_state = :open, circuit_probe_at = :p ADD circuit_probes :one")
                .condition_expression("circuit_state = :half")
                .expression_attribute_values(":half", s("half_open"))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":p", t(*probe_at)),
            CircuitChange::Close { at } => req
                .update_expression("SET circuit_state = :closed, circuit_since = :at REMOVE circuit_probe_at, circuit_probes")
                .condition_expression("circuit_state IN (:open, :half)")
                .expression_attribute_values(":closed", s("closed"))
                .expression_attribute_values(":half", s("half_open"))
                .expression_attribute_values(":at", t(*at)),
        };
        let req = req.expression_attribute_values(":open", s("open"));
        updated(req.send().await, "move the circuit breaker").map(|_| ())
    }
}
