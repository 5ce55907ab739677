//! The event-type catalogue: data in `shared/data/event-types.json` (name, description, example
//! payload, JSON Schema), embedded at build time. Adding a type is an edit of that file only.

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventType {
    pub name: String,
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

    #[test]
    fn patterns_must_cover_a_known_type() {
        assert!(is_known_pattern("project.*"));
        assert!(is_known_pattern("project.created"));
        assert!(is_known_pattern("*"));
        assert!(!is_known_pattern("project.exploded"));
        assert!(!is_known_pattern("nothing.*"));
    }
}
