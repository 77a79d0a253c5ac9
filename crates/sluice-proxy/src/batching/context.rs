//! What all sessions share: the batch manager, the classifier, the table
//! facts cache, the counters, and the settings a reload can change.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use sluice_batch::{BatchManager, BatchSettings};
use sluice_classifier::Classifier;

use super::facts::FactsCache;
use super::key::BatchKey;
use super::member::{LeaderPicker, Member};
use super::stats::BatchStats;

/// Which statements may be batched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchMode {
    /// Every INSERT the classifier and the session allow.
    Auto,
    /// Only statements carrying a `/* batch:N */` hint.
    Hint,
}

/// Batching settings the daemon passes in.
#[derive(Debug, Clone)]
pub struct BatchingSettings {
    /// Batching on; off makes Sluice a plain relay.
    pub enabled: bool,
    /// Which statements may be batched.
    pub mode: BatchMode,
    /// Queue and delay settings.
    pub batch: BatchSettings,
    /// Most rows of a client INSERT that may join a batch.
    pub max_statement_rows: usize,
}

/// Shared by all sessions.
pub struct BatchContext {
    /// Reloadable: whether batching is on, and in hint mode.
    enabled: AtomicBool,
    hint_mode: AtomicBool,
    max_statement_rows: AtomicUsize,
    pub(super) manager: BatchManager<BatchKey, Member, LeaderPicker>,
    pub(super) classifier: Classifier,
    pub(super) facts: FactsCache,
    pub(super) stats: Arc<BatchStats>,
    /// Numbers batches for the log (`batch_id`).
    next_batch_id: AtomicU64,
}

impl BatchContext {
    /// A new batch's number, for its log lines.
    pub(super) fn next_batch_id(&self) -> u64 {
        self.next_batch_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Starts the batch manager (needs a tokio runtime).
    pub fn start(
        settings: BatchingSettings,
        metrics: sluice_metrics::Metrics,
    ) -> Arc<BatchContext> {
        let stats = Arc::new(BatchStats::new(metrics));
        let adjust_stats = stats.clone();
        Arc::new(BatchContext {
            enabled: AtomicBool::new(settings.enabled),
            hint_mode: AtomicBool::new(settings.mode == BatchMode::Hint),
            max_statement_rows: AtomicUsize::new(settings.max_statement_rows),
            manager: BatchManager::start(settings.batch, LeaderPicker, move |a| {
                adjust_stats.on_adjustment(a)
            }),
            classifier: Classifier::default(),
            facts: FactsCache::default(),
            stats,
            next_batch_id: AtomicU64::new(1),
        })
    }

    /// Whether batching is on (it can be switched by a reload).
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Whether only statements with a batch hint are batched.
    pub(super) fn hint_mode(&self) -> bool {
        self.hint_mode.load(Ordering::Relaxed)
    }

    /// Most rows of a client INSERT that may join a batch.
    pub(super) fn max_statement_rows(&self) -> usize {
        self.max_statement_rows.load(Ordering::Relaxed)
    }

    /// Counters for metrics and tests.
    pub fn stats(&self) -> &Arc<BatchStats> {
        &self.stats
    }

    /// Shutdown: every queued row leaves now.
    pub fn drain(&self) {
        self.manager.drain();
    }

    /// Applies reloaded settings (SIGHUP); sessions see them at their
    /// next statement.
    pub fn set_settings(&self, settings: BatchingSettings) {
        self.enabled.store(settings.enabled, Ordering::Relaxed);
        self.hint_mode
            .store(settings.mode == BatchMode::Hint, Ordering::Relaxed);
        self.max_statement_rows
            .store(settings.max_statement_rows, Ordering::Relaxed);
        self.manager.set_settings(settings.batch);
    }

    /// Current adaptive delay and queue depth.
    pub fn manager_stats(&self) -> sluice_batch::ManagerStats {
        self.manager.stats()
    }
}
