//! The local runner plays AWS's part for the functions: it serves the API router over HTTP (as
//! API Gateway would) and long-polls the event and delivery queues, invoking the fan-out and
//! delivery handlers with real `SqsEvent` batches and deleting only the messages the handler did
//! not report in `batch_item_failures` (as a Lambda event source mapping would).

mod poller;
pub mod redrive;

use shared::adapters::calls::{self, CallCounter};
use shared::{Config, Deps};
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
        let router = shared::api::router(deps.clone());
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "API server stopped");
            }
        })];
        let fanout_stats = Arc::new(PollStats::default());
        let delivery_stats = Arc::new(PollStats::default());
        for _ in 0..opts.fanout_pollers {
            let d = deps.clone();
            tasks.push(poller::spawn(
                sqs.clone(),
                deps.config.events_queue_url.clone(),
                opts.wait_seconds,
                fanout_stats.clone(),
                move |event| {
                    let d = d.clone();
                    async move { shared::fanout::handle_batch(event, &d).await }
                },
            ));
        }
        for _ in 0..opts.delivery_pollers {
            let d = deps.clone();
            tasks.push(poller::spawn(
                sqs.clone(),
                deps.config.delivery_queue_url.clone(),
                opts.wait_seconds,
                delivery_stats.clone(),
                move |event| {
                    let d = d.clone();
                    async move { shared::delivery::handle_batch(event, &d).await }
                },
            ));
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
        Ok(Self { api_url, deps, fanout_stats, delivery_stats, tasks })
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
