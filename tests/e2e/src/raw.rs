//! A tiny MySQL/MariaDB protocol client over a plain `TcpStream`.
//!
//! It logs in as a user with an empty password (or any user whose auth
//! plugin accepts an empty response), sends commands as raw bytes and
//! returns every packet of the response exactly as received, so tests can
//! send commands `mysql_async` has no API for (COM_STATISTICS,
//! COM_FIELD_LIST, COM_STMT_FETCH, COM_STMT_BULK_EXECUTE, ...) and compare
//! response bytes through Sluice with those straight from MariaDB.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Capability flags (lower 32 bits) and MariaDB extended ones (upper 32).
pub mod caps {
    pub const LONG_PASSWORD: u64 = 1; // also CLIENT_MYSQL: clear it to use MariaDB extensions
    pub const FOUND_ROWS: u64 = 2;
    pub const LONG_FLAG: u64 = 4;
    pub const CONNECT_WITH_DB: u64 = 8;
    pub const LOCAL_FILES: u64 = 128;
    pub const PROTOCOL_41: u64 = 512;
    pub const SSL: u64 = 2048;
    pub const TRANSACTIONS: u64 = 8192;
    pub const SECURE_CONNECTION: u64 = 32768;
    pub const MULTI_STATEMENTS: u64 = 1 << 16;
    pub const MULTI_RESULTS: u64 = 1 << 17;
    pub const PS_MULTI_RESULTS: u64 = 1 << 18;
    pub const PLUGIN_AUTH: u64 = 1 << 19;
    pub const CONNECT_ATTRS: u64 = 1 << 20;
    pub const PLUGIN_AUTH_LENENC_CLIENT_DATA: u64 = 1 << 21;
    pub const SESSION_TRACK: u64 = 1 << 23;
    pub const DEPRECATE_EOF: u64 = 1 << 24;
    pub const MARIADB_PROGRESS: u64 = 1 << 32;
    pub const MARIADB_STMT_BULK_OPERATIONS: u64 = 1 << 34;
    pub const MARIADB_EXTENDED_TYPE_INFO: u64 = 1 << 35;

    /// What [`super::RawConn::connect`] asks for by default (EOF packets kept,
    /// bulk operations on).
    pub const DEFAULT: u64 = FOUND_ROWS
        | LONG_FLAG
        | PROTOCOL_41
        | TRANSACTIONS
        | SECURE_CONNECTION
        | MULTI_STATEMENTS
        | MULTI_RESULTS
        | PS_MULTI_RESULTS
        | PLUGIN_AUTH
        | PLUGIN_AUTH_LENENC_CLIENT_DATA
        | MARIADB_STMT_BULK_OPERATIONS;
}

/// Server status flags.
pub mod status {
    pub const IN_TRANS: u16 = 0x0001;
    pub const AUTOCOMMIT: u16 = 0x0002;
    pub const MORE_RESULTS_EXISTS: u16 = 0x0008;
    pub const CURSOR_EXISTS: u16 = 0x0040;
    pub const LAST_ROW_SENT: u16 = 0x0080;
}

/// Command bytes.
pub mod cmd {
    pub const QUIT: u8 = 0x01;
    pub const INIT_DB: u8 = 0x02;
    pub const QUERY: u8 = 0x03;
    pub const FIELD_LIST: u8 = 0x04;
    pub const STATISTICS: u8 = 0x09;
    pub const PROCESS_KILL: u8 = 0x0c;
    pub const PING: u8 = 0x0e;
    pub const CHANGE_USER: u8 = 0x11;
    pub const STMT_PREPARE: u8 = 0x16;
    pub const STMT_EXECUTE: u8 = 0x17;
    pub const STMT_SEND_LONG_DATA: u8 = 0x18;
    pub const STMT_CLOSE: u8 = 0x19;
    pub const STMT_RESET: u8 = 0x1a;
    pub const SET_OPTION: u8 = 0x1b;
    pub const STMT_FETCH: u8 = 0x1c;
    pub const RESET_CONNECTION: u8 = 0x1f;
    pub const STMT_BULK_EXECUTE: u8 = 0xfa;
}

/// Column type bytes used by the tests.
pub mod types {
    pub const LONG: u8 = 0x03;
    pub const LONGLONG: u8 = 0x08;
    pub const VAR_STRING: u8 = 0xfd;
    pub const STRING: u8 = 0xfe;
    pub const BLOB: u8 = 0xfc;
}

/// One logical packet (continuation packets of a >16 MiB payload joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Sequence id of the first physical packet.
    pub seq: u8,
    pub payload: Vec<u8>,
}

impl Packet {
    pub fn is_ok(&self) -> bool {
        self.payload.first() == Some(&0x00)
    }
    pub fn is_err(&self) -> bool {
        self.payload.first() == Some(&0xff)
    }
    /// EOF packet (or an OK packet with the 0xFE header under DEPRECATE_EOF).
    pub fn is_eof(&self) -> bool {
        self.payload.first() == Some(&0xfe) && self.payload.len() < 0xff_ffff
    }
}

/// A parsed ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrPacket {
    pub code: u16,
    pub sqlstate: String,
    pub message: String,
}

/// A parsed OK packet (or EOF: only `warnings` and `status` are set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OkPacket {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
    pub info: Vec<u8>,
}

/// A column definition (the parts the tests need).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub schema: String,
    pub table: String,
    pub name: String,
    pub charset: u16,
    pub length: u32,
    pub column_type: u8,
    pub flags: u16,
    pub decimals: u8,
}

/// The full response to one command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub packets: Vec<Packet>,
}

impl Response {
    /// Wire bytes of the whole response (headers included).
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for p in &self.packets {
            write_packet_bytes(&mut out, p.seq, &p.payload);
        }
        out
    }

    /// The first ERR packet of the response, if any.
    pub fn error(&self) -> Option<ErrPacket> {
        self.packets
            .iter()
            .find(|p| p.is_err())
            .map(|p| parse_err(&p.payload))
    }

    /// The last packet (OK / EOF / ERR that ends the response).
    pub fn last(&self) -> Option<&Packet> {
        self.packets.last()
    }
}

/// A result set read from a response: columns, then rows as raw payloads.
#[derive(Debug, Clone, Default)]
pub struct ResultSet {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<u8>>,
    /// Status flags of the terminating EOF/OK packet.
    pub status: u16,
    pub warnings: u16,
}

/// Server greeting.
#[derive(Debug, Clone)]
pub struct Greeting {
    pub protocol_version: u8,
    pub server_version: String,
    pub connection_id: u32,
    pub scramble: Vec<u8>,
    pub capabilities: u64,
    pub charset: u8,
    pub status: u16,
    pub auth_plugin: String,
    /// The greeting's payload as received.
    pub raw: Vec<u8>,
}

/// Options for [`RawConn::connect_with`].
#[derive(Debug, Clone)]
pub struct RawOpts {
    pub user: String,
    pub database: Option<String>,
    /// Requested capabilities; the client sends `requested & server's`.
    pub capabilities: u64,
    pub charset: u8,
    /// Per-read timeout for responses.
    pub read_timeout: Duration,
    /// Bits the handshake response sets whatever the server offered (the
    /// upper 32 in MariaDB's extended field). They are not counted as in
    /// effect: a server ignores a bit it did not offer.
    pub force_capabilities: u64,
}

impl Default for RawOpts {
    fn default() -> Self {
        RawOpts {
            user: "root".to_string(),
            database: None,
            capabilities: caps::DEFAULT,
            charset: 45, // utf8mb4_general_ci
            read_timeout: Duration::from_secs(30),
            force_capabilities: 0,
        }
    }
}

/// A logged-in raw protocol connection.
pub struct RawConn {
    stream: TcpStream,
    pub greeting: Greeting,
    /// Capabilities in effect (client's & server's).
    pub capabilities: u64,
    /// The OK packet that ended the login.
    pub login_ok: Packet,
    read_timeout: Duration,
}

impl RawConn {
    /// Logs in as root with an empty password.
    pub async fn connect(addr: SocketAddr) -> Result<RawConn> {
        Self::connect_with(addr, RawOpts::default()).await
    }

    /// Logs in with explicit options (empty password).
    pub async fn connect_with(addr: SocketAddr, opts: RawOpts) -> Result<RawConn> {
        let mut stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true)?;
        let greet = tokio::time::timeout(opts.read_timeout, read_packet(&mut stream))
            .await
            .context("timeout reading greeting")??;
        if greet.is_err() {
            let e = parse_err_no_state(&greet.payload);
            bail!("server refused connection: {} {}", e.code, e.message);
        }
        let greeting = parse_greeting(&greet.payload)?;
        let capabilities = negotiate(opts.capabilities, greeting.capabilities, &opts);
        let response = handshake_response(&opts, capabilities | opts.force_capabilities);
        write_packet(&mut stream, 1, &response).await?;
        let mut conn = RawConn {
            stream,
            greeting,
            capabilities,
            login_ok: Packet {
                seq: 0,
                payload: Vec::new(),
            },
            read_timeout: opts.read_timeout,
        };
        loop {
            let p = conn.read().await?;
            match p.payload.first() {
                Some(0x00) => {
                    conn.login_ok = p;
                    return Ok(conn);
                }
                Some(0xff) => {
                    let e = parse_err(&p.payload);
                    bail!("login failed: {} ({}) {}", e.code, e.sqlstate, e.message);
                }
                Some(0xfe) => {
                    // Auth switch: answer with an empty response (empty password).
                    let seq = p.seq.wrapping_add(1);
                    write_packet(&mut conn.stream, seq, &[]).await?;
                }
                Some(0x01) => {
                    bail!("auth more-data requested; the raw client only supports empty passwords")
                }
                _ => bail!("unexpected packet during login: {:?}", p.payload),
            }
        }
    }

    /// Whether EOF packets are replaced by OK packets on this connection.
    pub fn deprecate_eof(&self) -> bool {
        self.capabilities & caps::DEPRECATE_EOF != 0
    }

    /// The backend connection id from the greeting.
    pub fn connection_id(&self) -> u32 {
        self.greeting.connection_id
    }

    /// Reads one logical packet (with the per-read timeout).
    pub async fn read(&mut self) -> Result<Packet> {
        tokio::time::timeout(self.read_timeout, read_packet(&mut self.stream))
            .await
            .map_err(|_| anyhow!("timeout reading a packet"))?
    }

    /// Sends a command packet (sequence id 0) with `payload` after the command byte.
    pub async fn send(&mut self, command: u8, payload: &[u8]) -> Result<()> {
        let mut body = Vec::with_capacity(payload.len() + 1);
        body.push(command);
        body.extend_from_slice(payload);
        write_packet(&mut self.stream, 0, &body).await
    }

    /// Writes arbitrary bytes on the socket (for malformed-packet tests).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Waits for the peer to close the connection (EOF or reset) within
    /// `timeout`; returns true if it did, false if data arrived or time ran out.
    pub async fn wait_closed(&mut self, timeout: Duration) -> bool {
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
            }
        }
    }

    /// Reads until the peer closes the connection (EOF or reset) within
    /// `timeout`: the bytes that came before the close, or `None` if the
    /// connection was still open then.
    pub async fn read_until_closed(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let mut buf = [0u8; 4096];
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Sends a command and reads the complete response. Knows the shape of
    /// every command's response; commands without a response return no packets.
    pub async fn command(&mut self, command: u8, payload: &[u8]) -> Result<Response> {
        self.send(command, payload).await?;
        self.read_response(command).await
    }

    /// Reads the response to `command` (already sent).
    pub async fn read_response(&mut self, command: u8) -> Result<Response> {
        let mut packets = Vec::new();
        match command {
            cmd::STMT_CLOSE | cmd::STMT_SEND_LONG_DATA | cmd::QUIT => {}
            cmd::STATISTICS => packets.push(self.read().await?),
            cmd::QUERY | cmd::STMT_EXECUTE | cmd::STMT_BULK_EXECUTE => {
                self.read_results(&mut packets).await?
            }
            cmd::STMT_PREPARE => self.read_prepare(&mut packets).await?,
            cmd::STMT_FETCH => {
                self.read_rows(&mut packets).await?;
            }
            cmd::FIELD_LIST => loop {
                let p = self.read().await?;
                let end = p.is_err() || p.is_eof();
                packets.push(p);
                if end {
                    break;
                }
            },
            _ => packets.push(self.read().await?),
        }
        Ok(Response { packets })
    }

    /// COM_QUERY helper.
    pub async fn query(&mut self, sql: &str) -> Result<Response> {
        self.command(cmd::QUERY, sql.as_bytes()).await
    }

    /// COM_QUERY that must not fail; returns the first result set.
    pub async fn query_rows(&mut self, sql: &str) -> Result<ResultSet> {
        let resp = self.query(sql).await?;
        if let Some(e) = resp.error() {
            bail!("{sql}: error {} {}", e.code, e.message);
        }
        let sets = self.result_sets(&resp)?;
        sets.into_iter()
            .next()
            .ok_or_else(|| anyhow!("{sql}: no result set"))
    }

    /// COM_STMT_PREPARE; returns (statement id, number of columns, number of params).
    pub async fn prepare(&mut self, sql: &str) -> Result<(u32, u16, u16)> {
        let resp = self.command(cmd::STMT_PREPARE, sql.as_bytes()).await?;
        let first = resp
            .packets
            .first()
            .ok_or_else(|| anyhow!("empty prepare response"))?;
        if first.is_err() {
            let e = parse_err(&first.payload);
            bail!("prepare failed: {} {}", e.code, e.message);
        }
        let p = &first.payload;
        ensure!(p.len() >= 12, "short prepare OK");
        let id = u32::from_le_bytes([p[1], p[2], p[3], p[4]]);
        let columns = u16::from_le_bytes([p[5], p[6]]);
        let params = u16::from_le_bytes([p[7], p[8]]);
        Ok((id, columns, params))
    }

    /// Splits a query/execute response into result sets (OK-only results
    /// give an empty set with no columns).
    pub fn result_sets(&self, resp: &Response) -> Result<Vec<ResultSet>> {
        let mut sets = Vec::new();
        let mut it = resp.packets.iter().peekable();
        while let Some(p) = it.next() {
            if p.is_err() {
                break;
            }
            if p.is_ok() {
                let ok = parse_ok(&p.payload)?;
                sets.push(ResultSet {
                    status: ok.status,
                    warnings: ok.warnings,
                    ..Default::default()
                });
                continue;
            }
            let mut buf = &p.payload[..];
            let n = read_lenenc(&mut buf)? as usize;
            let mut set = ResultSet::default();
            for _ in 0..n {
                let c = it
                    .next()
                    .ok_or_else(|| anyhow!("missing column definition"))?;
                set.columns.push(parse_column(&c.payload)?);
            }
            if !self.deprecate_eof() {
                let eof = it
                    .next()
                    .ok_or_else(|| anyhow!("missing EOF after columns"))?;
                let (w, s) = parse_eof(&eof.payload)?;
                if s & status::CURSOR_EXISTS != 0 {
                    set.status = s;
                    set.warnings = w;
                    sets.push(set);
                    continue;
                }
            }
            for r in it.by_ref() {
                if r.is_err() {
                    break;
                }
                if r.is_eof() {
                    let (w, s) = self.parse_terminator(&r.payload)?;
                    set.warnings = w;
                    set.status = s;
                    break;
                }
                set.rows.push(r.payload.clone());
            }
            sets.push(set);
        }
        Ok(sets)
    }

    fn parse_terminator(&self, payload: &[u8]) -> Result<(u16, u16)> {
        if self.deprecate_eof() {
            let ok = parse_ok(payload)?;
            Ok((ok.warnings, ok.status))
        } else {
            parse_eof(payload)
        }
    }

    async fn read_prepare(&mut self, packets: &mut Vec<Packet>) -> Result<()> {
        let first = self.read().await?;
        if first.is_err() {
            packets.push(first);
            return Ok(());
        }
        let p = first.payload.clone();
        packets.push(first);
        ensure!(p.len() >= 9, "short prepare OK");
        let columns = u16::from_le_bytes([p[5], p[6]]);
        let params = u16::from_le_bytes([p[7], p[8]]);
        for count in [params, columns] {
            if count == 0 {
                continue;
            }
            for _ in 0..count {
                packets.push(self.read().await?);
            }
            if !self.deprecate_eof() {
                packets.push(self.read().await?);
            }
        }
        Ok(())
    }

    /// Reads result sets until one ends without MORE_RESULTS_EXISTS.
    async fn read_results(&mut self, packets: &mut Vec<Packet>) -> Result<()> {
        loop {
            let p = self.read().await?;
            match p.payload.first() {
                Some(0x00) => {
                    let st = parse_ok(&p.payload)?.status;
                    packets.push(p);
                    if st & status::MORE_RESULTS_EXISTS == 0 {
                        return Ok(());
                    }
                }
                Some(0xff) | Some(0xfb) => {
                    packets.push(p);
                    return Ok(());
                }
                _ => {
                    let n = read_lenenc(&mut &p.payload[..])?;
                    packets.push(p);
                    for _ in 0..n {
                        packets.push(self.read().await?);
                    }
                    if !self.deprecate_eof() {
                        let eof = self.read().await?;
                        let (_, st) = parse_eof(&eof.payload)?;
                        packets.push(eof);
                        if st & status::CURSOR_EXISTS != 0 {
                            return Ok(());
                        }
                    }
                    let st = self.read_rows(packets).await?;
                    match st {
                        Some(st) if st & status::MORE_RESULTS_EXISTS != 0 => continue,
                        _ => return Ok(()),
                    }
                }
            }
        }
    }

    /// Reads rows up to the terminating EOF/OK (returns its status) or ERR (None).
    async fn read_rows(&mut self, packets: &mut Vec<Packet>) -> Result<Option<u16>> {
        loop {
            let r = self.read().await?;
            if r.is_err() {
                packets.push(r);
                return Ok(None);
            }
            if r.is_eof() {
                let (_, st) = self.parse_terminator(&r.payload)?;
                packets.push(r);
                return Ok(Some(st));
            }
            packets.push(r);
        }
    }

    /// Sends COM_QUIT and closes.
    pub async fn quit(mut self) -> Result<()> {
        self.send(cmd::QUIT, &[]).await?;
        let _ = self.stream.shutdown().await;
        Ok(())
    }
}

fn negotiate(requested: u64, server: u64, opts: &RawOpts) -> u64 {
    let mut wanted = requested;
    if opts.database.is_some() {
        wanted |= caps::CONNECT_WITH_DB;
    }
    // MariaDB extensions only count if the client clears CLIENT_MYSQL.
    if wanted >> 32 != 0 {
        wanted &= !caps::LONG_PASSWORD;
    }
    wanted & (server | caps::CONNECT_WITH_DB)
}

fn handshake_response(opts: &RawOpts, capabilities: u64) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(capabilities as u32).to_le_bytes());
    out.extend_from_slice(&(16u32 * 1024 * 1024).to_le_bytes());
    out.push(opts.charset);
    out.extend_from_slice(&[0u8; 19]);
    out.extend_from_slice(&((capabilities >> 32) as u32).to_le_bytes());
    out.extend_from_slice(opts.user.as_bytes());
    out.push(0);
    // Empty auth response (empty password): a single 0 byte is a zero
    // lenenc length, a zero 1-byte length and an empty NUL-terminated string.
    out.push(0);
    if let Some(db) = &opts.database {
        out.extend_from_slice(db.as_bytes());
        out.push(0);
    }
    if capabilities & caps::PLUGIN_AUTH != 0 {
        out.extend_from_slice(b"mysql_native_password");
        out.push(0);
    }
    out
}

/// Parses a protocol-10 greeting.
pub fn parse_greeting(payload: &[u8]) -> Result<Greeting> {
    let mut b = payload;
    let protocol_version = take_u8(&mut b)?;
    ensure!(
        protocol_version == 10,
        "protocol version {protocol_version}"
    );
    let server_version = String::from_utf8_lossy(take_nul(&mut b)?).into_owned();
    let connection_id = u32::from_le_bytes(take(&mut b, 4)?.try_into()?);
    let mut scramble = take(&mut b, 8)?.to_vec();
    take(&mut b, 1)?;
    let cap_lo = u16::from_le_bytes(take(&mut b, 2)?.try_into()?) as u64;
    let charset = take_u8(&mut b)?;
    let status = u16::from_le_bytes(take(&mut b, 2)?.try_into()?);
    let cap_hi = u16::from_le_bytes(take(&mut b, 2)?.try_into()?) as u64;
    let auth_len = take_u8(&mut b)? as usize;
    take(&mut b, 6)?;
    let ext = u32::from_le_bytes(take(&mut b, 4)?.try_into()?) as u64;
    let mut capabilities = cap_lo | (cap_hi << 16);
    if capabilities & caps::LONG_PASSWORD == 0 {
        capabilities |= ext << 32;
    }
    if capabilities & caps::SECURE_CONNECTION != 0 {
        let n = auth_len.saturating_sub(8).max(13);
        let avail = n.min(b.len());
        let part2 = take(&mut b, avail)?;
        let part2 = part2.strip_suffix(&[0]).unwrap_or(part2);
        scramble.extend_from_slice(part2);
    }
    let auth_plugin = if capabilities & caps::PLUGIN_AUTH != 0 {
        String::from_utf8_lossy(b.strip_suffix(&[0]).unwrap_or(b)).into_owned()
    } else {
        String::new()
    };
    Ok(Greeting {
        protocol_version,
        server_version,
        connection_id,
        scramble,
        capabilities,
        charset,
        status,
        auth_plugin,
        raw: payload.to_vec(),
    })
}

/// Parses an ERR packet (with the `#` SQLSTATE marker of protocol 4.1).
pub fn parse_err(payload: &[u8]) -> ErrPacket {
    let code = if payload.len() >= 3 {
        u16::from_le_bytes([payload[1], payload[2]])
    } else {
        0
    };
    let rest = payload.get(3..).unwrap_or_default();
    if rest.first() == Some(&b'#') && rest.len() >= 6 {
        ErrPacket {
            code,
            sqlstate: String::from_utf8_lossy(&rest[1..6]).into_owned(),
            message: String::from_utf8_lossy(&rest[6..]).into_owned(),
        }
    } else {
        ErrPacket {
            code,
            sqlstate: String::new(),
            message: String::from_utf8_lossy(rest).into_owned(),
        }
    }
}

fn parse_err_no_state(payload: &[u8]) -> ErrPacket {
    parse_err(payload)
}

/// Parses an OK packet (header 0x00 or 0xFE).
pub fn parse_ok(payload: &[u8]) -> Result<OkPacket> {
    let mut b = payload;
    let header = take_u8(&mut b)?;
    ensure!(
        header == 0x00 || header == 0xfe,
        "not an OK packet: {header:#x}"
    );
    let affected_rows = read_lenenc(&mut b)?;
    let last_insert_id = read_lenenc(&mut b)?;
    let status = u16::from_le_bytes(take(&mut b, 2)?.try_into()?);
    let warnings = u16::from_le_bytes(take(&mut b, 2)?.try_into()?);
    Ok(OkPacket {
        affected_rows,
        last_insert_id,
        status,
        warnings,
        info: b.to_vec(),
    })
}

/// Parses an EOF packet: (warnings, status).
pub fn parse_eof(payload: &[u8]) -> Result<(u16, u16)> {
    ensure!(
        payload.len() >= 5 && payload[0] == 0xfe,
        "not an EOF packet: {payload:?}"
    );
    Ok((
        u16::from_le_bytes([payload[1], payload[2]]),
        u16::from_le_bytes([payload[3], payload[4]]),
    ))
}

/// Parses a column definition (protocol 4.1).
pub fn parse_column(payload: &[u8]) -> Result<Column> {
    let mut b = payload;
    let _catalog = read_lenenc_bytes(&mut b)?;
    let schema = String::from_utf8_lossy(read_lenenc_bytes(&mut b)?).into_owned();
    let table = String::from_utf8_lossy(read_lenenc_bytes(&mut b)?).into_owned();
    let _org_table = read_lenenc_bytes(&mut b)?;
    let name = String::from_utf8_lossy(read_lenenc_bytes(&mut b)?).into_owned();
    let _org_name = read_lenenc_bytes(&mut b)?;
    let _fixed = read_lenenc(&mut b)?;
    let charset = u16::from_le_bytes(take(&mut b, 2)?.try_into()?);
    let length = u32::from_le_bytes(take(&mut b, 4)?.try_into()?);
    let column_type = take_u8(&mut b)?;
    let flags = u16::from_le_bytes(take(&mut b, 2)?.try_into()?);
    let decimals = take_u8(&mut b)?;
    Ok(Column {
        schema,
        table,
        name,
        charset,
        length,
        column_type,
        flags,
        decimals,
    })
}

/// Decodes a text-protocol row into `n` optional byte strings.
pub fn text_row(payload: &[u8], n: usize) -> Result<Vec<Option<Vec<u8>>>> {
    let mut b = payload;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        if b.first() == Some(&0xfb) {
            b = &b[1..];
            out.push(None);
        } else {
            out.push(Some(read_lenenc_bytes(&mut b)?.to_vec()));
        }
    }
    Ok(out)
}

/// Decodes a binary-protocol row for integer and string columns (enough for
/// the cursor tests): integers are rendered in decimal.
pub fn binary_row(payload: &[u8], columns: &[Column]) -> Result<Vec<Option<Vec<u8>>>> {
    let mut b = payload;
    ensure!(take_u8(&mut b)? == 0x00, "binary row header");
    let bitmap_len = (columns.len() + 7 + 2) / 8;
    let bitmap = take(&mut b, bitmap_len)?.to_vec();
    let mut out = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        let bit = i + 2;
        if bitmap[bit / 8] & (1 << (bit % 8)) != 0 {
            out.push(None);
            continue;
        }
        let unsigned = c.flags & 32 != 0;
        let v = match c.column_type {
            0x01 => {
                let x = take_u8(&mut b)?;
                if unsigned {
                    x.to_string()
                } else {
                    (x as i8).to_string()
                }
                .into_bytes()
            }
            0x02 | 0x0d => {
                let x = u16::from_le_bytes(take(&mut b, 2)?.try_into()?);
                if unsigned {
                    x.to_string()
                } else {
                    (x as i16).to_string()
                }
                .into_bytes()
            }
            0x03 | 0x09 => {
                let x = u32::from_le_bytes(take(&mut b, 4)?.try_into()?);
                if unsigned {
                    x.to_string()
                } else {
                    (x as i32).to_string()
                }
                .into_bytes()
            }
            0x08 => {
                let x = u64::from_le_bytes(take(&mut b, 8)?.try_into()?);
                if unsigned {
                    x.to_string()
                } else {
                    (x as i64).to_string()
                }
                .into_bytes()
            }
            0x0f | 0xf5 | 0xf6 | 0xf7 | 0xf8 | 0xf9 | 0xfa | 0xfb | 0xfc | 0xfd | 0xfe | 0x10 => {
                read_lenenc_bytes(&mut b)?.to_vec()
            }
            t => bail!("binary_row: column type {t:#x} not supported by the raw client"),
        };
        out.push(Some(v));
    }
    Ok(out)
}

/// Appends a length-encoded integer.
pub fn put_lenenc(out: &mut Vec<u8>, n: u64) {
    if n < 251 {
        out.push(n as u8);
    } else if n < 1 << 16 {
        out.push(0xfc);
        out.extend_from_slice(&(n as u16).to_le_bytes());
    } else if n < 1 << 24 {
        out.push(0xfd);
        out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
    } else {
        out.push(0xfe);
        out.extend_from_slice(&n.to_le_bytes());
    }
}

/// Appends a length-encoded string.
pub fn put_lenenc_bytes(out: &mut Vec<u8>, s: &[u8]) {
    put_lenenc(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Reads a length-encoded integer.
pub fn read_lenenc(b: &mut &[u8]) -> Result<u64> {
    let first = take_u8(b)?;
    Ok(match first {
        0..=250 => first as u64,
        0xfc => u16::from_le_bytes(take(b, 2)?.try_into()?) as u64,
        0xfd => {
            let x = take(b, 3)?;
            u32::from_le_bytes([x[0], x[1], x[2], 0]) as u64
        }
        0xfe => u64::from_le_bytes(take(b, 8)?.try_into()?),
        _ => bail!("invalid length-encoded integer prefix {first:#x}"),
    })
}

/// Reads a length-encoded string.
pub fn read_lenenc_bytes<'a>(b: &mut &'a [u8]) -> Result<&'a [u8]> {
    let n = read_lenenc(b)?;
    let n = usize::try_from(n)?;
    take(b, n)
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    ensure!(b.len() >= n, "packet too short: need {n}, have {}", b.len());
    let (head, tail) = b.split_at(n);
    *b = tail;
    Ok(head)
}

fn take_u8(b: &mut &[u8]) -> Result<u8> {
    Ok(take(b, 1)?[0])
}

fn take_nul<'a>(b: &mut &'a [u8]) -> Result<&'a [u8]> {
    let pos = b
        .iter()
        .position(|&c| c == 0)
        .ok_or_else(|| anyhow!("missing NUL terminator"))?;
    let s = &b[..pos];
    *b = &b[pos + 1..];
    Ok(s)
}

/// Wire bytes of a logical packet (split into 16 MiB - 1 chunks).
pub fn write_packet_bytes(out: &mut Vec<u8>, seq: u8, payload: &[u8]) {
    let mut seq = seq;
    let mut rest = payload;
    loop {
        let n = rest.len().min(0xff_ffff);
        out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        out.push(seq);
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        seq = seq.wrapping_add(1);
        if n < 0xff_ffff {
            break;
        }
    }
}

async fn write_packet(stream: &mut TcpStream, seq: u8, payload: &[u8]) -> Result<()> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    write_packet_bytes(&mut out, seq, payload);
    stream.write_all(&out).await?;
    Ok(())
}

/// Reads one logical packet (pieces of 16 MiB joined).
pub async fn read_packet(stream: &mut TcpStream) -> Result<Packet> {
    let mut payload = Vec::new();
    let mut first_seq = None;
    loop {
        let mut header = [0u8; 4];
        stream
            .read_exact(&mut header)
            .await
            .context("connection closed while reading a packet header")?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
        first_seq.get_or_insert(header[3]);
        let start = payload.len();
        payload.resize(start + len, 0);
        stream
            .read_exact(&mut payload[start..])
            .await
            .context("connection closed inside a packet")?;
        if len < 0xff_ffff {
            break;
        }
    }
    Ok(Packet {
        seq: first_seq.unwrap_or(0),
        payload,
    })
}

/// Builds a COM_STMT_EXECUTE payload (without the command byte).
/// `params`: (type, unsigned, value bytes in binary protocol encoding or
/// None for NULL, or `Some(None)`-like long-data marker via `long_data`).
pub fn stmt_execute_payload(
    stmt_id: u32,
    cursor_flags: u8,
    params: &[(u8, Option<Vec<u8>>)],
    long_data: &[usize],
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&stmt_id.to_le_bytes());
    out.push(cursor_flags);
    out.extend_from_slice(&1u32.to_le_bytes());
    if params.is_empty() {
        return out;
    }
    let mut bitmap = vec![0u8; params.len().div_ceil(8)];
    for (i, (_, v)) in params.iter().enumerate() {
        if v.is_none() && !long_data.contains(&i) {
            bitmap[i / 8] |= 1 << (i % 8);
        }
    }
    out.extend_from_slice(&bitmap);
    out.push(1); // new params bound
    for (t, _) in params {
        out.push(*t);
        out.push(0);
    }
    for (i, (_, v)) in params.iter().enumerate() {
        if long_data.contains(&i) {
            continue;
        }
        if let Some(v) = v {
            out.extend_from_slice(v);
        }
    }
    out
}

/// Binary-protocol encoding of a string parameter.
pub fn lenenc_param(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_lenenc_bytes(&mut out, s);
    out
}
