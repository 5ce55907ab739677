//! DynamoDB adapters, one file per table (docs/architecture.md lists the tables and keys). Items
//! are the domain records serialised with serde_dynamo, except the ledger's records, whose
//! compact codec (`record.rs`) keeps a delivery's first record under one write unit.

mod events;
mod keys;
mod ledger;
mod record;
mod subscriptions;

pub use events::DynamoEvents;
pub use keys::{DynamoApiKeys, DynamoTenants};
pub use ledger::DynamoLedger;
pub use subscriptions::DynamoSubscriptions;

use crate::ports::{Created, PortError, PortResult};
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use flate2::Compression;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::io::{Read as _, Write as _};

type Item = HashMap<String, AttributeValue>;

fn to_item<T: Serialize>(value: &T) -> PortResult<Item> {
    serde_dynamo::to_item(value).map_err(|e| PortError::Corrupt(e.to_string()))
}

fn from_item<T: DeserializeOwned>(item: Item) -> PortResult<T> {
    serde_dynamo::from_item(item).map_err(|e| PortError::Corrupt(e.to_string()))
}

fn av<T: Serialize>(value: T) -> PortResult<AttributeValue> {
    serde_dynamo::to_attribute_value(value).map_err(|e| PortError::Corrupt(e.to_string()))
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Puts `item` unless an item with the same key exists.
async fn put_new(client: &Client, table: &str, item: Item, key_attr: &str, ctx: &'static str) -> PortResult<Created> {
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
            other => Err(PortError::backend(ctx, other)),
        },
    }
}

/// One item, strongly or eventually consistent.
async fn get_item(client: &Client, table: &str, key: Item, strong: bool, ctx: &'static str) -> PortResult<Option<Item>> {
    let out = client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(strong)
        .send()
        .await
        .map_err(|e| PortError::backend(ctx, e.into_service_error()))?;
    Ok(out.item)
}

async fn get_one<T: DeserializeOwned>(client: &Client, table: &str, key: Item, ctx: &'static str) -> PortResult<Option<T>> {
    get_item(client, table, key, true, ctx).await?.map(from_item).transpose()
}

/// An UpdateItem's result, its failed condition as `Conflict`.
fn updated<T>(res: Result<T, SdkError<UpdateItemError, HttpResponse>>, ctx: &'static str) -> PortResult<T> {
    res.map_err(|e| match e.into_service_error() {
        UpdateItemError::ConditionalCheckFailedException(_) => PortError::Conflict,
        other => PortError::backend(ctx, other),
    })
}

/// Every item of one partition (of the table, or of `index`), following pagination.
async fn query_partition<T: DeserializeOwned>(client: &Client, table: &str, index: Option<&str>, key_attr: &str, key: &str, ctx: &'static str) -> PortResult<Vec<T>> {
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
            .map_err(|e| PortError::backend(ctx, e.into_service_error()))?;
        for item in page.items.unwrap_or_default() {
            out.push(from_item(item)?);
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok(out),
        }
    }
}

/// Bodies longer than this are stored deflated (binary) when that is smaller: a 1 KB envelope
/// becomes ≈ 0.5 KB, so the record that holds it stays under one write unit.
const DEFLATE_OVER: usize = 400;

/// A body as an attribute: (`plain`, S) as it is, or (`deflated`, B) when that is smaller.
fn body_attr(body: &str, plain: &'static str, deflated: &'static str) -> PortResult<(&'static str, AttributeValue)> {
    if body.len() > DEFLATE_OVER {
        let mut z = DeflateEncoder::new(Vec::with_capacity(body.len() / 2), Compression::default());
        let z = z.write_all(body.as_bytes()).and_then(|()| z.finish()).map_err(|e| PortError::Corrupt(format!("deflate body: {e}")))?;
        if z.len() < body.len() {
            return Ok((deflated, AttributeValue::B(Blob::new(z))));
        }
    }
    Ok((plain, s(body)))
}

/// The body of an item written by [`body_attr`], removing its attribute.
fn take_body(item: &mut Item, plain: &str, deflated: &str) -> PortResult<Option<String>> {
    if let Some(AttributeValue::B(z)) = item.remove(deflated) {
        let mut body = String::new();
        DeflateDecoder::new(z.as_ref()).read_to_string(&mut body).map_err(|e| PortError::Corrupt(format!("inflate body: {e}")))?;
        return Ok(Some(body));
    }
    match item.remove(plain) {
        Some(AttributeValue::S(b)) => Ok(Some(b)),
        Some(_) => Err(PortError::Corrupt(format!("{plain} is not a string"))),
        None => Ok(None),
    }
}

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
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// The item a ledger record is written as (perf's size model uses it).
pub fn record_item(r: &crate::model::Record) -> PortResult<HashMap<String, AttributeValue>> {
    record::to_item(r)
}
