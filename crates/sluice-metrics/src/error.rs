//! The error type of this crate.

/// What can fail while building the metrics registry.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A metric family could not be created or registered (a duplicate or
    /// invalid name: a bug in this crate, not an operator error).
    #[error("cannot register metric {name}: {source}")]
    Register {
        /// The family that failed.
        name: &'static str,
        /// What the prometheus crate reported.
        #[source]
        source: prometheus::Error,
    },
}
