use std::time::Duration;

use crate::tls::{BackendTls, ClientTls};

/// What the relay needs to know; the daemon fills it from its config.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Backend address, `host:port`, resolved at each connect.
    pub backend_address: String,
    /// Bound on connecting to the backend.
    pub connect_timeout: Duration,
    /// Bound on the whole login exchange.
    pub handshake_timeout: Duration,
    /// A client silent this long is disconnected; `None` waits forever.
    pub idle_timeout: Option<Duration>,
    /// Clients served at once; more get error 1040.
    pub max_connections: usize,
    /// Bound on the drain at shutdown.
    pub shutdown_timeout: Duration,
    /// TLS offered to clients; `None` offers none.
    pub client_tls: Option<ClientTls>,
    /// Refuse clients that do not switch to TLS.
    pub require_secure_transport: bool,
    /// TLS to the backend.
    pub backend_tls: BackendTls,
}

impl ProxySettings {
    /// Whether the backend is reached through a Unix socket (its address
    /// is an absolute path) rather than TCP.
    pub fn backend_is_unix_socket(&self) -> bool {
        self.backend_address.starts_with('/')
    }
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            backend_address: "127.0.0.1:3306".into(),
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: None,
            max_connections: 1024,
            shutdown_timeout: Duration::from_secs(30),
            client_tls: None,
            require_secure_transport: false,
            backend_tls: BackendTls::off(),
        }
    }
}
