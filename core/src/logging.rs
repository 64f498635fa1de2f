//! The process-wide log subscriber: to stderr, as JSON lines or text, filtered by `CCP_LOG`
//! (default `info`).

use crate::config::LogFormat;

/// Installs the subscriber once; later calls do nothing. `capped` names targets held at
/// `info` whatever `CCP_LOG` says (chatty dependencies whose debug output could hold secrets).
pub fn init(format: LogFormat, capped: &[&str]) {
    use tracing_subscriber::EnvFilter;
    let mut filter = EnvFilter::try_from_env("CCP_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    for target in capped {
        if let Ok(directive) = format!("{target}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
