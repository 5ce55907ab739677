//! The fan-out Lambda: consumes the event queue, one delivery task per matching subscription.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = shared::Config::from_env()?;
    let sdk = shared::load_sdk_config().await;
    // Refuse to start on an events queue that would drop an event that keeps failing.
    shared::queue_check::check_events_queue(&aws_sdk_sqs::Client::new(&sdk), &config).await?;
    let deps = &shared::Deps::aws(&sdk, config);
    shared::telemetry::flush(); // what init logged
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(shared::fanout::handle_batch(event.payload, deps).await)
    }))
    .await
}
