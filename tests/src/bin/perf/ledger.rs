//! AWS call metering: an SDK interceptor beside shared's CallCounter that also records per
//! (operation, table/queue) the consumed capacity DynamoDB (Local) reports, item sizes, and SQS
//! billed requests (64 KB chunks). This is the ledger the interceptors (`ddb_meter`, `sqs_meter`)
//! and the poller (`drive`) write to.

use shared::Config;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default, Clone)]
pub struct Row {
    pub calls: u64,
    pub empty: u64,
    pub billed: f64,
    pub wcu: f64,
    pub wcu_gsi: f64,
    pub rcu: f64,
    /// Units from item sizes (1 WCU per 1 KB, 1 RCU per 4 KB strongly consistent, half that
    /// eventually consistent; GSI modelled).
    pub size_units: f64,
    pub bytes: u64,
    pub items: u64,
}

pub type Rows = BTreeMap<(String, String), Row>;

#[derive(Debug, Clone, Default)]
pub struct Ledger {
    rows: Arc<Mutex<Rows>>,
    names: Arc<HashMap<String, String>>,
}

impl Ledger {
    pub fn new(config: &Config) -> Self {
        let names = [
            (&config.subscriptions_table, "Subscriptions"),
            (&config.api_keys_table, "ApiKeys"),
            (&config.tenants_table, "Tenants"),
            (&config.events_table, "Events"),
            (&config.deliveries_table, "Deliveries"),
            (&config.delivery_dlq_url, "DeliveryDlq"),
            (&config.events_queue_url, "EventsQueue"),
            (&config.delivery_queue_url, "DeliveryQueue"),
            (&config.events_dlq_url, "EventsDlq"),
        ]
        .into_iter()
        .map(|(k, v)| (k.clone(), v.to_owned()))
        .collect();
        Self { rows: Arc::default(), names: Arc::new(names) }
    }

    pub fn name(&self, physical: Option<&str>) -> String {
        let p = physical.unwrap_or("?");
        self.names.get(p).cloned().unwrap_or_else(|| p.rsplit('/').next().unwrap_or(p).to_owned())
    }

    pub fn with(&self, op: &str, target: &str, f: impl FnOnce(&mut Row)) {
        f(self.rows.lock().unwrap().entry((op.to_owned(), target.to_owned())).or_default());
    }

    pub fn reset(&self) {
        self.rows.lock().unwrap().clear();
    }

    pub fn snapshot(&self) -> Rows {
        self.rows.lock().unwrap().clone()
    }
}

pub fn write_units(size: usize) -> f64 {
    size.div_ceil(1024).max(1) as f64
}

/// Write units of the index copy a write makes (infra/data.yaml): the ledger's only index,
/// `queued`, is sparse: it holds records the API queued for a redelivery, which none of the
/// measured writes are.
pub fn gsi_units(_op: &str, _table: &str) -> f64 {
    0.0
}

/// What each counted call is for.
pub fn purpose(op: &str, target: &str) -> &'static str {
    match (op, target) {
        ("ReceiveMessage", "EventsQueue") => "fan-out ESM poll: a batch of events",
        ("DeleteMessageBatch", "EventsQueue") => "fan-out ESM: delete the handled events",
        ("GetItem", "Tenants") => "fan-out: is the tenant known (cached 10 s)",
        ("Query", "Subscriptions.active") => "fan-out: tenant's active subscriptions, from the sparse index (cached 10 s)",
        ("PutItem", "Deliveries") => "delivery: append the attempt's ledger record (conditional on its seq)",
        ("UpdateItem", "Deliveries") => "delivery: claim / mark the head record (conditional)",
        ("SendMessageBatch", "DeliveryQueue") => "fan-out: enqueue delivery tasks (<= 10 per call)",
        ("ReceiveMessage", "DeliveryQueue") => "delivery ESM poll: a batch of tasks",
        ("DeleteMessageBatch", "DeliveryQueue") => "delivery ESM: delete delivered tasks",
        ("GetItem", "Deliveries") => "delivery: the ledger head (a retry or a redelivery)",
        ("Query", "Deliveries") => "delivery / API: the ledger head, a log page",
        ("GetItem", "Subscriptions") => "delivery: load the subscription (url, secret)",
        ("UpdateItem", "Subscriptions") => "delivery: health (<= 1/min on success; every failure)",
        ("ChangeMessageVisibility", "DeliveryQueue") => "delivery: schedule the retry",
        ("ChangeMessageVisibilityBatch", "DeliveryQueue") => "delivery: schedule the batch's retries (<= 10 per call)",
        ("GetItem", "ApiKeys") => "API: authenticate the key",
        ("Query", "Deliveries.by_subscription") => "API: delivery log page (keys)",
        ("BatchGetItem", "Deliveries") => "API: delivery log page (items)",
        _ => "",
    }
}
