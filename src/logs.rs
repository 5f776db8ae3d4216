//! Logging on stderr: the level from `-v` or `RUST_LOG`, colour only on a
//! terminal, and dependencies kept quiet under load: a warning a library
//! repeats for every connection (rustls' "Illegal SNI extension: ignoring IP
//! address presented as hostname", once per client that sends an IP as SNI)
//! is shown at most once a minute, and the next time it is shown the line
//! before it says how many were held back. edgetap's own lines are never held.
//!
//! tracing-subscriber has per-event filters but none that counts repeats, so
//! this one is written here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::{Event, Metadata};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Filter, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer as _, fmt};

/// How long a repeated dependency line stays held back.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(60);
/// Distinct lines remembered (the memory is cleared beyond this).
const REMEMBERED: usize = 1024;

/// Holds back dependency log lines repeated within [`REPEAT_WINDOW`].
#[derive(Debug)]
pub struct Repeats {
    window: Duration,
    seen: Mutex<HashMap<String, (Instant, u64)>>,
    /// Where the "held back" line goes (stderr in the binary).
    say: fn(&str),
}

impl Repeats {
    /// A filter with `window`, saying counts through `say`.
    pub fn new(window: Duration, say: fn(&str)) -> Repeats {
        Repeats {
            window,
            seen: Mutex::new(HashMap::new()),
            say,
        }
    }
}

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S> Filter<S> for Repeats {
    fn enabled(&self, _: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &Event<'_>, _: &Context<'_, S>) -> bool {
        let target = event.metadata().target();
        // Only warnings and errors are held back; anything quieter is left to
        // the level filter, unformatted (rustls logs every handshake message
        // at debug and trace: formatting each cost 5% of intercept's CPU).
        if target.starts_with("edgetap") || *event.metadata().level() > tracing::Level::WARN {
            return true;
        }
        let mut message = Message::default();
        event.record(&mut message);
        let key = format!("{target}: {}", message.0);
        let now = Instant::now();
        let Ok(mut seen) = self.seen.lock() else {
            return true;
        };
        if seen.len() >= REMEMBERED && !seen.contains_key(&key) {
            seen.clear();
        }
        match seen.get_mut(&key) {
            Some((since, held)) if now.duration_since(*since) < self.window => {
                *held += 1;
                false
            }
            Some((since, held)) => {
                if *held > 0 {
                    (self.say)(&format!(
                        "edgetap: {held} more like the next line were held back in the last {} s",
                        self.window.as_secs()
                    ));
                }
                (*since, *held) = (now, 0);
                true
            }
            None => {
                seen.insert(key, (now, 0));
                true
            }
        }
    }
}

/// Install the logger: `level` unless `RUST_LOG` says otherwise.
pub fn init(level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let layer = fmt::layer()
        .with_writer(std::io::stderr)
        // Colour only for a person: a log file or pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(Repeats::new(REPEAT_WINDOW, |line| eprintln!("{line}")))
        // The level filter outermost: its level is the subscriber's maximum,
        // so `log` records (rustls) below it are not even made.
        .with_filter(filter);
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_repeated_dependency_warning_is_shown_once_per_window_with_a_count() {
        let out = Buffer::default();
        let writer = out.clone();
        let layer = fmt::layer()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .with_filter(Repeats::new(Duration::from_millis(300), |l| {
                SAID.lock().unwrap().push(l.to_owned())
            }));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..1000 {
                tracing::warn!(target: "rustls::server::hs", "Illegal SNI extension: ignoring IP address presented as hostname");
                tracing::warn!(target: "edgetap::proxy", "our own line");
            }
            tracing::warn!(target: "rustls::server::hs", "another warning");
            std::thread::sleep(Duration::from_millis(350));
            tracing::warn!(target: "rustls::server::hs", "Illegal SNI extension: ignoring IP address presented as hostname");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches("Illegal SNI").count(), 2, "{text}");
        assert_eq!(text.matches("another warning").count(), 1);
        assert_eq!(
            text.matches("our own line").count(),
            1000,
            "edgetap's lines are never held"
        );
        assert_eq!(
            *SAID.lock().unwrap(),
            ["edgetap: 999 more like the next line were held back in the last 0 s"]
        );
    }
}
