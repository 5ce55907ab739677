//! What the handlers need, built once per process (cold start) and shared by reference.

use crate::adapters::calls::{self, CallCounter};
use crate::adapters::{dynamodb, memory, sqs};
use crate::cache::TtlCache;
use crate::config::Config;
use crate::delivery::health::HealthBook;
use crate::delivery::http::HttpSender;
use crate::faults::Faults;
use crate::ids::{SubscriptionId, TenantId};
use crate::model::Subscription;
use crate::ports::{ApiKeyStore, EventStore, Ledger, Queues, SubscriptionStore, TenantStore};
use std::sync::Arc;

/// A tenant's subscriptions as fan-out matches them (`None`: the tenant is unknown).
pub type TenantSubscriptions = Option<Arc<Vec<crate::ports::Subscriber>>>;

#[derive(Clone)]
pub struct Deps {
    pub config: Config,
    pub subscriptions: Arc<dyn SubscriptionStore>,
    pub api_keys: Arc<dyn ApiKeyStore>,
    pub tenants: Arc<dyn TenantStore>,
    /// Events published over HTTP.
    pub events: Arc<dyn EventStore>,
    pub ledger: Arc<dyn Ledger>,
    pub queues: Arc<dyn Queues>,
    pub sender: HttpSender,
    /// Fan-out: each tenant's subscriptions, for `SUBSCRIPTION_CACHE_TTL_MS`.
    pub tenant_cache: Arc<TtlCache<TenantId, TenantSubscriptions>>,
    /// Delivery: each subscription, for the same TTL (reloaded when a task names a newer version).
    pub subscription_cache: Arc<TtlCache<(TenantId, SubscriptionId), Option<Arc<Subscription>>>>,
    /// Delivery: health changes not yet written.
    pub health: Arc<HealthBook>,
    pub faults: Faults,
}

impl Deps {
    /// The AWS adapters, every client built from one loaded SDK config.
    pub fn aws(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        Self::aws_counted(sdk, config, None)
    }

    /// The AWS adapters with every API call counted (tests and benchmarks).
    pub fn aws_counted(sdk: &aws_config::SdkConfig, config: Config, counter: Option<&CallCounter>) -> Self {
        Self::aws_at(sdk, config, counter, None, None)
    }

    /// The AWS adapters with SQS and DynamoDB at endpoints of their own, if given (tests cut one
    /// of them off through a proxy).
    pub fn aws_at(sdk: &aws_config::SdkConfig, config: Config, counter: Option<&CallCounter>, sqs_endpoint: Option<&str>, dynamodb_endpoint: Option<&str>) -> Self {
        let ddb = calls::dynamodb_client(sdk, counter, dynamodb_endpoint);
        let sqs = calls::sqs_client(sdk, counter, sqs_endpoint);
        Self::with(
            config.clone(),
            Arc::new(dynamodb::DynamoSubscriptions::new(ddb.clone(), &config)),
            Arc::new(dynamodb::DynamoApiKeys::new(ddb.clone(), &config)),
            Arc::new(dynamodb::DynamoTenants::new(ddb.clone(), &config)),
            Arc::new(dynamodb::DynamoEvents::new(ddb.clone(), &config)),
            Arc::new(dynamodb::DynamoLedger::new(ddb, &config)),
            Arc::new(sqs::SqsQueues::new(sqs, &config)),
        )
    }

    /// In-memory adapters (unit tests); the queues are returned too so tests can inspect them.
    pub fn memory(config: Config) -> (Self, Arc<memory::MemoryQueues>) {
        let (deps, queues, _) = Self::memory_with_ledger(config);
        (deps, queues)
    }

    /// [`Deps::memory`], and its ledger.
    pub fn memory_with_ledger(config: Config) -> (Self, Arc<memory::MemoryQueues>, Arc<memory::MemoryLedger>) {
        let queues = Arc::new(memory::MemoryQueues::default());
        let ledger = Arc::new(memory::MemoryLedger::default());
        let deps = Self::with(
            config,
            Arc::new(memory::MemorySubscriptions::default()),
            Arc::new(memory::MemoryApiKeys::default()),
            Arc::new(memory::MemoryTenants::default()),
            Arc::new(memory::MemoryEvents::default()),
            ledger.clone(),
            queues.clone(),
        );
        (deps, queues, ledger)
    }

    #[allow(clippy::too_many_arguments)]
    fn with(
        config: Config,
        subscriptions: Arc<dyn SubscriptionStore>,
        api_keys: Arc<dyn ApiKeyStore>,
        tenants: Arc<dyn TenantStore>,
        events: Arc<dyn EventStore>,
        ledger: Arc<dyn Ledger>,
        queues: Arc<dyn Queues>,
    ) -> Self {
        Self {
            sender: HttpSender::new(config.delivery_timeout, config.allow_http, config.allow_private_targets).with_proxy(config.delivery_proxy.as_deref()),
            tenant_cache: Arc::new(TtlCache::new(config.subscription_cache_ttl)),
            subscription_cache: Arc::new(TtlCache::new(config.subscription_cache_ttl)),
            health: Arc::new(HealthBook::default()),
            faults: Faults::default(),
            subscriptions,
            api_keys,
            tenants,
            events,
            ledger,
            queues,
            config,
        }
    }
}

/// Loads the AWS SDK configuration once (region, credentials, and `AWS_ENDPOINT_URL` when set,
/// which is how the local runner points the SDK at LocalStack).
///
/// The HTTPS client is the SDK's own (hyper 1 + rustls) on ring, the crypto library reqwest uses
/// for deliveries: one TLS stack in each binary (the SDK's default would link aws-lc as well).
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let https = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https).load().await
}
