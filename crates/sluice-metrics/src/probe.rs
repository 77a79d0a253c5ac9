//! Backend health: connect, read the server's greeting and end the login.
//!
//! Without credentials the probe answers the greeting with a login that
//! the server refuses (a connection closed in the middle of the handshake
//! would count toward `max_connect_errors`; see `docs/operations.md`). With
//! a monitor account it logs in for real, runs `SELECT 1` and quits, so a
//! server that accepts connections but cannot serve them counts as down.

use std::time::Duration;

use sha1::{Digest, Sha1};
use sluice_protocol::caps::SessionCaps;
use sluice_protocol::command::{code, response_shape};
use sluice_protocol::handshake::throwaway_login;
use sluice_protocol::lenenc::Reader;
use sluice_protocol::ok::{ErrInfo, EOF_HEADER, ERR_HEADER, OK_HEADER};
use sluice_protocol::packet::{encode_packet, HEADER_LEN};
use sluice_protocol::response::{Event, Next, ResponseTracker};
use sluice_protocol::{CapabilityFlags, MariadbCapabilities, ProtocolError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::shutdown;
use crate::state::HttpState;

/// Protocol version byte that starts a MySQL/MariaDB greeting.
const PROTOCOL_VERSION_10: u8 = 10;
/// Larger packets are not what a probe expects (a greeting is ~100 bytes,
/// the whole answer to `SELECT 1` a few hundred).
const MAX_PACKET_LEN: usize = 16 * 1024;
/// Shortest interval the probe task accepts.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Most characters kept of texts the server sends.
const MAX_TEXT_CHARS: usize = 200;
/// The only authentication method the monitor login speaks.
const NATIVE_PASSWORD: &[u8] = b"mysql_native_password";
/// Length of the nonce `mysql_native_password` hashes.
const NONCE_LEN: usize = 20;
/// What a pre-4.1 auth switch request (a lone 0xFE) asks for.
const OLD_PASSWORD: &[u8] = b"mysql_old_password";
/// The statement the monitor login runs.
const MONITOR_QUERY: &[u8] = b"SELECT 1";
/// Capabilities of the monitor login: the 4.1 protocol with a hashed
/// password and a named auth plugin, nothing that changes the framing
/// (no TLS, no compression, EOF packets kept).
const MONITOR_CAPS: CapabilityFlags = CapabilityFlags::CLIENT_PROTOCOL_41
    .union(CapabilityFlags::CLIENT_SECURE_CONNECTION)
    .union(CapabilityFlags::CLIENT_PLUGIN_AUTH);
/// Collation announced in the monitor login (utf8mb4_general_ci).
const MONITOR_COLLATION: u8 = 45;

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
        detail: &'static str,
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
    /// The monitor user logged in but `SELECT 1` failed.
    #[error("SELECT 1 as monitor user '{user}' failed: error {code}: {message}")]
    QueryFailed {
        /// The monitor user.
        user: String,
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

/// The account the probe logs in with to run `SELECT 1`. Its `Debug` form
/// shows the user, never the password.
#[derive(Clone)]
pub struct MonitorLogin {
    user: String,
    password: String,
}

impl MonitorLogin {
    /// Credentials of `user`; an empty `password` logs in without one.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        MonitorLogin {
            user: user.into(),
            password: password.into(),
        }
    }

    /// The account name.
    pub fn user(&self) -> &str {
        &self.user
    }
}

impl std::fmt::Debug for MonitorLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorLogin")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// How the probe task runs.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// The backend, `host:port` (names resolved at each probe).
    pub address: String,
    /// Time between the starts of two probes.
    pub interval: Duration,
    /// Bound on one whole probe, connect included.
    pub timeout: Duration,
    /// Log in with this account and run `SELECT 1`; `None`: end the login
    /// with a refused attempt and count a greeting as up.
    pub monitor: Option<MonitorLogin>,
}

/// Connects to `address` (`host:port`, names resolved now), reads the
/// first packet, ends the handshake with a login that the server refuses
/// and closes, all within `timeout`.
pub async fn probe_once(address: &str, timeout: Duration) -> Result<ProbeOutcome, ProbeError> {
    within(address, timeout, probe_greeting(address)).await
}

/// Connects to `address`, logs in as `monitor`, runs `SELECT 1`, reads its
/// result to the end and quits, all within `timeout`. Any refusal or
/// failure along the way is an error.
pub async fn probe_as(
    address: &str,
    timeout: Duration,
    monitor: &MonitorLogin,
) -> Result<ProbeOutcome, ProbeError> {
    within(address, timeout, probe_monitor(address, monitor)).await
}

async fn within(
    address: &str,
    timeout: Duration,
    probe: impl std::future::Future<Output = Result<ProbeOutcome, ProbeError>>,
) -> Result<ProbeOutcome, ProbeError> {
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
        finish_login_attempt(&mut stream).await;
    }
    Ok(outcome)
}

async fn probe_monitor(address: &str, monitor: &MonitorLogin) -> Result<ProbeOutcome, ProbeError> {
    let (stream, payload) = open(address).await?;
    let server_version =
        match parse_first_packet(&payload).map_err(|detail| not_mysql(address, detail))? {
            ProbeOutcome::Refused { code, message } => {
                return Err(ProbeError::Refused {
                    address: address.to_owned(),
                    code,
                    message,
                })
            }
            ProbeOutcome::Greeting { server_version }
            | ProbeOutcome::Answered { server_version } => server_version,
        };
    let nonce = greeting_nonce(&payload).map_err(|detail| not_mysql(address, detail))?;
    let mut session = MonitorSession {
        stream,
        address,
        monitor,
    };
    session.log_in(&nonce).await?;
    let answer = session.select_one().await;
    session.quit().await;
    answer.map(|()| ProbeOutcome::Answered { server_version })
}

fn not_mysql(address: &str, detail: &'static str) -> ProbeError {
    ProbeError::NotMySql {
        address: address.to_owned(),
        detail,
    }
}

/// Opens the connection and reads the server's first packet.
async fn open(address: &str) -> Result<(TcpStream, Vec<u8>), ProbeError> {
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

fn payload_len(header: &[u8; HEADER_LEN]) -> usize {
    usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16
}

/// User name of the probe's login attempt; no such account needs to exist.
const PROBE_USER: &[u8] = b"sluice_probe";

/// Answers the greeting with a login for an account that need not exist,
/// and reads the server's verdict. A connection closed in the middle of
/// the handshake counts toward the server's `max_connect_errors`, which
/// blocks the host after 100 of them; a refused login does not.
async fn finish_login_attempt(stream: &mut TcpStream) {
    let mut packet = Vec::with_capacity(64);
    encode_packet(&mut packet, 1, &throwaway_login(PROBE_USER));
    if stream.write_all(&packet).await.is_err() {
        return;
    }
    let mut header = [0u8; HEADER_LEN];
    if stream.read_exact(&mut header).await.is_ok() {
        let len = payload_len(&header);
        let mut verdict = vec![0u8; len.min(MAX_PACKET_LEN)];
        if stream.read_exact(&mut verdict).await.is_ok() && verdict.first() == Some(&OK_HEADER) {
            // The account exists without a password: leave politely.
            let _ = stream.write_all(&[1, 0, 0, 0, code::QUIT]).await;
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
        Some((&ERR_HEADER, _)) => {
            // Before the handshake an ERR usually has no SQLSTATE;
            // ErrInfo takes it either way.
            let err = ErrInfo::parse(payload).map_err(|_| "truncated error packet")?;
            Ok(ProbeOutcome::Refused {
                code: err.code,
                message: printable(err.message),
            })
        }
        Some(_) => Err("first packet is neither a protocol 10 greeting nor an error"),
        None => Err("empty first packet"),
    }
}

/// The nonce `mysql_native_password` hashes, from a protocol 10 greeting;
/// refuses a server that offers no plugin authentication (pre-5.5), whose
/// login the monitor does not speak.
fn greeting_nonce(payload: &[u8]) -> Result<[u8; NONCE_LEN], &'static str> {
    let parsed = || -> Result<Result<[u8; NONCE_LEN], &'static str>, ProtocolError> {
        let mut r = Reader::new(payload, "server greeting");
        r.u8()?; // protocol version
        r.nul_bytes()?; // server version
        r.u32()?; // connection id
        let first = r.take(8)?;
        r.u8()?; // filler
        let caps_lower = r.u16()?;
        r.u8()?; // collation
        r.u16()?; // status
        let caps_upper = r.u16()?;
        let caps =
            CapabilityFlags::from_bits_retain(u32::from(caps_lower) | u32::from(caps_upper) << 16);
        if !caps.contains(MONITOR_CAPS) {
            return Ok(Err("the server offers no plugin authentication"));
        }
        let auth_len = r.u8()?;
        r.take(10)?; // reserved (MariaDB: its extended capabilities)
                     // The second part is at least 13 bytes and ends in a NUL.
        let second = r.take(usize::from(auth_len).saturating_sub(8).max(13))?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..8].copy_from_slice(first);
        match second.get(..NONCE_LEN - 8) {
            Some(rest) => nonce[8..].copy_from_slice(rest),
            None => return Ok(Err("greeting with a short nonce")),
        }
        Ok(Ok(nonce))
    };
    parsed().unwrap_or(Err("truncated greeting"))
}

/// `SHA1(SHA1(password))`: what the server stores for a
/// `mysql_native_password` account (`PASSWORD()` prints it in hex after a
/// `*`).
fn double_sha1(password: &[u8]) -> [u8; 20] {
    Sha1::digest(Sha1::digest(password)).into()
}

/// The `mysql_native_password` answer to `nonce`:
/// `SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password)))`, or nothing for
/// an empty password (which is how clients log in without one).
fn native_password_scramble(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1: [u8; 20] = Sha1::digest(password).into();
    let key: [u8; 20] = Sha1::new()
        .chain_update(nonce)
        .chain_update(double_sha1(password))
        .finalize()
        .into();
    stage1.iter().zip(key).map(|(a, b)| a ^ b).collect()
}

/// The handshake response of the monitor login. `throwaway_login` has the
/// same layout but no password; this one carries `auth`.
fn monitor_login(user: &[u8], auth: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(64 + user.len() + auth.len());
    payload.extend_from_slice(&MONITOR_CAPS.bits().to_le_bytes());
    payload.extend_from_slice(&(1u32 << 24).to_le_bytes()); // max packet size
    payload.push(MONITOR_COLLATION);
    payload.extend_from_slice(&[0u8; 23]);
    payload.extend_from_slice(user);
    payload.push(0);
    // Scrambles are 20 bytes; the length always fits one byte.
    payload.push(u8::try_from(auth.len()).unwrap_or(u8::MAX));
    payload.extend_from_slice(auth);
    payload.extend_from_slice(NATIVE_PASSWORD);
    payload.push(0);
    payload
}

/// The plugin an auth switch request (payload after the 0xFE) names, and
/// the data it carries for it.
fn auth_switch(rest: &[u8]) -> (&[u8], &[u8]) {
    if rest.is_empty() {
        return (OLD_PASSWORD, rest);
    }
    match rest.iter().position(|&b| b == 0) {
        Some(end) => (&rest[..end], &rest[end + 1..]),
        None => (rest, &[]),
    }
}

/// A connection after the greeting, logging in as the monitor user.
struct MonitorSession<'a> {
    stream: TcpStream,
    address: &'a str,
    monitor: &'a MonitorLogin,
}

impl MonitorSession<'_> {
    fn lost(&self, during: &'static str) -> impl FnOnce(std::io::Error) -> ProbeError + '_ {
        move |source| ProbeError::Lost {
            address: self.address.to_owned(),
            during,
            source,
        }
    }

    fn unexpected(&self, detail: &'static str) -> ProbeError {
        ProbeError::Unexpected {
            address: self.address.to_owned(),
            detail,
        }
    }

    async fn read_packet(&mut self, during: &'static str) -> Result<(u8, Vec<u8>), ProbeError> {
        let mut header = [0u8; HEADER_LEN];
        let result = self.stream.read_exact(&mut header).await;
        result.map_err(self.lost(during))?;
        let len = payload_len(&header);
        if len > MAX_PACKET_LEN {
            return Err(self.unexpected("a packet far larger than expected"));
        }
        let mut payload = vec![0u8; len];
        let result = self.stream.read_exact(&mut payload).await;
        result.map_err(self.lost(during))?;
        Ok((header[3], payload))
    }

    async fn write_packet(
        &mut self,
        seq: u8,
        payload: &[u8],
        during: &'static str,
    ) -> Result<(), ProbeError> {
        let mut packet = Vec::with_capacity(HEADER_LEN + payload.len());
        encode_packet(&mut packet, seq, payload);
        let result = self.stream.write_all(&packet).await;
        result.map_err(self.lost(during))
    }

    fn err_of(&self, payload: &[u8]) -> Result<(u16, String), ProbeError> {
        ErrInfo::parse(payload)
            .map(|err| (err.code, printable(err.message)))
            .map_err(|_| self.unexpected("a truncated error packet"))
    }

    /// Sends the handshake response and follows the server's answer to an
    /// OK, through at most one auth switch.
    async fn log_in(&mut self, nonce: &[u8]) -> Result<(), ProbeError> {
        const DURING: &str = "the monitor login";
        let password = self.monitor.password.as_bytes();
        let login = monitor_login(
            self.monitor.user.as_bytes(),
            &native_password_scramble(password, nonce),
        );
        self.write_packet(1, &login, DURING).await?;
        let mut switched = false;
        loop {
            let (seq, reply) = self.read_packet(DURING).await?;
            match reply.split_first() {
                Some((&OK_HEADER, _)) => return Ok(()),
                Some((&ERR_HEADER, _)) => {
                    let (code, message) = self.err_of(&reply)?;
                    return Err(ProbeError::LoginRefused {
                        user: self.monitor.user.clone(),
                        code,
                        message,
                    });
                }
                Some((&EOF_HEADER, rest)) if !switched => {
                    switched = true;
                    let (plugin, data) = auth_switch(rest);
                    if plugin == NATIVE_PASSWORD && data.len() >= NONCE_LEN {
                        let auth = native_password_scramble(password, &data[..NONCE_LEN]);
                        self.write_packet(seq.wrapping_add(1), &auth, DURING)
                            .await?;
                        continue;
                    }
                    let plugin = printable(plugin);
                    self.decline_switch(seq).await;
                    return Err(ProbeError::UnsupportedAuth {
                        user: self.monitor.user.clone(),
                        plugin,
                    });
                }
                _ => return Err(self.unexpected("neither OK, error nor an auth switch")),
            }
        }
    }

    /// Answers an auth switch the probe cannot follow with empty data, so
    /// that the server ends the exchange with a refused login: hanging up
    /// instead would count as a handshake error of Sluice's host.
    async fn decline_switch(&mut self, seq: u8) {
        const DURING: &str = "the monitor login";
        if self
            .write_packet(seq.wrapping_add(1), &[], DURING)
            .await
            .is_ok()
        {
            // Whatever the verdict, the probe has failed; an OK (an
            // account without a password) is left with the COM_QUIT that
            // follows.
            let _ = self.read_packet(DURING).await;
        }
    }

    /// Runs `SELECT 1` and reads its result to the end.
    async fn select_one(&mut self) -> Result<(), ProbeError> {
        const DURING: &str = "SELECT 1";
        let mut query = Vec::with_capacity(1 + MONITOR_QUERY.len());
        query.push(code::QUERY);
        query.extend_from_slice(MONITOR_QUERY);
        self.write_packet(0, &query, DURING).await?;
        let caps = SessionCaps {
            flags: MONITOR_CAPS,
            mariadb: MariadbCapabilities::empty(),
        };
        let mut tracker = ResponseTracker::new(response_shape(code::QUERY), caps);
        let mut rows = 0usize;
        loop {
            let (_, packet) = self.read_packet(DURING).await?;
            let observed = tracker
                .on_packet(&packet, packet.len())
                .map_err(|_| self.unexpected("a malformed answer to SELECT 1"))?;
            match observed.event {
                Event::Err => {
                    let (code, message) = self.err_of(&packet)?;
                    return Err(ProbeError::QueryFailed {
                        user: self.monitor.user.clone(),
                        code,
                        message,
                    });
                }
                Event::Row => rows += 1,
                _ => {}
            }
            match observed.next {
                Next::Done => break,
                Next::ServerPacket => {}
                Next::ClientFile | Next::ClientAuth | Next::Stream => {
                    return Err(self.unexpected("SELECT 1 answered with a request"));
                }
            }
        }
        if rows == 1 {
            Ok(())
        } else {
            Err(self.unexpected("SELECT 1 did not return one row"))
        }
    }

    /// Sends COM_QUIT, so that the server counts a clean disconnect.
    async fn quit(&mut self) {
        let _ = self.write_packet(0, &[code::QUIT], "quit").await;
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

/// Probes the backend every `settings.interval` until shutdown, recording
/// each result in `state` (which also sets `sluice_backend_up`). Logs when
/// the backend's state changes: up, refusing (ERR packet), or down (each
/// kind of failure, and each error code, once).
pub async fn probe_backend(
    settings: ProbeSettings,
    state: HttpState,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(settings.interval.max(MIN_INTERVAL));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let address = settings.address.as_str();
    let mut last: Option<Summary> = None;
    loop {
        tokio::select! {
            () = shutdown::requested(&mut shutdown) => return,
            _ = ticker.tick() => {}
        }
        let probe = async {
            match &settings.monitor {
                Some(monitor) => probe_as(address, settings.timeout, monitor).await,
                None => probe_once(address, settings.timeout).await,
            }
        };
        let result = tokio::select! {
            () = shutdown::requested(&mut shutdown) => return,
            result = probe => result,
        };
        match &result {
            Ok(_) => state.backend_probe_result(true),
            Err(error) => state.backend_probe_failed(error.to_string()),
        }
        let summary = Summary::of(&result);
        if last != Some(summary) {
            log_change(address, &result, last.is_none());
            last = Some(summary);
        }
    }
}

/// A probe result without its details, to log only changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Summary {
    Up,
    Refused(u16),
    Down(std::mem::Discriminant<ProbeError>, Option<u16>),
}

impl Summary {
    fn of(result: &Result<ProbeOutcome, ProbeError>) -> Self {
        match result {
            Ok(ProbeOutcome::Greeting { .. } | ProbeOutcome::Answered { .. }) => Summary::Up,
            Ok(ProbeOutcome::Refused { code, .. }) => Summary::Refused(*code),
            Err(error) => Summary::Down(std::mem::discriminant(error), error.code()),
        }
    }
}

fn log_change(address: &str, result: &Result<ProbeOutcome, ProbeError>, first: bool) {
    let again = if first { "" } else { " again" };
    match result {
        Ok(ProbeOutcome::Greeting { server_version }) => {
            tracing::info!(
                backend = address,
                server_version,
                "backend reachable{again}"
            );
        }
        Ok(ProbeOutcome::Answered { server_version }) => {
            tracing::info!(
                backend = address,
                server_version,
                "backend reachable{again}: monitor login and SELECT 1 succeed"
            );
        }
        Ok(ProbeOutcome::Refused { code, message }) => {
            tracing::warn!(
                backend = address,
                code,
                message,
                "backend answers but refuses connections from this host"
            );
        }
        Err(error) => {
            tracing::warn!(backend = address, code = error.code(), %error, "backend down");
        }
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

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02X}")).collect()
    }

    #[test]
    fn double_sha1_matches_the_servers_password_hash() {
        // MariaDB: SELECT PASSWORD('x'), PASSWORD('sluice')
        assert_eq!(
            hex(&double_sha1(b"x")),
            "B69027D44F6E5EDC07F1AEAD1477967B16F28227"
        );
        assert_eq!(
            hex(&double_sha1(b"sluice")),
            "E1A533DFBBC741EF7FDFD2867424D21725604A91"
        );
    }

    #[test]
    fn scramble_passes_the_servers_check() {
        // The server knows only SHA1(SHA1(password)) and accepts the
        // scramble when SHA1(scramble XOR SHA1(nonce + stored)) == stored.
        let nonce = *b"abcdefghij0123456789";
        let stored = double_sha1(b"x");
        let scramble = native_password_scramble(b"x", &nonce);
        assert_eq!(scramble.len(), 20);
        let key = Sha1::new()
            .chain_update(nonce)
            .chain_update(stored)
            .finalize();
        let stage1: Vec<u8> = scramble.iter().zip(key).map(|(a, b)| a ^ b).collect();
        assert_eq!(<[u8; 20]>::from(Sha1::digest(&stage1)), stored);
        assert_ne!(native_password_scramble(b"y", &nonce), scramble);
        assert_ne!(
            native_password_scramble(b"x", b"another nonce, 20 b"),
            scramble
        );
        assert!(native_password_scramble(b"", &nonce).is_empty());
    }

    /// A greeting as MariaDB sends it, with `nonce`.
    fn greeting_with(nonce: &[u8; 20], caps: u32) -> Vec<u8> {
        let mut p = vec![10];
        p.extend_from_slice(b"11.4.2-MariaDB\0");
        p.extend_from_slice(&7u32.to_le_bytes());
        p.extend_from_slice(&nonce[..8]);
        p.push(0);
        p.extend_from_slice(&caps.to_le_bytes()[..2]);
        p.push(45);
        p.extend_from_slice(&2u16.to_le_bytes());
        p.extend_from_slice(&caps.to_le_bytes()[2..]);
        p.push(21);
        p.extend_from_slice(&[0; 10]);
        p.extend_from_slice(&nonce[8..]);
        p.push(0);
        p.extend_from_slice(b"mysql_native_password\0");
        p
    }

    #[test]
    fn reads_the_nonce_of_a_greeting() {
        let nonce = *b"ABCDEFGHijklmnopqrst";
        let caps = 0xF7FE | 0x0008_0000 | 0x0020_0000;
        assert_eq!(greeting_nonce(&greeting_with(&nonce, caps)), Ok(nonce));
        let old = greeting_with(&nonce, 0xF7FE);
        assert!(greeting_nonce(&old).is_err(), "no CLIENT_PLUGIN_AUTH");
        let full = greeting_with(&nonce, caps);
        for cut in [5, 20, 40, 45, 55] {
            assert!(greeting_nonce(&full[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn login_carries_user_scramble_and_plugin() {
        let payload = monitor_login(b"mon", &[7; 20]);
        let caps = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
        assert_eq!(caps, MONITOR_CAPS.bits());
        assert_eq!(&payload[32..36], b"mon\0");
        assert_eq!(payload[36], 20);
        assert_eq!(&payload[37..57], &[7; 20]);
        assert_eq!(&payload[57..], b"mysql_native_password\0");
        // Without a password it is exactly the throwaway login's layout.
        assert_eq!(monitor_login(b"mon", &[]), throwaway_login(b"mon"));
    }

    #[test]
    fn auth_switch_names_plugin_and_data() {
        assert_eq!(
            auth_switch(b"mysql_native_password\0abc\0"),
            (&b"mysql_native_password"[..], &b"abc\0"[..])
        );
        assert_eq!(auth_switch(b""), (OLD_PASSWORD, &b""[..]));
        assert_eq!(
            auth_switch(b"client_ed25519"),
            (&b"client_ed25519"[..], &b""[..])
        );
    }

    #[test]
    fn monitor_login_debug_hides_the_password() {
        let login = MonitorLogin::new("mon", "hunter2");
        let printed = format!("{login:?}");
        assert!(printed.contains("mon"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}
