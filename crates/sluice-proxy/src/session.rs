//! One client session after login: read a command, relay it to the
//! client's own backend connection, stream the response back, and keep
//! the session state up to date from what the server reported.

use sluice_protocol::caps::SessionCaps;
use sluice_protocol::command::{code, command_name, response_shape, Command};
use sluice_protocol::ok::OkInfo;
use sluice_protocol::packet::{HEADER_LEN, MAX_PAYLOAD_LEN};
use sluice_protocol::response::{Event, Next, ResponseTracker};
use sluice_protocol::stmt::ExecuteParams;
use sluice_protocol::ProtocolError;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use std::sync::Arc;

use crate::batching::{BatchContext, Offer, SessionBatching, SessionIo};
use crate::error::{Peer, SessionError};
use crate::io::PacketStream;
use crate::login::LoggedIn;
use crate::relay::{relay_client_file, relay_response, ResponseObserver};
use crate::session_state::SessionState;
use crate::settings::ProxySettings;

/// How a session loop ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionEnd {
    /// COM_QUIT or the client closed its socket between commands.
    ClientLeft,
    /// The client was idle longer than the idle timeout.
    IdleTimeout,
    /// Sluice is shutting down and the session was idle.
    Shutdown,
    /// A replication stream ended.
    StreamEnded,
    /// The server closed the idle session (`KILL`, `wait_timeout`); the
    /// client got what it sent before closing, then the close.
    BackendClosed,
}

pub(crate) struct Session {
    client: PacketStream,
    backend: PacketStream,
    caps: SessionCaps,
    state: SessionState,
    batching: Option<SessionBatching>,
    metrics: sluice_metrics::Metrics,
}

impl Session {
    pub(crate) fn new(
        login: LoggedIn,
        batching: Option<Arc<BatchContext>>,
        metrics: sluice_metrics::Metrics,
    ) -> Session {
        let batching =
            batching.map(|ctx| SessionBatching::new(ctx, login.greeting.version_triple()));
        Session {
            client: login.client,
            backend: login.backend,
            caps: login.caps,
            state: login.state,
            batching,
            metrics,
        }
    }

    pub(crate) async fn run(
        mut self,
        settings: &ProxySettings,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<SessionEnd, SessionError> {
        loop {
            let waited = tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => return Ok(SessionEnd::Shutdown),
                waited = wait_for_command(&mut self.client, &mut self.backend, settings) => waited?,
            };
            match waited {
                Waited::Command => {}
                Waited::Closed => return Ok(SessionEnd::ClientLeft),
                Waited::Idle => return Ok(SessionEnd::IdleTimeout),
                Waited::BackendSpoke => {
                    self.pass_on_backend_bytes().await?;
                    continue;
                }
                Waited::BackendClosed => {
                    self.pass_on_backend_bytes().await?;
                    let _ = self.client.stream.shutdown().await;
                    return Ok(SessionEnd::BackendClosed);
                }
            }
            match self.handle_command().await? {
                Handled::Continue => {}
                Handled::Quit => return Ok(SessionEnd::ClientLeft),
                Handled::Stream => return self.stream().await,
            }
        }
    }

    /// Relays what the server sent an idle session unasked (the error
    /// MariaDB writes before it closes a killed or timed-out connection),
    /// byte for byte.
    async fn pass_on_backend_bytes(&mut self) -> Result<(), SessionError> {
        if !self.backend.buf.is_empty() {
            self.client.write_all(&self.backend.buf).await?;
            self.backend.buf.clear();
        }
        Ok(())
    }

    async fn handle_command(&mut self) -> Result<Handled, SessionError> {
        let header = self.client.peek_header().await?;
        if header.seq != 0 {
            return Err(SessionError::protocol(Peer::Client)(
                ProtocolError::OutOfOrder {
                    expected: 0,
                    got: header.seq,
                },
            ));
        }
        if header.payload_len == 0 {
            return Err(SessionError::protocol(Peer::Client)(
                ProtocolError::Malformed {
                    what: "command",
                    detail: "empty packet".into(),
                },
            ));
        }
        if header.payload_len == MAX_PAYLOAD_LEN {
            // A command of 16 MiB or more: relayed as a stream, read only
            // for its command byte.
            self.client.ensure(HEADER_LEN + 1).await?;
            let command_byte = self.client.buf[HEADER_LEN];
            tracing::trace!(command = command_name(command_byte), "large command");
            self.metrics.command(command_name(command_byte));
            self.reconcile_ahead_of(command_byte, &[]).await?;
            self.client
                .forward_logical_packet(&mut self.backend)
                .await?;
            self.after_forward(command_byte, None).await?;
            return Ok(Handled::Continue);
        }
        let packet = self.client.read_packet().await?;
        let command_byte = packet.bytes[HEADER_LEN];
        tracing::trace!(command = command_name(command_byte), "command");
        self.metrics.command(command_name(command_byte));
        if let Some(batching) = self.batching.as_ref() {
            if let Ok(Command::Query(sql)) = Command::parse(&packet.bytes[HEADER_LEN..]) {
                if crate::admin::is_show_sluice_status(sql) {
                    let rows = crate::admin::status_rows(&batching.ctx);
                    use sluice_protocol::StatusFlags as F;
                    let session_flags = F::SERVER_STATUS_IN_TRANS
                        | F::SERVER_STATUS_AUTOCOMMIT
                        | F::SERVER_STATUS_IN_TRANS_READONLY
                        | F::SERVER_STATUS_NO_BACKSLASH_ESCAPES
                        | F::SERVER_STATUS_ANSI_QUOTES;
                    let status = self
                        .state
                        .status()
                        .unwrap_or(F::SERVER_STATUS_AUTOCOMMIT)
                        .intersection(session_flags);
                    let mut out = Vec::new();
                    sluice_protocol::resultset::write_text_result(
                        &mut out,
                        self.caps,
                        status,
                        &["Variable_name", "Value"],
                        &rows,
                    );
                    self.client.write_all(&out).await?;
                    return Ok(Handled::Continue);
                }
            }
        }
        if let Some(batching) = self.batching.as_mut() {
            let mut io = SessionIo {
                client: &mut self.client,
                backend: &mut self.backend,
                caps: self.caps,
                state: &mut self.state,
            };
            if let Offer::Handled = batching.offer(&packet, &mut io).await? {
                return Ok(Handled::Continue);
            }
        }
        self.reconcile_ahead_of(command_byte, &packet.bytes).await?;
        self.after_forward(command_byte, Some(&packet.bytes[HEADER_LEN..]))
            .await
    }

    /// Writes `command` (may be empty when the caller streams it after)
    /// to the backend, preceded by a reconcile statement when a batched
    /// INSERT left session effects owed, and consumes that statement's
    /// answer.
    async fn reconcile_ahead_of(
        &mut self,
        command_byte: u8,
        command: &[u8],
    ) -> Result<(), SessionError> {
        let mut out = Vec::new();
        let reconcile = self
            .batching
            .as_mut()
            .is_some_and(|b| b.reconcile_before(command_byte, &mut out));
        if !reconcile {
            if !command.is_empty() {
                self.backend.write_all(command).await?;
            }
            return Ok(());
        }
        out.extend_from_slice(command);
        self.backend.write_all(&out).await?;
        let mut io = SessionIo {
            client: &mut self.client,
            backend: &mut self.backend,
            caps: self.caps,
            state: &mut self.state,
        };
        SessionBatching::read_reconcile(&mut io).await
    }

    async fn after_forward(
        &mut self,
        command_byte: u8,
        payload: Option<&[u8]>,
    ) -> Result<Handled, SessionError> {
        let lexing = self.state.classifier_options(false);
        let mut io = SessionIo {
            client: &mut self.client,
            backend: &mut self.backend,
            caps: self.caps,
            state: &mut self.state,
        };
        let handled = relay_response_to(&mut io, command_byte, payload).await?;
        if let Some(batching) = self.batching.as_mut() {
            let command = payload.and_then(|p| Command::parse(p).ok());
            batching.after_relay(command.as_ref(), &self.state, lexing);
        }
        Ok(handled)
    }

    /// Replication: the connection never returns to commands.
    async fn stream(mut self) -> Result<SessionEnd, SessionError> {
        if !self.backend.buf.is_empty() {
            self.client.write_all(&self.backend.buf).await?;
            self.backend.buf.clear();
        }
        if !self.client.buf.is_empty() {
            self.backend.write_all(&self.client.buf).await?;
            self.client.buf.clear();
        }
        let _ =
            tokio::io::copy_bidirectional(&mut self.client.stream, &mut self.backend.stream).await;
        let _ = self.client.stream.shutdown().await;
        Ok(SessionEnd::StreamEnded)
    }
}

/// Relays the response to a command already sent to the backend, then
/// updates the session state.
pub(crate) async fn relay_one_response(
    io: &mut SessionIo<'_>,
    payload: Option<&[u8]>,
) -> Result<(), SessionError> {
    let command_byte = payload
        .and_then(|p| p.first().copied())
        .unwrap_or(code::QUERY);
    relay_response_to(io, command_byte, payload)
        .await
        .map(|_| ())
}

async fn relay_response_to(
    io: &mut SessionIo<'_>,
    command_byte: u8,
    payload: Option<&[u8]>,
) -> Result<Handled, SessionError> {
    let command = payload.and_then(|p| Command::parse(p).ok());
    let shape = response_shape(command_byte);
    let mut tracker = ResponseTracker::new(shape, io.caps);
    let lexing = io.state.classifier_options(false);
    let mut observer = CommandObserver {
        caps: io.caps,
        lexing,
        state: io.state,
        command,
        failed: false,
        schema_reported: false,
    };
    let mut next = tracker.initial();
    loop {
        match next {
            Next::ServerPacket => {
                next = relay_response(io.backend, io.client, &mut tracker, &mut observer).await?;
            }
            Next::ClientFile => {
                relay_client_file(io.client, io.backend).await?;
                tracker.client_done();
                next = Next::ServerPacket;
            }
            Next::ClientAuth => {
                let round = io.client.read_small_packet().await?;
                io.backend.write_all(&round.bytes).await?;
                tracker.client_done();
                next = Next::ServerPacket;
            }
            Next::Stream => return Ok(Handled::Stream),
            Next::Done => break,
        }
    }
    if let Some(status) = tracker.status() {
        observer.state.on_status(status);
    }
    observer.finish();
    Ok(if command_byte == code::QUIT {
        Handled::Quit
    } else {
        Handled::Continue
    })
}

enum Handled {
    Continue,
    Quit,
    Stream,
}

enum Waited {
    Command,
    Closed,
    Idle,
    /// The server sent bytes while no command was running.
    BackendSpoke,
    /// The server closed the connection while no command was running.
    BackendClosed,
}

/// Waits until the client sends the first bytes of a command, or leaves,
/// or the server speaks or hangs up unasked: a pool that keeps idle
/// connections learns at once that one is dead, as it would directly.
async fn wait_for_command(
    client: &mut PacketStream,
    backend: &mut PacketStream,
    settings: &ProxySettings,
) -> Result<Waited, SessionError> {
    if !client.buf.is_empty() {
        return Ok(Waited::Command);
    }
    if !backend.buf.is_empty() {
        return Ok(Waited::BackendSpoke);
    }
    let read = async {
        tokio::select! {
            read = client.fill() => match read {
                Ok(()) => Ok(Waited::Command),
                Err(e) if e.is_disconnect() => Ok(Waited::Closed),
                Err(e) => Err(e),
            },
            read = backend.fill() => match read {
                Ok(()) => Ok(Waited::BackendSpoke),
                Err(e) if e.is_disconnect() => Ok(Waited::BackendClosed),
                Err(e) => Err(e),
            },
        }
    };
    match settings.idle_timeout {
        Some(limit) => match tokio::time::timeout(limit, read).await {
            Ok(result) => result,
            Err(_) => Ok(Waited::Idle),
        },
        None => read.await,
    }
}

/// Keeps the session state in step with one command's response.
struct CommandObserver<'a, 'c> {
    caps: SessionCaps,
    /// How the session read the command's text when it was sent.
    lexing: sluice_classifier::Options,
    state: &'a mut SessionState,
    command: Option<Command<'c>>,
    failed: bool,
    schema_reported: bool,
}

impl ResponseObserver for CommandObserver<'_, '_> {
    fn observe(&mut self, event: Event, payload: Option<&[u8]>) {
        match event {
            Event::Ok => {
                let Some(ok) =
                    payload.and_then(|p| OkInfo::parse(p, self.caps.session_track()).ok())
                else {
                    return;
                };
                self.state.on_status(ok.status);
                if !ok.session_state.is_empty() {
                    self.schema_reported = true;
                    self.state.on_session_state(ok.session_state);
                }
            }
            Event::Err => {
                self.failed = true;
                self.state.on_error();
            }
            Event::Prepared(ok) => {
                if let Some(Command::StmtPrepare(sql)) = self.command {
                    self.state
                        .on_prepared(ok.stmt_id, sql, ok.num_params, ok.num_columns);
                }
            }
            Event::ResultSetEnd | Event::Row | Event::Other => {}
        }
    }
}

impl CommandObserver<'_, '_> {
    /// Bookkeeping that depends on the command and whether it succeeded.
    fn finish(self) {
        let Some(command) = self.command else {
            if !self.schema_reported {
                // A command too large to read may have changed anything.
                self.state.forget_database();
            }
            return;
        };
        match command {
            Command::InitDb(name) if !self.failed => self.state.on_database_selected(name),
            Command::Query(sql)
                if !self.schema_reported
                    && sluice_classifier::effects(sql, self.lexing).may_change_database =>
            {
                self.state.forget_database()
            }
            Command::StmtExecute {
                stmt_id, params, ..
            } => {
                let num_params = self.state.statement(stmt_id).map(|s| s.num_params);
                if let Some(types) = num_params
                    .and_then(|n| ExecuteParams::parse(params, n).ok())
                    .and_then(|p| p.param_types())
                {
                    self.state.on_types_bound(stmt_id, types);
                }
                self.state.on_long_data_consumed(stmt_id);
            }
            Command::StmtSendLongData { stmt_id } => self.state.on_long_data(stmt_id),
            Command::StmtReset { stmt_id } => self.state.on_long_data_consumed(stmt_id),
            Command::StmtClose { stmt_id } => self.state.on_statement_closed(stmt_id),
            Command::ResetConnection if !self.failed => self.state.on_reset(),
            Command::ChangeUser if !self.failed => {
                self.state.on_user_changed();
            }
            _ => {}
        }
    }
}
