//! The relay half of Sluice: it accepts clients, logs them in through
//! their own backend connection (authentication passes through), then
//! relays every command and streams every response, keeping a typed view
//! of each session's state (transaction, autocommit, database, prepared
//! statements) from what the server reports.
//!
//! The daemon wires it up: it builds [`ProxySettings`], binds a listener
//! and hands both to [`serve`] together with a shutdown signal.

mod admin;
pub mod batching;
#[cfg(test)]
mod captured;
mod compressed;
mod error;
mod exchange;
mod internal;
mod io;
mod listener;
mod login;
mod relay;
mod session;
pub mod session_state;
mod settings;
mod statement;
pub mod tls;
mod transport;

pub use batching::{BatchContext, BatchMode, BatchStats, BatchingSettings};
pub use error::SessionError;
pub use listener::{serve, ServeReport};
pub use settings::{BackendTarget, ProxySettings};
pub use tls::{BackendTls, BackendTlsMode, ClientTls, TlsError};
