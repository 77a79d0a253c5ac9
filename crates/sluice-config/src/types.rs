//! The typed configuration. Defaults here are the single source; the
//! `KEYS` table renders them as text and a test keeps the two equal.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
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
    /// Bind `listen` with `SO_REUSEPORT`.
    pub reuse_port: bool,
    /// Concurrent client connections, at least 1.
    pub max_connections: usize,
    /// Close a client idle this long; `None` means never.
    pub idle_timeout: Option<Duration>,
    /// Bound on the login exchange.
    pub handshake_timeout: Duration,
    /// Bound on the drain after SIGTERM.
    pub shutdown_timeout: Duration,
    /// PEM certificate chain offered to clients; with `tls_key`, turns TLS
    /// on for clients. Set together with `tls_key` or not at all.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Refuse clients that do not use TLS; needs `tls_cert`.
    pub require_secure_transport: bool,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3307),
            reuse_port: false,
            max_connections: 1024,
            idle_timeout: Some(Duration::from_secs(8 * 3600)),
            handshake_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(30),
            tls_cert: None,
            tls_key: None,
            require_secure_transport: false,
        }
    }
}

/// `[backend]`: the MariaDB server or servers. Changes need a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendConfig {
    /// One or more servers in priority order, each `host:port` (validated
    /// to have a port, resolved at connect time) or a Unix socket path.
    pub addresses: Vec<String>,
    /// How the servers relate; `single` allows exactly one.
    pub cluster: ClusterMode,
    /// Move new sessions back to a server listed earlier once it can take
    /// writes again.
    pub fail_back: bool,
    /// Bound on establishing a backend connection; never zero.
    pub connect_timeout: Duration,
    /// When Sluice encrypts its connections to the backend.
    pub tls: BackendTlsMode,
    /// PEM CA certificates the backend's certificate must chain to; needed
    /// by `tls = verify`.
    pub tls_ca: Option<PathBuf>,
    /// Name the backend's certificate must carry under `tls = verify`;
    /// `None` uses the host of `address`.
    pub tls_server_name: Option<String>,
}

/// `[backend] cluster`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClusterMode {
    /// One server.
    #[default]
    Single,
    /// Galera nodes, one writer at a time.
    Galera,
    /// A primary with replicas: the first writable server.
    Primary,
}

/// `[backend] tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendTlsMode {
    /// Plain connections.
    Off,
    /// TLS when the backend offers it, certificate not checked.
    #[default]
    Preferred,
    /// TLS always, certificate not checked.
    Required,
    /// TLS always, certificate checked against `tls_ca` and the name.
    Verify,
}

impl BackendConfig {
    /// Whether `address` is a Unix socket path rather than `host:port`.
    pub fn is_unix_socket(address: &str) -> bool {
        address.starts_with('/')
    }

    /// The name the certificate of the server at `address` is checked
    /// against.
    pub fn tls_name(&self, address: &str) -> String {
        if let Some(name) = &self.tls_server_name {
            return name.clone();
        }
        let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string()
    }
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            addresses: vec!["127.0.0.1:3306".to_string()],
            cluster: ClusterMode::Single,
            fail_back: false,
            connect_timeout: Duration::from_secs(5),
            tls: BackendTlsMode::Preferred,
            tls_ca: None,
            tls_server_name: None,
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
    /// Rows of a client INSERT that may still join a batch.
    pub max_statement_rows: usize,
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
            max_statement_rows: 100,
            write_threshold: 1000.0,
            adaptive_step: Duration::from_millis(1),
            metrics_interval: Duration::from_millis(1000),
            max_queued_rows: 10_000,
        }
    }
}

/// `[metrics]`: the Prometheus/health endpoint and the backend probe.
/// Changes need a restart.
///
/// Invariants after validation: `probe_interval` at least 100 ms;
/// `monitor_password` empty unless `monitor_user` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    /// `None` disables the endpoint.
    pub listen: Option<SocketAddr>,
    /// Time between two backend probes.
    pub probe_interval: Duration,
    /// How long probes must fail before `/health` reports 503.
    pub unhealthy_after: Duration,
    /// Account the probe logs in with to run `SELECT 1`; `None`: the probe
    /// needs no credentials.
    pub monitor_user: Option<String>,
    /// Password of `monitor_user`.
    pub monitor_password: Secret,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9104)),
            probe_interval: Duration::from_secs(5),
            unhealthy_after: Duration::from_secs(10),
            monitor_user: None,
            monitor_password: Secret::default(),
        }
    }
}

/// A configured password. It compares and clones like a string, but its
/// `Debug` form hides it, so that printing a configuration (in a log line
/// or a test failure) does not leak it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The password itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no password is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Telling empty from set helps debugging and reveals nothing.
        if self.0.is_empty() {
            f.write_str("Secret(empty)")
        } else {
            f.write_str("Secret(hidden)")
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
