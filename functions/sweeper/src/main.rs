//! The sweeper Lambda: a schedule (every 5 minutes in the template) runs `shared::sweeper::sweep`,
//! which re-sends queued redeliveries whose task was lost and marks dead-lettered deliveries.

use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = shared::Config::from_env()?;
    let sdk = shared::load_sdk_config().await;
    let deps = &shared::Deps::aws(&sdk, config);
    shared::telemetry::flush(); // what init logged
    lambda_runtime::run(service_fn(move |_: LambdaEvent<serde_json::Value>| async move {
        // An error fails the invocation: the function's Errors alarm says so.
        let swept = shared::sweeper::sweep(deps).await?;
        Ok::<_, Error>(serde_json::to_value(swept)?)
    }))
    .await
}
