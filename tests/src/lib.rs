//! Test support for the end-to-end tests: a fresh LocalStack stack per test (from
//! `infra/data.yaml`, via `scripts/localstack.sh provision`), the local runner in-process, a
//! real HTTP receiver on 127.0.0.1, and polling with deadlines.
//!
//! Needs a running LocalStack: `AWS_ENDPOINT_URL` and `LOCALSTACK_PORT` are set by
//! `scripts/test.sh`, which starts one and stops it afterwards.

pub mod chaos;
pub mod proxy;
pub mod receiver;

use aws_sdk_sqs::types::QueueAttributeName;
use runner::{Options, Runner};
use shared::adapters::calls::CallCounter;
use shared::model::Scope;
use shared::Config;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_test_writer()
        .try_init();
}

/// Settings a test may change from the production defaults.
pub struct StackOptions {
    pub retry_schedule: &'static str,
    pub delivery_timeout_ms: u64,
    /// Further environment settings (e.g. `MAX_SUBSCRIPTIONS_PER_TENANT`).
    pub env: Vec<(&'static str, String)>,
    /// 0 leaves delivery tasks on the queue, to count them.
    pub delivery_pollers: usize,
    /// Where the runner (not the test's own clients) reaches AWS, e.g. a cuttable proxy.
    pub runner_endpoint: Option<String>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self { retry_schedule: "1,1", delivery_timeout_ms: 3000, env: Vec::new(), delivery_pollers: 2, runner_endpoint: None }
    }
}

/// Deploys `infra/data.yaml` as a new stack and returns its outputs as environment variables.
pub fn provision(stack: &str, params: &[(&str, String)]) -> HashMap<String, String> {
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("scripts/localstack.sh")).arg("provision").arg(stack);
    for (k, v) in params {
        cmd.arg(format!("{k}={v}"));
    }
    let out = cmd.output().expect("run scripts/localstack.sh");
    assert!(out.status.success(), "provision {stack} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .expect("utf-8 outputs")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// One isolated deployment: its own queues and tables, a runner on them, an API key.
pub struct TestStack {
    pub config: Config,
    pub runner: Runner,
    pub api_key: String,
    pub sqs: aws_sdk_sqs::Client,
    pub ddb: aws_sdk_dynamodb::Client,
    pub outputs: HashMap<String, String>,
    pub http: reqwest::Client,
    /// Every AWS call the runner (handlers and pollers) made.
    pub calls: CallCounter,
}

impl TestStack {
    pub async fn start(opts: StackOptions) -> Self {
        init_tracing();
        let name = format!("t-{}", ulid_like());
        let schedule = shared::retry::RetryPolicy::parse(opts.retry_schedule).expect("valid schedule");
        let outputs = provision(
            &name,
            &[("DeliveryMaxReceiveCount", schedule.max_attempts().to_string()), ("DeliveryVisibilityTimeout", "10".into())],
        );
        let mut env = outputs.clone();
        env.insert("RETRY_SCHEDULE".into(), opts.retry_schedule.into());
        env.insert("DELIVERY_TIMEOUT_MS".into(), opts.delivery_timeout_ms.to_string());
        env.insert("ALLOW_HTTP".into(), "true".into());
        env.insert("ALLOW_PRIVATE_TARGETS".into(), "true".into());
        env.insert("MIN_THROTTLE_DELAY_SECS".into(), "1".into());
        env.insert("SUBSCRIPTION_CACHE_TTL_MS".into(), "0".into());
        for (k, v) in &opts.env {
            env.insert(k.to_string(), v.clone());
        }
        let config = Config::from_lookup(|k| env.get(k).cloned()).expect("config from stack outputs");
        let sdk = shared::load_sdk_config().await;
        let runner_sdk = match &opts.runner_endpoint {
            Some(url) => sdk.to_builder().endpoint_url(url).build(),
            None => sdk.clone(),
        };
        let calls = CallCounter::default();
        let runner_opts = Options { wait_seconds: 1, delivery_pollers: opts.delivery_pollers, calls: Some(calls.clone()), ..Default::default() };
        let runner = Runner::start(&runner_sdk, config.clone(), runner_opts)
            .await
            .expect("runner starts");
        let tenant = shared::ids::TenantId::parse("acme").unwrap();
        let (api_key, _) = shared::api::auth::issue_key(&runner.deps, &tenant, &Scope::ALL)
            .await
            .expect("issue key");
        Self {
            config,
            runner,
            api_key,
            sqs: aws_sdk_sqs::Client::new(&sdk),
            ddb: aws_sdk_dynamodb::Client::new(&sdk),
            outputs,
            http: reqwest::Client::new(),
            calls,
        }
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}{path}", self.runner.api_url)
    }

    /// The envelope upstream would send.
    pub fn envelope(event_id: &str, event_type: &str, data: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "event_id": event_id,
            "event_type": event_type,
            "tenant_id": "acme",
            "occurred_at": "2026-11-22T10:00:00Z",
            "data": data,
        })
    }

    /// Polls until the event queue is empty (fanned out or dead-lettered).
    pub async fn drain_events(&self) {
        eventually(Duration::from_secs(60), "the event queue to drain", || async {
            (self.queue_depth(&self.config.events_queue_url).await == 0).then_some(())
        })
        .await;
    }

    /// Creates a subscription over HTTP; returns the response JSON (with the secret).
    pub async fn create_subscription(&self, url: &str, events: &[&str]) -> serde_json::Value {
        let resp = self
            .http
            .post(format!("{}/v1/subscriptions", self.runner.api_url))
            .bearer_auth(&self.api_key)
            .json(&serde_json::json!({ "url": url, "events": events }))
            .send()
            .await
            .expect("POST /v1/subscriptions");
        assert_eq!(resp.status(), 201, "create subscription: {}", resp.text().await.unwrap_or_default());
        resp.json().await.expect("JSON body")
    }

    /// Sends an upstream event envelope to the event queue, as an upstream service would.
    pub async fn publish(&self, event_id: &str, event_type: &str, data: serde_json::Value) {
        let body = Self::envelope(event_id, event_type, data);
        self.sqs
            .send_message()
            .queue_url(&self.config.events_queue_url)
            .message_body(body.to_string())
            .send()
            .await
            .expect("send event");
    }

    /// Approximate number of messages (visible + in flight) in a queue.
    pub async fn queue_depth(&self, url: &str) -> u64 {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("queue attributes");
        out.attributes
            .unwrap_or_default()
            .values()
            .map(|v| v.parse::<u64>().unwrap_or(0))
            .sum()
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ulid_like() -> String {
    shared::ids::EventId::generate().as_str().trim_start_matches("evt_").to_owned()
}
