//! The typed configuration. Defaults here are the single source; the
//! `KEYS` table renders them as text and a test keeps the two equal.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The whole configuration of the daemon.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub proxy: ProxyConfig,
    pub backend: BackendConfig,
    pub log: LogConfig,
    pub writebatch: WriteBatchConfig,
    pub metrics: MetricsConfig,
}

/// `[proxy]`: the client-facing listener. Changes need a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyConfig {
    /// Where clients connect.
    pub listen: SocketAddr,
    /// Concurrent client connections, at least 1.
    pub max_connections: usize,
    /// Close a client idle this long; `None` means never.
    pub idle_timeout: Option<Duration>,
    /// Bound on the login exchange.
    pub handshake_timeout: Duration,
    /// Bound on the drain after SIGTERM.
    pub shutdown_timeout: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3307),
            max_connections: 1024,
            idle_timeout: Some(Duration::from_secs(8 * 3600)),
            handshake_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// `[backend]`: the MariaDB server. Changes need a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendConfig {
    /// `host:port`; validated to have a port, resolved at connect time.
    pub address: String,
    /// Bound on establishing a backend connection; never zero.
    pub connect_timeout: Duration,
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            address: "127.0.0.1:3306".to_string(),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `[log]`: reloadable on SIGHUP.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// A tracing `EnvFilter` directive such as `info,sluice_proxy=debug`.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_string(),
            format: LogFormat::Text,
        }
    }
}

/// Which INSERTs are batched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BatchMode {
    /// Every batchable INSERT.
    #[default]
    Auto,
    /// Only statements carrying a `/* batch:N */` hint.
    Hint,
}

/// `[writebatch]`: reloadable on SIGHUP.
///
/// Invariants after validation: `min_delay <= initial_delay <= max_delay`,
/// `max_batch_size >= 1`, `max_batch_bytes >= 1024`,
/// `max_queued_rows >= max_batch_size`, `adaptive_step` and
/// `metrics_interval` non-zero, `write_threshold` finite and `>= 0`.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteBatchConfig {
    pub enabled: bool,
    pub mode: BatchMode,
    /// Delay a new key's queue starts with.
    pub initial_delay: Duration,
    /// Lower bound of the adaptive delay.
    pub min_delay: Duration,
    /// Upper bound of the adaptive delay.
    pub max_delay: Duration,
    /// Rows per batch statement.
    pub max_batch_size: usize,
    /// Bytes per batch statement.
    pub max_batch_bytes: usize,
    /// Throughput (ops/s) above which the delay grows.
    pub write_threshold: f64,
    /// Amount the delay grows or shrinks per evaluation.
    pub adaptive_step: Duration,
    /// How often throughput is evaluated.
    pub metrics_interval: Duration,
    /// Rows waiting per key before statements bypass the queue.
    pub max_queued_rows: usize,
}

impl Default for WriteBatchConfig {
    fn default() -> Self {
        WriteBatchConfig {
            enabled: true,
            mode: BatchMode::Auto,
            initial_delay: Duration::ZERO,
            min_delay: Duration::ZERO,
            max_delay: Duration::from_millis(5),
            max_batch_size: 1000,
            max_batch_bytes: 4 * 1024 * 1024,
            write_threshold: 1000.0,
            adaptive_step: Duration::from_millis(1),
            metrics_interval: Duration::from_millis(1000),
            max_queued_rows: 10_000,
        }
    }
}

/// `[metrics]`: the Prometheus/health endpoint. Changes need a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    /// `None` disables the endpoint.
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9104)),
        }
    }
}

impl Config {
    /// Sections whose values differ between `self` and `new` but cannot
    /// change without a restart. A SIGHUP handler applies `new.writebatch`
    /// and `new.log` and warns about these.
    pub fn restart_required(&self, new: &Config) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if self.proxy != new.proxy {
            changed.push("proxy");
        }
        if self.backend != new.backend {
            changed.push("backend");
        }
        if self.metrics != new.metrics {
            changed.push("metrics");
        }
        changed
    }
}
