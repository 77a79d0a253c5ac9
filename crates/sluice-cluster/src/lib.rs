//! Which backend new sessions go to.
//!
//! Sluice may front one server (`single`), a Galera cluster (`galera`) or
//! a primary with replicas (`primary`). A session lives on one backend for
//! its whole life, because Sluice stores no passwords and cannot log a
//! client in anywhere else; so the choice made here applies to new
//! sessions only. The [`monitor`](watch_backends) probes every backend,
//! decides which ones may take writes ([`fitness`]), keeps one of them as
//! the writer ([`choose_writer`]) and publishes it through a
//! [`Topology`], which the proxy reads at each login. When a backend stops
//! being fit, the sessions on it are told to close
//! ([`Topology::evictions`]).
//!
//! The decisions are pure functions; the monitor task is the only I/O.

#![deny(missing_docs)]

mod mode;
mod monitor;
mod topology;
mod writer;

pub use mode::{fitness, ClusterMode, Probed};
pub use monitor::{watch_backends, MonitorSettings};
pub use topology::{EvictionNotice, Topology};
pub use writer::choose_writer;
