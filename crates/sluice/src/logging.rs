use std::io::IsTerminal;

use anyhow::Context;
use sluice_config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

/// Starts structured logging to stderr. `RUST_LOG`, when set, wins over
/// the configured level (handy for a one-off debug run).
pub fn init(config: &LogConfig) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directive) if !directive.is_empty() => EnvFilter::try_new(directive),
        _ => EnvFilter::try_new(&config.level),
    }
    .with_context(|| format!("invalid log level {:?}", config.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match config.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}
