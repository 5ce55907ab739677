//! Prices (us-east-1, public list prices, on-demand, no free tier)

pub const REGION: &str = "us-east-1";
pub const LAMBDA_PER_REQUEST: f64 = 0.20 / 1e6;
pub const LAMBDA_PER_GB_S: f64 = 0.000_016_666_7; // x86_64
pub const LAMBDA_MEMORY_GB: f64 = 128.0 / 1024.0;
/// Lambda gives a full vCPU at 1,769 MB; 128 MB gets 128/1769 of one.
pub const LAMBDA_CPU_STRETCH: f64 = 1769.0 / 128.0;
pub const SQS_PER_REQUEST: f64 = 0.40 / 1e6; // standard queue, per 64 KB chunk
pub const DDB_PER_WRU: f64 = 0.625 / 1e6; // on-demand
pub const DDB_PER_RRU: f64 = 0.125 / 1e6;
pub const APIGW_HTTP_PER_REQUEST: f64 = 1.00 / 1e6; // HTTP API, first 300 M
pub const CW_LOGS_PER_GB: f64 = 0.50;
pub const DDB_STORAGE_PER_GB_MONTH: f64 = 0.25;
pub const DDB_PITR_PER_GB_MONTH: f64 = 0.20;
/// Management API requests per delivery assumed for the cost (a log read per 100 deliveries).
pub const API_REQUESTS_PER_DELIVERY: f64 = 0.01;
/// START/END/REPORT platform log lines per invocation (estimate).
pub const PLATFORM_LOG_BYTES: f64 = 300.0;
