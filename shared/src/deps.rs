//! What the handlers need, built once per process (cold start) and shared by reference.

use crate::adapters::calls::{self, CallCounter};
use crate::adapters::{dynamodb, memory, sqs};
use crate::config::Config;
use crate::delivery::http::HttpSender;
use crate::fanout::SubscriptionCache;
use crate::ports::{ApiKeyStore, DeliveryStore, Queues, SubscriptionStore, TenantStore};
use std::sync::Arc;

#[derive(Clone)]
pub struct Deps {
    pub config: Config,
    pub subscriptions: Arc<dyn SubscriptionStore>,
    pub api_keys: Arc<dyn ApiKeyStore>,
    pub tenants: Arc<dyn TenantStore>,
    pub deliveries: Arc<dyn DeliveryStore>,
    pub queues: Arc<dyn Queues>,
    pub sender: HttpSender,
    pub subscription_cache: Arc<SubscriptionCache>,
}

impl Deps {
    /// The AWS adapters, every client built from one loaded SDK config.
    pub fn aws(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        Self::aws_counted(sdk, config, None)
    }

    /// The AWS adapters with every API call counted (tests and benchmarks).
    pub fn aws_counted(sdk: &aws_config::SdkConfig, config: Config, counter: Option<&CallCounter>) -> Self {
        let ddb = calls::dynamodb_client(sdk, counter);
        let sqs = calls::sqs_client(sdk, counter);
        Self {
            subscriptions: Arc::new(dynamodb::DynamoSubscriptions::new(ddb.clone(), &config)),
            api_keys: Arc::new(dynamodb::DynamoApiKeys::new(ddb.clone(), &config)),
            tenants: Arc::new(dynamodb::DynamoTenants::new(ddb.clone(), &config)),
            deliveries: Arc::new(dynamodb::DynamoDeliveries::new(ddb, &config)),
            queues: Arc::new(sqs::SqsQueues::new(sqs, &config)),
            sender: sender(&config),
            subscription_cache: Arc::new(SubscriptionCache::new(config.subscription_cache_ttl)),
            config,
        }
    }

    /// In-memory adapters (unit tests); the queues are returned too so tests can inspect them.
    pub fn memory(config: Config) -> (Self, Arc<memory::MemoryQueues>) {
        let queues = Arc::new(memory::MemoryQueues::default());
        let deps = Self {
            subscriptions: Arc::new(memory::MemorySubscriptions::default()),
            api_keys: Arc::new(memory::MemoryApiKeys::default()),
            tenants: Arc::new(memory::MemoryTenants::default()),
            deliveries: Arc::new(memory::MemoryDeliveries::default()),
            queues: queues.clone(),
            sender: sender(&config),
            subscription_cache: Arc::new(SubscriptionCache::new(config.subscription_cache_ttl)),
            config,
        };
        (deps, queues)
    }
}

fn sender(config: &Config) -> HttpSender {
    HttpSender::new(config.delivery_timeout, config.allow_http, config.allow_private_targets).with_proxy(config.delivery_proxy.as_deref())
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
