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
    /// No backend could take a new session within the wait allowed.
    #[error("no database server can take new sessions now (waited {waited:?} for one)")]
    NoWriter {
        /// How long the login waited for a backend.
        waited: std::time::Duration,
    },
    /// The backend of the session stopped being one that takes writes
    /// (down, read-only, not Synced), so Sluice closed the session.
    #[error("the database server {address} can no longer take writes")]
    BackendGivenUp {
        /// The session's backend.
        address: String,
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

/// MariaDB's generic server error. The client-side "can't connect" code
/// (2003) would be the natural one for an unreachable backend, but client
/// libraries reject codes of their own range coming from a server as a
/// malformed packet.
pub(crate) const ER_UNKNOWN_ERROR: u16 = 1105;

/// MariaDB's "Connection was killed" (SQLSTATE 70100), which it sends a
/// client whose idle connection it closes.
pub(crate) const ER_CONNECTION_KILLED: u16 = 1927;

/// MariaDB's answer to a handshake it cannot read.
pub(crate) const ER_HANDSHAKE_ERROR: u16 = 1043;

/// An error packet Sluice makes up for a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientError {
    pub(crate) code: u16,
    pub(crate) sql_state: &'static [u8; 5],
    pub(crate) message: String,
}

impl SessionError {
    /// What a logged-in client is told when Sluice ends its session
    /// between commands for this reason; `None` for errors that end a
    /// session without a word.
    pub(crate) fn closing_notice(&self) -> Option<ClientError> {
        match self {
            SessionError::BackendGivenUp { .. } => Some(ClientError {
                code: ER_CONNECTION_KILLED,
                sql_state: b"70100",
                message: format!(
                    "Sluice closed the session: {self}; reconnect to reach one that can"
                ),
            }),
            _ => None,
        }
    }

    /// What a client whose login ends with this error is told: the one
    /// table from login failure to MySQL code and SQLSTATE. `None` when
    /// the client's own connection failed, since nothing would reach it.
    pub(crate) fn login_refusal(&self) -> Option<ClientError> {
        let (code, sql_state, message) = match self {
            SessionError::Io {
                peer: Peer::Client, ..
            } => return None,
            SessionError::Protocol {
                peer: Peer::Client, ..
            } => (ER_HANDSHAKE_ERROR, b"08S01", "Bad handshake".to_string()),
            SessionError::Io {
                peer: Peer::Backend,
                ..
            }
            | SessionError::Protocol {
                peer: Peer::Backend,
                ..
            } => (
                ER_UNKNOWN_ERROR,
                b"HY000",
                format!("Sluice lost the database server during the login: {self}"),
            ),
            SessionError::BackendConnect { .. } => (
                ER_UNKNOWN_ERROR,
                b"HY000",
                format!("Sluice cannot reach the database server: {self}"),
            ),
            SessionError::NoWriter { .. } | SessionError::BackendGivenUp { .. } => {
                (ER_UNKNOWN_ERROR, b"HY000", format!("Sluice: {self}"))
            }
            SessionError::HandshakeTimeout(_) => {
                (ER_UNKNOWN_ERROR, b"HY000", format!("Sluice: {self}"))
            }
        };
        Some(ClientError {
            code,
            sql_state,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_login_failure_but_a_gone_client_is_told() {
        let client_gone = SessionError::io(Peer::Client)(std::io::ErrorKind::BrokenPipe.into());
        assert_eq!(client_gone.login_refusal(), None);
        let garbled = SessionError::protocol(Peer::Client)(ProtocolError::Unsupported("x"));
        let told = garbled.login_refusal().unwrap();
        assert_eq!((told.code, told.sql_state), (1043, b"08S01"));
        let backend_gone =
            SessionError::io(Peer::Backend)(std::io::ErrorKind::UnexpectedEof.into());
        assert_eq!(backend_gone.login_refusal().unwrap().code, 1105);
        let unreachable = SessionError::BackendConnect {
            address: "db:3306".into(),
            reason: "refused".into(),
        };
        let told = unreachable.login_refusal().unwrap();
        assert!(told
            .message
            .starts_with("Sluice cannot reach the database server"));
        let slow = SessionError::HandshakeTimeout(std::time::Duration::from_secs(10));
        assert!(slow.login_refusal().unwrap().message.contains("10s"));
    }
}
