//! The webhook service's library: domain, ports and adapters shared by the Lambda functions
//! (`functions/api`, `functions/fanout`, `functions/delivery`) and the local runner.

pub mod adapters;
pub mod api;
/// API Gateway HTTP API (payload 2.0) events ⇄ `http`, for the API Lambda.
pub mod apigw;
pub mod cache;
pub mod config;
pub mod console;
pub mod delivery;
pub mod deps;
pub mod envelope;
pub mod fanout;
pub mod faults;
pub mod filter;
pub mod ids;
pub mod ledger;
pub mod matching;
pub mod metrics;
pub mod model;
pub mod operational;
pub mod ports;
pub mod queue_check;
pub mod retry;
pub mod signing;
pub mod sqs_batch;
pub mod ssrf;
pub mod sweeper;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod timefmt;

pub use config::Config;
pub use deps::{load_sdk_config, Deps};
