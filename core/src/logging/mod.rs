//! The process-wide log subscriber: to stderr, as JSON lines or text, filtered by `CCP_LOG`
//! (default `info`). Lines are written in batches ([`buffer`]); keep the [`LogGuard`] that
//! [`init`] returns until the process ends, so the last lines are written.

pub mod buffer;
pub mod json;

use crate::config::LogFormat;
use buffer::LineBuffer;
use std::sync::OnceLock;

static STDERR: OnceLock<LineBuffer<std::io::Stderr>> = OnceLock::new();

/// Writes what is still buffered when dropped (at the end of `main`).
#[must_use = "dropping the guard at once writes nothing more at exit"]
#[derive(Debug)]
pub struct LogGuard(());

impl Drop for LogGuard {
    fn drop(&mut self) {
        flush();
    }
}

/// Writes every buffered line now.
pub fn flush() {
    if let Some(buffer) = STDERR.get() {
        let _ = buffer.flush();
    }
}

/// Installs the subscriber once; later calls install nothing. `capped` names targets held at
/// `info` whatever `CCP_LOG` says (chatty dependencies whose debug output could hold secrets).
pub fn init(format: LogFormat, capped: &[&str]) -> LogGuard {
    use tracing_subscriber::EnvFilter;
    let mut filter = EnvFilter::try_from_env("CCP_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    for target in capped {
        if let Ok(directive) = format!("{target}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    let mut fresh = false;
    let buffer = STDERR.get_or_init(|| {
        fresh = true;
        LineBuffer::new(std::io::stderr())
    });
    if fresh {
        start_flusher(buffer);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = buffer.try_flush();
            previous(info);
        }));
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(buffer);
    let _ = match format {
        LogFormat::Json => builder.event_format(json::JsonLines).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    LogGuard(())
}

fn start_flusher(buffer: &'static LineBuffer<std::io::Stderr>) {
    let started = std::thread::Builder::new()
        .name("ccp-log-flush".into())
        .spawn(move || {
            loop {
                std::thread::sleep(buffer::FLUSH_EVERY);
                let _ = buffer.flush();
            }
        });
    if let Err(err) = started {
        // Lines then go out when enough wait, on warnings and at exit.
        eprintln!("cannot start the log flusher thread: {err}");
    }
}
