//! Tracing setup: JSON lines in Lambda (CloudWatch), compact text locally. `RUST_LOG` filters.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        builder.json().with_current_span(true).without_time().try_init()
    } else {
        builder.compact().try_init()
    };
    // A second init (tests, or the runner hosting several handlers) keeps the first subscriber.
    let _ = result;
}
