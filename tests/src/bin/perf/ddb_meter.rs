//! The DynamoDB meter: an SDK interceptor that asks for the consumed capacity of every call and
//! writes it, with the item sizes, to the [`Ledger`].

use crate::ledger::{gsi_units, write_units, Ledger};
use aws_sdk_dynamodb::config::interceptors::{AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity, ReturnValue};
use shared::adapters::dynamodb::item_size;

#[derive(Debug)]
pub struct DdbMeter(pub Ledger);

/// Marks, in the operation's config bag, a `GetItem` that reads eventually consistent (half the
/// read units of a strong read).
#[derive(Debug, Clone)]
pub struct EventualRead;

impl aws_smithy_types::config_bag::Storable for EventualRead {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl DdbMeter {
    pub fn consumed(&self, op: &str, cc: Option<&ConsumedCapacity>, write: bool, size_units: f64, bytes: usize) {
        let Some(cc) = cc else { return };
        let table = self.0.name(cc.table_name.as_deref());
        let gsi: f64 = cc.global_secondary_indexes.as_ref().map(|m| m.values().filter_map(|c| c.capacity_units).sum()).unwrap_or(0.0);
        let total = cc.capacity_units.unwrap_or(0.0);
        let base = cc.table.as_ref().and_then(|t| t.capacity_units).unwrap_or(total - gsi);
        self.0.with(op, &table, |r| {
            if write {
                r.wcu += base;
                r.wcu_gsi += gsi;
            } else {
                r.rcu += total;
            }
            r.size_units += size_units;
            if bytes > 0 {
                r.bytes += bytes as u64;
                r.items += 1;
            }
        });
    }
}

impl Intercept for DdbMeter {
    fn name(&self) -> &'static str {
        "DdbMeter"
    }

    fn modify_before_serialization(&self, ctx: &mut BeforeSerializationInterceptorContextMut<'_>, _rc: &RuntimeComponents, cfg: &mut ConfigBag) -> Result<(), BoxError> {
        use aws_sdk_dynamodb::operation::{
            batch_get_item::BatchGetItemInput, delete_item::DeleteItemInput, get_item::GetItemInput, put_item::PutItemInput, query::QueryInput, update_item::UpdateItemInput,
        };
        let input = ctx.input_mut();
        let rcc = Some(ReturnConsumedCapacity::Indexes);
        if let Some(i) = input.downcast_mut::<PutItemInput>() {
            i.return_consumed_capacity = rcc;
            let table = self.0.name(i.table_name.as_deref());
            let size = i.item.as_ref().map(item_size).unwrap_or(0);
            let units = write_units(size) + gsi_units("PutItem", &table);
            self.0.with("PutItem", &table, |r| {
                r.calls += 1;
                r.size_units += units;
                r.bytes += size as u64;
                r.items += 1;
            });
        } else if let Some(i) = input.downcast_mut::<UpdateItemInput>() {
            i.return_consumed_capacity = rcc;
            // To size the item written (ALL_NEW); the adapters ignore what they did not ask for.
            if i.return_values.is_none() {
                i.return_values = Some(ReturnValue::AllNew);
            }
            self.0.with("UpdateItem", &self.0.name(i.table_name.as_deref()), |r| r.calls += 1);
        } else if let Some(i) = input.downcast_mut::<GetItemInput>() {
            i.return_consumed_capacity = rcc;
            if i.consistent_read != Some(true) {
                cfg.interceptor_state().store_put(EventualRead);
            }
            self.0.with("GetItem", &self.0.name(i.table_name.as_deref()), |r| r.calls += 1);
        } else if let Some(i) = input.downcast_mut::<QueryInput>() {
            i.return_consumed_capacity = rcc;
            let target = match &i.index_name {
                Some(ix) => format!("{}.{ix}", self.0.name(i.table_name.as_deref())),
                None => self.0.name(i.table_name.as_deref()),
            };
            self.0.with("Query", &target, |r| r.calls += 1);
        } else if let Some(i) = input.downcast_mut::<BatchGetItemInput>() {
            i.return_consumed_capacity = rcc;
            for table in i.request_items.as_ref().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
                self.0.with("BatchGetItem", &self.0.name(Some(&table)), |r| r.calls += 1);
            }
        } else if let Some(i) = input.downcast_mut::<DeleteItemInput>() {
            i.return_consumed_capacity = rcc;
            self.0.with("DeleteItem", &self.0.name(i.table_name.as_deref()), |r| r.calls += 1);
        } else {
            self.0.with("other", "DynamoDB", |r| r.calls += 1);
        }
        Ok(())
    }

    fn read_after_deserialization(&self, ctx: &AfterDeserializationInterceptorContextRef<'_>, _rc: &RuntimeComponents, cfg: &mut ConfigBag) -> Result<(), BoxError> {
        use aws_sdk_dynamodb::operation::{batch_get_item::BatchGetItemOutput, get_item::GetItemOutput, put_item::PutItemOutput, query::QueryOutput, update_item::UpdateItemOutput};
        let Ok(out) = ctx.output_or_error() else { return Ok(()) };
        if let Some(o) = out.downcast_ref::<PutItemOutput>() {
            self.consumed("PutItem", o.consumed_capacity.as_ref(), true, 0.0, 0);
        } else if let Some(o) = out.downcast_ref::<UpdateItemOutput>() {
            let size = o.attributes.as_ref().map(item_size).unwrap_or(0);
            let table = self.0.name(o.consumed_capacity.as_ref().and_then(|c| c.table_name.as_deref()));
            self.consumed("UpdateItem", o.consumed_capacity.as_ref(), true, write_units(size) + gsi_units("UpdateItem", &table), size);
        } else if let Some(o) = out.downcast_ref::<GetItemOutput>() {
            let size = o.item.as_ref().map(item_size).unwrap_or(0);
            let share = if cfg.load::<EventualRead>().is_some() { 0.5 } else { 1.0 };
            self.consumed("GetItem", o.consumed_capacity.as_ref(), false, size.div_ceil(4096).max(1) as f64 * share, size);
        } else if let Some(o) = out.downcast_ref::<BatchGetItemOutput>() {
            for (table, items) in o.responses.iter().flatten() {
                let size_units: f64 = items.iter().map(|i| item_size(i).div_ceil(4096).max(1) as f64).sum();
                let bytes: usize = items.iter().map(item_size).sum();
                let cc = o.consumed_capacity.iter().flatten().find(|c| c.table_name.as_deref() == Some(table.as_str()));
                let rcu = cc.and_then(|c| c.capacity_units).unwrap_or(0.0);
                self.0.with("BatchGetItem", &self.0.name(Some(table)), |r| {
                    r.rcu += rcu;
                    r.size_units += size_units;
                    r.bytes += bytes as u64;
                    r.items += items.len() as u64;
                });
            }
        } else if let Some(o) = out.downcast_ref::<QueryOutput>() {
            let size: usize = o.items.as_ref().map(|v| v.iter().map(item_size).sum()).unwrap_or(0);
            let op = "Query";
            // The query's target (table or index) was recorded on the way in; attribute the units
            // to the table's row when the index is not known here.
            let Some(cc) = o.consumed_capacity.as_ref() else { return Ok(()) };
            let table = self.0.name(cc.table_name.as_deref());
            let gsi_name = cc.global_secondary_indexes.as_ref().and_then(|m| m.keys().next().cloned());
            let target = gsi_name.map(|g| format!("{table}.{g}")).unwrap_or(table);
            let total = cc.capacity_units.unwrap_or(0.0);
            self.0.with(op, &target, |r| {
                r.rcu += total;
                r.size_units += size.div_ceil(4096).max(1) as f64;
                r.bytes += size as u64;
                r.items += o.items.as_ref().map(|v| v.len()).unwrap_or(0) as u64;
            });
        }
        Ok(())
    }
}
