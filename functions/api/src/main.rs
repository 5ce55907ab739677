//! The management API Lambda (API Gateway HTTP API → axum router in `shared::api`).

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let config = shared::Config::from_env()?;
    let sdk = shared::load_sdk_config().await;
    let deps = Arc::new(shared::Deps::aws(&sdk, config));
    lambda_http::run(shared::api::router(deps)).await
}
