//! The Subscriptions table: (`tenant_id`, `subscription_id`).

use super::{av, get_one, put_new, query_partition, s, to_item, updated, from_item, Item};
use crate::config::Config;
use crate::ids::{SubscriptionId, TenantId};
use crate::model::Subscription;
use crate::ports::*;
use crate::timefmt;
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

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
    async fn create(&self, sub: &Subscription) -> PortResult<()> {
        match put_new(&self.client, &self.table, to_item(sub)?, "subscription_id", "put subscription").await? {
            Created::New => Ok(()),
            Created::Existed => Err(PortError::Conflict),
        }
    }

    async fn get(&self, tenant: &TenantId, id: &SubscriptionId) -> PortResult<Option<Subscription>> {
        get_one(&self.client, &self.table, Self::key(tenant, id), "get subscription").await
    }

    async fn list(&self, tenant: &TenantId) -> PortResult<Vec<Subscription>> {
        query_partition(&self.client, &self.table, None, "tenant_id", tenant.as_str(), "query subscriptions").await
    }

    async fn replace(&self, sub: &Subscription) -> PortResult<()> {
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
                PutItemError::ConditionalCheckFailedException(_) => Err(PortError::Conflict),
                other => Err(PortError::backend("replace subscription", other)),
            },
        }
    }

    async fn record_health(&self, tenant: &TenantId, id: &SubscriptionId, change: HealthChange) -> PortResult<Option<Subscription>> {
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
            Ok(out) => out.attributes.map(from_item).transpose(),
            Err(PortError::Conflict) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
