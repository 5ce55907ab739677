//! DynamoDB adapters. Items are the domain records serialised with serde_dynamo; key names are
//! the records' own fields (see docs/architecture.md for the tables and keys).

use crate::config::Config;
use crate::ids::{DeliveryId, SubscriptionId, TenantId};
use crate::model::{ApiKeyRecord, Attempt, Delivery, DeliveryStatus, StoredEvent, Subscription};
use crate::ports::*;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

fn to_item<T: Serialize>(value: &T) -> StoreResult<Item> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_item<T: DeserializeOwned>(item: Item) -> StoreResult<T> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
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
            aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(_) => Ok(Created::Existed),
            other => Err(StoreError::backend(ctx, other)),
        },
    }
}

async fn get_one<T: DeserializeOwned>(client: &Client, table: &str, key: Item, ctx: &'static str) -> StoreResult<Option<T>> {
    let out = client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .send()
        .await
        .map_err(|e| StoreError::backend(ctx, e.into_service_error()))?;
    out.item.map(from_item).transpose()
}

/// Every item of one partition, following pagination.
async fn query_partition<T: DeserializeOwned>(
    client: &Client,
    table: &str,
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
        let key = HashMap::from([("tenant_id".into(), s(tenant.as_str())), ("subscription_id".into(), s(id.as_str()))]);
        get_one(&self.client, &self.table, key, "get subscription").await
    }

    async fn list(&self, tenant: &TenantId) -> StoreResult<Vec<Subscription>> {
        query_partition(&self.client, &self.table, "tenant_id", tenant.as_str(), "query subscriptions").await
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

#[async_trait]
impl DeliveryStore for DynamoDeliveries {
    async fn put_event(&self, event: &StoredEvent) -> StoreResult<Created> {
        put_new(&self.client, &self.events_table, to_item(event)?, "event_id", "put event").await
    }

    async fn get_event(&self, tenant: &TenantId, event_id: &str) -> StoreResult<Option<StoredEvent>> {
        let key = HashMap::from([("tenant_id".into(), s(tenant.as_str())), ("event_id".into(), s(event_id))]);
        get_one(&self.client, &self.events_table, key, "get event").await
    }

    async fn create_delivery(&self, delivery: &Delivery) -> StoreResult<Created> {
        put_new(&self.client, &self.deliveries_table, to_item(delivery)?, "delivery_id", "put delivery").await
    }

    async fn get_delivery(&self, id: &DeliveryId) -> StoreResult<Option<Delivery>> {
        let key = HashMap::from([("delivery_id".into(), s(id.as_str()))]);
        get_one(&self.client, &self.deliveries_table, key, "get delivery").await
    }

    async fn record_attempt(&self, attempt: &Attempt, status: DeliveryStatus) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.attempts_table)
            .set_item(Some(to_item(attempt)?))
            .send()
            .await
            .map_err(|e| StoreError::backend("put attempt", e.into_service_error()))?;
        let status = serde_dynamo::to_attribute_value(status).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        self.client
            .update_item()
            .table_name(&self.deliveries_table)
            .key("delivery_id", s(attempt.delivery_id.as_str()))
            .update_expression("SET #st = :st, attempts = :n, updated_at = :u")
            .condition_expression("attribute_exists(delivery_id)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":st", status)
            .expression_attribute_values(":n", AttributeValue::N(attempt.attempt.to_string()))
            .expression_attribute_values(":u", s(&now))
            .send()
            .await
            .map_err(|e| StoreError::backend("update delivery", e.into_service_error()))?;
        Ok(())
    }

    async fn list_attempts(&self, id: &DeliveryId) -> StoreResult<Vec<Attempt>> {
        query_partition(&self.client, &self.attempts_table, "delivery_id", id.as_str(), "query attempts").await
    }
}
