//! What the HTTP endpoints report: readiness, backend reachability and the
//! health verdict.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// How long the backend may be unreachable before `/health` turns 503.
pub const DEFAULT_UNHEALTHY_AFTER: Duration = Duration::from_secs(10);

/// `/health` also turns 503 when more than this share (in tenths) of
/// `max_queued_rows` is queued.
const QUEUE_UNHEALTHY_TENTHS: u64 = 9;

/// Where the daemon is in its life, as `/ready` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Not ready yet (before the first `set_ready(true)`).
    Starting,
    /// Accepting clients.
    Ready,
    /// Stopping: no new clients should be sent here.
    Draining,
}

impl Readiness {
    fn as_str(self) -> &'static str {
        match self {
            Readiness::Starting => "starting",
            Readiness::Ready => "ready",
            Readiness::Draining => "draining",
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            1 => Readiness::Ready,
            2 => Readiness::Draining,
            _ => Readiness::Starting,
        }
    }
}

/// State shared by the HTTP server, the backend probe and the daemon.
/// Cheap to clone.
#[derive(Clone)]
pub struct HttpState {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: Metrics,
    started: Instant,
    version: &'static str,
    max_queued_rows: AtomicU64,
    unhealthy_after_ms: AtomicU64,
    readiness: AtomicU8,
    backend: Mutex<Backend>,
    backends: Mutex<Vec<BackendStatus>>,
}

/// One backend as `/health` lists it under `backends`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackendStatus {
    /// Its configured address.
    pub address: String,
    /// The last probe reached it.
    pub up: bool,
    /// It may take new sessions' writes.
    pub candidate: bool,
    /// New sessions go to it.
    pub writer: bool,
    /// `@@read_only`, when the monitor user read it.
    pub read_only: Option<bool>,
    /// Galera's `wsrep_local_state`, when the monitor user read it.
    pub wsrep_local_state: Option<u8>,
    /// Why it is down or not a candidate.
    pub problem: Option<String>,
}

#[derive(Default)]
struct Backend {
    last_success: Option<Instant>,
    failing_since: Option<Instant>,
    /// Why the last probe failed, when it did and said why.
    last_error: Option<String>,
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState")
            .field("readiness", &self.readiness())
            .field("max_queued_rows", &self.max_queued_rows())
            .field("unhealthy_after", &self.unhealthy_after())
            .finish_non_exhaustive()
    }
}

impl HttpState {
    /// State for `metrics`; `max_queued_rows` is the bound of the queue
    /// depth (`writebatch.max_queued_rows`, all keys together; 0 disables
    /// the queue check). Starts not ready, with the backend not yet probed
    /// (reported reachable until a probe fails) and the default unhealthy
    /// threshold.
    pub fn new(metrics: Metrics, max_queued_rows: usize) -> Self {
        let inner = Inner {
            metrics,
            started: Instant::now(),
            version: env!("CARGO_PKG_VERSION"),
            max_queued_rows: AtomicU64::new(u64::try_from(max_queued_rows).unwrap_or(u64::MAX)),
            unhealthy_after_ms: AtomicU64::new(millis(DEFAULT_UNHEALTHY_AFTER)),
            readiness: AtomicU8::new(0),
            backend: Mutex::new(Backend::default()),
            backends: Mutex::new(Vec::new()),
        };
        HttpState {
            inner: Arc::new(inner),
        }
    }

    /// Sets how long the backend may stay unreachable before `/health`
    /// reports 503 ([`Duration::ZERO`]: at the first failed probe).
    pub fn with_unhealthy_after(self, threshold: Duration) -> Self {
        self.set_unhealthy_after(threshold);
        self
    }

    /// Changes the unreachable-backend threshold (millisecond precision).
    pub fn set_unhealthy_after(&self, threshold: Duration) {
        self.inner
            .unhealthy_after_ms
            .store(millis(threshold), Ordering::Relaxed);
    }

    /// The unreachable-backend threshold.
    pub fn unhealthy_after(&self) -> Duration {
        Duration::from_millis(self.inner.unhealthy_after_ms.load(Ordering::Relaxed))
    }

    /// Changes the queue bound (on a configuration reload).
    pub fn set_max_queued_rows(&self, rows: usize) {
        let rows = u64::try_from(rows).unwrap_or(u64::MAX);
        self.inner.max_queued_rows.store(rows, Ordering::Relaxed);
    }

    /// The queue bound `/health` compares the queue depth against.
    pub fn max_queued_rows(&self) -> u64 {
        self.inner.max_queued_rows.load(Ordering::Relaxed)
    }

    /// The metrics this state reports on.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// `true` once the daemon accepts clients; `false` when it starts
    /// draining (after having been ready) or while still starting.
    pub fn set_ready(&self, ready: bool) {
        let next = if ready {
            Readiness::Ready
        } else if self.readiness() == Readiness::Starting {
            Readiness::Starting
        } else {
            Readiness::Draining
        };
        self.inner.readiness.store(next as u8, Ordering::Release);
    }

    /// Where the daemon is in its life.
    pub fn readiness(&self) -> Readiness {
        Readiness::from_u8(self.inner.readiness.load(Ordering::Acquire))
    }

    /// Records whether new sessions have a backend to go to (with one
    /// backend: whether the last probe reached it): `ok` marks it
    /// reachable now; a failure starts (or continues) the unreachable
    /// period.
    pub fn backend_probe_result(&self, ok: bool) {
        self.record_probe(ok, None);
    }

    /// Records a failed backend probe with its reason, which `/health`
    /// reports (as `backend_error`, and in `reason` once unhealthy).
    pub fn backend_probe_failed(&self, error: impl Into<String>) {
        self.record_probe(false, Some(error.into()));
    }

    fn record_probe(&self, ok: bool, error: Option<String>) {
        let now = Instant::now();
        {
            let mut backend = self.backend();
            if ok {
                backend.last_success = Some(now);
                backend.failing_since = None;
            } else {
                backend.failing_since.get_or_insert(now);
            }
            backend.last_error = error;
        }
    }

    /// Replaces the per-backend list `/health` reports.
    pub fn set_backends(&self, backends: Vec<BackendStatus>) {
        *self
            .inner
            .backends
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = backends;
    }

    /// Why the last probe failed, if it failed with a reason.
    pub fn backend_error(&self) -> Option<String> {
        self.backend().last_error.clone()
    }

    /// When the last probe succeeded, if any did.
    pub fn backend_last_success(&self) -> Option<Instant> {
        self.backend().last_success
    }

    /// Since when the backend has been unreachable, if it is.
    pub fn backend_failing_since(&self) -> Option<Instant> {
        self.backend().failing_since
    }

    /// Time since this state was created.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    fn backend(&self) -> std::sync::MutexGuard<'_, Backend> {
        self.inner
            .backend
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The `/health` verdict.
    pub(crate) fn health(&self) -> Health {
        let mut reasons = Vec::new();
        let (failing_since, backend_error) = {
            let backend = self.backend();
            (backend.failing_since, backend.last_error.clone())
        };
        if let Some(since) = failing_since {
            let down = since.elapsed();
            if down >= self.unhealthy_after() {
                let mut reason = format!("backend unreachable for {}s", down.as_secs());
                if let Some(error) = &backend_error {
                    let _ = write!(reason, ": {error}");
                }
                reasons.push(reason);
            }
        }
        let queue_depth = self.inner.metrics.queue_depth();
        let bound = self.max_queued_rows();
        if bound > 0
            && queue_depth.saturating_mul(10) > bound.saturating_mul(QUEUE_UNHEALTHY_TENTHS)
        {
            reasons.push(format!(
                "queue depth {queue_depth} above 90% of max_queued_rows {bound}"
            ));
        }
        let backends = self
            .inner
            .backends
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Health {
            reasons,
            backend_reachable: failing_since.is_none(),
            backend_error,
            backends,
            queue_depth,
            uptime_seconds: self.uptime().as_secs(),
            version: self.inner.version,
        }
    }

    /// The `/ready` body.
    pub(crate) fn readiness_json(&self) -> String {
        format!("{{\"status\":\"{}\"}}\n", self.readiness().as_str())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The `/health` verdict and the figures it reports.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Health {
    /// Why it is unhealthy; empty when healthy.
    pub(crate) reasons: Vec<String>,
    pub(crate) backend_reachable: bool,
    /// Why the last probe failed, if it did.
    pub(crate) backend_error: Option<String>,
    pub(crate) backends: Vec<BackendStatus>,
    pub(crate) queue_depth: u64,
    pub(crate) uptime_seconds: u64,
    pub(crate) version: &'static str,
}

impl Health {
    pub(crate) fn healthy(&self) -> bool {
        self.reasons.is_empty()
    }

    /// One JSON object, newline-terminated.
    pub(crate) fn to_json(&self) -> String {
        let mut out = String::with_capacity(160);
        if self.healthy() {
            out.push_str("{\"status\":\"ok\"");
        } else {
            out.push_str("{\"status\":\"unhealthy\",\"reason\":");
            push_json_string(&mut out, &self.reasons.join("; "));
        }
        let _ = write!(out, ",\"backend_reachable\":{}", self.backend_reachable);
        if let Some(error) = &self.backend_error {
            out.push_str(",\"backend_error\":");
            push_json_string(&mut out, error);
        }
        let _ = write!(
            out,
            ",\"queue_depth\":{},\"uptime_seconds\":{},\"version\":",
            self.queue_depth, self.uptime_seconds
        );
        push_json_string(&mut out, self.version);
        if !self.backends.is_empty() {
            out.push_str(",\"backends\":[");
            for (i, backend) in self.backends.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                backend.push_json(&mut out);
            }
            out.push(']');
        }
        out.push_str("}\n");
        out
    }
}

impl BackendStatus {
    fn push_json(&self, out: &mut String) {
        out.push_str("{\"address\":");
        push_json_string(out, &self.address);
        let _ = write!(
            out,
            ",\"up\":{},\"candidate\":{},\"writer\":{}",
            self.up, self.candidate, self.writer
        );
        if let Some(read_only) = self.read_only {
            let _ = write!(out, ",\"read_only\":{read_only}");
        }
        if let Some(state) = self.wsrep_local_state {
            let _ = write!(out, ",\"wsrep_local_state\":{state}");
        }
        if let Some(problem) = &self.problem {
            out.push_str(",\"problem\":");
            push_json_string(out, problem);
        }
        out.push('}');
    }
}

/// Appends `value` as a JSON string literal.
fn push_json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::MetricsError;

    #[test]
    fn json_strings_are_escaped() {
        let mut out = String::new();
        push_json_string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, "\"a\\\"b\\\\c\\nd\\u0001é\"");
    }

    #[test]
    fn readiness_moves_from_starting_to_ready_to_draining() -> Result<(), MetricsError> {
        let state = HttpState::new(Metrics::new()?, 10);
        assert_eq!(state.readiness(), Readiness::Starting);
        state.set_ready(false);
        assert_eq!(state.readiness(), Readiness::Starting);
        state.set_ready(true);
        assert_eq!(state.readiness(), Readiness::Ready);
        state.set_ready(false);
        assert_eq!(state.readiness(), Readiness::Draining);
        assert_eq!(state.readiness_json(), "{\"status\":\"draining\"}\n");
        Ok(())
    }

    #[test]
    fn backend_failures_within_the_threshold_stay_healthy() -> Result<(), MetricsError> {
        let state =
            HttpState::new(Metrics::new()?, 10).with_unhealthy_after(Duration::from_secs(3600));
        state.backend_probe_result(false);
        let health = state.health();
        assert!(health.healthy());
        assert!(!health.backend_reachable);
        state.backend_probe_result(true);
        assert!(state.health().backend_reachable);
        assert!(state.backend_last_success().is_some());
        Ok(())
    }

    #[test]
    fn the_probes_error_is_reported_and_cleared() -> Result<(), MetricsError> {
        let state =
            HttpState::new(Metrics::new()?, 10).with_unhealthy_after(Duration::from_secs(3600));
        state.backend_probe_failed("monitor login as 'm' refused: error 1045: \"denied\"");
        let health = state.health();
        assert!(health.healthy(), "within the threshold");
        let json = health.to_json();
        assert!(
            json.starts_with(
                "{\"status\":\"ok\",\"backend_reachable\":false,\"backend_error\":\"monitor login as 'm' refused: error 1045: \\\"denied\\\"\",\"queue_depth\":0,"
            ),
            "{json}"
        );
        state.set_unhealthy_after(Duration::ZERO);
        let json = state.health().to_json();
        assert!(
            json.starts_with("{\"status\":\"unhealthy\",\"reason\":\"backend unreachable for 0s: monitor login as 'm' refused: error 1045"),
            "{json}"
        );
        state.backend_probe_result(true);
        assert_eq!(state.backend_error(), None);
        assert!(!state.health().to_json().contains("backend_error"));
        Ok(())
    }

    #[test]
    fn backends_are_listed_each_with_its_state() -> Result<(), MetricsError> {
        let state = HttpState::new(Metrics::new()?, 10);
        assert!(!state.health().to_json().contains("backends"));
        state.set_backends(vec![
            BackendStatus {
                address: "a:3306".into(),
                up: true,
                candidate: true,
                writer: true,
                read_only: Some(false),
                wsrep_local_state: Some(4),
                problem: None,
            },
            BackendStatus {
                address: "/run/mysqld/mysqld.sock".into(),
                problem: Some("cannot \"connect\"".into()),
                ..BackendStatus::default()
            },
        ]);
        let json = state.health().to_json();
        assert!(
            json.ends_with(
                ",\"backends\":[{\"address\":\"a:3306\",\"up\":true,\"candidate\":true,\
                 \"writer\":true,\"read_only\":false,\"wsrep_local_state\":4},\
                 {\"address\":\"/run/mysqld/mysqld.sock\",\"up\":false,\"candidate\":false,\
                 \"writer\":false,\"problem\":\"cannot \\\"connect\\\"\"}]}\n"
            ),
            "{json}"
        );
        Ok(())
    }

    #[test]
    fn failing_since_keeps_the_first_failure() -> Result<(), MetricsError> {
        let state = HttpState::new(Metrics::new()?, 10);
        state.backend_probe_result(false);
        let first = state.backend_failing_since();
        state.backend_probe_result(false);
        assert_eq!(state.backend_failing_since(), first);
        Ok(())
    }

    #[test]
    fn a_nearly_full_queue_is_unhealthy() -> Result<(), MetricsError> {
        let metrics = Metrics::new()?;
        let state = HttpState::new(metrics.clone(), 100);
        metrics.set_queue_depth(90);
        assert!(state.health().healthy(), "90% is not above 90%");
        metrics.set_queue_depth(91);
        let health = state.health();
        assert!(!health.healthy());
        let json = health.to_json();
        assert!(json.starts_with("{\"status\":\"unhealthy\",\"reason\":\"queue depth 91 above 90% of max_queued_rows 100\""), "{json}");
        assert!(json.contains("\"queue_depth\":91"), "{json}");
        state.set_max_queued_rows(0);
        assert!(state.health().healthy(), "no bound, no queue check");
        Ok(())
    }
}
