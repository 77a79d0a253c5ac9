//! Login pass-through: connect to the backend, re-offer its greeting to the
//! client, relay the client's response and every authentication round
//! until the backend says OK or ERR. Sluice sees no password: MariaDB
//! checks every login itself.

use mysql_common::packets::HandshakePacket;
use sluice_protocol::caps::SessionCaps;
use sluice_protocol::command::ResponseShape;
use sluice_protocol::handshake::{ClientHello, Greeting};
use sluice_protocol::ok::{err_payload, OkInfo, ERR_HEADER};
use sluice_protocol::packet::encode_packet;
use sluice_protocol::response::{Event, Next, ResponseTracker};
use sluice_protocol::CapabilityFlags;
use sluice_protocol::StatusFlags;
use tokio::net::TcpStream;

use crate::error::{Peer, SessionError};
use crate::io::PacketStream;
use crate::relay::{relay_response, ResponseObserver};
use crate::session_state::SessionState;
use crate::settings::ProxySettings;

/// MariaDB's generic server error. The client-side "can't connect" code
/// (2003) would be the natural one, but client libraries reject codes of
/// their own range coming from a server as a malformed packet.
const ER_UNKNOWN_ERROR: u16 = 1105;

/// A client logged in on its own backend connection.
pub(crate) struct LoggedIn {
    pub(crate) client: PacketStream,
    pub(crate) backend: PacketStream,
    pub(crate) caps: SessionCaps,
    pub(crate) state: SessionState,
    pub(crate) greeting: Greeting,
    pub(crate) hello: ClientHello,
}

/// How a login attempt ended.
pub(crate) enum LoginOutcome {
    LoggedIn(Box<LoggedIn>),
    /// The backend refused (wrong password, unknown database, …); the
    /// client has its error.
    Refused,
}

/// Refuses a client with a Sluice-made error, the way MariaDB refuses one
/// for too many connections: a greeting, then the error in answer to the
/// client's handshake response. (An error in place of the greeting is
/// what servers send for blocked hosts, but client libraries report it as
/// a malformed packet.) No backend is involved and nobody is logged in.
pub(crate) async fn refuse(client: TcpStream, code: u16, sql_state: &[u8; 5], message: &str) {
    use tokio::io::AsyncWriteExt;
    let mut client = PacketStream::new(client, Peer::Client);
    let mut out = Vec::new();
    encode_packet(&mut out, 0, &refusal_greeting());
    if client.write_all(&out).await.is_err() {
        return;
    }
    let answer = tokio::time::timeout(REFUSAL_WAIT, client.read_small_packet()).await;
    let seq = match answer {
        Ok(Ok(packet)) => packet.header.seq.wrapping_add(1),
        _ => return,
    };
    out.clear();
    encode_packet(&mut out, seq, &err_payload(code, sql_state, message));
    let _ = client.write_all(&out).await;
    let _ = client.stream.shutdown().await;
}

/// How long a refused client gets to send its handshake response.
const REFUSAL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A greeting for a connection Sluice will refuse: it only has to be one
/// that every client parses.
fn refusal_greeting() -> Vec<u8> {
    use mysql_common::proto::MySerialize;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let nonce: Vec<u8> = (0..20u32)
        .map(|i| b'!' + ((seed.rotate_left(i) ^ i.wrapping_mul(2_654_435_761)) % 90) as u8)
        .collect();
    let mut scramble_1 = [0u8; 8];
    scramble_1.copy_from_slice(&nonce[..8]);
    let mut scramble_2 = nonce[8..].to_vec();
    scramble_2.push(0);
    let caps = CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_PLUGIN_AUTH
        | CapabilityFlags::CLIENT_LONG_PASSWORD
        | CapabilityFlags::CLIENT_TRANSACTIONS
        | CapabilityFlags::CLIENT_CONNECT_WITH_DB;
    let packet = HandshakePacket::new(
        10,
        &b"5.5.5-10.11.0-Sluice"[..],
        0,
        scramble_1,
        Some(scramble_2),
        caps,
        45,
        StatusFlags::SERVER_STATUS_AUTOCOMMIT,
        Some(&b"mysql_native_password"[..]),
    );
    let mut out = Vec::new();
    packet.serialize(&mut out);
    out
}

async fn connect_backend(settings: &ProxySettings) -> Result<TcpStream, SessionError> {
    let fail = |reason: String| SessionError::BackendConnect {
        address: settings.backend_address.clone(),
        reason,
    };
    match tokio::time::timeout(
        settings.connect_timeout,
        TcpStream::connect(&settings.backend_address),
    )
    .await
    {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(fail(e.to_string())),
        Err(_) => Err(fail(format!(
            "no answer within {:?}",
            settings.connect_timeout
        ))),
    }
}

pub(crate) async fn login(
    client: TcpStream,
    settings: &ProxySettings,
) -> Result<LoginOutcome, SessionError> {
    let backend = match connect_backend(settings).await {
        Ok(stream) => stream,
        Err(e) => {
            let message = format!("Sluice cannot reach the database server: {e}");
            refuse(client, ER_UNKNOWN_ERROR, b"HY000", &message).await;
            return Err(e);
        }
    };
    let mut client = PacketStream::new(client, Peer::Client);
    let mut backend = PacketStream::new(backend, Peer::Backend);

    let greeting_packet = backend.read_small_packet().await?;
    if greeting_packet.payload().first() == Some(&ERR_HEADER) {
        // The backend refused before greeting (too many connections,
        // host blocked): the client gets its words.
        client.write_all(&greeting_packet.bytes).await?;
        return Ok(LoginOutcome::Refused);
    }
    let greeting = Greeting::parse(greeting_packet.payload())
        .map_err(SessionError::protocol(Peer::Backend))?;
    let mut out = Vec::with_capacity(greeting_packet.bytes.len());
    encode_packet(
        &mut out,
        greeting_packet.header.seq,
        &greeting.for_client(greeting_packet.payload()),
    );
    client.write_all(&out).await?;

    let response = read_handshake_response(&mut client, greeting_packet.header.seq).await?;
    let hello = ClientHello::parse(response.payload(), greeting.offered())
        .map_err(SessionError::protocol(Peer::Client))?;
    let caps = SessionCaps::negotiate(
        hello.capabilities,
        hello.mariadb_capabilities,
        greeting.offered(),
        greeting.offered_mariadb(),
    );
    backend.write_all(&response.bytes).await?;

    let mut tracker = ResponseTracker::new(ResponseShape::Auth, caps);
    let mut observer = LoginObserver {
        caps,
        status: greeting.status,
        session_state: None,
        accepted: false,
    };
    loop {
        match relay_response(&mut backend, &mut client, &mut tracker, &mut observer).await? {
            Next::ClientAuth => {
                let round = client.read_small_packet().await?;
                backend.write_all(&round.bytes).await?;
                tracker.client_done();
            }
            Next::Done => break,
            other => {
                return Err(SessionError::protocol(Peer::Backend)(
                    sluice_protocol::ProtocolError::Malformed {
                        what: "authentication",
                        detail: format!("unexpected {other:?}"),
                    },
                ))
            }
        }
    }
    if !observer.accepted {
        return Ok(LoginOutcome::Refused);
    }
    let mut state = SessionState::new(observer.status, hello.database.clone());
    if let Some(data) = observer.session_state {
        state.on_session_state(&data);
    }
    Ok(LoginOutcome::LoggedIn(Box::new(LoggedIn {
        client,
        backend,
        caps,
        state,
        greeting,
        hello,
    })))
}

/// Largest handshake response accepted: connection attributes are bounded
/// by 64 KiB, so anything far larger is not a MySQL client.
const MAX_HANDSHAKE_RESPONSE: usize = 1024 * 1024;

/// Reads the client's handshake response, refusing at once what cannot be
/// one (an HTTP request, a wrong sequence id) instead of waiting for bytes
/// that will never come.
async fn read_handshake_response(
    client: &mut PacketStream,
    greeting_seq: u8,
) -> Result<crate::io::Packet, SessionError> {
    let header = client.peek_header().await?;
    let expected = greeting_seq.wrapping_add(1);
    if header.seq != expected {
        return Err(SessionError::protocol(Peer::Client)(
            sluice_protocol::ProtocolError::OutOfOrder {
                expected,
                got: header.seq,
            },
        ));
    }
    if header.payload_len > MAX_HANDSHAKE_RESPONSE {
        return Err(SessionError::protocol(Peer::Client)(
            sluice_protocol::ProtocolError::TooLarge {
                len: header.payload_len,
                limit: MAX_HANDSHAKE_RESPONSE,
            },
        ));
    }
    client.read_small_packet().await
}

struct LoginObserver {
    caps: SessionCaps,
    status: StatusFlags,
    session_state: Option<Vec<u8>>,
    accepted: bool,
}

impl ResponseObserver for LoginObserver {
    fn observe(&mut self, event: Event, payload: Option<&[u8]>) {
        if event != Event::Ok {
            return;
        }
        self.accepted = true;
        if let Some(ok) = payload.and_then(|p| OkInfo::parse(p, self.caps.session_track()).ok()) {
            self.status = ok.status;
            if !ok.session_state.is_empty() {
                self.session_state = Some(ok.session_state.to_vec());
            }
        }
    }
}
