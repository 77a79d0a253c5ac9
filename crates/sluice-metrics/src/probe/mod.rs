//! Backend health: connect, read the server's greeting and end the login.
//!
//! Without credentials the probe answers the greeting with a login that
//! the server refuses (a connection closed in the middle of the handshake
//! would count toward `max_connect_errors`; see `docs/operations.md`). With
//! a monitor account it logs in for real, runs `SELECT 1` and quits, so a
//! server that accepts connections but cannot serve them counts as down.
//!
//! The monitor login lives in `monitor` because only it handles a password
//! and keeps a session open; the connect, first-packet and timeout helpers
//! stay here so that both probes start, and fail, the same way.

use std::time::Duration;

use sluice_protocol::connect::{abandoning_login, after_abandoning, FirstPacket};
use sluice_protocol::packet::{PacketHeader, HEADER_LEN};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

mod monitor;

pub use monitor::{probe_as, probe_role_as, MonitorLogin, NodeRole};

/// Protocol version byte that starts a MySQL/MariaDB greeting.
/// Larger packets are not what a probe expects (a greeting is ~100 bytes,
/// the whole answer to `SELECT 1` a few hundred).
const MAX_PACKET_LEN: usize = 16 * 1024;
/// Most characters kept of texts the server sends.
const MAX_TEXT_CHARS: usize = 200;

/// What a reachable backend answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// A MySQL protocol 10 greeting (the probe without a monitor user).
    Greeting {
        /// The server version string it announced.
        server_version: String,
    },
    /// An ERR packet instead of a greeting: the server is up but refuses
    /// this host for now (e.g. 1040 too many connections, 1129 host
    /// blocked). Counted as reachable by the probe without a monitor user;
    /// with one it is [`ProbeError::Refused`].
    Refused {
        /// The MySQL error code.
        code: u16,
        /// The error message.
        message: String,
    },
    /// The monitor user logged in and `SELECT 1` returned its row.
    Answered {
        /// The server version string it announced.
        server_version: String,
    },
}

/// Why the backend counts as down.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The TCP connection could not be opened.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// The probed address.
        address: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The probe did not finish within the timeout (connect included).
    #[error("no answer from {address} within {timeout:?}")]
    Timeout {
        /// The probed address.
        address: String,
        /// The time allowed.
        timeout: Duration,
    },
    /// The connection broke while reading the first packet.
    #[error("cannot read the greeting of {address}: {source}")]
    Read {
        /// The probed address.
        address: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Something answered, but not a MySQL server.
    #[error("{address} does not speak the MySQL protocol: {detail}")]
    NotMySql {
        /// The probed address.
        address: String,
        /// What was wrong with the first packet.
        detail: String,
    },
    /// The connection broke after the greeting, during the monitor login
    /// or its query.
    #[error("connection to {address} lost during {during}: {source}")]
    Lost {
        /// The probed address.
        address: String,
        /// What the probe was doing.
        during: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The server sent something the monitor login cannot follow.
    #[error("{address} answered the monitor login unexpectedly: {detail}")]
    Unexpected {
        /// The probed address.
        address: String,
        /// What was unexpected.
        detail: &'static str,
    },
    /// With a monitor user: an ERR packet instead of the greeting (too
    /// many connections, host blocked, ...).
    #[error("{address} refuses connections: error {code}: {message}")]
    Refused {
        /// The probed address.
        address: String,
        /// The MySQL error code.
        code: u16,
        /// The error message.
        message: String,
    },
    /// The server refused the monitor user's login.
    #[error("monitor login as '{user}' refused: error {code}: {message}")]
    LoginRefused {
        /// The monitor user.
        user: String,
        /// The MySQL error code (1045: wrong password or no such user).
        code: u16,
        /// The error message.
        message: String,
    },
    /// The monitor user's account uses an authentication method other
    /// than `mysql_native_password`.
    #[error(
        "monitor login as '{user}' needs the auth plugin {plugin}; the probe speaks only \
         mysql_native_password"
    )]
    UnsupportedAuth {
        /// The monitor user.
        user: String,
        /// The plugin the server asked for.
        plugin: String,
    },
    /// The monitor user logged in but its query failed.
    #[error("{query} as monitor user '{user}' failed: error {code}: {message}")]
    QueryFailed {
        /// The monitor user.
        user: String,
        /// The query.
        query: &'static str,
        /// The MySQL error code.
        code: u16,
        /// The error message.
        message: String,
    },
}

impl ProbeError {
    /// The MySQL error code the server sent, when the failure is an ERR
    /// packet.
    pub fn code(&self) -> Option<u16> {
        match self {
            ProbeError::Refused { code, .. }
            | ProbeError::LoginRefused { code, .. }
            | ProbeError::QueryFailed { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Connects to `address` (`host:port`, names resolved now), reads the
/// first packet, ends the handshake with a login that the server refuses
/// and closes, all within `timeout`.
pub async fn probe_once(address: &str, timeout: Duration) -> Result<ProbeOutcome, ProbeError> {
    within(address, timeout, probe_greeting(address)).await
}

async fn within<T>(
    address: &str,
    timeout: Duration,
    probe: impl std::future::Future<Output = Result<T, ProbeError>>,
) -> Result<T, ProbeError> {
    match tokio::time::timeout(timeout, probe).await {
        Ok(result) => result,
        Err(_elapsed) => Err(ProbeError::Timeout {
            address: address.to_owned(),
            timeout,
        }),
    }
}

async fn probe_greeting(address: &str) -> Result<ProbeOutcome, ProbeError> {
    let (mut stream, payload) = open(address).await?;
    let outcome = parse_first_packet(&payload).map_err(|detail| not_mysql(address, detail))?;
    if matches!(outcome, ProbeOutcome::Greeting { .. }) {
        end_handshake(&mut stream, 1, PROBE_USER).await;
    }
    Ok(outcome)
}

fn not_mysql(address: &str, detail: impl std::fmt::Display) -> ProbeError {
    ProbeError::NotMySql {
        address: address.to_owned(),
        detail: detail.to_string(),
    }
}

/// A probe's connection: TCP, or a Unix socket when the address is an
/// absolute path.
pub(crate) trait ProbeStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> ProbeStream for S {}

async fn connect(address: &str) -> std::io::Result<Box<dyn ProbeStream>> {
    if address.starts_with('/') {
        Ok(Box::new(UnixStream::connect(address).await?))
    } else {
        Ok(Box::new(TcpStream::connect(address).await?))
    }
}

/// Opens the connection and reads the server's first packet.
async fn open(address: &str) -> Result<(Box<dyn ProbeStream>, Vec<u8>), ProbeError> {
    let mut stream = connect(address)
        .await
        .map_err(|source| ProbeError::Connect {
            address: address.to_owned(),
            source,
        })?;
    let read_error = |source| ProbeError::Read {
        address: address.to_owned(),
        source,
    };
    let mut header = [0u8; HEADER_LEN];
    stream.read_exact(&mut header).await.map_err(read_error)?;
    let len = payload_len(&header);
    if header[3] != 0 {
        return Err(not_mysql(
            address,
            "first packet has a non-zero sequence id",
        ));
    }
    if len == 0 || len > MAX_PACKET_LEN {
        return Err(not_mysql(address, "first packet has an implausible length"));
    }
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await.map_err(read_error)?;
    Ok((stream, payload))
}

/// The payload length a packet header announces.
pub(crate) fn payload_len(header: &[u8; HEADER_LEN]) -> usize {
    PacketHeader::parse(header).map_or(0, |h| h.payload_len)
}

/// User name of the probe's login attempt; no such account needs to exist.
const PROBE_USER: &[u8] = b"sluice_probe";

/// Answers a server's greeting with a login for `user`, an account that
/// need not exist, and reads the server's verdict: the polite way to give
/// up a connection in its handshake (`sluice_protocol::connect`). `seq` is
/// the greeting's sequence id plus one. Errors end it quietly: the
/// connection is being dropped anyway.
async fn end_handshake(stream: &mut Box<dyn ProbeStream>, seq: u8, user: &[u8]) {
    if stream
        .write_all(&abandoning_login(seq, user))
        .await
        .is_err()
    {
        return;
    }
    let mut header = [0u8; HEADER_LEN];
    if stream.read_exact(&mut header).await.is_ok() {
        let len = payload_len(&header);
        let mut verdict = vec![0u8; len.min(MAX_PACKET_LEN)];
        if stream.read_exact(&mut verdict).await.is_ok() {
            if let Some(quit) = after_abandoning(&verdict) {
                let _ = stream.write_all(&quit).await;
            }
        }
    }
}

/// Reads a greeting or an ERR packet.
fn parse_first_packet(payload: &[u8]) -> Result<ProbeOutcome, sluice_protocol::ProtocolError> {
    Ok(match FirstPacket::parse(payload)? {
        FirstPacket::Greeting { server_version } => ProbeOutcome::Greeting {
            server_version: printable(server_version),
        },
        FirstPacket::Refused { code, message } => ProbeOutcome::Refused {
            code,
            message: printable(message),
        },
    })
}

/// Server-sent bytes as a bounded string fit for a log line.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_greeting() {
        let mut payload = vec![10];
        payload.extend_from_slice(b"11.4.2-MariaDB\0");
        payload.extend_from_slice(&[1, 0, 0, 0]);
        assert_eq!(
            parse_first_packet(&payload),
            Ok(ProbeOutcome::Greeting {
                server_version: "11.4.2-MariaDB".to_owned()
            })
        );
    }

    #[test]
    fn parses_an_error_packet_with_or_without_sqlstate() {
        let mut payload = vec![0xff, 0x69, 0x04];
        payload.extend_from_slice(b"Host 'x' is blocked");
        assert_eq!(
            parse_first_packet(&payload),
            Ok(ProbeOutcome::Refused {
                code: 1129,
                message: "Host 'x' is blocked".to_owned()
            })
        );
        let mut payload = vec![0xff, 0x10, 0x04];
        payload.extend_from_slice(b"#08004Too many connections");
        assert_eq!(
            parse_first_packet(&payload),
            Ok(ProbeOutcome::Refused {
                code: 1040,
                message: "Too many connections".to_owned()
            })
        );
    }

    #[test]
    fn rejects_what_is_not_mysql() {
        assert!(parse_first_packet(b"").is_err());
        assert!(parse_first_packet(b"HTTP/1.1 400").is_err());
        assert!(parse_first_packet(&[10, b'a', b'b']).is_err(), "no NUL");
        assert!(parse_first_packet(&[0xff, 1]).is_err());
    }

    #[test]
    fn printable_drops_control_characters_and_bounds_length() {
        assert_eq!(printable(b"a\nb\x1b[0m"), "ab[0m");
        assert_eq!(printable(&[b'x'; 500]).len(), MAX_TEXT_CHARS);
    }
}
