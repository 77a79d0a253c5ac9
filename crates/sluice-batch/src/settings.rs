use std::time::Duration;

/// The knobs of the batch manager (the `[writebatch]` section).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSettings {
    /// Delay at start.
    pub initial_delay: Duration,
    /// Lower bound of the adaptive delay.
    pub min_delay: Duration,
    /// Upper bound of the adaptive delay, and the longest a row waits
    /// behind an in-flight batch.
    pub max_delay: Duration,
    /// Items per batch at most.
    pub max_batch_size: usize,
    /// Bytes per batch at most (sum of the items' sizes).
    pub max_batch_bytes: usize,
    /// Submissions per second above which the delay grows.
    pub write_threshold: f64,
    /// How much the delay moves per adjustment.
    pub adaptive_step: Duration,
    /// How often the rate is measured and the delay adjusted.
    pub metrics_interval: Duration,
    /// Items queued across all keys at most; beyond it, submissions are
    /// refused (and run unbatched by the caller).
    pub max_queued_rows: usize,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            initial_delay: Duration::ZERO,
            min_delay: Duration::ZERO,
            max_delay: Duration::from_millis(5),
            max_batch_size: 1000,
            max_batch_bytes: 4 * 1024 * 1024,
            write_threshold: 1000.0,
            adaptive_step: Duration::from_millis(1),
            metrics_interval: Duration::from_secs(1),
            max_queued_rows: 10_000,
        }
    }
}
