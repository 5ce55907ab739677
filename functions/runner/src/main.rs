//! `webhooks-local`: the local runner and operator commands.
//!
//! ```text
//! webhooks-local serve [--port N]                       API on 127.0.0.1:N + queue pollers + sweeper
//! webhooks-local serve --lambda [--port N] [--parameter K=V].. [--override K=V]..
//!                                                       the same with the release bootstraps as
//!                                                       processes (runner::lambda): the template
//!                                                       translated at .aws-sam/template.translated.json,
//!                                                       bootstraps in .aws-sam/build, cargo-lambda in
//!                                                       .tools/venv/bin (scripts/run-local.sh --lambda)
//! webhooks-local create-key --tenant T [--scopes S,..]  prints a new API key once
//! webhooks-local revoke-key --tenant T --key-id key_…   revokes one of the tenant's keys
//! webhooks-local publish '<event JSON>'                 sends an event to the event queue, as upstream would
//! webhooks-local redrive events|deliveries              moves a DLQ's messages back (SQS message-move task)
//! webhooks-local sweep                                  one sweeper pass
//! ```
//! Configuration comes from the same environment variables the Lambda functions read, plus the
//! standard AWS ones (`AWS_ENDPOINT_URL` points at LocalStack).

use runner::redrive::{redrive, Dlq};
use shared::ids::{EventSource, TenantId};
use shared::model::Scope;
use shared::{Config, Deps};
use std::process::ExitCode;

const USAGE: &str = "usage: webhooks-local serve [--port N] [--lambda [--parameter K=V].. [--override K=V]..] | create-key --tenant T [--scopes webhooks:read,webhooks:write,webhooks:delete,webhooks:admin,events:publish] | revoke-key --tenant T --key-id key_... | publish '<event JSON>' | redrive events|deliveries | sweep";

/// A command line, parsed.
enum Command {
    Serve { port: u16, lambda: Option<LambdaFlags> },
    CreateKey { tenant: TenantId, scopes: Vec<Scope> },
    RevokeKey { tenant: TenantId, key_id: String },
    Publish { body: String },
    Redrive(Dlq),
    Sweep,
}

/// `serve --lambda`: template parameters and environment overrides.
struct LambdaFlags {
    parameters: Vec<(String, String)>,
    overrides: Vec<(String, String)>,
}

/// Every `NAME K=V` pair.
fn pairs(args: &[String], name: &str) -> Result<Vec<(String, String)>, String> {
    args.windows(2)
        .filter(|w| w[0] == name)
        .map(|w| w[1].split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| format!("{name} takes KEY=VALUE, got `{}`", w[1])))
        .collect()
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn tenant_flag(args: &[String]) -> Result<TenantId, String> {
    flag(args, "--tenant").as_deref().and_then(TenantId::parse).ok_or_else(|| "--tenant takes 1-64 of [A-Za-z0-9_.:-]".into())
}

impl Command {
    fn parse(args: &[String]) -> Result<Self, String> {
        match args.first().map(String::as_str) {
            Some("serve") => {
                let port = match flag(args, "--port").map(|p| p.parse()) {
                    None => 3000,
                    Some(Ok(port)) => port,
                    Some(Err(_)) => return Err("--port takes a number".into()),
                };
                let lambda = args.iter().any(|a| a == "--lambda").then(|| Ok::<_, String>(LambdaFlags { parameters: pairs(args, "--parameter")?, overrides: pairs(args, "--override")? })).transpose()?;
                Ok(Self::Serve { port, lambda })
            }
            Some("create-key") => {
                let scopes = match flag(args, "--scopes") {
                    None => Scope::DEFAULT.to_vec(),
                    Some(list) => list.split(',').map(Scope::parse).collect::<Option<Vec<_>>>().ok_or_else(|| format!("unknown scope in `{list}`"))?,
                };
                Ok(Self::CreateKey { tenant: tenant_flag(args)?, scopes })
            }
            Some("revoke-key") => Ok(Self::RevokeKey { tenant: tenant_flag(args)?, key_id: flag(args, "--key-id").ok_or("--key-id is required")? }),
            Some("publish") => Ok(Self::Publish { body: args.get(1).cloned().ok_or("publish takes the event's JSON")? }),
            Some("redrive") => match args.get(1).map(String::as_str) {
                Some("events") => Ok(Self::Redrive(Dlq::Events)),
                Some("deliveries") => Ok(Self::Redrive(Dlq::Deliveries)),
                _ => Err("redrive takes `events` or `deliveries`".into()),
            },
            Some("sweep") => Ok(Self::Sweep),
            _ => Err("unknown command".into()),
        }
    }
}

/// Lambda mode from the files `scripts/run-local.sh --lambda` prepares (paths relative to the
/// repository root, where it runs).
fn lambda_options(flags: LambdaFlags) -> Result<runner::lambda::LambdaOptions, String> {
    let path = ".aws-sam/template.translated.json";
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e} (scripts/run-local.sh --lambda writes it)"))?;
    let template = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    Ok(runner::lambda::LambdaOptions {
        template,
        parameters: flags.parameters.into_iter().collect(),
        // The data stack's outputs are in the environment (scripts/localstack.sh provision).
        outputs: std::env::vars().collect(),
        overrides: flags.overrides,
        timeouts: Default::default(),
        bootstraps: ".aws-sam/build".into(),
        emulator: ".tools/venv/bin/cargo-lambda".into(),
        work_dir: "target/lambda/local".into(),
        aws_endpoint: std::env::var("AWS_ENDPOINT_URL").map_err(|_| "AWS_ENDPOINT_URL is not set (LocalStack)".to_owned())?,
        api_concurrency: 4,
    })
}

async fn serve(sdk: &aws_config::SdkConfig, config: Config, port: u16, lambda: Option<LambdaFlags>) -> Result<(), String> {
    let lambda = lambda.map(lambda_options).transpose()?;
    let opts = runner::Options { api_addr: ([127, 0, 0, 1], port).into(), lambda, ..Default::default() };
    let runner = runner::Runner::start(sdk, config, opts).await.map_err(|e| format!("cannot start on port {port}: {e}"))?;
    println!("API listening on {}", runner.api_url);
    runner.wait_for_signal().await;
    Ok(())
}

async fn create_key(deps: &Deps, tenant: &TenantId, scopes: &[Scope]) -> Result<(), String> {
    let (key, record) = shared::api::auth::issue_key(deps, tenant, scopes).await.map_err(|e| e.to_string())?;
    eprintln!("created {} for tenant {tenant}; the key is shown once:", record.key_id);
    println!("{key}");
    Ok(())
}

async fn revoke_key(deps: &Deps, tenant: &TenantId, key_id: &str) -> Result<(), String> {
    match shared::api::keys::revoke_key(deps, tenant, key_id).await.map_err(|e| e.to_string())? {
        true => {
            println!("revoked {key_id}");
            Ok(())
        }
        false => Err(format!("tenant {tenant} has no key {key_id}")),
    }
}

/// As upstream would (`EventSource::Queue`): through the queue port, as `POST /v1/events` and the
/// operational events publish, after the checks fan-out applies.
async fn publish(deps: &Deps, body: &str) -> Result<(), String> {
    let event = shared::envelope::parse_event(body).map_err(|e| e.reason())?;
    deps.queues.publish_event(body, EventSource::Queue).await.map_err(|e| format!("send failed: {e}"))?;
    println!("published event {} to the event queue", event.event_id);
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    shared::telemetry::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match Command::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("webhooks-local: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("webhooks-local: {e}");
            return ExitCode::from(2);
        }
    };
    let sdk = shared::load_sdk_config().await;
    let deps = Deps::aws(&sdk, config.clone());
    let result = match command {
        Command::Serve { port, lambda } => serve(&sdk, config, port, lambda).await,
        Command::CreateKey { tenant, scopes } => create_key(&deps, &tenant, &scopes).await,
        Command::RevokeKey { tenant, key_id } => revoke_key(&deps, &tenant, &key_id).await,
        Command::Publish { body } => publish(&deps, &body).await,
        Command::Redrive(which) => redrive(&aws_sdk_sqs::Client::new(&sdk), &deps, which).await.map(|r| println!("redrive: {} messages moved ({})", r.moved, r.status)),
        Command::Sweep => shared::sweeper::sweep(&deps).await.map(|s| println!("{}", serde_json::to_string(&s).unwrap_or_default())).map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("webhooks-local: {e}");
            ExitCode::FAILURE
        }
    }
}
