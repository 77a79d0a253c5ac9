use std::time::Duration;

use sluice_cluster::Topology;

use crate::tls::{BackendTls, ClientTls};

/// What the relay needs to know; the daemon fills it from its config.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// The backends, in the order the topology numbers them.
    pub backends: Vec<BackendTarget>,
    /// Which backend new sessions go to, and when the sessions on one
    /// must close.
    pub topology: Topology,
    /// Bound on connecting to the backend (and on waiting for a backend
    /// to take writes, when none can).
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
}

/// One backend server and how Sluice reaches it.
#[derive(Debug, Clone)]
pub struct BackendTarget {
    /// `host:port` (resolved at each connect) or a Unix socket path.
    pub address: String,
    /// TLS to this server.
    pub tls: BackendTls,
}

impl BackendTarget {
    /// Whether the server is reached through a Unix socket (its address
    /// is an absolute path) rather than TCP.
    pub fn is_unix_socket(&self) -> bool {
        self.address.starts_with('/')
    }
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            backends: vec![BackendTarget {
                address: "127.0.0.1:3306".into(),
                tls: BackendTls::off(),
            }],
            topology: Topology::single(),
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: None,
            max_connections: 1024,
            shutdown_timeout: Duration::from_secs(30),
            client_tls: None,
            require_secure_transport: false,
        }
    }
}
