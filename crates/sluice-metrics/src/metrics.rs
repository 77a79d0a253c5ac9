//! The registry of Sluice's metric families and the recording methods the
//! proxy calls.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::error::MetricsError;
use crate::labels::{StaticCounters, TableCounters};
use crate::process::ProcessCollector;

/// Most distinct `table` label values; further tables count under
/// [`TABLE_LABEL_OTHER`].
pub const TABLE_LABEL_CAP: usize = 100;

/// The `table` label value shared by every table beyond the cap.
pub const TABLE_LABEL_OTHER: &str = "other";

/// Rows per batch.
const BATCH_SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// Time a row waits in its queue: the adaptive delay is a few milliseconds
/// (`max_delay_ms` defaults to 5).
const DELAY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Enqueue to answer: the delay plus the batch statement's execution.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Command names counted from the start (at 0), so a first increment
/// shows up in `rate()`. Other names are accepted as they come.
const PRESET_COMMANDS: &[&str] = &[
    "query",
    "stmt_prepare",
    "stmt_execute",
    "stmt_close",
    "stmt_reset",
    "stmt_send_long_data",
    "ping",
    "init_db",
    "quit",
    "other",
];

/// Sluice's metrics: a private Prometheus registry and pre-resolved
/// handles to every family. Cheap to clone (one `Arc`); every recording
/// method takes `&self` and is safe to call from any task.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    batch_size: Histogram,
    batch_delay: Histogram,
    batch_latency: Histogram,
    ops_per_second: Gauge,
    current_delay: Gauge,
    queue_depth: IntGauge,
    tables: TableCounters,
    unbatched: StaticCounters,
    delay_up: IntCounter,
    delay_down: IntCounter,
    batch_failures: IntCounter,
    isolated_rows: StaticCounters,
    outcome_unknown: IntCounter,
    client_connections: IntGauge,
    client_connections_total: IntCounter,
    compressed_sessions_total: IntCounter,
    commands: StaticCounters,
    backend_connect_errors: IntCounter,
    backend_up: IntGaugeVec,
    backend_candidate: IntGaugeVec,
    backend_writer: IntGaugeVec,
    backend_wsrep_state: IntGaugeVec,
    backend_failovers: IntCounter,
    /// Totals over every table, for [`StatusSnapshot`].
    batches_total: AtomicU64,
    rows_total: AtomicU64,
}

/// One backend's figures for [`Metrics::set_backend_health`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackendGauges {
    /// The last probe reached it.
    pub up: bool,
    /// It may take new sessions' writes.
    pub candidate: bool,
    /// New sessions go to it.
    pub writer: bool,
    /// Galera's `wsrep_local_state`, when read.
    pub wsrep_local_state: Option<u8>,
}

/// The figures behind the admin SQL status view.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusSnapshot {
    /// Rows waiting in batch queues now.
    pub queue_depth: u64,
    /// The adaptive delay now.
    pub current_delay: Duration,
    /// Batch statements executed since start.
    pub batches: u64,
    /// Rows sent in batches since start.
    pub rows_batched: u64,
    /// `rows_batched / batches`, 0 before the first batch.
    pub average_batch_size: f64,
    /// Rows re-run alone after their batch failed.
    pub isolated_rows: u64,
    /// Rows whose outcome could not be determined.
    pub outcome_unknown: u64,
    /// Batch statements that failed.
    pub batch_failures: u64,
    /// Adaptive delay moves upwards.
    pub delay_up: u64,
    /// Adaptive delay moves downwards.
    pub delay_down: u64,
    /// Writes relayed without batching, by reason (reasons counted at
    /// least once), sorted by reason.
    pub unbatched: Vec<(&'static str, u64)>,
    /// Client connections open now.
    pub client_connections: u64,
}

/// Held for as long as a client connection is open; dropping it lowers
/// `sluice_client_connections`.
#[must_use = "the connection is counted only while the guard is alive"]
pub struct ClientGuard {
    gauge: IntGauge,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

impl std::fmt::Debug for ClientGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientGuard").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Builds families and registers them in one registry.
struct Families<'r> {
    registry: &'r Registry,
}

impl Families<'_> {
    fn register<C: Collector + Clone + 'static>(
        &self,
        name: &'static str,
        made: prometheus::Result<C>,
    ) -> Result<C, MetricsError> {
        let register = |source| MetricsError::Register { name, source };
        let collector = made.map_err(register)?;
        self.registry
            .register(Box::new(collector.clone()))
            .map_err(register)?;
        Ok(collector)
    }

    fn counter(&self, name: &'static str, help: &str) -> Result<IntCounter, MetricsError> {
        self.register(name, IntCounter::new(name, help))
    }

    fn int_gauge(&self, name: &'static str, help: &str) -> Result<IntGauge, MetricsError> {
        self.register(name, IntGauge::new(name, help))
    }

    fn gauge(&self, name: &'static str, help: &str) -> Result<Gauge, MetricsError> {
        self.register(name, Gauge::new(name, help))
    }

    fn counter_vec(
        &self,
        name: &'static str,
        help: &str,
        label: &str,
    ) -> Result<IntCounterVec, MetricsError> {
        self.register(name, IntCounterVec::new(Opts::new(name, help), &[label]))
    }

    fn gauge_vec(
        &self,
        name: &'static str,
        help: &str,
        label: &str,
    ) -> Result<IntGaugeVec, MetricsError> {
        self.register(name, IntGaugeVec::new(Opts::new(name, help), &[label]))
    }

    fn histogram(
        &self,
        name: &'static str,
        help: &str,
        buckets: &[f64],
    ) -> Result<Histogram, MetricsError> {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        self.register(name, Histogram::with_opts(opts))
    }
}

impl Metrics {
    /// A registry holding every Sluice family (and the process families on
    /// Linux), each at zero.
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let f = Families {
            registry: &registry,
        };

        let batch_size = f.histogram(
            "sluice_write_batch_size",
            "Rows per executed batch statement.",
            BATCH_SIZE_BUCKETS,
        )?;
        let batch_delay = f.histogram(
            "sluice_write_batch_delay_seconds",
            "Time a row waited in its batch queue before its batch left.",
            DELAY_BUCKETS,
        )?;
        let batch_latency = f.histogram(
            "sluice_write_batch_latency_seconds",
            "Time from a row entering its batch queue to its client being answered.",
            LATENCY_BUCKETS,
        )?;
        let ops_per_second = f.gauge(
            "sluice_write_ops_per_second",
            "Batchable INSERTs per second measured by the adaptive controller.",
        )?;
        let current_delay = f.gauge(
            "sluice_write_current_delay_seconds",
            "Current adaptive delay a row may wait for others to join its batch.",
        )?;
        let queue_depth = f.int_gauge(
            "sluice_write_queue_depth",
            "Rows waiting in batch queues, all batch keys together.",
        )?;
        let batched = f.counter_vec(
            "sluice_write_batched_total",
            "Rows sent to the backend as part of a batch statement, by table (schema.table; \
             tables beyond the first 100 count as \"other\").",
            "table",
        )?;
        let batches = f.counter_vec(
            "sluice_write_batches_total",
            "Batch statements executed, by table (schema.table; tables beyond the first 100 \
             count as \"other\").",
            "table",
        )?;
        let unbatched = f.counter_vec(
            "sluice_write_unbatched_total",
            "Statements relayed without batching, by reason.",
            "reason",
        )?;
        let adjustments = f.counter_vec(
            "sluice_write_delay_adjustments_total",
            "Adaptive delay changes, by direction (up or down).",
            "direction",
        )?;
        let batch_failures = f.counter(
            "sluice_write_batch_failures_total",
            "Batch statements that failed as a whole and were rolled back (their rows \
             then run alone).",
        )?;
        let isolated_rows = f.counter_vec(
            "sluice_write_isolated_rows_total",
            "Rows that ran their own statement alone after their batch, by reason: the \
             batch skipped them (duplicate_key, foreign_key, check_constraint, \
             no_partition), it failed as a whole and halving left them alone \
             (batch_failed), or it could not be sent (not_sent).",
            "reason",
        )?;
        let outcome_unknown = f.counter(
            "sluice_write_outcome_unknown_total",
            "Rows whose outcome Sluice could not determine (backend connection lost \
             after the batch and its commit were sent); their clients got an error \
             saying so.",
        )?;
        let client_connections =
            f.int_gauge("sluice_client_connections", "Client connections open now.")?;
        let client_connections_total = f.counter(
            "sluice_client_connections_total",
            "Client connections accepted since start.",
        )?;
        let compressed_sessions_total = f.counter(
            "sluice_compressed_sessions_total",
            "Client sessions that logged in with the compressed protocol (zlib) on the client leg.",
        )?;
        let commands = f.counter_vec(
            "sluice_commands_total",
            "Client protocol commands received, by command.",
            "command",
        )?;
        let backend_connect_errors = f.counter(
            "sluice_backend_connect_errors_total",
            "Failed attempts to open a backend connection.",
        )?;
        let backend_up = f.gauge_vec(
            "sluice_backend_up",
            "1 if the last probe of the backend got a MySQL greeting (or a MySQL error \
             packet; with a monitor user, a successful login and query), else 0.",
            "backend",
        )?;
        let backend_candidate = f.gauge_vec(
            "sluice_backend_candidate",
            "1 if the backend may take the writes of new sessions (reachable; with a \
             cluster mode and a monitor user also writable, and Synced and ready on Galera).",
            "backend",
        )?;
        let backend_writer = f.gauge_vec(
            "sluice_backend_writer",
            "1 for the backend that new sessions are sent to, 0 for the others.",
            "backend",
        )?;
        let backend_wsrep_state = f.gauge_vec(
            "sluice_backend_wsrep_local_state",
            "Galera's wsrep_local_state as the monitor user last read it (4 = Synced); \
             absent until read.",
            "backend",
        )?;
        let backend_failovers = f.counter(
            "sluice_backend_failovers_total",
            "Times new sessions were moved from one backend to another.",
        )?;
        let process = ProcessCollector::new().map_err(|source| MetricsError::Register {
            name: "process_*",
            source,
        })?;
        registry
            .register(Box::new(process))
            .map_err(|source| MetricsError::Register {
                name: "process_*",
                source,
            })?;

        let commands = StaticCounters::new(commands);
        for name in PRESET_COMMANDS {
            commands.preset(name);
        }
        let inner = Inner {
            batch_size,
            batch_delay,
            batch_latency,
            ops_per_second,
            current_delay,
            queue_depth,
            tables: TableCounters::new(batches, batched, TABLE_LABEL_CAP, TABLE_LABEL_OTHER),
            unbatched: StaticCounters::new(unbatched),
            delay_up: adjustments.with_label_values(&["up"]),
            delay_down: adjustments.with_label_values(&["down"]),
            batch_failures,
            isolated_rows: StaticCounters::new(isolated_rows),
            outcome_unknown,
            client_connections,
            client_connections_total,
            compressed_sessions_total,
            commands,
            backend_connect_errors,
            backend_up,
            backend_candidate,
            backend_writer,
            backend_wsrep_state,
            backend_failovers,
            batches_total: AtomicU64::new(0),
            rows_total: AtomicU64::new(0),
            registry,
        };
        Ok(Metrics {
            inner: Arc::new(inner),
        })
    }

    /// A batch statement of `rows` rows ran for `table` (the batch key as
    /// `schema.table`).
    pub fn batch_executed(&self, rows: usize, table: &str) {
        let rows = u64::try_from(rows).unwrap_or(u64::MAX);
        let m = &self.inner;
        m.batch_size.observe(rows as f64);
        m.tables.record(table, rows);
        m.batches_total.fetch_add(1, Ordering::Relaxed);
        m.rows_total.fetch_add(rows, Ordering::Relaxed);
    }

    /// A row waited `waited` in its queue before its batch left.
    pub fn row_waited(&self, waited: Duration) {
        self.inner.batch_delay.observe(waited.as_secs_f64());
    }

    /// A batched row's client was answered `latency` after the row was
    /// queued.
    pub fn row_answered(&self, latency: Duration) {
        self.inner.batch_latency.observe(latency.as_secs_f64());
    }

    /// A statement was relayed without batching. `reason` is a short static
    /// label such as `"not_insert"`, `"in_transaction"`, `"queue_full"`.
    pub fn unbatched(&self, reason: &'static str) {
        self.inner.unbatched.inc(reason);
    }

    /// The adaptive controller raised (`up`) or lowered the delay.
    pub fn delay_adjusted(&self, up: bool) {
        if up {
            self.inner.delay_up.inc();
        } else {
            self.inner.delay_down.inc();
        }
    }

    /// Rows waiting in batch queues now, all keys together.
    pub fn set_queue_depth(&self, rows: usize) {
        self.inner
            .queue_depth
            .set(i64::try_from(rows).unwrap_or(i64::MAX));
    }

    /// The adaptive delay now.
    pub fn set_current_delay(&self, delay: Duration) {
        self.inner.current_delay.set(delay.as_secs_f64());
    }

    /// Measured batchable INSERTs per second.
    pub fn set_ops_per_second(&self, rate: f64) {
        self.inner.ops_per_second.set(rate);
    }

    /// A batch statement failed as a whole.
    pub fn batch_failed(&self) {
        self.inner.batch_failures.inc();
    }

    /// A row ran its own statement alone after its batch, for `reason`.
    pub fn row_isolated(&self, reason: &'static str) {
        self.inner.isolated_rows.inc(reason);
    }

    /// Makes each of `reasons` appear at 0 in
    /// `sluice_write_isolated_rows_total` before it is first counted.
    pub fn preset_isolation_reasons(&self, reasons: &[&'static str]) {
        for reason in reasons {
            self.inner.isolated_rows.preset(reason);
        }
    }

    /// A row's outcome could not be determined.
    pub fn outcome_unknown(&self) {
        self.inner.outcome_unknown.inc();
    }

    /// A client connected; keep the guard for the connection's lifetime.
    pub fn client_connected(&self) -> ClientGuard {
        self.inner.client_connections_total.inc();
        self.inner.client_connections.inc();
        ClientGuard {
            gauge: self.inner.client_connections.clone(),
        }
    }

    /// A client logged in with the compressed protocol.
    pub fn compressed_session(&self) {
        self.inner.compressed_sessions_total.inc();
    }

    /// A client sent a command; `name` is a stable lowercase name such as
    /// `"query"` or `"stmt_execute"`.
    pub fn command(&self, name: &'static str) {
        self.inner.commands.inc(name);
    }

    /// Opening a backend connection failed.
    pub fn backend_connect_error(&self) {
        self.inner.backend_connect_errors.inc();
    }

    /// Sets `sluice_backend_up`, `sluice_backend_candidate` and
    /// `sluice_backend_writer` of `backend`, and its Galera state when
    /// known.
    pub fn set_backend_health(&self, backend: &str, health: BackendGauges) {
        let labels = [backend];
        let set = |family: &IntGaugeVec, value: bool| {
            family.with_label_values(&labels).set(i64::from(value));
        };
        set(&self.inner.backend_up, health.up);
        set(&self.inner.backend_candidate, health.candidate);
        set(&self.inner.backend_writer, health.writer);
        if let Some(state) = health.wsrep_local_state {
            self.inner
                .backend_wsrep_state
                .with_label_values(&labels)
                .set(i64::from(state));
        }
    }

    /// New sessions were moved to another backend.
    pub fn backend_failover(&self) {
        self.inner.backend_failovers.inc();
    }

    /// Rows waiting in batch queues, as last set.
    pub fn queue_depth(&self) -> u64 {
        u64::try_from(self.inner.queue_depth.get()).unwrap_or(0)
    }

    /// Every family in the Prometheus text exposition format (0.0.4).
    pub fn render(&self) -> String {
        let families = self.inner.registry.gather();
        let mut out = String::with_capacity(16 * 1024);
        if let Err(error) = TextEncoder::new().encode_utf8(&families, &mut out) {
            tracing::warn!(%error, "cannot encode metrics");
        }
        out
    }

    /// The figures of the admin status view.
    pub fn snapshot(&self) -> StatusSnapshot {
        let m = &self.inner;
        let batches = m.batches_total.load(Ordering::Relaxed);
        let rows_batched = m.rows_total.load(Ordering::Relaxed);
        let average_batch_size = if batches == 0 {
            0.0
        } else {
            rows_batched as f64 / batches as f64
        };
        let seconds = m.current_delay.get();
        StatusSnapshot {
            queue_depth: self.queue_depth(),
            current_delay: Duration::try_from_secs_f64(seconds).unwrap_or(Duration::ZERO),
            batches,
            rows_batched,
            average_batch_size,
            isolated_rows: m.isolated_rows.counted().iter().map(|(_, n)| n).sum(),
            outcome_unknown: m.outcome_unknown.get(),
            batch_failures: m.batch_failures.get(),
            delay_up: m.delay_up.get(),
            delay_down: m.delay_down.get(),
            unbatched: m.unbatched.counted(),
            client_connections: u64::try_from(m.client_connections.get()).unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests;
