//! Tracing setup: JSON lines in Lambda (CloudWatch), compact text locally.
//!
//! `RUST_LOG` filters, as a default level and/or `target=level` pairs (`info`,
//! `shared=debug,warn`); what does not parse as that means `info`. A `Targets` filter rather than
//! `EnvFilter`, whose regex engine is ≈ 0.4 MB of every binary.

use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::fmt;

/// The filter `RUST_LOG` asks for (`info` when unset or unreadable).
pub fn filter(rust_log: Option<&str>) -> Targets {
    rust_log.and_then(|v| v.parse().ok()).unwrap_or_else(|| Targets::new().with_default(Level::INFO))
}

pub fn init() {
    let registry = tracing_subscriber::registry().with(filter(std::env::var("RUST_LOG").ok().as_deref()));
    let result = if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        registry.with(fmt::layer().json().with_current_span(true).without_time()).try_init()
    } else {
        registry.with(fmt::layer().compact()).try_init()
    };
    // A second init (tests, or the runner hosting several handlers) keeps the first subscriber.
    let _ = result;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::level_filters::LevelFilter;

    #[test]
    fn rust_log_sets_a_default_and_per_target_levels() {
        let f = filter(Some("shared::delivery=debug,warn"));
        assert!(f.would_enable("shared::delivery::http", &Level::DEBUG));
        assert!(!f.would_enable("hyper", &Level::INFO));
        assert!(f.would_enable("hyper", &Level::WARN));
        let unset = filter(None);
        assert!(unset.would_enable("anything", &Level::INFO) && !unset.would_enable("anything", &Level::DEBUG));
        // EnvFilter-only syntax (span filters) falls back to info rather than failing.
        assert_eq!(filter(Some("[span{a=1}]=trace")).default_level(), Some(LevelFilter::INFO));
    }
}
