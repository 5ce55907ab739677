//! CloudWatch Embedded Metric Format: one JSON line on stdout per metric record, which Lambda's
//! log pipeline turns into metrics (namespace `Webhooks`, dimension `Function`). Printed in Lambda
//! (or when `METRICS=emf`); elsewhere the same figures are in the structured log lines.

use serde_json::{json, Map, Value};
use std::sync::OnceLock;

pub const NAMESPACE: &str = "Webhooks";

fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() || std::env::var("METRICS").as_deref() == Ok("emf"))
}

/// A metric value and its CloudWatch unit (`Count`, `Milliseconds`).
pub struct Metric<'a> {
    pub name: &'a str,
    pub value: f64,
    pub unit: &'a str,
}

/// The EMF document: `metrics` under dimension `Function = function`, plus `properties` (searchable
/// in Logs Insights, not dimensions).
pub fn document(function: &str, metrics: &[Metric], properties: &[(&str, Value)], now_ms: i64) -> Value {
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": metrics.iter().map(|m| json!({"Name": m.name, "Unit": m.unit})).collect::<Vec<_>>(),
            }],
        }),
    );
    doc.insert("Function".into(), json!(function));
    for m in metrics {
        doc.insert(m.name.into(), json!(m.value));
    }
    for (k, v) in properties {
        doc.insert((*k).into(), v.clone());
    }
    Value::Object(doc)
}

pub fn emit(function: &str, metrics: &[Metric], properties: &[(&str, Value)]) {
    if enabled() {
        let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        println!("{}", document(function, metrics, properties, now_ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_follows_the_embedded_metric_format() {
        let doc = document("fanout", &[Metric { name: "Matched", value: 3.0, unit: "Count" }], &[("event_id", json!("e1"))], 1000);
        assert_eq!(doc["_aws"]["Timestamp"], 1000);
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Webhooks");
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0], "Function");
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "Matched");
        assert_eq!(doc["Function"], "fanout");
        assert_eq!(doc["Matched"], 3.0);
        assert_eq!(doc["event_id"], "e1");
    }
}
