//! Observability of Sluice: the Prometheus registry, the HTTP endpoints
//! (`/metrics`, `/health`, `/ready`) and a backend reachability probe.
//!
//! The crate knows nothing about the proxy. The daemon builds one
//! [`Metrics`], hands clones of it to the proxy (which calls the recording
//! methods on its hot path) and serves it with [`serve_http`]; the
//! [`probe_backend`] task keeps `sluice_backend_up` and the health verdict
//! current, optionally logging in as a monitor user ([`MonitorLogin`]) to
//! run `SELECT 1`.
//!
//! ```no_run
//! use std::time::Duration;
//! use sluice_metrics::{probe_backend, serve_http, HttpState, Metrics, MonitorLogin, ProbeSettings};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let metrics = Metrics::new()?;
//! let state = HttpState::new(metrics.clone(), 10_000)
//!     .with_unhealthy_after(Duration::from_secs(10));
//! let (stop, shutdown) = tokio::sync::watch::channel(false);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9104").await?;
//! tokio::spawn(serve_http(listener, state.clone(), shutdown.clone()));
//! let probe = ProbeSettings {
//!     address: "127.0.0.1:3306".to_owned(),
//!     interval: Duration::from_secs(5),
//!     timeout: Duration::from_secs(2),
//!     monitor: Some(MonitorLogin::new("sluice_monitor", "secret")),
//! };
//! tokio::spawn(probe_backend(probe, state.clone(), shutdown));
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
pub use metrics::{ClientGuard, Metrics, StatusSnapshot, TABLE_LABEL_CAP, TABLE_LABEL_OTHER};
pub use probe::{
    probe_as, probe_backend, probe_once, MonitorLogin, ProbeError, ProbeOutcome, ProbeSettings,
};
pub use state::{HttpState, Readiness, DEFAULT_UNHEALTHY_AFTER};
pub use throttle::{LogThrottle, LOG_BURST, LOG_WINDOW};
