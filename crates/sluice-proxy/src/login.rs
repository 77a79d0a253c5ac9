//! Login pass-through: connect to the backend, re-offer its greeting to the
//! client, relay the client's response and every authentication round
//! until the backend says OK or ERR. Sluice sees no password: MariaDB
//! checks every login itself.

use sluice_protocol::caps::SessionCaps;
use sluice_protocol::command::ResponseShape;
use sluice_protocol::handshake::{ClientHello, Greeting};
use sluice_protocol::ok::{err_payload, OkInfo, ERR_HEADER};
use sluice_protocol::packet::encode_packet;
use sluice_protocol::response::{Event, Next, ResponseTracker};
use sluice_protocol::StatusFlags;
use tokio::net::TcpStream;

use crate::error::{Peer, SessionError};
use crate::io::PacketStream;
use crate::relay::{relay_response, ResponseObserver};
use crate::session_state::SessionState;
use crate::settings::ProxySettings;

/// MariaDB's "can't connect" client error, the code applications already
/// handle for an unreachable server.
const CR_CONN_HOST_ERROR: u16 = 2003;

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

/// Sends a Sluice-made error as the first packet of a connection, before
/// any greeting, as servers do when they refuse a connection.
pub(crate) async fn refuse(client: &mut TcpStream, code: u16, state: &[u8; 5], message: &str) {
    use tokio::io::AsyncWriteExt;
    let mut out = Vec::new();
    encode_packet(&mut out, 0, &err_payload(code, state, message));
    let _ = client.write_all(&out).await;
    let _ = client.shutdown().await;
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
        Err(_) => Err(fail(format!("no answer within {:?}", settings.connect_timeout))),
    }
}

pub(crate) async fn login(
    mut client: TcpStream,
    settings: &ProxySettings,
) -> Result<LoginOutcome, SessionError> {
    let backend = match connect_backend(settings).await {
        Ok(stream) => stream,
        Err(e) => {
            let message = format!("Sluice cannot reach the database server: {e}");
            refuse(&mut client, CR_CONN_HOST_ERROR, b"HY000", &message).await;
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
    let greeting =
        Greeting::parse(greeting_packet.payload()).map_err(SessionError::protocol(Peer::Backend))?;
    let mut out = Vec::with_capacity(greeting_packet.bytes.len());
    encode_packet(
        &mut out,
        greeting_packet.header.seq,
        &greeting.for_client(greeting_packet.payload()),
    );
    client.write_all(&out).await?;

    let response = client.read_small_packet().await?;
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
