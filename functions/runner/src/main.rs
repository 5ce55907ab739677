//! `webhooks-local`: the local runner and operator commands.
//!
//! ```text
//! webhooks-local serve [--port N]                      API on 127.0.0.1:N + queue pollers
//! webhooks-local create-key --tenant T [--scopes S,..]  prints a new API key once
//! webhooks-local revoke-key --tenant T --key-id key_…   revokes one of the tenant's keys
//! webhooks-local publish '<event JSON>'                 sends an event to the event queue, as upstream would
//! ```
//! Configuration comes from the same environment variables the Lambda functions read, plus the
//! standard AWS ones (`AWS_ENDPOINT_URL` points at LocalStack).

use shared::model::Scope;
use shared::{ids::TenantId, Config};
use std::process::ExitCode;

const USAGE: &str = "usage: webhooks-local serve [--port N] | create-key --tenant T [--scopes webhooks:read,webhooks:write,webhooks:delete,webhooks:admin] | revoke-key --tenant T --key-id key_... | publish '<event JSON>'";

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> ExitCode {
    shared::telemetry::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("webhooks-local: {e}");
            return ExitCode::from(2);
        }
    };
    let sdk = shared::load_sdk_config().await;
    match args.first().map(String::as_str) {
        Some("serve") => {
            let port: u16 = match flag(&args, "--port").map(|p| p.parse()) {
                None => 3000,
                Some(Ok(p)) => p,
                Some(Err(_)) => {
                    eprintln!("webhooks-local: --port takes a number");
                    return ExitCode::from(2);
                }
            };
            let opts = runner::Options { api_addr: ([127, 0, 0, 1], port).into(), ..Default::default() };
            let runner = match runner::Runner::start(&sdk, config, opts).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("webhooks-local: cannot listen on port {port}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            println!("API listening on {}", runner.api_url);
            runner.wait_for_signal().await;
            ExitCode::SUCCESS
        }
        Some("create-key") => {
            let Some(tenant) = flag(&args, "--tenant").as_deref().and_then(TenantId::parse) else {
                eprintln!("webhooks-local: --tenant takes 1-64 of [A-Za-z0-9_.:-]\n{USAGE}");
                return ExitCode::from(2);
            };
            let scopes = match flag(&args, "--scopes") {
                None => Scope::DEFAULT.to_vec(),
                Some(list) => match list.split(',').map(Scope::parse).collect::<Option<Vec<_>>>() {
                    Some(s) => s,
                    None => {
                        eprintln!("webhooks-local: unknown scope in `{list}`\n{USAGE}");
                        return ExitCode::from(2);
                    }
                },
            };
            let deps = shared::Deps::aws(&sdk, config);
            match shared::api::auth::issue_key(&deps, &tenant, &scopes).await {
                Ok((key, record)) => {
                    eprintln!("created {} for tenant {tenant}; the key is shown once:", record.key_id);
                    println!("{key}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("webhooks-local: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("revoke-key") => {
            let (Some(tenant), Some(key_id)) = (flag(&args, "--tenant").as_deref().and_then(TenantId::parse), flag(&args, "--key-id")) else {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            };
            let deps = shared::Deps::aws(&sdk, config);
            let keys = match deps.api_keys.list_for_tenant(&tenant).await {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("webhooks-local: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let Some(key) = keys.iter().find(|k| k.key_id.as_str() == key_id) else {
                eprintln!("webhooks-local: tenant {tenant} has no key {key_id}");
                return ExitCode::FAILURE;
            };
            match deps.api_keys.delete(&key.key_hash).await {
                Ok(()) => {
                    println!("revoked {key_id}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("webhooks-local: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("publish") => {
            let Some(body) = args.get(1) else {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            };
            if let Err(e) = shared::fanout::parse_event(body) {
                eprintln!("webhooks-local: {e}");
                return ExitCode::from(2);
            }
            let sqs = aws_sdk_sqs::Client::new(&sdk);
            match sqs.send_message().queue_url(&config.events_queue_url).message_body(body).send().await {
                Ok(out) => {
                    println!("sent message {}", out.message_id.unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("webhooks-local: send failed: {}", e.into_service_error());
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
