//! Counters of what batching did, read by metrics and tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use sluice_batch::core::Adjustment;

use super::decline::Decline;

/// Batching counters (monotonic), kept here for `SHOW SLUICE STATUS` and
/// mirrored into the Prometheus registry.
pub struct BatchStats {
    metrics: sluice_metrics::Metrics,
    /// Multi-row statements committed.
    pub batches: AtomicU64,
    /// Rows that went out in a committed batch.
    pub batched_rows: AtomicU64,
    /// Batches that did not apply (members re-ran alone).
    pub batch_failures: AtomicU64,
    /// Members that re-ran alone after a failed batch.
    pub isolated_rows: AtomicU64,
    /// Members told the outcome is unknown.
    pub outcome_unknown: AtomicU64,
    /// Delay adjustments upwards.
    pub delay_up: AtomicU64,
    /// Delay adjustments downwards.
    pub delay_down: AtomicU64,
    unbatched: Mutex<HashMap<&'static str, u64>>,
}

impl BatchStats {
    pub(crate) fn new(metrics: sluice_metrics::Metrics) -> BatchStats {
        BatchStats {
            metrics,
            batches: AtomicU64::new(0),
            batched_rows: AtomicU64::new(0),
            batch_failures: AtomicU64::new(0),
            isolated_rows: AtomicU64::new(0),
            outcome_unknown: AtomicU64::new(0),
            delay_up: AtomicU64::new(0),
            delay_down: AtomicU64::new(0),
            unbatched: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn metrics(&self) -> &sluice_metrics::Metrics {
        &self.metrics
    }

    pub(crate) fn unbatched(&self, decline: Decline) {
        let reason = decline.as_str();
        self.metrics.unbatched(reason);
        *self
            .unbatched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    /// Writes relayed alone, by reason.
    pub fn unbatched_by_reason(&self) -> Vec<(&'static str, u64)> {
        let mut out: Vec<_> = self
            .unbatched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        out.sort();
        out
    }

    pub(crate) fn on_batch(&self, rows: usize, table: &str) {
        self.metrics.batch_executed(rows, table);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batched_rows.fetch_add(rows as u64, Ordering::Relaxed);
    }

    pub(crate) fn on_failure(&self) {
        self.metrics.batch_failed();
        self.batch_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn on_isolated(&self) {
        self.metrics.row_isolated();
        self.isolated_rows.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn on_outcome_unknown(&self) {
        self.metrics.outcome_unknown();
        self.outcome_unknown.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn on_adjustment(&self, adjustment: Adjustment) {
        self.metrics.delay_adjusted(adjustment == Adjustment::Up);
        match adjustment {
            Adjustment::Up => self.delay_up.fetch_add(1, Ordering::Relaxed),
            Adjustment::Down => self.delay_down.fetch_add(1, Ordering::Relaxed),
        };
    }
}
