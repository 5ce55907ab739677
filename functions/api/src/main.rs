//! The management API Lambda: API Gateway HTTP API (payload format 2.0) → the axum router of
//! `shared::api`, through the conversion of `shared::apigw`.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use axum::Router;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use std::sync::Arc;
use tower::ServiceExt;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = shared::Config::from_env()?;
    let sdk = shared::load_sdk_config().await;
    let router = &shared::api::router(Arc::new(shared::Deps::aws(&sdk, config)));
    shared::telemetry::flush(); // what init logged
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
        let response = handle(router, event.payload).await;
        shared::telemetry::flush();
        response
    }))
    .await
}

/// One HTTP API request through the router.
async fn handle(router: &Router, event: ApiGatewayV2httpRequest) -> Result<ApiGatewayV2httpResponse, Error> {
    let response = router.clone().oneshot(shared::apigw::to_request(event)?).await?;
    shared::apigw::to_response(response).await
}
