//! Tracing setup: JSON lines in Lambda (CloudWatch), compact text locally.
//!
//! `RUST_LOG` filters, as a default level and/or `target=level` pairs (`info`,
//! `shared=debug,warn`); what does not parse as that means `info`. A `Targets` filter rather than
//! `EnvFilter`, whose regex engine is ≈ 0.4 MB of every binary.
//!
//! In Lambda the lines of an invocation are held and written to stdout together: one `write` per
//! batch instead of one per line (a `write` to the log pipe, which wakes its reader, cost ≈ 7 µs
//! per line in `scripts/perf.sh` figure 1). A warning or an error is written at once, with
//! everything held before it; so is a batch past 64 KB of lines, and the handlers call [`flush`]
//! when they finish. A panic writes what is held before the process aborts.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};
use tracing::{Level, Metadata};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::{self, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter `RUST_LOG` asks for (`info` when unset or unreadable).
pub fn filter(rust_log: Option<&str>) -> Targets {
    rust_log.and_then(|v| v.parse().ok()).unwrap_or_else(|| Targets::new().with_default(Level::INFO))
}

pub fn init() {
    let registry = tracing_subscriber::registry().with(filter(std::env::var("RUST_LOG").ok().as_deref()));
    let result = if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        // The current span only: the list of all open spans would repeat its parents' fields on
        // every line (≈ 100 bytes and 1.4 µs per line).
        let layer = fmt::layer().json().with_current_span(true).with_span_list(false).without_time().with_writer(HeldRef(LazyLock::force(&STDOUT)));
        let result = registry.with(layer).try_init();
        if result.is_ok() && !HOLDING.swap(true, Ordering::SeqCst) {
            let next = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                STDOUT.flush_unless_busy();
                next(info);
            }));
        }
        result
    } else {
        registry.with(fmt::layer().compact()).try_init()
    };
    // A second init (tests, or the runner hosting several handlers) keeps the first subscriber.
    let _ = result;
}

/// Writes what the Lambda log holds (a no-op elsewhere). The handlers call it when a batch or a
/// request is done.
pub fn flush() {
    if HOLDING.load(Ordering::Relaxed) {
        STDOUT.flush();
    }
}

/// One line of output beside the log lines (the EMF document), in order with them.
pub fn write_line(line: &str) {
    if HOLDING.load(Ordering::Relaxed) {
        STDOUT.push(format!("{line}\n").as_bytes(), false);
    } else {
        println!("{line}");
    }
}

/// Above this many bytes held, they are written without waiting for the end of the batch.
const HOLD_AT_MOST: usize = 64 * 1024;

static HOLDING: AtomicBool = AtomicBool::new(false);
static STDOUT: LazyLock<Held<io::Stdout>> = LazyLock::new(|| Held::new(io::stdout()));

/// Lines held for one `write` to `out`.
struct Held<W> {
    inner: Mutex<(Vec<u8>, W)>,
}

impl<W: Write> Held<W> {
    fn new(out: W) -> Self {
        Self { inner: Mutex::new((Vec::new(), out)) }
    }

    /// Holds `bytes`; writes all that is held if `now`, or if it is more than `HOLD_AT_MOST`.
    fn push(&self, bytes: &[u8], now: bool) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.0.extend_from_slice(bytes);
        if now || inner.0.len() > HOLD_AT_MOST {
            write_out(&mut inner);
        }
    }

    fn flush(&self) {
        write_out(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// For the panic hook: a panic inside `push` holds the lock, and waiting would hang.
    fn flush_unless_busy(&self) {
        if let Ok(mut inner) = self.inner.try_lock() {
            write_out(&mut inner);
        }
    }
}

fn write_out<W: Write>((held, out): &mut (Vec<u8>, W)) {
    if !held.is_empty() {
        // Nowhere to report a failing stdout; the lines are dropped rather than held forever.
        let _ = out.write_all(held).and_then(|()| out.flush());
        held.clear();
    }
}

/// The writer the fmt layer gets per line: a warning or an error goes out at once.
struct HeldLine<W: 'static> {
    held: &'static Held<W>,
    now: bool,
}

impl<W: Write> Write for HeldLine<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.held.push(bytes, self.now);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What the fmt layer owns: a handle to the `Held` it writes into (`STDOUT` in Lambda).
struct HeldRef<W: 'static>(&'static Held<W>);

impl<W: Write> MakeWriter<'_> for HeldRef<W> {
    type Writer = HeldLine<W>;

    fn make_writer(&self) -> Self::Writer {
        HeldLine { held: self.0, now: true }
    }

    fn make_writer_for(&self, meta: &Metadata<'_>) -> Self::Writer {
        HeldLine { held: self.0, now: *meta.level() <= Level::WARN }
    }
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

    /// A sink that records each `write` it gets.
    #[derive(Default)]
    struct Writes(Vec<Vec<u8>>);

    impl Write for Writes {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.push(b.to_vec());
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn held() -> &'static Held<Writes> {
        Box::leak(Box::new(Held::new(Writes::default())))
    }

    /// The writes the sink got so far.
    fn writes(held: &Held<Writes>) -> Vec<Vec<u8>> {
        held.inner.lock().unwrap().1 .0.clone()
    }

    #[test]
    fn info_lines_wait_for_the_flush_and_a_warning_takes_them_out_at_once() {
        let held = held();
        let subscriber = tracing_subscriber::registry().with(fmt::layer().json().without_time().with_writer(HeldRef(held)));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(n = 1, "first");
            tracing::info!(n = 2, "second");
            // Nothing written yet: both lines are held.
            assert!(writes(held).is_empty());
            tracing::warn!(n = 3, "third");
        });
        assert_eq!(writes(held).len(), 1);
        held.push(b"{\"emf\":1}\n", false);
        held.flush();
        held.flush(); // nothing left: no empty write
        let writes = writes(held);
        assert_eq!(writes.len(), 2, "one write up to the warning, one for the rest");
        let first = String::from_utf8(writes[0].clone()).unwrap();
        let lines: Vec<serde_json::Value> = first.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.iter().map(|l| l["fields"]["n"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(writes[1], b"{\"emf\":1}\n");
    }

    #[test]
    fn a_large_batch_is_written_without_waiting_for_the_end() {
        let held = held();
        let line = [b'x'; 1000];
        for _ in 0..70 {
            held.push(&line, false);
        }
        // 64 KB is crossed at the 66th line: written then, the rest still held.
        assert_eq!(writes(held).len(), 1);
        assert_eq!(held.inner.lock().unwrap().0.len(), 4_000);
        held.flush();
        assert_eq!(writes(held).iter().map(Vec::len).collect::<Vec<_>>(), [66_000, 4_000]);
    }
}
