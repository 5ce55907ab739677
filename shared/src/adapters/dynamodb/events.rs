//! The Events table (`tenant_id`, `event_id`): events published over HTTP, their body deflated.

use super::{body_attr, from_item, get_item, put_new, s, take_body, to_item, Item};
use crate::config::Config;
use crate::ids::TenantId;
use crate::model::StoredEvent;
use crate::ports::*;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

pub struct DynamoEvents {
    client: Client,
    table: String,
}

impl DynamoEvents {
    pub fn new(client: Client, config: &Config) -> Self {
        Self { client, table: config.events_table.clone() }
    }
}

fn event_item(event: &StoredEvent) -> PortResult<Item> {
    let mut item = to_item(event)?;
    item.remove("body");
    let (name, value) = body_attr(&event.body, "body", "body_deflate")?;
    item.insert(name.into(), value);
    Ok(item)
}

fn event_from_item(mut item: Item) -> PortResult<StoredEvent> {
    let body = take_body(&mut item, "body", "body_deflate")?.ok_or_else(|| PortError::Corrupt("event without a body".into()))?;
    item.insert("body".into(), AttributeValue::S(body));
    from_item(item)
}

#[async_trait]
impl EventStore for DynamoEvents {
    async fn put(&self, event: &StoredEvent) -> PortResult<Created> {
        put_new(&self.client, &self.table, event_item(event)?, "event_id", "put event").await
    }

    async fn get(&self, tenant: &TenantId, event_id: &str) -> PortResult<Option<StoredEvent>> {
        let key = HashMap::from([("tenant_id".into(), s(tenant.as_str())), ("event_id".into(), s(event_id))]);
        get_item(&self.client, &self.table, key, true, "get event").await?.map(event_from_item).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::dynamodb::item_size;
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
        assert_eq!(event_from_item(item).unwrap(), event);
    }

    #[test]
    fn a_short_body_is_stored_as_it_is_and_any_body_round_trips() {
        let short = stored(serde_json::json!({"k": 1}));
        let item = event_item(&short).unwrap();
        assert_eq!(item.get("body").and_then(|v| v.as_s().ok()), Some(&short.body));
        let noise: String = (0..600).map(|i| char::from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[(i * 7919 + i * i * 31) % 64])).collect();
        let event = stored(serde_json::json!({"blob": noise}));
        assert_eq!(event_from_item(event_item(&event).unwrap()).unwrap(), event);
    }
}
