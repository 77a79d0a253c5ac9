//! Login pass-through: connect to the backend, re-offer its greeting to the
//! client, relay the client's response and every authentication round
//! until the backend says OK or ERR. Sluice sees no password: MariaDB
//! checks every login itself.

use mysql_common::packets::HandshakePacket;
use sluice_protocol::caps::SessionCaps;
use sluice_protocol::command::ResponseShape;
use sluice_protocol::connect::{abandoning_login, after_abandoning};
use sluice_protocol::handshake::{
    clear_compression, is_ssl_request, mask_capabilities, set_client_ssl, ssl_request_for,
    ClientHello, Greeting,
};
use sluice_protocol::ok::{err_payload, OkInfo, ERR_HEADER};
use sluice_protocol::packet::{encode_packet, HEADER_LEN};
use sluice_protocol::response::{Event, Next, ResponseTracker};
use sluice_protocol::CapabilityFlags;
use sluice_protocol::StatusFlags;
use std::future::Future;

use tokio::net::TcpStream;

use crate::error::{Peer, SessionError, ER_UNKNOWN_ERROR};
use crate::io::PacketStream;
use crate::relay::ResponseObserver;
use crate::session_state::SessionState;
use crate::settings::ProxySettings;
use crate::tls::{BackendTls, BackendTlsMode, ClientTls};
use sluice_cluster::EvictionNotice;

/// A client logged in on its own backend connection.
pub(crate) struct LoggedIn {
    pub(crate) client: PacketStream,
    pub(crate) backend: PacketStream,
    /// Which of the configured backends it is on.
    pub(crate) backend_index: usize,
    /// Fires when that backend is given up and the session must close.
    pub(crate) eviction: EvictionNotice,
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
/// With TLS configured the greeting offers it, so that a client that
/// insists on TLS reads the error instead of failing on a missing offer.
pub(crate) async fn refuse(
    client: TcpStream,
    tls: Option<&ClientTls>,
    code: u16,
    sql_state: &[u8; 5],
    message: &str,
) {
    let mut client = PacketStream::new(client, Peer::Client);
    refuse_ungreeted(&mut client, tls, code, sql_state, message).await;
}

/// [`refuse`] on a client that has not been greeted yet.
async fn refuse_ungreeted(
    client: &mut PacketStream,
    tls: Option<&ClientTls>,
    code: u16,
    sql_state: &[u8; 5],
    message: &str,
) {
    use tokio::io::AsyncWriteExt;
    let _ = tokio::time::timeout(REFUSAL_WAIT, async {
        let mut out = Vec::new();
        encode_packet(&mut out, 0, &refusal_greeting(tls.is_some()));
        client.write_all(&out).await?;
        let mut answer = read_handshake_response(client, 0).await?;
        if let (true, Some(tls)) = (is_ssl_request(answer.payload()), tls) {
            client.accept_tls(&tls.acceptor).await?;
            answer = read_handshake_response(client, answer.header.seq).await?;
        }
        let seq = answer.header.seq.wrapping_add(1);
        send_error(client, seq, code, sql_state, message).await;
        let _ = client.stream.shutdown().await;
        Ok::<_, SessionError>(())
    })
    .await;
}

/// How long a refused client gets to send its handshake response.
const REFUSAL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A greeting for a connection Sluice will refuse: it only has to be one
/// that every client parses.
fn refusal_greeting(offer_tls: bool) -> Vec<u8> {
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
    let caps = if offer_tls {
        caps | CapabilityFlags::CLIENT_SSL
    } else {
        caps
    };
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

/// A backend connection, before its greeting.
pub(crate) struct Connected {
    pub(crate) stream: PacketStream,
    /// Which of the configured backends it reaches.
    pub(crate) backend_index: usize,
    /// Taken before connecting, so that an eviction during the login
    /// counts.
    pub(crate) eviction: EvictionNotice,
}

/// Connects to the backend that takes new sessions now, waiting up to
/// the connect timeout for one when none can.
async fn connect_backend(settings: &ProxySettings) -> Result<Connected, SessionError> {
    let waited = settings.connect_timeout;
    let index = settings
        .topology
        .writer_within(waited)
        .await
        .ok_or(SessionError::NoWriter { waited })?;
    let target = settings
        .backends
        .get(index)
        .ok_or(SessionError::NoWriter { waited })?;
    let eviction = settings.topology.evictions(index);
    let fail = |reason: String| SessionError::BackendConnect {
        address: target.address.clone(),
        reason,
    };
    let connect = async {
        if target.is_unix_socket() {
            let stream = tokio::net::UnixStream::connect(&target.address).await?;
            Ok(PacketStream::over(stream, Peer::Backend))
        } else {
            let stream = TcpStream::connect(&target.address).await?;
            Ok::<_, std::io::Error>(PacketStream::new(stream, Peer::Backend))
        }
    };
    match tokio::time::timeout(settings.connect_timeout, connect).await {
        Ok(Ok(stream)) => Ok(Connected {
            stream,
            backend_index: index,
            eviction,
        }),
        Ok(Err(e)) => Err(fail(e.to_string())),
        Err(_) => Err(fail(format!(
            "no answer within {:?}",
            settings.connect_timeout
        ))),
    }
}

/// The client's side of a login, with what it takes to tell the client
/// why a login failed in a packet it can read: whether it has been greeted,
/// and the sequence id it expects next.
struct ClientLeg {
    stream: PacketStream,
    greeted: bool,
    next_seq: u8,
}

impl ClientLeg {
    /// Writes one whole packet to the client.
    async fn send(&mut self, packet: &[u8]) -> Result<(), SessionError> {
        self.stream.write_all(packet).await?;
        self.next_seq = packet
            .get(3)
            .map_or(self.next_seq, |seq| seq.wrapping_add(1));
        Ok(())
    }

    /// Notes a packet read from the client.
    fn received(&mut self, seq: u8) {
        self.next_seq = seq.wrapping_add(1);
    }

    /// Tells the client why its login ends, unless it is gone.
    async fn tell(&mut self, error: &SessionError, settings: &ProxySettings) {
        let Some(refusal) = error.login_refusal() else {
            return;
        };
        if self.greeted {
            let seq = self.next_seq;
            send_error(
                &mut self.stream,
                seq,
                refusal.code,
                refusal.sql_state,
                &refusal.message,
            )
            .await;
        } else {
            let tls = settings.client_tls.as_ref();
            let (code, state, message) = (refusal.code, refusal.sql_state, &refusal.message);
            refuse_ungreeted(&mut self.stream, tls, code, state, message).await;
        }
    }
}

/// Logs a client in on its own backend connection, within the handshake
/// timeout. Every way a login fails that leaves the client connected
/// sends it an error packet first.
pub(crate) async fn login(
    client: TcpStream,
    settings: &ProxySettings,
) -> Result<LoginOutcome, SessionError> {
    let client = PacketStream::new(client, Peer::Client);
    login_over(client, settings, connect_backend(settings)).await
}

/// [`login`] over any client stream, with the backend connection made by
/// `connect` (which the handshake timeout bounds too).
async fn login_over(
    client: PacketStream,
    settings: &ProxySettings,
    connect: impl Future<Output = Result<Connected, SessionError>>,
) -> Result<LoginOutcome, SessionError> {
    let mut client = ClientLeg {
        stream: client,
        greeted: false,
        next_seq: 0,
    };
    let attempt = tokio::time::timeout(
        settings.handshake_timeout,
        login_steps(&mut client, settings, connect),
    )
    .await;
    let error = match attempt {
        Ok(Ok(Steps::Refused)) => return Ok(LoginOutcome::Refused),
        Ok(Ok(Steps::LoggedIn(parts))) => {
            let LoginParts {
                backend,
                backend_index,
                eviction,
                caps,
                state,
                greeting,
                hello,
            } = *parts;
            if caps.compressed() {
                client.stream.start_compression();
            }
            return Ok(LoginOutcome::LoggedIn(Box::new(LoggedIn {
                client: client.stream,
                backend,
                backend_index,
                eviction,
                caps,
                state,
                greeting,
                hello,
            })));
        }
        Ok(Err(error)) => error,
        Err(_) => SessionError::HandshakeTimeout(settings.handshake_timeout),
    };
    let _ = tokio::time::timeout(REFUSAL_WAIT, client.tell(&error, settings)).await;
    Err(error)
}

/// What [`login_steps`] hands back: [`LoggedIn`] without the client,
/// which stays with [`login`].
enum Steps {
    LoggedIn(Box<LoginParts>),
    Refused,
}

struct LoginParts {
    backend: PacketStream,
    backend_index: usize,
    eviction: EvictionNotice,
    caps: SessionCaps,
    state: SessionState,
    greeting: Greeting,
    hello: ClientHello,
}

async fn login_steps(
    client: &mut ClientLeg,
    settings: &ProxySettings,
    connect: impl Future<Output = Result<Connected, SessionError>>,
) -> Result<Steps, SessionError> {
    let Connected {
        stream: mut backend,
        backend_index,
        eviction,
    } = connect.await?;
    let target_tls = settings.backends.get(backend_index).map(|t| &t.tls);

    let greeting_packet = backend.read_small_packet().await?;
    if greeting_packet.payload().first() == Some(&ERR_HEADER) {
        // The backend refused before greeting (too many connections,
        // host blocked): the client gets its words.
        client.stream.write_all(&greeting_packet.bytes).await?;
        return Ok(Steps::Refused);
    }
    let mut greeting = Greeting::parse(greeting_packet.payload())
        .map_err(SessionError::protocol(Peer::Backend))?;
    greeting.offer_tls(settings.client_tls.is_some());
    let greeting_seq = greeting_packet.header.seq;
    let mut out = Vec::with_capacity(greeting_packet.bytes.len());
    encode_packet(
        &mut out,
        greeting_seq,
        &greeting.for_client(greeting_packet.payload()),
    );
    if let Err(e) = client.send(&out).await {
        abandon_backend(backend, greeting_seq);
        return Err(e);
    }
    client.greeted = true;

    let ready = match client_side(client, &greeting, greeting_seq, settings).await {
        Ok(Some(ready)) => ready,
        Ok(None) => {
            abandon_backend(backend, greeting_seq);
            return Ok(Steps::Refused);
        }
        Err(e) => {
            abandon_backend(backend, greeting_seq);
            return Err(e);
        }
    };
    let ClientReady {
        mut response,
        hello,
        caps,
    } = ready;
    clear_compression(&mut response.bytes[HEADER_LEN..]);
    let Some(backend_tls) = backend_leg(&greeting, target_tls) else {
        let message = "Sluice requires TLS to the database server (backend.tls), \
                       but the server does not offer it";
        sluice_metrics::warn_throttled!("{message}");
        let seq = client.next_seq;
        send_error(&mut client.stream, seq, ER_UNKNOWN_ERROR, b"HY000", message).await;
        abandon_backend(backend, greeting_seq);
        return Ok(Steps::Refused);
    };
    let mut backend_seq = greeting_seq.wrapping_add(1);
    if let Some((connector, name)) = backend_tls {
        let Some(request) = ssl_request_for(response.payload()) else {
            return Err(SessionError::protocol(Peer::Client)(
                sluice_protocol::ProtocolError::Truncated {
                    what: "handshake response",
                    needed: 32,
                },
            ));
        };
        let mut out = Vec::with_capacity(request.len() + 4);
        encode_packet(&mut out, backend_seq, &request);
        backend.write_all(&out).await?;
        if let Err(e) = backend.connect_tls(connector, name.clone()).await {
            sluice_metrics::warn_throttled!(error = %e, "TLS to the backend failed");
            let message = format!("Sluice cannot set up TLS with the database server: {e}");
            let seq = client.next_seq;
            send_error(
                &mut client.stream,
                seq,
                ER_UNKNOWN_ERROR,
                b"HY000",
                &message,
            )
            .await;
            return Ok(Steps::Refused);
        }
        backend_seq = backend_seq.wrapping_add(1);
    }
    let backend_is_tls = backend.is_tls();
    set_client_ssl(&mut response.bytes[HEADER_LEN..], backend_is_tls);
    response.bytes[3] = backend_seq;
    backend.write_all(&response.bytes).await?;

    // The two legs count their packets from different points when only
    // one of them went through an SSL request.
    let seq_shift = response.header.seq.wrapping_sub(backend_seq);
    let mut observer = LoginObserver {
        caps,
        status: greeting.status,
        session_state: None,
        accepted: false,
    };
    relay_authentication(&mut backend, client, caps, seq_shift, &mut observer).await?;
    if !observer.accepted {
        return Ok(Steps::Refused);
    }
    let mut state = SessionState::new(observer.status, hello.database.clone());
    if let Some(data) = observer.session_state {
        state.on_session_state(&data);
    }
    Ok(Steps::LoggedIn(Box::new(LoginParts {
        backend,
        backend_index,
        eviction,
        caps,
        state,
        greeting,
        hello,
    })))
}

/// The client after its handshake response: on TLS if it asked for it,
/// its capabilities narrowed to what was offered.
struct ClientReady {
    response: crate::io::Packet,
    hello: ClientHello,
    caps: SessionCaps,
}

/// MariaDB refuses a plain connection under `require_secure_transport`
/// as it refuses a wrong password.
const ER_ACCESS_DENIED_ERROR: u16 = 1045;

/// Reads the client's handshake response, switching to TLS first if the
/// client asks for it, and narrows its capabilities to what was offered,
/// as MariaDB would. `None` when the client was refused (and told).
async fn client_side(
    client: &mut ClientLeg,
    greeting: &Greeting,
    greeting_seq: u8,
    settings: &ProxySettings,
) -> Result<Option<ClientReady>, SessionError> {
    let mut response = read_handshake_response(&mut client.stream, greeting_seq).await?;
    client.received(response.header.seq);
    if is_ssl_request(response.payload())
        && greeting.offered().contains(CapabilityFlags::CLIENT_SSL)
    {
        if let Some(tls) = &settings.client_tls {
            client.stream.accept_tls(&tls.acceptor).await?;
            response = read_handshake_response(&mut client.stream, response.header.seq).await?;
            client.received(response.header.seq);
        }
    }
    let flags = mask_capabilities(
        &mut response.bytes[HEADER_LEN..],
        greeting.offered(),
        greeting.offered_mariadb(),
    );
    let hello =
        ClientHello::parse(response.payload()).map_err(SessionError::protocol(Peer::Client))?;
    if flags.contains(CapabilityFlags::CLIENT_SSL) && !client.stream.is_tls() {
        return Err(SessionError::protocol(Peer::Client)(
            sluice_protocol::ProtocolError::Unsupported("CLIENT_SSL without an SSL request"),
        ));
    }
    let caps = SessionCaps::negotiate(
        flags,
        hello.mariadb_capabilities,
        greeting.offered(),
        greeting.offered_mariadb(),
    );
    if settings.require_secure_transport && !client.stream.is_tls() {
        let user = String::from_utf8_lossy(&hello.user);
        tracing::info!(%user, "refused a client without TLS (require_secure_transport)");
        let message = format!(
            "Access denied for user '{user}'@'{}' (using password: {})",
            client.stream.peer_host(),
            if hello.sent_password { "YES" } else { "NO" }
        );
        let seq = client.next_seq;
        send_error(
            &mut client.stream,
            seq,
            ER_ACCESS_DENIED_ERROR,
            b"28000",
            &message,
        )
        .await;
        return Ok(None);
    }
    Ok(Some(ClientReady {
        response,
        hello,
        caps,
    }))
}

/// How the backend leg is carried: `Some(None)` plain, `Some(Some(..))`
/// over TLS, `None` when TLS is required and the backend does not offer it.
/// `tls` is the backend's TLS setting (`None`: plain).
fn backend_leg<'a>(
    greeting: &Greeting,
    tls: Option<&'a BackendTls>,
) -> Option<
    Option<&'a (
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
> {
    // A Unix socket carries no TLS: the daemon gives such a backend
    // `BackendTls::off()` (the configuration refuses the modes that
    // require TLS with a socket).
    let Some(tls) = tls else {
        return Some(None);
    };
    let connector = tls.connector();
    match tls.mode {
        BackendTlsMode::Off => Some(None),
        BackendTlsMode::Preferred => Some(connector.filter(|_| greeting.backend_offers_tls())),
        BackendTlsMode::Required | BackendTlsMode::Verify => {
            greeting.backend_offers_tls().then_some(connector)
        }
    }
}

/// Relays the authentication exchange (auth switch, more data, the
/// client's answers) until the backend's OK or ERR, shifting sequence ids
/// from the backend's count to the client's.
async fn relay_authentication(
    backend: &mut PacketStream,
    client: &mut ClientLeg,
    caps: SessionCaps,
    seq_shift: u8,
    observer: &mut LoginObserver,
) -> Result<(), SessionError> {
    let mut tracker = ResponseTracker::new(ResponseShape::Auth, caps);
    loop {
        let mut packet = backend.read_small_packet().await?;
        let observed = tracker
            .on_packet(packet.payload(), packet.header.payload_len)
            .map_err(SessionError::protocol(Peer::Backend))?;
        observer.observe(observed.event, Some(packet.payload()));
        packet.bytes[3] = packet.header.seq.wrapping_add(seq_shift);
        client.send(&packet.bytes).await?;
        match observed.next {
            Next::ServerPacket => {}
            Next::ClientAuth => {
                let mut round = client.stream.read_small_packet().await?;
                client.received(round.header.seq);
                round.bytes[3] = round.header.seq.wrapping_sub(seq_shift);
                backend.write_all(&round.bytes).await?;
                tracker.client_done();
            }
            Next::Done => return Ok(()),
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
}

/// Sends a Sluice-made error during the login; the connection ends after.
async fn send_error(
    client: &mut PacketStream,
    seq: u8,
    code: u16,
    sql_state: &[u8; 5],
    message: &str,
) {
    let mut out = Vec::new();
    encode_packet(&mut out, seq, &err_payload(code, sql_state, message));
    let _ = client.write_all(&out).await;
}

/// User name of the login that ends a backend handshake Sluice gives up.
const ABANDONED_LOGIN_USER: &[u8] = b"sluice_abandoned_login";

/// How long an abandoned backend handshake may take to end politely.
const ABANDON_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Ends the handshake of a backend connection whose client went away or
/// was refused, with a login that fails, instead of hanging up in the
/// middle: the server counts hang-ups against Sluice's host and blocks it
/// after `max_connect_errors` of them.
fn abandon_backend(mut backend: PacketStream, greeting_seq: u8) {
    // The greeting was read whole and the server sends nothing more until
    // it gets an answer, so nothing is left in the read buffer.
    tokio::spawn(async move {
        let end = async {
            let seq = greeting_seq.wrapping_add(1);
            backend
                .write_all(&abandoning_login(seq, ABANDONED_LOGIN_USER))
                .await?;
            let verdict = backend.read_small_packet().await?;
            if let Some(quit) = after_abandoning(verdict.payload()) {
                backend.write_all(&quit).await?;
            }
            Ok::<_, SessionError>(())
        };
        let _ = tokio::time::timeout(ABANDON_WAIT, end).await;
    });
}

/// Largest handshake response accepted: connection attributes are bounded
/// by 64 KiB, so anything far larger is not a MySQL client.
const MAX_HANDSHAKE_RESPONSE: usize = 1024 * 1024;

/// Reads the client's handshake response (or SSL request), refusing at
/// once what cannot be one (an HTTP request, a wrong sequence id) instead
/// of waiting for bytes that will never come.
async fn read_handshake_response(
    client: &mut PacketStream,
    previous_seq: u8,
) -> Result<crate::io::Packet, SessionError> {
    let header = client.peek_header_exactly().await?;
    let expected = previous_seq.wrapping_add(1);
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
    client.read_packet_exactly().await
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

#[cfg(test)]
mod tests;
