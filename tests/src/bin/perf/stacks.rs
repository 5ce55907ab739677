//! LocalStack stacks and metered dependencies (and their in-memory counterpart).

use crate::ddb_meter::DdbMeter;
use crate::ledger::Ledger;
use crate::sink::Sink;
use crate::sqs_meter::SqsMeter;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures::StreamExt;
use shared::adapters::calls::CallCounter;
use shared::adapters::{dynamodb as ddb_adapters, sqs as sqs_adapters};
use shared::ids::TenantId;
use shared::model::{Subscription, TenantRecord};
use shared::{Config, Deps};
use std::collections::HashMap;
use std::sync::Arc;
use time::OffsetDateTime;

pub fn memory_config(extra: &[(&str, &str)]) -> Config {
    let extra: HashMap<String, String> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_lookup(|k| match extra.get(k) {
        Some(v) => Some(v.clone()),
        None if k.ends_with("_TABLE") || k.ends_with("_URL") => Some(format!("mem-{k}")),
        None => None,
    })
    .expect("memory config")
}

pub async fn memory_tenant(deps: &Deps, tenant: &str, url: &str) -> Subscription {
    let t = TenantId::parse(tenant).unwrap();
    let now = OffsetDateTime::now_utc();
    deps.tenants.register(&TenantRecord { tenant_id: t.clone(), created_at: now }).await.unwrap();
    let sub = Subscription::new(t, url.to_owned(), vec!["project.*".into()], now);
    deps.subscriptions.create(&sub, usize::MAX).await.unwrap();
    sub
}

pub struct Stack {
    pub env: HashMap<String, String>,
    pub config: Config,
}

pub fn provision_stack(prefix: &str, params: &[(&str, String)], extra: &[(&str, &str)]) -> Stack {
    let secs = OffsetDateTime::now_utc().unix_timestamp() % 100_000;
    let name = format!("perf-{prefix}-{}-{secs}", std::process::id());
    // Blocks this thread for the few seconds of a CloudFormation deploy; the runtime's workers carry on.
    let outputs = e2e::provision(&name, params);
    let mut env = outputs.clone();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("config from stack outputs");
    Stack { env, config }
}

/// `Deps::aws_counted`, with the DynamoDB and SQS clients also carrying the meters.
pub fn metered_deps(sdk: &aws_config::SdkConfig, config: &Config, counter: &CallCounter, ledger: &Ledger) -> (Deps, aws_sdk_sqs::Client) {
    let ddb = aws_sdk_dynamodb::Client::from_conf(aws_sdk_dynamodb::config::Builder::from(sdk).interceptor(counter.clone()).interceptor(DdbMeter(ledger.clone())).build());
    let sqs = aws_sdk_sqs::Client::from_conf(aws_sdk_sqs::config::Builder::from(sdk).interceptor(counter.clone()).interceptor(SqsMeter(ledger.clone())).build());
    let mut deps = Deps::aws_counted(sdk, config.clone(), Some(counter));
    deps.subscriptions = Arc::new(ddb_adapters::DynamoSubscriptions::new(ddb.clone(), config));
    deps.api_keys = Arc::new(ddb_adapters::DynamoApiKeys::new(ddb.clone(), config));
    deps.tenants = Arc::new(ddb_adapters::DynamoTenants::new(ddb.clone(), config));
    deps.events = Arc::new(ddb_adapters::DynamoEvents::new(ddb.clone(), config));
    deps.ledger = Arc::new(ddb_adapters::DynamoLedger::new(ddb, config));
    deps.queues = Arc::new(sqs_adapters::SqsQueues::new(sqs.clone(), config));
    (deps, sqs)
}

pub async fn create_subscriptions(deps: &Deps, tenant: &str, url: &str, n: usize, filter: Option<shared::filter::Filter>) -> Vec<Subscription> {
    let t = TenantId::parse(tenant).unwrap();
    let now = OffsetDateTime::now_utc();
    let subs: Vec<Subscription> = (0..n).map(|_| Subscription { filter: filter.clone(), ..Subscription::new(t.clone(), url.to_owned(), vec!["project.*".into()], now) }).collect();
    futures::stream::iter(subs.clone())
        .map(|s| async move { deps.subscriptions.create(&s, usize::MAX).await.expect("create subscription") })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    subs
}

/// Upstream publishing (not metered): SendMessageBatch of 10, a few in flight.
pub async fn publish(upstream: &aws_sdk_sqs::Client, queue_url: &str, bodies: Vec<String>) {
    let chunks: Vec<Vec<String>> = bodies.chunks(10).map(|c| c.to_vec()).collect();
    futures::stream::iter(chunks)
        .map(|chunk| async move {
            let entries = chunk.iter().enumerate().map(|(i, b)| SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(b).build().unwrap()).collect();
            let out = upstream.send_message_batch().queue_url(queue_url).set_entries(Some(entries)).send().await.expect("publish");
            assert!(out.failed.is_empty(), "publish failures: {:?}", out.failed);
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
}

pub struct AwsCtx<'a> {
    pub stack: Stack,
    pub deps: Deps,
    pub sqs: aws_sdk_sqs::Client,
    pub upstream: aws_sdk_sqs::Client,
    pub ledger: Ledger,
    pub counter: CallCounter,
    pub sink: &'a Sink,
}
