//! What the handlers need, built once per process (cold start) and shared by reference.

use crate::adapters::{dynamodb, memory, sqs};
use crate::config::Config;
use crate::delivery::http::HttpSender;
use crate::ports::{ApiKeyStore, DeliveryQueue, DeliveryStore, SubscriptionStore};
use std::sync::Arc;

#[derive(Clone)]
pub struct Deps {
    pub config: Config,
    pub subscriptions: Arc<dyn SubscriptionStore>,
    pub api_keys: Arc<dyn ApiKeyStore>,
    pub deliveries: Arc<dyn DeliveryStore>,
    pub delivery_queue: Arc<dyn DeliveryQueue>,
    pub sender: HttpSender,
}

impl Deps {
    /// The AWS adapters, every client built from one loaded SDK config.
    pub fn aws(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        Self {
            subscriptions: Arc::new(dynamodb::DynamoSubscriptions::new(ddb.clone(), &config)),
            api_keys: Arc::new(dynamodb::DynamoApiKeys::new(ddb.clone(), &config)),
            deliveries: Arc::new(dynamodb::DynamoDeliveries::new(ddb, &config)),
            delivery_queue: Arc::new(sqs::SqsDeliveryQueue::new(sqs, &config)),
            sender: sender(&config),
            config,
        }
    }

    /// In-memory adapters (unit tests); the queue is returned too so tests can inspect it.
    pub fn memory(config: Config) -> (Self, Arc<memory::MemoryQueue>) {
        let queue = Arc::new(memory::MemoryQueue::default());
        let deps = Self {
            subscriptions: Arc::new(memory::MemorySubscriptions::default()),
            api_keys: Arc::new(memory::MemoryApiKeys::default()),
            deliveries: Arc::new(memory::MemoryDeliveries::default()),
            delivery_queue: queue.clone(),
            sender: sender(&config),
            config,
        };
        (deps, queue)
    }
}

fn sender(config: &Config) -> HttpSender {
    HttpSender::new(config.delivery_timeout, config.allow_http, config.allow_private_targets)
}

/// Loads the AWS SDK configuration once (region, credentials, and `AWS_ENDPOINT_URL` when set,
/// which is how the local runner points the SDK at LocalStack).
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
