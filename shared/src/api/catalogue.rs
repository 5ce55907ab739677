//! The event-type catalogue: data in `shared/data/event-types.json` (name, source, description,
//! example payload, JSON Schema), embedded at build time. Adding a type is an edit of that file
//! only: an operator's own types say `"source": "operator"`; `"service"` marks the operational
//! events the service publishes itself (`crate::operational`); the others are the source
//! documents' (the tests below keep those exactly as the documents name them).

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventType {
    pub name: String,
    /// The source document that names it (`TRUST+`, `TRST`, `Trustist`, `TrustPager`), or
    /// `operator` for a type the deployment added.
    #[serde(default)]
    pub source: Option<String>,
    pub description: String,
    pub example: serde_json::Value,
    pub schema: serde_json::Value,
}

pub fn all() -> &'static [EventType] {
    static TYPES: OnceLock<Vec<EventType>> = OnceLock::new();
    TYPES.get_or_init(|| serde_json::from_str(include_str!("../../data/event-types.json")).expect("event-types.json is valid"))
}

pub fn names() -> Vec<&'static str> {
    all().iter().map(|t| t.name.as_str()).collect()
}

/// A subscription pattern is known if it is `*`, a catalogue name, or a `prefix.*` that covers at
/// least one catalogue name.
pub fn is_known_pattern(pattern: &str) -> bool {
    pattern == "*" || all().iter().any(|t| crate::matching::matches(pattern, &t.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_loads_with_valid_unique_names_and_examples() {
        let names = names();
        assert!(names.contains(&"visit.media.available") && names.contains(&"webhook.test"));
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "names are unique");
        for t in all() {
            assert!(crate::matching::is_valid_event_type(&t.name), "{}", t.name);
            assert!(t.example.is_object() && t.schema["type"] == "object", "{}", t.name);
        }
    }

    /// The events the source documents name: TRUST+ (14), TRST (3), Trustist (1) and
    /// TrustPager's examples (3).
    const SOURCE_DOCUMENTS: &[(&str, &[&str])] = &[
        ("TRUST+", &["project.created", "project.updated", "project.deleted", "project.restored", "media.added", "recording.added", "recording.reassigned", "visit.created", "visit.updated", "visit.deleted", "visit.completed", "visit.media.added", "visit.media.available", "visit.recording.added"]),
        ("TRST", &["enrollment.completed", "demo.scan.success", "webhook.test"]),
        ("Trustist", &["onboard.session.completed"]),
        ("TrustPager", &["opportunity.updated", "contact.created", "form.submitted"]),
    ];

    /// Every event of the source documents is there, credited to its document; every other
    /// entry is marked as the operator's own.
    #[test]
    fn the_catalogue_holds_the_source_documents_events_and_marks_the_rest() {
        for (document, events) in SOURCE_DOCUMENTS {
            for name in *events {
                let t = all().iter().find(|t| t.name == *name).unwrap_or_else(|| panic!("{name} ({document}) is missing"));
                assert_eq!(t.source.as_deref(), Some(*document), "{name}");
            }
        }
        for t in all() {
            let documented = SOURCE_DOCUMENTS.iter().any(|(_, events)| events.contains(&t.name.as_str()));
            let ours = crate::operational::is_operational(&t.name) && t.source.as_deref() == Some("service");
            assert!(documented || ours || t.source.as_deref() == Some("operator"), "{}: not in a source document, so it must say \"source\": \"operator\"", t.name);
        }
        for name in [crate::operational::ENDPOINT_DISABLED, crate::operational::ENDPOINT_ENABLED, crate::operational::ATTEMPT_EXHAUSTED, crate::operational::ATTEMPT_FAILING, crate::operational::ATTEMPT_RECOVERED, crate::operational::CIRCUIT_OPENED, crate::operational::CIRCUIT_CLOSED] {
            assert!(all().iter().any(|t| t.name == name && t.source.as_deref() == Some("service")), "the operational event {name}");
        }
    }

    /// Each example holds its schema's required properties, each of the declared JSON type.
    #[test]
    fn every_example_fits_its_schema() {
        for t in all() {
            let props = t.schema["properties"].as_object().unwrap_or_else(|| panic!("{}: properties", t.name));
            for r in t.schema["required"].as_array().into_iter().flatten() {
                assert!(t.example.get(r.as_str().unwrap()).is_some(), "{}: example lacks required {r}", t.name);
            }
            for (k, v) in t.example.as_object().unwrap() {
                // A type, or a list of types (e.g. ["integer", "null"]).
                let declared = props.get(k).map(|p| &p["type"]).unwrap_or_else(|| panic!("{}: {k} is not in the schema", t.name));
                let types: Vec<&str> = match declared {
                    serde_json::Value::String(one) => vec![one.as_str()],
                    serde_json::Value::Array(many) => many.iter().filter_map(|x| x.as_str()).collect(),
                    other => panic!("{}: {k} has type {other}", t.name),
                };
                let fits = |want: &str| match want {
                    "string" => v.is_string(),
                    "number" => v.is_number(),
                    "integer" => v.is_i64() || v.is_u64(),
                    "boolean" => v.is_boolean(),
                    "array" => v.is_array(),
                    "object" => v.is_object(),
                    "null" => v.is_null(),
                    other => panic!("{}: {k} has type {other}", t.name),
                };
                assert!(types.iter().any(|w| fits(w)), "{}: example {k} is not a {types:?}", t.name);
            }
        }
    }

    #[test]
    fn patterns_must_cover_a_known_type() {
        assert!(is_known_pattern("project.*"));
        assert!(is_known_pattern("project.created"));
        assert!(is_known_pattern("*"));
        assert!(!is_known_pattern("project.exploded"));
        assert!(!is_known_pattern("nothing.*"));
    }
}
