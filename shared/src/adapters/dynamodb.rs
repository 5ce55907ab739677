//! DynamoDB adapters. Items are the domain records serialised with serde_dynamo; key names are
//! the records' own fields (see docs/architecture.md for the tables and keys).

use crate::config::Config;
use crate::ids::{DeliveryId, SubscriptionId, TenantId};
use crate::model::{ApiKeyRecord, Attempt, Delivery, DeliveryStatus, StoredEvent, Subscription, TenantRecord};
use crate::ports::*;
use crate::timefmt;
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::Client;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use flate2::Compression;
use std::collections::HashMap;
use std::io::{Read, Write};

type Item = HashMap<String, AttributeValue>;

fn to_item<T: Serialize>(value: &T) -> StoreResult<Item> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_item<T: DeserializeOwned>(item: Item) -> StoreResult<T> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn av<T: Serialize>(value: T) -> StoreResult<AttributeValue> {
    serde_dynamo::to_attribute_value(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// Puts `item` unless an item with the same key exists.
async fn put_new(client: &Client, table: &str, item: Item, key_attr: &str, ctx: &'static str) -> StoreResult<Created> {
    let res = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#k)")
        .expression_attribute_names("#k", key_attr)
        .send()
        .await;
    match res {
        Ok(_) => Ok(Created::New),
        Err(e) => match e.into_service_error() {
            PutItemError::ConditionalCheckFailedException(_) => Ok(Created::Existed),
            other => Err(StoreError::backend(ctx, other)),
        },
    }
}

/// How a `GetItem` reads.
#[derive(Clone, Copy, PartialEq)]
enum Consistency {
    Strong,
    /// Half the read units; may miss a write of the last second or so.
    Eventual,
}

/// One item; only the `projection` attributes if given.
async fn get_item(client: &Client, table: &str, key: Item, projection: Option<&str>, read: Consistency, ctx: &'static str) -> StoreResult<Option<Item>> {
    let out = client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .set_projection_expression(projection.map(str::to_owned))
        .consistent_read(read == Consistency::Strong)
        .send()
        .await
        .map_err(|e| StoreError::backend(ctx, e.into_service_error()))?;
    Ok(out.item)
}

async fn get_one<T: DeserializeOwned>(client: &Client, table: &str, key: Item, ctx: &'static str) -> StoreResult<Option<T>> {
    get_item(client, table, key, None, Consistency::Strong, ctx).await?.map(from_item).transpose()
}

/// An UpdateItem's result, its failed condition as `Conflict`.
fn updated<T>(res: Result<T, SdkError<UpdateItemError, HttpResponse>>, ctx: &'static str) -> StoreResult<T> {
    res.map_err(|e| match e.into_service_error() {
        UpdateItemError::ConditionalCheckFailedException(_) => StoreError::Conflict,
        other => StoreError::backend(ctx, other),
    })
}

/// Every item of one partition (of the table, or of `index`), following pagination.
async fn query_partition<T: DeserializeOwned>(
    client: &Client,
    table: &str,
    index: Option<&str>,
    key_attr: &str,
    key: &str,
    ctx: &'static str,
) -> StoreResult<Vec<T>> {
    let mut out = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let page = client
            .query()
            .table_name(table)
            .set_index_name(index.map(str::to_owned))
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", key_attr)
            .expression_attribute_values(":v", s(key))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| StoreError::backend(ctx, e.into_service_error()))?;
        for item in page.items.unwrap_or_default() {
            out.push(from_item(item)?);
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok(out),
        }
    }
}

pub struct DynamoSubscriptions {
    client: Client,
    table: String,
}

impl DynamoSubscriptions {
    pub fn new(client: Client, config: &Config) -> Self {
        Self { client, table: config.subscriptions_table.clone() }
    }

    fn key(tenant: &TenantId, id: &SubscriptionId) -> Item {
        HashMap::from([("tenant_id".into(), s(tenant.as_str())), ("subscription_id".into(), s(id.as_str()))])
    }
}

#[async_trait]
impl SubscriptionStore for DynamoSubscriptions {
    async fn create(&self, sub: &Subscription) -> StoreResult<()> {
        match put_new(&self.client, &self.table, to_item(sub)?, "subscription_id", "put subscription").await? {
            Created::New => Ok(()),
            Created::Existed => Err(StoreError::Conflict),
        }
    }

    async fn get(&self, tenant: &TenantId, id: &SubscriptionId) -> StoreResult<Option<Subscription>> {
        get_one(&self.client, &self.table, Self::key(tenant, id), "get subscription").await
    }

    async fn list(&self, tenant: &TenantId) -> StoreResult<Vec<Subscription>> {
        query_partition(&self.client, &self.table, None, "tenant_id", tenant.as_str(), "query subscriptions").await
    }

    async fn list_page(&self, tenant: &TenantId, cursor: Option<&str>, limit: usize) -> StoreResult<Page<Subscription>> {
        let start = match cursor {
            None => None,
            Some(c) => Some(Self::key(tenant, &SubscriptionId::parse(c).ok_or(StoreError::BadCursor)?)),
        };
        // One more than asked, to know whether another page follows.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("tenant_id = :t")
            .expression_attribute_values(":t", s(tenant.as_str()))
            .set_exclusive_start_key(start)
            .limit(limit as i32 + 1)
            .send()
            .await
            .map_err(|e| StoreError::backend("query subscriptions", e.into_service_error()))?;
        let mut items = out.items.unwrap_or_default().into_iter().map(from_item).collect::<StoreResult<Vec<Subscription>>>()?;
        let next = (items.len() > limit).then(|| {
            items.truncate(limit);
            items.last().map(|s| s.subscription_id.to_string())
        });
        Ok(Page { items, next: next.flatten() })
    }

    async fn replace(&self, sub: &Subscription) -> StoreResult<()> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(sub)?))
            .condition_expression("attribute_exists(subscription_id)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                PutItemError::ConditionalCheckFailedException(_) => Err(StoreError::Conflict),
                other => Err(StoreError::backend("replace subscription", other)),
            },
        }
    }

    async fn record_health(&self, tenant: &TenantId, id: &SubscriptionId, change: HealthChange) -> StoreResult<Option<Subscription>> {
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(tenant, id)))
            .condition_expression("attribute_exists(subscription_id)")
            .return_values(ReturnValue::AllNew);
        let req = match change {
            HealthChange::Delivered { at } => req
                .update_expression("SET failure_count = :zero, last_delivered_at = :at REMOVE first_failure_at")
                .expression_attribute_values(":zero", AttributeValue::N("0".into()))
                .expression_attribute_values(":at", av(timefmt::format(at))?),
            HealthChange::Failed { at } => req
                .update_expression("SET failure_count = if_not_exists(failure_count, :zero) + :one, first_failure_at = if_not_exists(first_failure_at, :at)")
                .expression_attribute_values(":zero", AttributeValue::N("0".into()))
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .expression_attribute_values(":at", av(timefmt::format(at))?),
            HealthChange::Disable { reason, at } => req
                .update_expression("SET enabled = :f, disabled_reason = :r, updated_at = :at")
                .expression_attribute_values(":f", AttributeValue::Bool(false))
                .expression_attribute_values(":r", s(&reason))
                .expression_attribute_values(":at", av(timefmt::format(at))?),
        };
        match updated(req.send().await, "update subscription health") {
            Ok(out) => out.attributes.map(from_item).transpose(),
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

pub struct DynamoApiKeys {
    client: Client,
    table: String,
}

impl DynamoApiKeys {
    pub fn new(client: Client, config: &Config) -> Self {
        Self { client, table: config.api_keys_table.clone() }
    }
}

#[async_trait]
impl ApiKeyStore for DynamoApiKeys {
    async fn put(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        match put_new(&self.client, &self.table, to_item(key)?, "key_hash", "put api key").await? {
            Created::New => Ok(()),
            Created::Existed => Err(StoreError::Conflict),
        }
    }

    async fn get(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let key = HashMap::from([("key_hash".into(), s(key_hash))]);
        get_one(&self.client, &self.table, key, "get api key").await
    }

    async fn list_for_tenant(&self, tenant: &TenantId) -> StoreResult<Vec<ApiKeyRecord>> {
        query_partition(&self.client, &self.table, Some("by_tenant"), "tenant_id", tenant.as_str(), "query api keys").await
    }

    async fn delete(&self, key_hash: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("key_hash", s(key_hash))
            .send()
            .await
            .map_err(|e| StoreError::backend("delete api key", e.into_service_error()))?;
        Ok(())
    }
}

pub struct DynamoTenants {
    client: Client,
    table: String,
}

impl DynamoTenants {
    pub fn new(client: Client, config: &Config) -> Self {
        Self { client, table: config.tenants_table.clone() }
    }
}

#[async_trait]
impl TenantStore for DynamoTenants {
    async fn register(&self, tenant: &TenantRecord) -> StoreResult<()> {
        put_new(&self.client, &self.table, to_item(tenant)?, "tenant_id", "put tenant").await.map(|_| ())
    }

    async fn exists(&self, tenant: &TenantId) -> StoreResult<bool> {
        let key = HashMap::from([("tenant_id".into(), s(tenant.as_str()))]);
        Ok(get_one::<TenantRecord>(&self.client, &self.table, key, "get tenant").await?.is_some())
    }
}

pub struct DynamoDeliveries {
    client: Client,
    events_table: String,
    deliveries_table: String,
    attempts_table: String,
}

impl DynamoDeliveries {
    pub fn new(client: Client, config: &Config) -> Self {
        Self {
            client,
            events_table: config.events_table.clone(),
            deliveries_table: config.deliveries_table.clone(),
            attempts_table: config.attempts_table.clone(),
        }
    }
}

/// A deliveries cursor is the `by_subscription` key of the last item returned.
fn encode_delivery_cursor(d: &Delivery) -> String {
    B64URL.encode(format!("{}|{}", timefmt::format(d.created_at), d.delivery_id))
}

/// The start key a cursor stands for; `BadCursor` unless it is well-formed and inside the
/// filter's time range (DynamoDB refuses a start key outside the key condition).
fn decode_delivery_cursor(sub: &SubscriptionId, cursor: &str, filter: &DeliveryFilter) -> StoreResult<Item> {
    let raw = B64URL.decode(cursor).map_err(|_| StoreError::BadCursor)?;
    let text = String::from_utf8(raw).map_err(|_| StoreError::BadCursor)?;
    let (created, id) = text.split_once('|').ok_or(StoreError::BadCursor)?;
    let id = DeliveryId::parse(id).ok_or(StoreError::BadCursor)?;
    let at = timefmt::parse(created).ok_or(StoreError::BadCursor)?;
    if filter.since.is_some_and(|t| at < t) || filter.until.is_some_and(|t| at >= t) {
        return Err(StoreError::BadCursor);
    }
    Ok(HashMap::from([
        ("subscription_id".into(), s(sub.as_str())),
        ("created_at".into(), s(&timefmt::format(at))),
        ("delivery_id".into(), s(id.as_str())),
    ]))
}

/// Event bodies longer than this are stored deflated (`body_deflate`, binary) when that is
/// smaller: a 1 KB envelope becomes ≈ 0.6 KB, so its item costs one write unit instead of two.
const DEFLATE_OVER: usize = 400;

fn event_item(event: &StoredEvent) -> StoreResult<Item> {
    let mut item = to_item(event)?;
    if event.body.len() > DEFLATE_OVER {
        let mut z = DeflateEncoder::new(Vec::with_capacity(event.body.len() / 2), Compression::default());
        z.write_all(event.body.as_bytes()).and_then(|()| z.finish()).map(|z| {
            if z.len() < event.body.len() {
                item.remove("body");
                item.insert("body_deflate".into(), AttributeValue::B(Blob::new(z)));
            }
        }).map_err(|e| StoreError::Corrupt(format!("deflate event body: {e}")))?;
    }
    Ok(item)
}

fn event_from_item(mut item: Item) -> StoreResult<StoredEvent> {
    if let Some(AttributeValue::B(z)) = item.remove("body_deflate") {
        let mut body = String::new();
        DeflateDecoder::new(z.as_ref()).read_to_string(&mut body).map_err(|e| StoreError::Corrupt(format!("inflate event body: {e}")))?;
        item.insert("body".into(), AttributeValue::S(body));
    }
    from_item(item)
}

/// The attribute of a delivery item that holds its first successful attempt.
const INLINE_ATTEMPT: &str = "success_attempt";
/// Largest attempt kept inline, so the delivery item (≈ 400 bytes) stays under the 1 KB of one
/// write unit.
const MAX_INLINE_ATTEMPT_BYTES: usize = 560;

/// The size DynamoDB bills an attribute value by: strings and binaries by length, numbers by
/// (significant digits / 2) + 1, lists and maps 3 bytes plus 1 per element.
pub fn value_size(v: &AttributeValue) -> usize {
    let num = |n: &str| n.chars().filter(|c| c.is_ascii_digit()).count().div_ceil(2) + 1;
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => num(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(l) => 3 + l.iter().map(|x| value_size(x) + 1).sum::<usize>(),
        AttributeValue::M(m) => 3 + m.iter().map(|(k, x)| k.len() + value_size(x) + 1).sum::<usize>(),
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| num(n)).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}

/// An item's size as DynamoDB bills it: attribute names plus values.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

#[derive(Debug, thiserror::Error)]
#[error("the delivery does not exist")]
struct NotFound;

impl DynamoDeliveries {
    /// Settles the delivery after `attempt`; with `inline`, also stores that attempt on it, on
    /// condition that it holds none yet. `Conflict` if the condition fails.
    async fn update_delivery(&self, attempt: &Attempt, status: DeliveryStatus, inline: Option<Item>) -> StoreResult<()> {
        let now = timefmt::format(time::OffsetDateTime::now_utc());
        let mut set = "SET #st = :st, attempts = :n, updated_at = :u, last_status_code = :c, last_error_class = :e, last_attempt_at = :a".to_owned();
        let mut condition = "attribute_exists(delivery_id)".to_owned();
        let mut req = self.client.update_item();
        if let Some(item) = inline {
            set.push_str(", #in = :in");
            condition.push_str(" AND attribute_not_exists(#in)");
            req = req.expression_attribute_names("#in", INLINE_ATTEMPT).expression_attribute_values(":in", AttributeValue::M(item));
        }
        let res = req
            .table_name(&self.deliveries_table)
            .key("delivery_id", s(attempt.delivery_id.as_str()))
            .update_expression(set)
            .condition_expression(condition)
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":st", av(status)?)
            .expression_attribute_values(":n", AttributeValue::N(attempt.attempt.to_string()))
            .expression_attribute_values(":u", s(&now))
            .expression_attribute_values(":c", av(attempt.status_code)?)
            .expression_attribute_values(":e", av(attempt.error_class)?)
            .expression_attribute_values(":a", s(&timefmt::format(attempt.started_at)))
            .send()
            .await;
        updated(res, "update delivery").map(|_| ())
    }

    /// The delivery items for `keys` (index items), in the same order; missing ones are skipped.
    async fn get_deliveries(&self, keys: Vec<Item>) -> StoreResult<Vec<Delivery>> {
        let mut found: HashMap<String, Delivery> = HashMap::new();
        let ids: Vec<String> = keys.iter().filter_map(|k| k.get("delivery_id")?.as_s().ok().cloned()).collect();
        for chunk in ids.chunks(100) {
            let mut pending: Vec<Item> = chunk.iter().map(|id| HashMap::from([("delivery_id".to_owned(), s(id))])).collect();
            for round in 0.. {
                let req = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::backend("build batch get", e))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.deliveries_table, req)
                    .send()
                    .await
                    .map_err(|e| StoreError::backend("batch get deliveries", e.into_service_error()))?;
                for item in out.responses.and_then(|mut r| r.remove(&self.deliveries_table)).unwrap_or_default() {
                    let d: Delivery = from_item(item)?;
                    found.insert(d.delivery_id.as_str().to_owned(), d);
                }
                pending = out.unprocessed_keys.and_then(|mut u| u.remove(&self.deliveries_table)).map(|k| k.keys).unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if round == 8 {
                    return Err(StoreError::backend("batch get deliveries", NotFound));
                }
                tokio::time::sleep(std::time::Duration::from_millis(20 << round)).await;
            }
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }
}

#[async_trait]
impl DeliveryStore for DynamoDeliveries {
    async fn put_event(&self, event: &StoredEvent) -> StoreResult<Created> {
        put_new(&self.client, &self.events_table, event_item(event)?, "event_id", "put event").await
    }

    async fn get_event(&self, tenant: &TenantId, event_id: &str) -> StoreResult<Option<StoredEvent>> {
        // An event item never changes once written, so an eventually consistent read (half the
        // read units) can only miss it if it comes within a second or so of the put; a strong
        // read settles that case.
        let key = || HashMap::from([("tenant_id".into(), s(tenant.as_str())), ("event_id".into(), s(event_id))]);
        let item = match get_item(&self.client, &self.events_table, key(), None, Consistency::Eventual, "get event").await? {
            Some(item) => Some(item),
            None => get_item(&self.client, &self.events_table, key(), None, Consistency::Strong, "get event").await?,
        };
        item.map(event_from_item).transpose()
    }

    async fn create_delivery(&self, delivery: &Delivery) -> StoreResult<Created> {
        put_new(&self.client, &self.deliveries_table, to_item(delivery)?, "delivery_id", "put delivery").await
    }

    async fn get_delivery(&self, id: &DeliveryId) -> StoreResult<Option<Delivery>> {
        let key = HashMap::from([("delivery_id".into(), s(id.as_str()))]);
        get_one(&self.client, &self.deliveries_table, key, "get delivery").await
    }

    /// A small successful attempt is kept on the delivery item itself (`INLINE_ATTEMPT`), in the
    /// one UpdateItem that settles the delivery: one write instead of two. Every other attempt,
    /// and a second success (a resend of a delivered delivery), is an item of the Attempts table.
    async fn record_attempt(&self, attempt: &Attempt, status: DeliveryStatus) -> StoreResult<()> {
        let item = to_item(attempt)?;
        if attempt.succeeded() && item_size(&item) <= MAX_INLINE_ATTEMPT_BYTES {
            match self.update_delivery(attempt, status, Some(item.clone())).await {
                Err(StoreError::Conflict) => {} // already has one (or is gone): the general path says which
                done => return done,
            }
        }
        self.client
            .put_item()
            .table_name(&self.attempts_table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StoreError::backend("put attempt", e.into_service_error()))?;
        match self.update_delivery(attempt, status, None).await {
            Err(StoreError::Conflict) => Err(StoreError::backend("update delivery", NotFound)),
            done => done,
        }
    }

    async fn list_attempts(&self, id: &DeliveryId) -> StoreResult<Vec<Attempt>> {
        let key = HashMap::from([("delivery_id".into(), s(id.as_str()))]);
        let (mut attempts, inline) = tokio::try_join!(
            query_partition::<Attempt>(&self.client, &self.attempts_table, None, "delivery_id", id.as_str(), "query attempts"),
            async {
                let item = get_item(&self.client, &self.deliveries_table, key, Some(INLINE_ATTEMPT), Consistency::Strong, "get inline attempt").await?;
                match item.and_then(|mut i| i.remove(INLINE_ATTEMPT)) {
                    Some(AttributeValue::M(m)) => from_item::<Attempt>(m).map(Some),
                    _ => Ok(None),
                }
            }
        )?;
        if let Some(a) = inline {
            if !attempts.iter().any(|b| b.attempt == a.attempt) {
                attempts.push(a);
                attempts.sort_by_key(|a| a.attempt);
            }
        }
        Ok(attempts)
    }

    async fn list_deliveries(&self, sub: &SubscriptionId, filter: &DeliveryFilter, cursor: Option<&str>, limit: usize) -> StoreResult<Page<Delivery>> {
        if let (Some(a), Some(b)) = (filter.since, filter.until) {
            if a >= b {
                return Ok(Page { items: Vec::new(), next: None });
            }
        }
        let mut start = cursor.map(|c| decode_delivery_cursor(sub, c, filter)).transpose()?;
        let mut key_cond = "subscription_id = :s".to_owned();
        let mut values: Item = HashMap::from([(":s".into(), s(sub.as_str()))]);
        match (filter.since, filter.until) {
            (Some(a), Some(b)) => {
                key_cond.push_str(" AND created_at BETWEEN :a AND :b");
                values.insert(":a".into(), s(&timefmt::format(a)));
                values.insert(":b".into(), s(&timefmt::format(b - time::Duration::microseconds(1))));
            }
            (Some(a), None) => {
                key_cond.push_str(" AND created_at >= :a");
                values.insert(":a".into(), s(&timefmt::format(a)));
            }
            (None, Some(b)) => {
                key_cond.push_str(" AND created_at < :b");
                values.insert(":b".into(), s(&timefmt::format(b)));
            }
            (None, None) => {}
        }
        let filtered = filter.status.is_some() || filter.event_type.is_some();
        let wanted = |d: &Delivery| filter.status.is_none_or(|st| d.status == st) && filter.event_type.as_ref().is_none_or(|t| &d.event_type == t);
        let mut items: Vec<Delivery> = Vec::new();
        // The index holds keys only (so that settling a delivery writes no index copy): query a
        // page of keys, read those deliveries, filter them; until one more than asked matched.
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.deliveries_table)
                .index_name("by_subscription")
                .key_condition_expression(&key_cond)
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take())
                .limit(if filtered { 100 } else { limit as i32 + 1 })
                .send()
                .await
                .map_err(|e| StoreError::backend("query deliveries", e.into_service_error()))?;
            for d in self.get_deliveries(out.items.unwrap_or_default()).await? {
                if items.len() > limit {
                    break;
                }
                if wanted(&d) {
                    items.push(d);
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() && items.len() <= limit => start = Some(k),
                _ => break,
            }
        }
        let next = (items.len() > limit).then(|| {
            items.truncate(limit);
            items.last().map(encode_delivery_cursor)
        });
        Ok(Page { items, next: next.flatten() })
    }

    async fn set_status(&self, id: &DeliveryId, status: DeliveryStatus) -> StoreResult<()> {
        self.client
            .update_item()
            .table_name(&self.deliveries_table)
            .key("delivery_id", s(id.as_str()))
            .update_expression("SET #st = :st")
            .condition_expression("attribute_exists(delivery_id)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":st", av(status)?)
            .send()
            .await
            .map_err(|e| StoreError::backend("set delivery status", e.into_service_error()))?;
        Ok(())
    }

    async fn reopen(&self, id: &DeliveryId) -> StoreResult<()> {
        let res = self
            .client
            .update_item()
            .table_name(&self.deliveries_table)
            .key("delivery_id", s(id.as_str()))
            .update_expression("SET #st = :pending")
            .condition_expression("#st = :failed")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":pending", av(DeliveryStatus::Pending)?)
            .expression_attribute_values(":failed", av(DeliveryStatus::Failed)?)
            .send()
            .await;
        updated(res, "reopen delivery").map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventIn;

    fn stored(data: serde_json::Value) -> StoredEvent {
        let event: EventIn = serde_json::from_value(serde_json::json!({
            "event_id": "evt_1", "event_type": "project.created", "tenant_id": "acme",
            "occurred_at": "2026-11-22T10:00:00Z", "data": data
        }))
        .unwrap();
        StoredEvent::from_event(&event, 1_800_000_000)
    }

    #[test]
    fn a_kilobyte_envelope_is_stored_deflated_in_under_one_write_unit() {
        let data = serde_json::json!({"project": {"id": "prj_8f2c", "name": "Quarterly report", "owner": {"id": "usr_19", "email": "ana@example.com"}},
            "tags": ["finance", "q4", "board"], "description": "x ".repeat(380)});
        let event = stored(data);
        assert!(event.body.len() > 1024, "{}", event.body.len());
        let item = event_item(&event).unwrap();
        assert!(item.get("body").is_none() && item.contains_key("body_deflate"));
        assert!(item_size(&item) < 1024, "{} bytes", item_size(&item));
        let back = event_from_item(item).unwrap();
        assert_eq!(back.body, event.body);
        assert_eq!((back.event_id, back.expires_at), (event.event_id, event.expires_at));
    }

    #[test]
    fn a_short_body_is_stored_as_it_is_and_any_body_round_trips() {
        let short = stored(serde_json::json!({"k": 1}));
        let item = event_item(&short).unwrap();
        assert_eq!(item.get("body").and_then(|v| v.as_s().ok()), Some(&short.body));
        // Whichever form a body is stored in, it reads back byte for byte.
        let noise: String = (0..600).map(|i| char::from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[(i * 7919 + i * i * 31) % 64])).collect();
        let event = stored(serde_json::json!({"blob": noise}));
        let back = event_from_item(event_item(&event).unwrap()).unwrap();
        assert_eq!(back.body, event.body);
    }
}
