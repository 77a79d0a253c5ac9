//! The monitor-user probe: log in with `mysql_native_password` (following
//! at most one auth switch), run `SELECT 1` (or, for a cluster, read the
//! node's role) and quit.
//!
//! Kept apart from the greeting probe because only this path handles a
//! password and holds a session open. It reuses the parent's connect,
//! first-packet and timeout helpers so that a server which is not MySQL, or
//! does not answer in time, fails both probes alike.

use std::time::Duration;

use sha1::{Digest, Sha1};
use sluice_protocol::caps::SessionCaps;
use sluice_protocol::command::{code, response_shape};
use sluice_protocol::connect::{self, NONCE_LEN};
use sluice_protocol::lenenc::Reader;
use sluice_protocol::ok::{ErrInfo, EOF_HEADER, ERR_HEADER, OK_HEADER};
use sluice_protocol::packet::{encode_packet, HEADER_LEN};
use sluice_protocol::response::{Event, Next, ResponseTracker};
use sluice_protocol::{CapabilityFlags, MariadbCapabilities};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    not_mysql, open, parse_first_packet, payload_len, printable, within, ProbeError, ProbeOutcome,
    ProbeStream, MAX_PACKET_LEN,
};

/// The only authentication method the monitor login speaks.
const NATIVE_PASSWORD: &[u8] = b"mysql_native_password";
/// What a pre-4.1 auth switch request (a lone 0xFE) asks for.
const OLD_PASSWORD: &[u8] = b"mysql_old_password";
/// The statement the monitor login runs.
const MONITOR_QUERY: &str = "SELECT 1";
/// The statement that reads what makes a node a writer. Any account may
/// read these; on a server without Galera the two status values are NULL
/// and OFF.
const ROLE_QUERY: &str = "SELECT @@global.read_only, \
     (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
      WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE'), \
     (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
      WHERE VARIABLE_NAME = 'WSREP_READY')";
/// Capabilities of the monitor login: the 4.1 protocol with a hashed
/// password and a named auth plugin, nothing that changes the framing
/// (no TLS, no compression, EOF packets kept).
const MONITOR_CAPS: CapabilityFlags = CapabilityFlags::CLIENT_PROTOCOL_41
    .union(CapabilityFlags::CLIENT_SECURE_CONNECTION)
    .union(CapabilityFlags::CLIENT_PLUGIN_AUTH);
/// Collation announced in the monitor login (utf8mb4_general_ci).
const MONITOR_COLLATION: u8 = 45;

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

/// Like [`probe_as`], but reads the node's role (read-only, Galera state)
/// instead of running `SELECT 1`.
pub async fn probe_role_as(
    address: &str,
    timeout: Duration,
    monitor: &MonitorLogin,
) -> Result<(ProbeOutcome, NodeRole), ProbeError> {
    let probe = async {
        let mut session = MonitorSession::open(address, monitor).await?;
        let row = session.query_row(ROLE_QUERY).await;
        session.quit().await;
        let role = NodeRole::from_row(&row?)
            .map_err(|detail| not_mysql(address, format!("role query: {detail}")))?;
        Ok((session.answered(), role))
    };
    within(address, timeout, probe).await
}

/// What the monitor login read about a node's fitness to take writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeRole {
    /// `@@global.read_only`.
    pub read_only: bool,
    /// Galera's `wsrep_local_state` (4 = Synced); `None` without Galera.
    pub wsrep_local_state: Option<u8>,
    /// Galera's `wsrep_ready`.
    pub wsrep_ready: bool,
}

impl NodeRole {
    /// Reads the row of [`ROLE_QUERY`].
    fn from_row(row: &[Option<String>]) -> Result<NodeRole, String> {
        let [read_only, state, ready] = row else {
            return Err(format!("{} columns instead of 3", row.len()));
        };
        let read_only = match read_only.as_deref() {
            Some("0") => false,
            Some("1") => true,
            other => return Err(format!("read_only is {other:?}")),
        };
        let wsrep_local_state = match state.as_deref() {
            None | Some("") => None,
            Some(text) => Some(
                text.parse::<u8>()
                    .map_err(|_| format!("wsrep_local_state is {text:?}"))?,
            ),
        };
        let wsrep_ready = ready
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case("ON"));
        Ok(NodeRole {
            read_only,
            wsrep_local_state,
            wsrep_ready,
        })
    }
}

async fn probe_monitor(address: &str, monitor: &MonitorLogin) -> Result<ProbeOutcome, ProbeError> {
    let mut session = MonitorSession::open(address, monitor).await?;
    let answer = session.select_one().await;
    session.quit().await;
    answer.map(|()| session.answered())
}

impl<'a> MonitorSession<'a> {
    /// Connects, reads the greeting and logs in.
    async fn open(address: &'a str, monitor: &'a MonitorLogin) -> Result<Self, ProbeError> {
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
            server_version,
        };
        session.log_in(&nonce).await?;
        Ok(session)
    }

    fn answered(self) -> ProbeOutcome {
        ProbeOutcome::Answered {
            server_version: self.server_version,
        }
    }
}

/// The nonce `mysql_native_password` hashes, from a protocol 10 greeting;
/// refuses a server that offers no plugin authentication (pre-5.5), whose
/// login the monitor does not speak.
fn greeting_nonce(payload: &[u8]) -> Result<[u8; NONCE_LEN], String> {
    let (offered, nonce) = connect::greeting_nonce(payload).map_err(|e| e.to_string())?;
    if !offered.contains(MONITOR_CAPS) {
        return Err("the server offers no plugin authentication".to_string());
    }
    Ok(nonce)
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

/// The fields of a text-protocol row, NULL as `None`; `None` when the
/// packet is malformed.
fn text_row(payload: &[u8]) -> Option<Vec<Option<String>>> {
    /// How a text row marks a NULL field.
    const NULL_FIELD: u8 = 0xFB;
    let mut reader = Reader::new(payload, "row");
    let mut fields = Vec::new();
    while !reader.is_empty() {
        if reader.rest().first() == Some(&NULL_FIELD) {
            reader.u8().ok()?;
            fields.push(None);
        } else {
            fields.push(Some(printable(reader.lenenc_bytes().ok()?)));
        }
    }
    Some(fields)
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
    stream: Box<dyn ProbeStream>,
    address: &'a str,
    monitor: &'a MonitorLogin,
    server_version: String,
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
        self.query_row(MONITOR_QUERY).await.map(drop)
    }

    /// Runs `sql`, reads its result to the end and returns the one row it
    /// must return (NULL as `None`).
    async fn query_row(&mut self, sql: &'static str) -> Result<Vec<Option<String>>, ProbeError> {
        let during = sql;
        let mut query = Vec::with_capacity(1 + sql.len());
        query.push(code::QUERY);
        query.extend_from_slice(sql.as_bytes());
        self.write_packet(0, &query, during).await?;
        let caps = SessionCaps {
            flags: MONITOR_CAPS,
            mariadb: MariadbCapabilities::empty(),
        };
        let mut tracker = ResponseTracker::new(response_shape(code::QUERY), caps);
        let mut rows = Vec::new();
        loop {
            let (_, packet) = self.read_packet(during).await?;
            let observed = tracker
                .on_packet(&packet, packet.len())
                .map_err(|_| self.unexpected("a malformed answer to its query"))?;
            match observed.event {
                Event::Err => {
                    let (code, message) = self.err_of(&packet)?;
                    return Err(ProbeError::QueryFailed {
                        user: self.monitor.user.clone(),
                        query: sql,
                        code,
                        message,
                    });
                }
                Event::Row => {
                    rows.push(text_row(&packet).ok_or_else(|| self.unexpected("a malformed row"))?)
                }
                _ => {}
            }
            match observed.next {
                Next::Done => break,
                Next::ServerPacket => {}
                Next::ClientFile | Next::ClientAuth | Next::Stream => {
                    return Err(self.unexpected("its query answered with a request"));
                }
            }
        }
        match <[_; 1]>::try_from(rows) {
            Ok([row]) => Ok(row),
            Err(_) => Err(self.unexpected("its query did not return one row")),
        }
    }

    /// Sends COM_QUIT, so that the server counts a clean disconnect.
    async fn quit(&mut self) {
        let _ = self.write_packet(0, &[code::QUIT], "quit").await;
    }
}

#[cfg(test)]
mod tests {
    use sluice_protocol::connect::throwaway_login;

    use super::*;

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
    fn text_rows_read_null_and_values() {
        let mut row = vec![1, b'0', 0xFB, 2];
        row.extend_from_slice(b"ON");
        assert_eq!(
            text_row(&row),
            Some(vec![Some("0".into()), None, Some("ON".into())])
        );
        assert_eq!(text_row(&[5, b'a']), None, "truncated field");
    }

    #[test]
    fn node_role_reads_read_only_and_galera_state() {
        let row = |a: Option<&str>, b: Option<&str>, c: Option<&str>| {
            vec![
                a.map(String::from),
                b.map(String::from),
                c.map(String::from),
            ]
        };
        assert_eq!(
            NodeRole::from_row(&row(Some("0"), None, Some("OFF"))),
            Ok(NodeRole {
                read_only: false,
                wsrep_local_state: None,
                wsrep_ready: false
            })
        );
        assert_eq!(
            NodeRole::from_row(&row(Some("1"), Some("4"), Some("ON"))),
            Ok(NodeRole {
                read_only: true,
                wsrep_local_state: Some(4),
                wsrep_ready: true
            })
        );
        assert!(NodeRole::from_row(&row(None, None, None)).is_err());
        assert!(NodeRole::from_row(&row(Some("0"), Some("x"), None)).is_err());
        assert!(NodeRole::from_row(&[Some("0".into())]).is_err());
    }

    #[test]
    fn monitor_login_debug_hides_the_password() {
        let login = MonitorLogin::new("mon", "hunter2");
        let printed = format!("{login:?}");
        assert!(printed.contains("mon"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}
