//! CloudWatch Embedded Metric Format: one JSON line on stdout per batch, which Lambda's
//! log pipeline turns into metrics (namespace `Webhooks`, dimension `Function`). Printed in Lambda
//! (or when `METRICS=emf`); elsewhere the same figures are in the structured log lines.

use serde_json::{json, Map, Value};
use std::sync::{Mutex, OnceLock};

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

/// The figures of one batch, emitted as one EMF document when the batch is done (one line per
/// invocation instead of one per message). Counts are summed; other units (latencies) are kept as
/// value arrays, which EMF allows up to 100 values per metric.
pub struct Batch {
    function: &'static str,
    figures: Mutex<Vec<(&'static str, &'static str, Vec<f64>)>>,
}

impl Batch {
    pub fn new(function: &'static str) -> Self {
        Self { function, figures: Mutex::new(Vec::new()) }
    }

    pub fn add(&self, metrics: &[Metric<'static>]) {
        let mut figures = self.figures.lock().unwrap();
        for m in metrics {
            match figures.iter_mut().find(|(name, _, _)| *name == m.name) {
                Some((_, "Count", values)) => values[0] += m.value,
                Some((_, _, values)) => values.push(m.value),
                None => figures.push((m.name, m.unit, vec![m.value])),
            }
        }
    }

    /// The EMF document: the metrics under dimension `Function`; `None` if nothing was added.
    pub fn document(&self, now_ms: i64) -> Option<Value> {
        let figures = self.figures.lock().unwrap();
        if figures.is_empty() {
            return None;
        }
        let mut doc = Map::new();
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": now_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Function"]],
                    "Metrics": figures.iter().map(|(name, unit, _)| json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
                }],
            }),
        );
        doc.insert("Function".into(), json!(self.function));
        for (name, _, values) in figures.iter() {
            let value = match values.as_slice() {
                [one] => json!(one),
                many => json!(&many[..many.len().min(100)]),
            };
            doc.insert((*name).into(), value);
        }
        Some(Value::Object(doc))
    }

    /// Prints the document (in Lambda, or with `METRICS=emf`).
    pub fn emit(&self) {
        if enabled() {
            let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
            if let Some(doc) = self.document(now_ms) {
                crate::telemetry::write_line(&doc.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_document_per_batch_follows_the_embedded_metric_format() {
        let batch = Batch::new("delivery");
        assert!(batch.document(0).is_none(), "nothing to report, no line");
        let count = |name| Metric { name, value: 1.0, unit: "Count" };
        let ms = |value| Metric { name: "LatencyMs", value, unit: "Milliseconds" };
        batch.add(&[count("Delivered"), ms(12.0)]);
        batch.add(&[count("Retried"), ms(40.0)]);
        batch.add(&[count("Delivered"), ms(7.0)]);
        let doc = batch.document(1000).unwrap();
        assert_eq!(doc["_aws"]["Timestamp"], 1000);
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Webhooks");
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0], "Function");
        let names: Vec<_> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap().iter().map(|m| m["Name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Delivered", "LatencyMs", "Retried"]);
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][1]["Unit"], "Milliseconds");
        assert_eq!(doc["Function"], "delivery");
        assert_eq!(doc["Delivered"], 2.0);
        assert_eq!(doc["Retried"], 1.0);
        assert_eq!(doc["LatencyMs"], json!([12.0, 40.0, 7.0]));
    }
}
