//! One client session after login: read a command, relay it to the
//! client's own backend connection, stream the response back, and keep
//! the session state up to date from what the server reported.

use sluice_protocol::caps::SessionCaps;
use sluice_protocol::command::{command_name, Command};
use sluice_protocol::packet::{HEADER_LEN, MAX_PAYLOAD_LEN};
use sluice_protocol::ProtocolError;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use std::pin::Pin;
use std::sync::Arc;

use sluice_cluster::EvictionNotice;
use sluice_protocol::ok::err_payload;
use sluice_protocol::packet::encode_packet;

use crate::batching::{BatchContext, Offer, SessionBatching};
use crate::error::{Peer, SessionError};
use crate::exchange::{relay_response_to, Handled, SessionIo};
use crate::internal::encode_query;
use crate::io::PacketStream;
use crate::login::LoggedIn;
use crate::session_state::SessionState;
use crate::settings::ProxySettings;
use crate::statement::{route, Route, Statement};

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
    /// The session's backend can no longer take writes; the client was
    /// told so, as MariaDB tells a killed connection.
    BackendGivenUp,
}

pub(crate) struct Session {
    client: PacketStream,
    backend: PacketStream,
    backend_index: usize,
    eviction: EvictionNotice,
    caps: SessionCaps,
    state: SessionState,
    batching: Option<SessionBatching>,
    metrics: sluice_metrics::Metrics,
}

impl Session {
    pub(crate) fn new(
        login: LoggedIn,
        conn_id: u64,
        batching: Option<Arc<BatchContext>>,
        metrics: sluice_metrics::Metrics,
    ) -> Session {
        let version = login.greeting.version_triple();
        let backend_index = login.backend_index;
        let batching =
            batching.map(|ctx| SessionBatching::new(ctx, conn_id, backend_index, version));
        Session {
            client: login.client,
            backend: login.backend,
            backend_index,
            eviction: login.eviction,
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
        let mut eviction = std::mem::replace(&mut self.eviction, EvictionNotice::never());
        // Made once per session, not once per command: each of these
        // registers a waiter or a timer when first polled, and a waiting
        // future keeps it.
        let stop = shutdown.wait_for(|stop| *stop);
        let given_up = eviction.given_up();
        let idle = tokio::time::sleep(settings.idle_timeout.unwrap_or_default());
        tokio::pin!(stop, given_up, idle);
        loop {
            let idle = settings.idle_timeout.map(|limit| (limit, idle.as_mut()));
            let waited = tokio::select! {
                biased;
                _ = &mut stop => return Ok(SessionEnd::Shutdown),
                () = &mut given_up => Waited::GivenUp,
                waited = wait_for_command(&mut self.client, &mut self.backend, idle) => waited?,
            };
            match waited {
                Waited::GivenUp => return self.close_given_up(settings).await,
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
            let finished = {
                let command = self.handle_command();
                tokio::pin!(command);
                tokio::select! {
                    // In order: no random draw per poll.
                    biased;
                    handled = &mut command => Some((handled?, false)),
                    () = &mut given_up => {
                        // Let the command finish if its server still
                        // answers; a server that is gone for good would
                        // otherwise hold the client until TCP gives up.
                        match tokio::time::timeout(settings.connect_timeout, &mut command).await {
                            Ok(handled) => Some((handled?, true)),
                            Err(_) => None,
                        }
                    }
                }
            };
            let Some((handled, given_up)) = finished else {
                return Err(self.given_up_error(settings));
            };
            match handled {
                Handled::Continue if given_up => return self.close_given_up(settings).await,
                Handled::Continue => {}
                Handled::Quit => return Ok(SessionEnd::ClientLeft),
                Handled::Stream => return self.stream().await,
            }
        }
    }

    fn given_up_error(&self, settings: &ProxySettings) -> SessionError {
        let address = settings
            .backends
            .get(self.backend_index)
            .map_or_else(String::new, |target| target.address.clone());
        SessionError::BackendGivenUp { address }
    }

    /// Tells the client, between commands, that its session ends because
    /// its server can no longer take writes, and closes both legs. The
    /// client reads the error at its next command, as after a `KILL`.
    async fn close_given_up(
        &mut self,
        settings: &ProxySettings,
    ) -> Result<SessionEnd, SessionError> {
        let notice = self.given_up_error(settings).closing_notice();
        if let Some(notice) = notice {
            // Sequence id 1: the client reads it as the answer to the
            // command it sends next, the only time it reads at all.
            let mut out = Vec::new();
            encode_packet(
                &mut out,
                1,
                &err_payload(notice.code, notice.sql_state, &notice.message),
            );
            let _ = self.client.write_all(&out).await;
        }
        let _ = self.client.stream.shutdown().await;
        Ok(SessionEnd::BackendGivenUp)
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
            self.after_forward(command_byte, None, None).await?;
            return Ok(Handled::Continue);
        }
        let packet = self.client.read_packet().await?.bytes.freeze();
        let mut statement = Statement::parse(&packet);
        let command_byte = statement.command_byte();
        tracing::trace!(command = command_name(command_byte), "command");
        self.metrics.command(command_name(command_byte));
        let Some(batching) = self.batching.as_mut() else {
            return self.relay(&statement).await;
        };
        statement.classification = batching.classify(statement.command.as_ref(), &self.state);
        let mut io = SessionIo {
            client: &mut self.client,
            backend: &mut self.backend,
            caps: self.caps,
            state: &mut self.state,
        };
        match route(&statement) {
            Route::Admin => {
                crate::admin::answer_status(&mut io, &batching.ctx).await?;
                Ok(Handled::Continue)
            }
            Route::Batch => match batching.offer(&statement, &mut io).await? {
                Offer::Handled => Ok(Handled::Continue),
                Offer::Declined => self.relay(&statement).await,
            },
            Route::Relay => self.relay(&statement).await,
        }
    }

    /// The relay handler: the statement goes to the backend as the client
    /// sent it, its response back as the server sends it.
    async fn relay(&mut self, statement: &Statement<'_>) -> Result<Handled, SessionError> {
        let command_byte = statement.command_byte();
        self.reconcile_ahead_of(command_byte, statement.packet)
            .await?;
        self.after_forward(
            command_byte,
            statement.command.as_ref(),
            statement.classification.as_ref(),
        )
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
        let settlement = self
            .batching
            .as_mut()
            .and_then(|b| b.reconcile_before(command_byte));
        let Some(settlement) = settlement else {
            if !command.is_empty() {
                self.backend.write_all(command).await?;
            }
            return Ok(());
        };
        let mut out = Vec::with_capacity(settlement.len() + 5 + command.len());
        encode_query(&mut out, settlement.as_bytes());
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
        command: Option<&Command<'_>>,
        classification: Option<&sluice_classifier::Classification>,
    ) -> Result<Handled, SessionError> {
        let mut io = SessionIo {
            client: &mut self.client,
            backend: &mut self.backend,
            caps: self.caps,
            state: &mut self.state,
        };
        let handled = relay_response_to(&mut io, command_byte, command, classification).await?;
        if let Some(batching) = self.batching.as_mut() {
            batching.after_relay(command, classification, &self.state);
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

enum Waited {
    Command,
    Closed,
    Idle,
    /// The server sent bytes while no command was running.
    BackendSpoke,
    /// The server closed the connection while no command was running.
    BackendClosed,
    /// The session's backend can no longer take writes.
    GivenUp,
}

/// Waits until the client sends the first bytes of a command, or leaves,
/// or the server speaks or hangs up unasked: a pool that keeps idle
/// connections learns at once that one is dead, as it would directly.
async fn wait_for_command(
    client: &mut PacketStream,
    backend: &mut PacketStream,
    idle: Option<(std::time::Duration, Pin<&mut tokio::time::Sleep>)>,
) -> Result<Waited, SessionError> {
    if !client.buf.is_empty() {
        return Ok(Waited::Command);
    }
    if !backend.buf.is_empty() {
        return Ok(Waited::BackendSpoke);
    }
    let read = async {
        tokio::select! {
            // The client first: a backend speaks unasked only to say
            // goodbye, and polling in order needs no random draw.
            biased;
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
    match idle {
        Some((limit, mut timer)) => {
            // Moving a timer's deadline later is cheap; a new timer per
            // command would be registered and removed each time.
            timer.as_mut().reset(tokio::time::Instant::now() + limit);
            tokio::select! {
                biased;
                result = read => result,
                () = timer => Ok(Waited::Idle),
            }
        }
        None => read.await,
    }
}
