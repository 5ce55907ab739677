//! The delivery Lambda: consumes the delivery queue, one signed POST per message; retries by
//! visibility timeout and batch item failures, ending in the delivery DLQ.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = shared::Config::from_env()?;
    let sdk = shared::load_sdk_config().await;
    // Refuse to start on a queue whose redrive/retention/visibility does not fit the schedule.
    shared::queue_check::check_delivery_queue(&aws_sdk_sqs::Client::new(&sdk), &config).await?;
    let deps = &shared::Deps::aws(&sdk, config);
    shared::telemetry::flush(); // what init logged
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(shared::delivery::handle_batch(event.payload, deps).await)
    }))
    .await
}
