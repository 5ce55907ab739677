//! Lambda mode: the release bootstraps (`sam build`'s `.aws-sam/build/<Function>/bootstrap`) run
//! as processes against cargo-lambda's Lambda emulator, configured from `infra/template.yaml`
//! (its SAM translation), while the runner plays the rest of AWS: API Gateway's HTTP API
//! ([`apigw`]), the SQS event source mappings (the pollers, batches of the template's
//! `BatchSize`, `ReportBatchItemFailures`), the schedules, and, per function, a recording proxy
//! in front of LocalStack ([`recorder`]).

pub mod apigw;
pub mod emulator;
pub mod recorder;
pub mod template;

use emulator::{Emulator, Failure, ProcessEnv, Slot};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;
use template::{Deployment, FunctionSpec};
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct LambdaOptions {
    /// The SAM translation of `infra/template.yaml` (`scripts/sam-translate.py`).
    pub template: Value,
    /// Values of the template's parameters (the others keep their defaults).
    pub parameters: HashMap<String, String>,
    /// The local data stack's outputs, as `scripts/localstack.sh provision` prints them.
    pub outputs: HashMap<String, String>,
    /// Environment settings a local run changes on top of the template (e.g. `ALLOW_HTTP`).
    pub overrides: Vec<(String, String)>,
    /// Function logical id → a timeout other than the template's (tests).
    pub timeouts: HashMap<String, Duration>,
    /// `sam build`'s output folder: `<LogicalId>/bootstrap` for each function.
    pub bootstraps: PathBuf,
    /// cargo-lambda (`scripts/sam.sh install` puts it in `.tools/venv/bin`).
    pub emulator: PathBuf,
    /// The emulator's package and every process's log.
    pub work_dir: PathBuf,
    /// Where the functions reach AWS (LocalStack).
    pub aws_endpoint: String,
    /// Execution environments the HTTP API's function may use at once.
    pub api_concurrency: usize,
}

/// A function's execution environments.
pub struct Pool {
    slots: Vec<Mutex<Slot>>,
    permits: Semaphore,
}

impl Pool {
    async fn invoke(&self, emulator: &Emulator, payload: Vec<u8>) -> Result<Vec<u8>, Failure> {
        let _permit = self.permits.acquire().await.map_err(|e| Failure::Emulator(e.to_string()))?;
        for slot in &self.slots {
            if let Ok(mut s) = slot.try_lock() {
                return s.invoke(emulator, payload).await;
            }
        }
        Err(Failure::Emulator("no free execution environment".into()))
    }

    /// Processes started so far (cold starts).
    pub async fn starts(&self) -> u64 {
        let mut n = 0;
        for s in &self.slots {
            n += s.lock().await.starts;
        }
        n
    }
}

pub struct Lambda {
    pub deployment: Deployment,
    emulator: Emulator,
    pools: HashMap<String, Pool>,
    /// Every AWS call each function (and its event source mapping) made.
    pub calls: recorder::Calls,
    /// Function logical id → the URL of its recording proxy.
    pub endpoints: HashMap<String, String>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Lambda {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Lambda {
    /// Starts the emulator and a recording proxy per function of the resolved template;
    /// `concurrency` gives the execution environments of the functions that need more than one.
    pub async fn start(opts: &LambdaOptions, mut deployment: Deployment, concurrency: &HashMap<String, usize>) -> std::io::Result<Self> {
        for (f, t) in &opts.timeouts {
            deployment.functions.get_mut(f).ok_or_else(|| std::io::Error::other(format!("no function {f}")))?.timeout = *t;
        }
        std::fs::create_dir_all(&opts.work_dir)?;
        // Absolute: the processes start in other directories.
        let (emulator_bin, bootstraps, work_dir) = (std::path::absolute(&opts.emulator)?, std::path::absolute(&opts.bootstraps)?, std::path::absolute(&opts.work_dir)?);
        let calls = recorder::Calls::default();
        let mut endpoints = HashMap::new();
        let mut tasks = Vec::new();
        let mut slot_names = Vec::new();
        let mut ids: Vec<&String> = deployment.functions.keys().collect();
        ids.sort();
        for id in &ids {
            let (url, task) = recorder::start(id, &opts.aws_endpoint, calls.clone()).await?;
            endpoints.insert((*id).clone(), url);
            tasks.push(task);
            let n = concurrency.get(*id).copied().unwrap_or(1).max(1);
            slot_names.extend((0..n).map(|i| format!("{id}-{i}")));
        }
        let emulator = Emulator::start(&emulator_bin, &work_dir, &slot_names).await?;
        let mut pools = HashMap::new();
        for id in ids {
            let spec: &FunctionSpec = &deployment.functions[id];
            let bootstrap = bootstraps.join(id).join("bootstrap");
            if !bootstrap.is_file() {
                return Err(std::io::Error::other(format!("no {} (run `scripts/sam.sh build`)", bootstrap.display())));
            }
            let env = ProcessEnv { aws_endpoint: endpoints[id].clone(), overrides: opts.overrides.clone(), log_dir: work_dir.clone() };
            let n = concurrency.get(id).copied().unwrap_or(1).max(1);
            let slots = (0..n).map(|i| Mutex::new(Slot::new(format!("{id}-{i}"), spec.clone(), bootstrap.clone(), env.clone()))).collect();
            pools.insert(id.clone(), Pool { slots, permits: Semaphore::new(n) });
        }
        Ok(Self { deployment, emulator, pools, calls, endpoints, tasks })
    }

    pub fn pool(&self, function: &str) -> Option<&Pool> {
        self.pools.get(function)
    }

    /// Invokes a function with a payload, as Lambda's Invoke API would (synchronously).
    pub async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, Failure> {
        let bytes = self.invoke_bytes(function, payload.to_string().into_bytes()).await?;
        serde_json::from_slice(&bytes).map_err(|e| Failure::Function(format!("not JSON: {e}")))
    }

    pub async fn invoke_bytes(&self, function: &str, payload: Vec<u8>) -> Result<Vec<u8>, Failure> {
        let pool = self.pools.get(function).ok_or_else(|| Failure::Emulator(format!("no function {function}")))?;
        pool.invoke(&self.emulator, payload).await
    }

    /// The functions of the template's schedules, with their period.
    pub fn schedules(&self) -> Vec<(String, String, Duration)> {
        self.deployment.schedules.iter().map(|s| (s.function.clone(), s.rule.clone(), s.every)).collect()
    }

    /// The event EventBridge sends a scheduled function.
    pub fn scheduled_event(rule: &str) -> Value {
        let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        serde_json::json!({
            "version": "0", "id": shared::ids::EventId::generate().as_str(), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": template::ACCOUNT, "time": now, "region": template::REGION,
            "resources": [format!("arn:aws:events:{}:{}:rule/{rule}", template::REGION, template::ACCOUNT)], "detail": {}
        })
    }

    /// An HTTP request through the HTTP API's routes.
    pub async fn serve_http(&self, req: axum::http::Request<axum::body::Body>, peer: std::net::SocketAddr) -> axum::http::Response<axum::body::Body> {
        use axum::http::StatusCode;
        let path = req.uri().path().to_owned();
        let Some((route, params)) = self.deployment.route(req.method().as_str(), &path) else {
            return apigw::message(StatusCode::NOT_FOUND, "Not Found");
        };
        let route = route.clone();
        let request_id = shared::ids::EventId::generate().as_str().trim_start_matches("evt_").to_owned();
        let event = match apigw::event(req, &route, params, peer, &request_id).await {
            Ok(e) => e,
            Err(resp) => return resp,
        };
        match self.invoke_bytes(&route.function, event.to_string().into_bytes()).await {
            Ok(payload) => apigw::response(&payload),
            Err(e) => {
                tracing::warn!(function = %route.function, error = %e, "invocation failed");
                apigw::message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }
}
