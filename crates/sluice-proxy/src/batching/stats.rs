//! Counters of what batching did, read by metrics and tests.

use sluice_batch::core::Adjustment;

use super::decline::Decline;
use super::member::Isolation;

/// What batching counts, recorded in the one set of counters the
/// Prometheus registry holds; `SHOW SLUICE STATUS` reads them back from
/// there ([`sluice_metrics::Metrics::snapshot`]).
pub struct BatchStats {
    metrics: sluice_metrics::Metrics,
}

impl BatchStats {
    pub(crate) fn new(metrics: sluice_metrics::Metrics) -> BatchStats {
        metrics.preset_isolation_reasons(Isolation::LABELS);
        BatchStats { metrics }
    }

    pub(crate) fn metrics(&self) -> &sluice_metrics::Metrics {
        &self.metrics
    }

    pub(crate) fn unbatched(&self, decline: Decline) {
        self.metrics.unbatched(decline.as_str());
    }

    pub(crate) fn on_batch(&self, rows: usize, table: &str) {
        self.metrics.batch_executed(rows, table);
    }

    pub(crate) fn on_failure(&self) {
        self.metrics.batch_failed();
    }

    pub(crate) fn on_isolated(&self, why: Isolation) {
        self.metrics.row_isolated(why.label());
    }

    pub(crate) fn on_outcome_unknown(&self) {
        self.metrics.outcome_unknown();
    }

    pub(crate) fn on_adjustment(&self, adjustment: Adjustment) {
        self.metrics.delay_adjusted(adjustment == Adjustment::Up);
    }
}
