//! The ApiKeys table (`key_hash`; GSI `by_tenant`) and the Tenants table (`tenant_id`).

use super::{get_one, put_new, query_partition, s, to_item};
use crate::config::Config;
use crate::ids::TenantId;
use crate::model::{ApiKeyRecord, TenantRecord};
use crate::ports::*;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

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
    async fn put(&self, key: &ApiKeyRecord) -> PortResult<()> {
        match put_new(&self.client, &self.table, to_item(key)?, "key_hash", "put api key").await? {
            Created::New => Ok(()),
            Created::Existed => Err(PortError::Conflict),
        }
    }

    async fn get(&self, key_hash: &str) -> PortResult<Option<ApiKeyRecord>> {
        let key = HashMap::from([("key_hash".into(), s(key_hash))]);
        get_one(&self.client, &self.table, key, "get api key").await
    }

    async fn list_for_tenant(&self, tenant: &TenantId) -> PortResult<Vec<ApiKeyRecord>> {
        query_partition(&self.client, &self.table, Some("by_tenant"), "tenant_id", tenant.as_str(), "query api keys").await
    }

    async fn delete(&self, key_hash: &str) -> PortResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("key_hash", s(key_hash))
            .send()
            .await
            .map_err(|e| PortError::backend("delete api key", e.into_service_error()))?;
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
    async fn register(&self, tenant: &TenantRecord) -> PortResult<()> {
        put_new(&self.client, &self.table, to_item(tenant)?, "tenant_id", "put tenant").await.map(|_| ())
    }

    async fn exists(&self, tenant: &TenantId) -> PortResult<bool> {
        let key = HashMap::from([("tenant_id".into(), s(tenant.as_str()))]);
        Ok(get_one::<TenantRecord>(&self.client, &self.table, key, "get tenant").await?.is_some())
    }
}
