//! One command's exchange on the connection pair: the server's response
//! relayed to the client as it comes, and the session state kept in step
//! with what the server reported. The relay handler and batching (for a
//! statement run alone) both end a command here.

use sluice_classifier::Classification;
use sluice_protocol::caps::SessionCaps;
use sluice_protocol::command::{code, response_shape, Command};
use sluice_protocol::ok::OkInfo;
use sluice_protocol::response::{Event, Next, ResponseTracker};
use sluice_protocol::stmt::ExecuteParams;

use crate::error::SessionError;
use crate::io::PacketStream;
use crate::relay::{relay_client_file, relay_response, ResponseObserver};
use crate::session_state::SessionState;

/// The connection pair a handler works on: the client, its own backend
/// connection, the capabilities in force and the session's state.
pub(crate) struct SessionIo<'a> {
    pub(crate) client: &'a mut PacketStream,
    pub(crate) backend: &'a mut PacketStream,
    pub(crate) caps: SessionCaps,
    pub(crate) state: &'a mut SessionState,
}

/// Relays the response to `command` (`None` when it was too large to
/// read, or unreadable), keeping the session state in step.
/// `classification` is the one the session made of the command's SQL
/// text, when it made one: what the text may do is read from it rather
/// than from the text again.
pub(crate) async fn relay_response_to(
    io: &mut SessionIo<'_>,
    command_byte: u8,
    command: Option<&Command<'_>>,
    classification: Option<&Classification>,
) -> Result<Handled, SessionError> {
    let shape = response_shape(command_byte);
    let mut tracker = ResponseTracker::new(shape, io.caps);
    let lexing = io.state.classifier_options(false);
    let mut observer = CommandObserver {
        caps: io.caps,
        lexing,
        state: io.state,
        command: command.copied(),
        failed: false,
        schema_reported: false,
        classification,
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

pub(crate) enum Handled {
    Continue,
    Quit,
    Stream,
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
    classification: Option<&'a Classification>,
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
                // An error packet carries no status flags: the state is
                // unknown, unless the command cannot have changed the
                // transaction by failing.
                let keeps_status = self
                    .classification
                    .is_some_and(Classification::failure_keeps_transaction_state);
                if !keeps_status {
                    self.state.on_error();
                }
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
    /// Whether the query `sql` may have changed the current database: from
    /// its classification, or from a scan of the text in the mode it was
    /// sent in when the session did not classify it.
    fn may_change_database(&self, sql: &[u8]) -> bool {
        match self.classification {
            Some(classification) => classification.effects.may_change_database,
            None => sluice_classifier::effects(sql, self.lexing).may_change_database,
        }
    }

    /// Bookkeeping that depends on the command and whether it succeeded.
    fn finish(self) {
        self.state.on_command_done(self.failed);
        let Some(command) = self.command else {
            if !self.schema_reported {
                // A command too large to read may have changed anything.
                self.state.forget_database();
            }
            return;
        };
        match command {
            Command::InitDb(name) if !self.failed => self.state.on_database_selected(name),
            Command::Query(sql) if !self.schema_reported && self.may_change_database(sql) => {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::captured::{basic_caps, hex};
    use crate::error::Peer;
    use sluice_protocol::StatusFlags;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    /// Captured from MariaDB 10.11 (EOF packets, no session tracking).
    const SELECT_1_X: &str = "010000010217000002036465660000000161000c3f000100000003810000000017\
        000003036465660000000162000c2d0004000000fd010027000005000004fe0000020004000005013101780500\
        0006fe00000200";
    const AUTOCOMMIT_OFF: &str = "0700000100000000000000";
    const NO_SUCH_TABLE: &str = "27000001ff7a042334325330325461626c6520276e6f737563682e742720646f\
        65736e2774206578697374";

    /// The session's two legs as in-memory pipes: (client side of Sluice,
    /// the client's far end, backend side of Sluice, the server's far end).
    fn pipes() -> (PacketStream, DuplexStream, PacketStream, DuplexStream) {
        let (client, client_far) = tokio::io::duplex(1 << 16);
        let (backend, backend_far) = tokio::io::duplex(1 << 16);
        (
            PacketStream::over(client, Peer::Client),
            client_far,
            PacketStream::over(backend, Peer::Backend),
            backend_far,
        )
    }

    /// Relays the server's `answer` to `query`; the bytes the client got
    /// and the session state after.
    async fn relay(
        query: &[u8],
        answer: &[u8],
    ) -> (Result<(), SessionError>, Vec<u8>, SessionState) {
        relay_classified(query, answer, None).await
    }

    async fn relay_classified(
        query: &[u8],
        answer: &[u8],
        classification: Option<&Classification>,
    ) -> (Result<(), SessionError>, Vec<u8>, SessionState) {
        let (mut client, mut client_far, mut backend, mut backend_far) = pipes();
        backend_far.write_all(answer).await.unwrap();
        drop(backend_far);
        let mut state = SessionState::new(StatusFlags::SERVER_STATUS_AUTOCOMMIT, None);
        let mut io = SessionIo {
            client: &mut client,
            backend: &mut backend,
            caps: basic_caps(),
            state: &mut state,
        };
        let command = Some(Command::Query(query));
        let result = relay_response_to(&mut io, code::QUERY, command.as_ref(), classification)
            .await
            .map(|_| ());
        drop(client);
        let mut got = Vec::new();
        client_far.read_to_end(&mut got).await.unwrap();
        (result, got, state)
    }

    #[tokio::test]
    async fn a_result_set_reaches_the_client_byte_for_byte() {
        let answer = hex(SELECT_1_X);
        let (result, got, state) = relay(b"SELECT 1 AS a, 'x' AS b", &answer).await;
        result.unwrap();
        assert_eq!(got, answer);
        assert_eq!(state.autocommit(), Some(true));
        assert_eq!(state.in_transaction(), Some(false));
    }

    #[tokio::test]
    async fn the_state_follows_the_servers_status_flags() {
        let answer = hex(AUTOCOMMIT_OFF);
        let (result, got, state) = relay(b"SET autocommit = 0", &answer).await;
        result.unwrap();
        assert_eq!(got, answer);
        assert_eq!(state.autocommit(), Some(false));
        assert!(!state.is_autocommit_idle());
    }

    #[tokio::test]
    async fn an_error_is_relayed_and_leaves_the_status_unknown() {
        let answer = hex(NO_SUCH_TABLE);
        let (result, got, state) = relay(b"SELECT * FROM nosuch.t", &answer).await;
        result.unwrap();
        assert_eq!(got, answer);
        assert_eq!(state.status(), None);
    }

    #[tokio::test]
    async fn an_error_of_a_statement_that_cannot_change_the_transaction_keeps_the_status() {
        let answer = hex(NO_SUCH_TABLE);
        let sql = b"INSERT INTO nosuch.t VALUES (1)";
        let classification = sluice_classifier::classify(sql);
        let (result, got, state) = relay_classified(sql, &answer, Some(&classification)).await;
        result.unwrap();
        assert_eq!(got, answer);
        assert_eq!(state.status(), Some(StatusFlags::SERVER_STATUS_AUTOCOMMIT));
        assert!(state.is_autocommit_idle());
    }

    #[tokio::test]
    async fn a_server_that_hangs_up_mid_response_ends_the_session() {
        let answer = hex(SELECT_1_X);
        let cut = &answer[..answer.len() - 5];
        let (result, got, _) = relay(b"SELECT 1 AS a, 'x' AS b", cut).await;
        let error = result.unwrap_err();
        assert_eq!(error.peer(), Some(Peer::Backend));
        assert!(error.is_disconnect(), "{error}");
        // What the server sent before it went is what the client got.
        assert!(answer.starts_with(&got) && !got.is_empty());
    }
}
