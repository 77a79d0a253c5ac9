//! Logging to stderr: text for people, or one JSON object per line
//! ([`json`]) for collectors. Lines of a session carry its `conn_id` and
//! `client`; a batch's carry `batch_id`.

mod json;

use std::io::IsTerminal;

use anyhow::Context;
use sluice_config::{LogConfig, LogFormat};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

/// Changes the log level of the running process (SIGHUP).
pub struct LevelHandle(reload::Handle<EnvFilter, Registry>);

impl LevelHandle {
    pub fn set(&self, level: &str) -> anyhow::Result<()> {
        let filter = EnvFilter::try_new(directive_for(level))
            .with_context(|| format!("invalid log level {level:?}"))?;
        self.0.reload(filter).context("cannot swap the log filter")
    }
}

/// Starts structured logging to stderr. `RUST_LOG`, when set, wins over
/// the configured level (handy for a one-off debug run).
pub fn init(config: &LogConfig) -> anyhow::Result<LevelHandle> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directive) if !directive.is_empty() => EnvFilter::try_new(directive),
        _ => EnvFilter::try_new(directive_for(&config.level)),
    }
    .with_context(|| format!("invalid log level {:?}", config.level))?;
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = std::io::stderr().is_terminal();
    let registry = tracing_subscriber::registry().with(filter);
    match config.format {
        LogFormat::Text => registry
            .with(fmt::layer().with_ansi(ansi).with_writer(std::io::stderr))
            .init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .fmt_fields(fmt::format::JsonFields::new())
                    .event_format(json::FlatJson)
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
    Ok(LevelHandle(handle))
}

/// Sluice's own crates, which a bare level in `[log] level` applies to.
const OWN_CRATES: &[&str] = &[
    "sluice",
    "sluice_proxy",
    "sluice_batch",
    "sluice_classifier",
    "sluice_config",
    "sluice_metrics",
    "sluice_protocol",
];

/// The filter for `[log] level`. A bare `debug` or `trace` turns on
/// Sluice's own detail only: libraries stay at `info` (the SQL parser's
/// trace is of no use to an operator). Anything else is taken as written.
fn directive_for(level: &str) -> String {
    let level = level.trim();
    if !matches!(level.to_ascii_lowercase().as_str(), "debug" | "trace") {
        return level.to_owned();
    }
    let mut directive = String::from("info");
    for name in OWN_CRATES {
        directive.push_str(&format!(",{name}={level}"));
    }
    directive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_detail_level_applies_to_sluice_only() {
        let directive = directive_for("debug");
        assert!(directive.starts_with("info,"), "{directive}");
        assert!(directive.contains(",sluice_proxy=debug"), "{directive}");
        assert!(EnvFilter::try_new(&directive).is_ok());
        assert_eq!(directive_for("warn"), "warn");
        assert_eq!(
            directive_for("info,sqlparser=trace"),
            "info,sqlparser=trace"
        );
    }
}
