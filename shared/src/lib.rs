//! The webhook service's library: domain, ports and adapters shared by the Lambda functions
//! (`functions/api`, `functions/fanout`, `functions/delivery`) and the local runner.

pub mod adapters;
pub mod api;
pub mod config;
pub mod console;
pub mod delivery;
pub mod deps;
pub mod fanout;
pub mod ids;
pub mod matching;
pub mod metrics;
pub mod model;
pub mod ports;
pub mod queue_check;
pub mod retry;
pub mod signing;
pub mod sqs_batch;
pub mod ssrf;
pub mod telemetry;
pub mod timefmt;

pub use config::Config;
pub use deps::{load_sdk_config, Deps};
