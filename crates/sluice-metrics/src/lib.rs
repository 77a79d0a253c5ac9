//! Observability of Sluice: the Prometheus registry, the HTTP endpoints
//! (`/metrics`, `/health`, `/ready`) and a backend reachability probe.
//!
//! The crate knows nothing about the proxy. The daemon builds one
//! [`Metrics`], hands clones of it to the proxy (which calls the recording
//! methods on its hot path) and serves it with [`serve_http`]. The probes
//! ([`probe_once`], [`probe_as`], [`probe_role_as`]) check one backend;
//! the cluster monitor (crate `sluice-cluster`) runs them and records what
//! they find in [`HttpState`] and the `sluice_backend_*` families.
//!
//! ```no_run
//! use std::time::Duration;
//! use sluice_metrics::{probe_as, serve_http, HttpState, Metrics, MonitorLogin};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let metrics = Metrics::new()?;
//! let state = HttpState::new(metrics.clone(), 10_000)
//!     .with_unhealthy_after(Duration::from_secs(10));
//! let (stop, shutdown) = tokio::sync::watch::channel(false);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9104").await?;
//! tokio::spawn(serve_http(listener, state.clone(), shutdown.clone()));
//! let monitor = MonitorLogin::new("sluice_monitor", "secret");
//! match probe_as("127.0.0.1:3306", Duration::from_secs(2), &monitor).await {
//!     Ok(_) => state.backend_probe_result(true),
//!     Err(error) => state.backend_probe_failed(error.to_string()),
//! }
//! state.set_ready(true);
//!
//! // In a session:
//! let _connection = metrics.client_connected();
//! metrics.command("query");
//! metrics.batch_executed(16, "shop.orders");
//!
//! // On SIGTERM: stop advertising readiness, drain, then stop serving.
//! state.set_ready(false);
//! let _ = stop.send(true);
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod error;
mod http;
mod labels;
mod metrics;
mod probe;
mod process;
mod shutdown;
mod state;
mod throttle;

pub use error::MetricsError;
pub use http::serve_http;
pub use metrics::{
    BackendGauges, ClientGuard, Metrics, StatusSnapshot, TABLE_LABEL_CAP, TABLE_LABEL_OTHER,
};
pub use probe::{
    probe_as, probe_once, probe_role_as, MonitorLogin, NodeRole, ProbeError, ProbeOutcome,
};
pub use state::{BackendStatus, HttpState, Readiness, DEFAULT_UNHEALTHY_AFTER};
pub use throttle::{LogThrottle, LOG_BURST, LOG_WINDOW};
