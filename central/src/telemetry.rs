//! Logging: a `tracing` subscriber writing text or JSON lines, filtered `RUST_LOG`-style.

use std::io::IsTerminal as _;

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::{SubscriberInitExt, TryInitError};

use crate::config::{LogFormat, LogSettings};

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The filter does not parse (the configuration checks it first, so this means a caller
    /// built `LogSettings` by hand).
    #[error("log filter {filter:?} does not parse: {source}")]
    Filter {
        /// The filter.
        filter: String,
        /// The parser's error.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber is already installed.
    #[error("cannot install the logger: {source}")]
    Install {
        /// Why.
        #[source]
        source: TryInitError,
    },
}

/// Installs the process-wide subscriber, writing to standard error, and routes `log` records
/// (from dependencies that use `log`) into it. Colours only on a terminal: journald and log
/// files get plain text.
pub fn init(settings: &LogSettings) -> Result<(), TelemetryError> {
    subscriber(settings, std::io::stderr, std::io::stderr().is_terminal())?
        .try_init()
        .map_err(|source| TelemetryError::Install { source })
}

/// The subscriber `init` installs, writing to `writer` (with ANSI colours if `ansi`); tests
/// pass a buffer.
pub fn subscriber<W>(
    settings: &LogSettings,
    writer: W,
    ansi: bool,
) -> Result<Box<dyn Subscriber + Send + Sync>, TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&settings.filter).map_err(|source| TelemetryError::Filter {
        filter: settings.filter.clone(),
        source,
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    Ok(match settings.format {
        LogFormat::Text => Box::new(builder.finish()),
        // The current span's fields (method, path, peer) go into each line, so a log collector
        // can filter request logs without joining lines.
        LogFormat::Json => Box::new(
            builder
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .finish(),
        ),
    })
}
