//! The upstream events every figure publishes, and a payload filter they all pass.

use serde_json::json;
use time::OffsetDateTime;

/// An upstream envelope of about `data_len` + 160 bytes.
pub fn envelope(tenant: &str, event_id: &str, data_len: usize) -> String {
    json!({
        "event_id": event_id, "event_type": "project.created", "tenant_id": tenant,
        "occurred_at": "2026-11-22T10:00:00Z",
        "data": {"project_id": "prj_01JDW3K8Q4", "name": "Perf", "notes": "x".repeat(data_len)}
    })
    .to_string()
}

/// The `occurred_at` of every [`envelope`].
pub fn envelope_time() -> OffsetDateTime {
    time::macros::datetime!(2026-11-22 10:00 UTC)
}

/// Typical webhook body: ~1 KB.
pub const DATA_LEN: usize = 860;

/// A filter every [`envelope`] passes, with a condition of each kind fan-out evaluates.
pub fn passing_filter() -> shared::filter::Filter {
    shared::filter::Filter::parse(json!({
        "event_type": {"$in": ["project.created", "project.updated"]},
        "data.project_id": {"$exists": true},
        "$or": [{"data.name": "Perf"}, {"data.name": {"$gte": "Q"}}],
        "$not": {"data.notes": ""}
    }))
    .expect("a valid filter")
}
