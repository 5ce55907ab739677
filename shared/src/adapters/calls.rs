//! Counts AWS API calls per (service, operation), for tests and benchmarks: an SDK interceptor
//! attached to the clients, so it sees exactly the requests the adapters send.

use aws_sdk_sqs::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_sqs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<Mutex<BTreeMap<String, u64>>>);

impl CallCounter {
    /// Calls of `operation` (e.g. `SendMessageBatch`) so far.
    pub fn get(&self, operation: &str) -> u64 {
        self.0.lock().unwrap().get(operation).copied().unwrap_or(0)
    }

    /// Every operation and its count.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap().clone()
    }

    pub fn reset(&self) {
        self.0.lock().unwrap().clear();
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    // Not `read_before_execution`: client-level interceptors run that before the operation's
    // metadata is in the config bag.
    fn read_before_serialization(
        &self,
        _ctx: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            *self.0.lock().unwrap().entry(meta.name().to_owned()).or_default() += 1;
        }
        Ok(())
    }
}

/// An SQS client built from `sdk`, counted when a counter is given, at `endpoint` if given.
///
/// The endpoint is set on the service's own builder: one set on the `SdkConfig` loses to the
/// `AWS_ENDPOINT_URL` variable, which the SDK reads again when it builds a client.
pub fn sqs_client(sdk: &aws_config::SdkConfig, counter: Option<&CallCounter>, endpoint: Option<&str>) -> aws_sdk_sqs::Client {
    let mut b = aws_sdk_sqs::config::Builder::from(sdk);
    if let Some(c) = counter {
        b = b.interceptor(c.clone());
    }
    if let Some(url) = endpoint {
        b = b.endpoint_url(url);
    }
    aws_sdk_sqs::Client::from_conf(b.build())
}

/// A DynamoDB client built from `sdk`, counted when a counter is given, at `endpoint` if given.
pub fn dynamodb_client(sdk: &aws_config::SdkConfig, counter: Option<&CallCounter>, endpoint: Option<&str>) -> aws_sdk_dynamodb::Client {
    let mut b = aws_sdk_dynamodb::config::Builder::from(sdk);
    if let Some(c) = counter {
        b = b.interceptor(c.clone());
    }
    if let Some(url) = endpoint {
        b = b.endpoint_url(url);
    }
    aws_sdk_dynamodb::Client::from_conf(b.build())
}
