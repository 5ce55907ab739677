//! Event-type patterns: an exact name (`project.created`), a prefix wildcard (`project.*`, which
//! matches `project.created` and `project.media.added` but not `project`), or `*` (everything).

pub fn matches(pattern: &str, event_type: &str) -> bool {
    if pattern == "*" || pattern == event_type {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(prefix) => event_type.len() > prefix.len() + 1
            && event_type.starts_with(prefix)
            && event_type.as_bytes()[prefix.len()] == b'.',
        None => false,
    }
}

/// A pattern is `*`, or dotted segments of `[a-z0-9_]`, optionally ending in `.*`.
pub fn is_valid_pattern(pattern: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let name = pattern.strip_suffix(".*").unwrap_or(pattern);
    is_valid_event_type(name)
}

pub fn is_valid_event_type(name: &str) -> bool {
    name.len() <= 128
        && !name.is_empty()
        && name.split('.').all(|seg| {
            !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_wildcard_and_star() {
        assert!(matches("project.created", "project.created"));
        assert!(!matches("project.created", "project.deleted"));
        assert!(matches("project.*", "project.created"));
        assert!(matches("project.*", "project.media.added"));
        assert!(!matches("project.*", "project"));
        assert!(!matches("project.*", "projects.created"));
        assert!(matches("*", "anything.at_all"));
    }

    #[test]
    fn pattern_validation() {
        assert!(is_valid_pattern("visit.media.available"));
        assert!(is_valid_pattern("visit.*"));
        assert!(is_valid_pattern("*"));
        assert!(!is_valid_pattern(""));
        assert!(!is_valid_pattern("a..b"));
        assert!(!is_valid_pattern("Project.Created"));
        assert!(!is_valid_pattern("*.created"));
    }
}
