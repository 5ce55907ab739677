//! The local runner plays AWS's part for the functions: it serves the API router over HTTP (as
//! API Gateway would) and long-polls the event and delivery queues, invoking the fan-out and
//! delivery handlers with real `SqsEvent` batches and deleting only the messages the handler did
//! not report in `batch_item_failures` (as a Lambda event source mapping would).
//!
//! Two modes: in-process (the handlers are called as library functions; tests can inject faults
//! and proxies between them and AWS), and Lambda mode ([`lambda`]: the release bootstraps run as
//! processes against a Lambda Runtime API, configured from `infra/template.yaml`).

pub mod lambda;
mod poller;
pub mod redrive;

use shared::adapters::calls::{self, CallCounter};
use shared::{Config, Deps};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;

pub use poller::{to_lambda_record as lambda_record, PollStats};

#[derive(Debug, Clone)]
pub struct Options {
    /// Where the API listens; port 0 picks a free one.
    pub api_addr: SocketAddr,
    /// Long-poll wait per ReceiveMessage call (SQS allows 0–20 s).
    pub wait_seconds: i32,
    /// Concurrent pollers of the event queue (Lambda scales these with queue depth); 0 = none.
    pub fanout_pollers: usize,
    /// Concurrent pollers of the delivery queue; 0 = none (deliveries stay queued).
    pub delivery_pollers: usize,
    /// Counts every AWS call of the handlers and the pollers.
    pub calls: Option<CallCounter>,
    /// Runs the sweeper this often (the template's schedule is 5 minutes); `None`: never.
    pub sweep_every: Option<std::time::Duration>,
    /// Where the runner (pollers and handlers) reaches AWS, if not where the SDK config says:
    /// tests cut it off through a proxy.
    pub endpoint: Option<String>,
    /// Where the handlers (not the pollers) reach SQS / DynamoDB, if not at `endpoint`: tests
    /// cut them off through a proxy while the pollers keep receiving.
    pub handler_sqs_endpoint: Option<String>,
    pub handler_dynamodb_endpoint: Option<String>,
    /// Lambda mode: the bootstraps as processes (the handler endpoints and `calls` do not apply).
    pub lambda: Option<lambda::LambdaOptions>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            api_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            wait_seconds: 5,
            fanout_pollers: 2,
            delivery_pollers: 2,
            calls: None,
            sweep_every: Some(std::time::Duration::from_secs(60)),
            endpoint: None,
            handler_sqs_endpoint: None,
            handler_dynamodb_endpoint: None,
            lambda: None,
        }
    }
}

/// A running runner; dropping it (or [`Runner::stop`]) stops the API server, the pollers and the
/// sweeper.
pub struct Runner {
    pub api_url: String,
    pub deps: Arc<Deps>,
    pub fanout_stats: Arc<PollStats>,
    pub delivery_stats: Arc<PollStats>,
    /// Lambda mode's functions, emulator and recorded calls.
    pub lambda: Option<Arc<lambda::Lambda>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Runner {
    pub async fn start(sdk: &aws_config::SdkConfig, config: Config, opts: Options) -> std::io::Result<Self> {
        // As the delivery and fan-out functions do at cold start (not counted: not per message).
        let endpoint = opts.endpoint.as_deref();
        let plain = calls::sqs_client(sdk, None, endpoint);
        shared::queue_check::check_delivery_queue(&plain, &config).await.map_err(std::io::Error::other)?;
        shared::queue_check::check_events_queue(&plain, &config).await.map_err(std::io::Error::other)?;
        let sqs = calls::sqs_client(sdk, opts.calls.as_ref(), endpoint);
        let handler_sqs = opts.handler_sqs_endpoint.as_deref().or(endpoint);
        let handler_ddb = opts.handler_dynamodb_endpoint.as_deref().or(endpoint);
        let deps = Arc::new(Deps::aws_at(sdk, config, opts.calls.as_ref(), handler_sqs, handler_ddb));
        let listener = tokio::net::TcpListener::bind(opts.api_addr).await?;
        let api_url = format!("http://{}", listener.local_addr()?);
        if let Some(lambda_opts) = &opts.lambda {
            return Self::start_lambda(listener, api_url, deps, lambda_opts, &opts).await;
        }
        let router = shared::api::router(deps.clone());
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "API server stopped");
            }
        })];
        let fanout_stats = Arc::new(PollStats::default());
        let delivery_stats = Arc::new(PollStats::default());
        let source = |url: &str| poller::Source { queue_url: url.to_owned(), queue_arn: lambda::recorder::queue_arn(url), batch_size: 10, wait_seconds: opts.wait_seconds };
        for _ in 0..opts.fanout_pollers {
            let d = deps.clone();
            tasks.push(poller::spawn(sqs.clone(), source(&deps.config.events_queue_url), fanout_stats.clone(), move |event| {
                let d = d.clone();
                async move { shared::fanout::handle_batch(event, &d).await }
            }));
        }
        // The ordered queues (FIFO) have pollers of their own, as each has its own mapping.
        for url in [&deps.config.events_queue_url, &deps.config.ordered_events_queue_url].into_iter().skip(1).take(usize::from(opts.fanout_pollers > 0)) {
            let d = deps.clone();
            tasks.push(poller::spawn(sqs.clone(), source(url), fanout_stats.clone(), move |event| {
                let d = d.clone();
                async move { shared::fanout::handle_batch(event, &d).await }
            }));
        }
        // The ordered delivery queue one message per batch, as its mapping in the template: a
        // message group's next task is received only once the one before it is done.
        for (url, batch_size) in [(&deps.config.delivery_queue_url, 10), (&deps.config.ordered_delivery_queue_url, 1)] {
            for _ in 0..opts.delivery_pollers {
                let d = deps.clone();
                tasks.push(poller::spawn(sqs.clone(), poller::Source { batch_size, ..source(url) }, delivery_stats.clone(), move |event| {
                    let d = d.clone();
                    async move { shared::delivery::handle_batch(event, &d).await }
                }));
            }
        }
        if let Some(every) = opts.sweep_every {
            let d = deps.clone();
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await; // the first tick is immediate
                loop {
                    tick.tick().await;
                    if let Err(e) = shared::sweeper::sweep(&d).await {
                        tracing::warn!(error = %e, "sweep failed");
                    }
                }
            }));
        }
        Ok(Self { api_url, deps, fanout_stats, delivery_stats, lambda: None, tasks })
    }

    /// Lambda mode: the HTTP API, the event source mappings and the schedules of the template,
    /// each invoking its function's bootstrap.
    async fn start_lambda(listener: tokio::net::TcpListener, api_url: String, deps: Arc<Deps>, lo: &lambda::LambdaOptions, opts: &Options) -> std::io::Result<Self> {
        let resolved = lambda::template::Deployment::resolve(&lo.template, &lo.parameters, &lo.outputs, "local").map_err(std::io::Error::other)?;
        // Each queue's pollers (the mapping's concurrency, capped by its MaximumConcurrency).
        let mut sources = Vec::new();
        for q in &resolved.queues {
            let url = lo
                .outputs
                .iter()
                .find(|(k, v)| k.ends_with("_ARN") && *v == &q.queue_arn)
                .and_then(|(k, _)| lo.outputs.get(&format!("{}_URL", k.trim_end_matches("_ARN"))))
                .cloned()
                .ok_or_else(|| std::io::Error::other(format!("no queue URL among the outputs for {}", q.queue_arn)))?;
            let c = &deps.config;
            let wanted = if url == c.events_queue_url { opts.fanout_pollers } else if url == c.delivery_queue_url || url == c.ordered_delivery_queue_url { opts.delivery_pollers } else { 1 };
            let n = q.max_concurrency.map_or(wanted, |m| wanted.min(m as usize));
            sources.push((q.clone(), url, n));
        }
        // A function's slots serve all its mappings (fan-out: the event queue and the ordered one).
        let mut concurrency: HashMap<String, usize> = HashMap::new();
        for (q, _, n) in &sources {
            *concurrency.entry(q.function.clone()).or_default() += *n;
        }
        for r in &resolved.routes {
            concurrency.insert(r.function.clone(), lo.api_concurrency);
        }
        let lambda = Arc::new(lambda::Lambda::start(lo, resolved.clone(), &concurrency).await?);
        let l = lambda.clone();
        let app = axum::Router::new().fallback(move |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>, req: axum::extract::Request| {
            let l = l.clone();
            async move { l.serve_http(req, peer).await }
        });
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await {
                tracing::error!(error = %e, "API server stopped");
            }
        })];
        let fanout_stats = Arc::new(PollStats::default());
        let delivery_stats = Arc::new(PollStats::default());
        for (q, url, n) in sources {
            let stats = if url == deps.config.events_queue_url || url == deps.config.ordered_events_queue_url { fanout_stats.clone() } else { delivery_stats.clone() };
            // The mapping polls with the function's role: through the function's recording proxy.
            let sdk = shared::load_sdk_config().await;
            let sqs = calls::sqs_client(&sdk, None, Some(&lambda.endpoints[&q.function]));
            let source = poller::Source { queue_url: url, queue_arn: q.queue_arn.clone(), batch_size: q.batch_size, wait_seconds: opts.wait_seconds };
            for _ in 0..n {
                let (l, f, report) = (lambda.clone(), q.function.clone(), q.report_batch_item_failures);
                tasks.push(poller::spawn(sqs.clone(), source.clone(), stats.clone(), move |event| {
                    let (l, f) = (l.clone(), f.clone());
                    async move { invoke_batch(&l, &f, report, event).await }
                }));
            }
        }
        if let Some(every) = opts.sweep_every {
            for (function, rule, _) in lambda.schedules() {
                let l = lambda.clone();
                tasks.push(tokio::spawn(async move {
                    let mut tick = tokio::time::interval(every);
                    tick.tick().await;
                    loop {
                        tick.tick().await;
                        if let Err(e) = l.invoke(&function, &lambda::Lambda::scheduled_event(&rule)).await {
                            tracing::warn!(%function, error = %e, "scheduled invocation failed");
                        }
                    }
                }));
            }
        }
        Ok(Self { api_url, deps, fanout_stats, delivery_stats, lambda: Some(lambda), tasks })
    }

    pub fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }

    /// Waits until a stop signal (Ctrl-C or SIGTERM).
    pub async fn wait_for_signal(&self) {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One batch through a function, as an event source mapping sees it: with
/// `ReportBatchItemFailures` the function's list of failures; a function error, a timeout or a
/// response that is not a batch response fails the whole batch (its messages come back after
/// their visibility timeout).
async fn invoke_batch(lambda: &lambda::Lambda, function: &str, report: bool, event: SqsEvent) -> SqsBatchResponse {
    let ids: Vec<String> = event.records.iter().filter_map(|r| r.message_id.clone()).collect();
    let all_failed = || -> SqsBatchResponse {
        serde_json::from_value(serde_json::json!({"batchItemFailures": ids.iter().map(|id| serde_json::json!({"itemIdentifier": id})).collect::<Vec<_>>()})).unwrap_or_default()
    };
    let payload = match serde_json::to_value(&event) {
        Ok(p) => p,
        Err(_) => return all_failed(),
    };
    match lambda.invoke(function, &payload).await {
        Ok(v) if report => serde_json::from_value(v).unwrap_or_else(|e| {
            tracing::warn!(%function, error = %e, "not a batch response: the whole batch failed");
            all_failed()
        }),
        Ok(_) => SqsBatchResponse::default(),
        Err(e) => {
            tracing::warn!(%function, error = %e, "invocation failed: the whole batch comes back");
            all_failed()
        }
    }
}
