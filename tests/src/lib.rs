//! Test support for the end-to-end tests: a fresh LocalStack stack per test (from
//! `infra/data.yaml`, via `scripts/localstack.sh provision`), the local runner in-process, a
//! real HTTP receiver on 127.0.0.1, and polling with deadlines. Just past 400 lines: `TestStack`
//! is one type (start, the API calls, publishing, queue depths), which the other modules use.
//!
//! Needs a running LocalStack: `AWS_ENDPOINT_URL` and `LOCALSTACK_PORT` are set by
//! `scripts/test.sh`, which starts one and stops it afterwards.

pub mod census;
pub mod chaos;
pub mod iam;
pub mod proxy;
pub mod receiver;
pub mod tls;

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
    /// 0 leaves events on their queue.
    pub fanout_pollers: usize,
    /// Where the runner (not the test's own clients) reaches AWS, e.g. a cuttable proxy.
    pub runner_endpoint: Option<String>,
    /// Where only the handlers reach SQS / DynamoDB (the pollers keep receiving).
    pub handler_sqs_endpoint: Option<String>,
    pub handler_dynamodb_endpoint: Option<String>,
    /// Receives before SQS dead-letters a message (`None`: the defaults, attempts + headroom for
    /// the delivery queue, 20 for the events queue).
    pub delivery_max_receive_count: Option<u32>,
    pub event_max_receive_count: Option<u32>,
    /// Visibility timeouts of the delivery and events queues (seconds).
    pub delivery_visibility_timeout: u32,
    pub event_visibility_timeout: u32,
    /// Lambda mode: the release bootstraps as processes ([`runner::lambda`]); the default is
    /// `E2E_LAMBDA=1` in the environment (`scripts/test.sh` runs some test files so).
    pub lambda: bool,
    /// Lambda mode: functions' timeouts other than the template's.
    pub function_timeouts: Vec<(&'static str, Duration)>,
}

/// Whether `E2E_LAMBDA=1`: the tests that can run in either mode run in Lambda mode.
pub fn lambda_mode() -> bool {
    std::env::var("E2E_LAMBDA").is_ok_and(|v| v == "1")
}

/// The SAM translation of `infra/template.yaml` (by `scripts/sam-translate.py` with the SAM
/// venv's translator), once per test process.
pub fn translated_template() -> serde_json::Value {
    static TEMPLATE: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let root = repo_root();
            let python = root.join(".tools/venv/bin/python");
            assert!(python.is_file(), "Lambda mode needs the SAM venv: run scripts/sam.sh install");
            let out = Command::new(python).arg(root.join("scripts/sam-translate.py")).arg(root.join("infra/template.yaml")).output().expect("run sam-translate.py");
            assert!(out.status.success(), "sam-translate.py failed: {}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice(&out.stdout).expect("the translation is JSON")
        })
        .clone()
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            retry_schedule: "1,1",
            delivery_timeout_ms: 3000,
            env: Vec::new(),
            delivery_pollers: 2,
            fanout_pollers: 2,
            runner_endpoint: None,
            handler_sqs_endpoint: None,
            handler_dynamodb_endpoint: None,
            delivery_max_receive_count: None,
            event_max_receive_count: None,
            delivery_visibility_timeout: 10,
            event_visibility_timeout: 10,
            lambda: lambda_mode(),
            function_timeouts: Vec::new(),
        }
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
    /// The SDK config of the test's own clients, and the runner's.
    pub sdk: aws_config::SdkConfig,
    runner_sdk: aws_config::SdkConfig,
    runner_opts: Options,
}

/// The `occurred_at` of every envelope [`TestStack::envelope`] makes.
pub const ENVELOPE_TIME: &str = "2026-11-22T10:00:00Z";

impl TestStack {
    pub async fn start(opts: StackOptions) -> Self {
        init_tracing();
        let name = format!("t-{}", ulid_like());
        let schedule = shared::retry::RetryPolicy::parse(opts.retry_schedule).expect("valid schedule");
        let receives = opts.delivery_max_receive_count.unwrap_or(schedule.max_attempts() + shared::retry::RECEIVE_HEADROOM);
        let mut params = vec![
            ("DeliveryMaxReceiveCount", receives.to_string()),
            ("DeliveryVisibilityTimeout", opts.delivery_visibility_timeout.to_string()),
            ("EventVisibilityTimeout", opts.event_visibility_timeout.to_string()),
        ];
        if let Some(n) = opts.event_max_receive_count {
            params.push(("EventMaxReceiveCount", n.to_string()));
        }
        let outputs = provision(&name, &params);
        let mut env = outputs.clone();
        env.insert("RETRY_SCHEDULE".into(), opts.retry_schedule.into());
        env.insert("DELIVERY_TIMEOUT_MS".into(), opts.delivery_timeout_ms.to_string());
        env.insert("ALLOW_HTTP".into(), "true".into());
        env.insert("ALLOW_PRIVATE_TARGETS".into(), "true".into());
        env.insert("MIN_THROTTLE_DELAY_SECS".into(), "1".into());
        env.insert("SUBSCRIPTION_CACHE_TTL_MS".into(), "0".into());
        env.insert("HEALTH_FLUSH_SECS".into(), "0".into());
        // Infrastructure errors back off 1 s, doubling, at most 4 s (production: 5 s up to 6 h).
        env.insert("INFRA_BACKOFF_MS".into(), "1000".into());
        env.insert("INFRA_BACKOFF_MAX_SECS".into(), "4".into());
        // The circuit breaker is off unless a test turns it on (tests/tests/fair_delivery.rs): the
        // other tests make endpoints fail on purpose and follow their deliveries to the end.
        env.insert("CIRCUIT_FAILURES".into(), "0".into());
        for (k, v) in &opts.env {
            env.insert(k.to_string(), v.clone());
        }
        let config = Config::from_lookup(|k| env.get(k).cloned()).expect("config from stack outputs");
        let sdk = shared::load_sdk_config().await;
        let runner_sdk = sdk.clone();
        let calls = CallCounter::default();
        let lambda = opts.lambda.then(|| {
            // The template's own environment, resolved against this stack, with its parameters
            // for what a parameter sets; the rest of the test settings on top.
            let parameters = HashMap::from([("RetrySchedule".to_owned(), opts.retry_schedule.to_owned()), ("DeliveryTimeoutMs".to_owned(), opts.delivery_timeout_ms.to_string())]);
            let overrides = env.iter().filter(|(k, _)| !outputs.contains_key(*k) && *k != "RETRY_SCHEDULE" && *k != "DELIVERY_TIMEOUT_MS").map(|(k, v)| (k.clone(), v.clone())).collect();
            runner::lambda::LambdaOptions {
                template: translated_template(),
                parameters,
                outputs: outputs.clone(),
                overrides,
                timeouts: opts.function_timeouts.iter().map(|(f, t)| (f.to_string(), *t)).collect(),
                bootstraps: repo_root().join(".aws-sam/build"),
                emulator: repo_root().join(".tools/venv/bin/cargo-lambda"),
                work_dir: repo_root().join("target/lambda").join(&name),
                aws_endpoint: std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (LocalStack)"),
                api_concurrency: 4,
            }
        });
        let runner_opts = Options {
            lambda,
            wait_seconds: 1,
            delivery_pollers: opts.delivery_pollers,
            fanout_pollers: opts.fanout_pollers,
            calls: Some(calls.clone()),
            sweep_every: None, // tests run "one sweeper pass" themselves
            endpoint: opts.runner_endpoint.clone(),
            handler_sqs_endpoint: opts.handler_sqs_endpoint.clone(),
            handler_dynamodb_endpoint: opts.handler_dynamodb_endpoint.clone(),
            ..Default::default()
        };
        let runner_opts_copy = runner_opts.clone();
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
            sdk,
            runner_sdk,
            runner_opts: runner_opts_copy,
        }
    }

    /// Stops the runner (as if its processes were killed: in-flight handlers are dropped) and
    /// starts a new one on the same stack.
    pub async fn restart(&mut self) {
        self.restart_with(|_| {}).await;
    }

    /// [`TestStack::restart`] with changed runner options (e.g. delivery pollers).
    pub async fn restart_with(&mut self, change: impl FnOnce(&mut Options)) {
        change(&mut self.runner_opts);
        self.runner.stop();
        self.runner = Runner::start(&self.runner_sdk, self.config.clone(), self.runner_opts.clone()).await.expect("runner restarts");
    }

    /// The delivery id of the pair (event published with [`TestStack::envelope`], subscription).
    pub fn delivery_id(event_id: &str, subscription: &str) -> shared::ids::DeliveryId {
        let sub = shared::ids::SubscriptionId::parse(subscription).expect("a subscription id");
        let at = shared::timefmt::parse(ENVELOPE_TIME).expect("the envelope's time");
        shared::ids::DeliveryId::derive(shared::ids::EventSource::Queue, &shared::ids::TenantId::parse("acme").unwrap(), event_id, at, &sub)
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
            "occurred_at": ENVELOPE_TIME,
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
        let resp = self.request(&self.api_key, "POST", "/v1/subscriptions", Some(serde_json::json!({ "url": url, "events": events }))).send().await.expect("POST /v1/subscriptions");
        assert_eq!(resp.status(), 201, "create subscription: {}", resp.text().await.unwrap_or_default());
        resp.json().await.expect("JSON body")
    }

    /// An API call with the stack's key: status and JSON body (`Null` if none).
    pub async fn call(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
        self.call_as(&self.api_key, method, path, body).await
    }

    /// [`TestStack::call`] with another bearer key (e.g. a narrower one, a revoked one).
    pub async fn call_as(&self, key: &str, method: &str, path: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
        let resp = self.request(key, method, path, body).send().await.expect("API request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// [`TestStack::call`] returning the raw response text, for tests that look at the bytes.
    pub async fn call_text(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> (u16, String) {
        let resp = self.request(&self.api_key, method, path, body).send().await.expect("API request");
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("a response body"))
    }

    /// The one way the tests build an API request: `key` as the bearer token, `body` as JSON.
    fn request(&self, key: &str, method: &str, path: &str, body: Option<serde_json::Value>) -> reqwest::RequestBuilder {
        let req = self.http.request(method.parse().expect("a method"), self.api(path)).bearer_auth(key);
        match body {
            Some(b) => req.json(&b),
            None => req,
        }
    }

    /// Publishes many envelopes (10 per `SendMessageBatch`).
    pub async fn publish_many(&self, ids: &[String], event_type: &str) {
        for chunk in ids.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let body = Self::envelope(id, event_type, serde_json::json!({"id": id})).to_string();
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body).build().unwrap()
                })
                .collect();
            let out = self.sqs.send_message_batch().queue_url(&self.config.events_queue_url).set_entries(Some(entries)).send().await.expect("publish");
            assert!(out.failed.is_empty(), "publishing failed: {:?}", out.failed);
        }
    }

    /// Waits until both queues are empty (nothing visible, nothing in flight).
    pub async fn settle(&self, deadline: Duration) {
        eventually(deadline, "both queues to drain", || async {
            let events = self.queue_depth(&self.config.events_queue_url).await;
            let deliveries = self.queue_depth(&self.config.delivery_queue_url).await;
            (events == 0 && deliveries == 0).then_some(())
        })
        .await;
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

/// Polls `arrived` for `period` and fails if it reports anything: "nothing else arrives", said
/// without a bare sleep.
pub async fn quiet<T: std::fmt::Debug, F, Fut>(period: Duration, what: &str, mut arrived: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    while start.elapsed() < period {
        if let Some(v) = arrived().await {
            panic!("expected no {what} within {period:?}, got {v:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ulid_like() -> String {
    shared::ids::EventId::generate().as_str().trim_start_matches("evt_").to_owned()
}
