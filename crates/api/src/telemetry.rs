//! Logging, to stdout: `pretty` for people (coloured only on a terminal), `json` for machines. sqlx's statement logs stay at `warn`
//! unless asked for, so bound values never reach the logs.

use crate::config::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (a second call, as in tests, is a no-op).
pub fn init(filter: &str, format: LogFormat) {
    let mut directives = filter.to_string();
    if !directives.contains("sqlx") {
        directives.push_str(",sqlx=warn");
    }
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    let stdout_is_terminal = std::io::stdout().is_terminal();
    let _ = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
        // Colour codes only for a person at a terminal; piped or redirected logs stay plain text.
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().compact().with_writer(std::io::stdout).with_ansi(stdout_is_terminal))
            .try_init(),
    };
}
