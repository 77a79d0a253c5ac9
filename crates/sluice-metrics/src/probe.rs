//! Backend reachability: connect, read the server's first packet, close.
//!
//! The probe sends nothing and needs no credentials. Note that MariaDB and
//! MySQL count a connection closed before the login as a handshake error
//! of the proxy's host; see `docs/operations.md` (`max_connect_errors`).

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::shutdown;
use crate::state::HttpState;

/// Protocol version byte that starts a MySQL/MariaDB greeting.
const PROTOCOL_VERSION_10: u8 = 10;
/// First byte of an ERR packet.
const ERR_MARKER: u8 = 0xff;
/// Larger first packets are not a greeting (real ones are ~100 bytes).
const MAX_GREETING_LEN: usize = 16 * 1024;
/// Shortest interval the probe task accepts.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Most characters kept of texts the server sends.
const MAX_TEXT_CHARS: usize = 200;

/// What a reachable backend answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// A MySQL protocol 10 greeting.
    Greeting {
        /// The server version string it announced.
        server_version: String,
    },
    /// An ERR packet instead of a greeting: the server is up but refuses
    /// this host for now (e.g. 1040 too many connections, 1129 host
    /// blocked). Counted as reachable.
    Refused {
        /// The MySQL error code.
        code: u16,
        /// The error message.
        message: String,
    },
}

/// Why the backend counts as unreachable.
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
    /// No first packet arrived within the timeout (connect included).
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
        detail: &'static str,
    },
}

/// Connects to `address` (`host:port`, names resolved now), reads the
/// first packet and closes, all within `timeout`.
pub async fn probe_once(address: &str, timeout: Duration) -> Result<ProbeOutcome, ProbeError> {
    match tokio::time::timeout(timeout, read_first_packet(address)).await {
        Ok(result) => result,
        Err(_elapsed) => Err(ProbeError::Timeout {
            address: address.to_owned(),
            timeout,
        }),
    }
}

async fn read_first_packet(address: &str) -> Result<ProbeOutcome, ProbeError> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|source| ProbeError::Connect {
            address: address.to_owned(),
            source,
        })?;
    let read_error = |source| ProbeError::Read {
        address: address.to_owned(),
        source,
    };
    let not_mysql = |detail| ProbeError::NotMySql {
        address: address.to_owned(),
        detail,
    };
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await.map_err(read_error)?;
    let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    if header[3] != 0 {
        return Err(not_mysql("first packet has a non-zero sequence id"));
    }
    if len == 0 || len > MAX_GREETING_LEN {
        return Err(not_mysql("first packet has an implausible length"));
    }
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await.map_err(read_error)?;
    let outcome = parse_first_packet(&payload).map_err(not_mysql)?;
    if matches!(outcome, ProbeOutcome::Greeting { .. }) {
        finish_login_attempt(&mut stream).await;
    }
    Ok(outcome)
}

/// User name of the probe's login attempt; no such account needs to exist.
const PROBE_USER: &[u8] = b"sluice_probe";

/// Answers the greeting with a login for an account that need not exist,
/// and reads the server's verdict. A connection closed in the middle of
/// the handshake counts toward the server's `max_connect_errors`, which
/// blocks the host after 100 of them; a refused login does not.
async fn finish_login_attempt(stream: &mut TcpStream) {
    use tokio::io::AsyncWriteExt;
    // CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH
    let caps: u32 = 0x0000_0200 | 0x0000_8000 | 0x0008_0000;
    let mut payload = Vec::with_capacity(64);
    payload.extend_from_slice(&caps.to_le_bytes());
    payload.extend_from_slice(&(1u32 << 24).to_le_bytes());
    payload.push(45);
    payload.extend_from_slice(&[0u8; 23]);
    payload.extend_from_slice(PROBE_USER);
    payload.push(0);
    payload.push(0); // empty auth response
    payload.extend_from_slice(b"mysql_native_password\0");
    let mut packet = Vec::with_capacity(payload.len() + 4);
    let len = payload.len() as u32;
    packet.extend_from_slice(&len.to_le_bytes()[..3]);
    packet.push(1);
    packet.extend_from_slice(&payload);
    if stream.write_all(&packet).await.is_err() {
        return;
    }
    let mut header = [0u8; 4];
    if stream.read_exact(&mut header).await.is_ok() {
        let len =
            usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
        let mut verdict = vec![0u8; len.min(MAX_GREETING_LEN)];
        if stream.read_exact(&mut verdict).await.is_ok() && verdict.first() == Some(&0) {
            // The account exists without a password: leave politely.
            let _ = stream.write_all(&[1, 0, 0, 0, 1]).await;
        }
    }
}

/// Reads a greeting or an ERR packet.
fn parse_first_packet(payload: &[u8]) -> Result<ProbeOutcome, &'static str> {
    match payload.split_first() {
        Some((&PROTOCOL_VERSION_10, rest)) => {
            let end = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or("greeting without a terminated server version")?;
            Ok(ProbeOutcome::Greeting {
                server_version: printable(&rest[..end]),
            })
        }
        Some((&ERR_MARKER, rest)) => {
            let (code, message) = match rest {
                [lo, hi, message @ ..] => (u16::from_le_bytes([*lo, *hi]), message),
                _ => return Err("truncated error packet"),
            };
            // After the handshake an ERR carries '#' and a SQLSTATE; before
            // it usually does not, but skip one if present.
            let message = match message {
                [b'#', _, _, _, _, _, text @ ..] => text,
                text => text,
            };
            Ok(ProbeOutcome::Refused {
                code,
                message: printable(message),
            })
        }
        Some(_) => Err("first packet is neither a protocol 10 greeting nor an error"),
        None => Err("empty first packet"),
    }
}

/// Server-sent bytes as a bounded string fit for a log line.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT_CHARS)
        .collect()
}

/// Probes `address` every `interval` until shutdown, recording each result
/// in `state` (which also sets `sluice_backend_up`). Logs when the
/// backend's state changes: up, refusing (ERR packet), or down.
pub async fn probe_backend(
    address: String,
    interval: Duration,
    connect_timeout: Duration,
    state: HttpState,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval.max(MIN_INTERVAL));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last: Option<Summary> = None;
    loop {
        tokio::select! {
            () = shutdown::requested(&mut shutdown) => return,
            _ = ticker.tick() => {}
        }
        let result = tokio::select! {
            () = shutdown::requested(&mut shutdown) => return,
            result = probe_once(&address, connect_timeout) => result,
        };
        state.backend_probe_result(result.is_ok());
        let summary = Summary::of(&result);
        if last != Some(summary) {
            log_change(&address, &result, last.is_none());
            last = Some(summary);
        }
    }
}

/// A probe result without its details, to log only changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Summary {
    Up,
    Refused(u16),
    Down,
}

impl Summary {
    fn of(result: &Result<ProbeOutcome, ProbeError>) -> Self {
        match result {
            Ok(ProbeOutcome::Greeting { .. }) => Summary::Up,
            Ok(ProbeOutcome::Refused { code, .. }) => Summary::Refused(*code),
            Err(_) => Summary::Down,
        }
    }
}

fn log_change(address: &str, result: &Result<ProbeOutcome, ProbeError>, first: bool) {
    match result {
        Ok(ProbeOutcome::Greeting { server_version }) if first => {
            tracing::info!(backend = address, server_version, "backend reachable");
        }
        Ok(ProbeOutcome::Greeting { server_version }) => {
            tracing::info!(backend = address, server_version, "backend reachable again");
        }
        Ok(ProbeOutcome::Refused { code, message }) => {
            tracing::warn!(
                backend = address,
                code,
                message,
                "backend answers but refuses connections from this host"
            );
        }
        Err(error) => tracing::warn!(backend = address, %error, "backend unreachable"),
    }
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
