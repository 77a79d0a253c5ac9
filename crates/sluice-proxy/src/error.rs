use sluice_protocol::ProtocolError;

/// Which peer a failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The application's connection.
    Client,
    /// The MariaDB connection.
    Backend,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Peer::Client => "client",
            Peer::Backend => "backend",
        })
    }
}

/// Why a session ended other than by the client saying goodbye.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// A socket failed or closed in the middle of an exchange.
    #[error("{peer} connection: {source}")]
    Io {
        /// The peer whose socket failed.
        peer: Peer,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A peer sent bytes that break the protocol.
    #[error("{peer} sent a malformed packet: {source}")]
    Protocol {
        /// The peer that sent them.
        peer: Peer,
        /// What was wrong.
        #[source]
        source: ProtocolError,
    },
    /// The backend could not be reached.
    #[error("cannot connect to backend {address}: {reason}")]
    BackendConnect {
        /// Address tried.
        address: String,
        /// Why it failed.
        reason: String,
    },
    /// The login did not complete within the handshake timeout.
    #[error("login did not complete within {0:?}")]
    HandshakeTimeout(std::time::Duration),
}

impl SessionError {
    pub(crate) fn io(peer: Peer) -> impl FnOnce(std::io::Error) -> SessionError {
        move |source| SessionError::Io { peer, source }
    }

    pub(crate) fn protocol(peer: Peer) -> impl FnOnce(ProtocolError) -> SessionError {
        move |source| SessionError::Protocol { peer, source }
    }

    /// Which side failed, when one did.
    pub fn peer(&self) -> Option<Peer> {
        match self {
            SessionError::Io { peer, .. } | SessionError::Protocol { peer, .. } => Some(*peer),
            _ => None,
        }
    }

    /// Whether this is just a peer hanging up, not worth a warning.
    pub fn is_disconnect(&self) -> bool {
        matches!(self, SessionError::Io { source, .. } if matches!(
            source.kind(),
            std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe
        ))
    }
}
