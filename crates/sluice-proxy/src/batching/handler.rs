//! The batch handler: a statement admitted to a batch is queued, then
//! either leads the batch on this session's own backend connection or is
//! answered with the result its leader sent; a statement turned away goes
//! back to the relay.

use std::sync::Arc;

use sluice_classifier::Classification;
use sluice_protocol::command::Command;
use sluice_protocol::ok::{err_payload, ok_payload, ok_payload_with_info};
use sluice_protocol::packet::encode_packet;
use sluice_protocol::StatusFlags;
use tokio::sync::oneshot;

use super::admission::Source;
use super::context::BatchContext;
use super::decline::Decline;
use super::facts::RecentFacts;
use super::fingerprint::Fingerprint;
use super::key::BatchKey;
use super::leader;
use super::member::{Assignment, Member, MemberResult};
use super::owed::Owed;
use crate::error::SessionError;
use crate::exchange::{relay_response_to, SessionIo};
use crate::internal::{encode_query, read_result, QueryResult};
use crate::session_state::SessionState;
use crate::statement::Statement;

/// MariaDB error used when a batch's outcome cannot be known.
const ER_ERROR_DURING_COMMIT: u16 = 1180;

/// Status flags that describe the session rather than one statement, and
/// so appear in the OK packet Sluice writes for a batched member.
const SESSION_FLAGS: StatusFlags = StatusFlags::SERVER_STATUS_AUTOCOMMIT
    .union(StatusFlags::SERVER_STATUS_NO_BACKSLASH_ESCAPES)
    .union(StatusFlags::SERVER_STATUS_ANSI_QUOTES);

/// Whether batching took the statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// The client has its answer.
    Handled,
    /// Relay the statement as usual.
    Declined,
}

/// Per-session batching state.
pub(crate) struct SessionBatching {
    pub(crate) ctx: Arc<BatchContext>,
    /// The session's `conn_id`, given to the rows it queues.
    pub(super) conn_id: u64,
    /// Which backend the session is on: rows batch only with rows bound
    /// for the same server.
    pub(super) backend: usize,
    /// `None` until read, and again after anything that may change it.
    pub(super) fingerprint: Option<Fingerprint>,
    /// The key of this session's last candidate: reused, hash and all,
    /// while the settings and the statement shape stay the same.
    pub(super) last_key: Option<BatchKey>,
    /// The session may hold temporary tables or table locks, or has
    /// pinned its clock or random seed: never batch.
    pub(super) tainted: bool,
    /// A `SET TRANSACTION` without scope waits for the session's next
    /// transaction, which must run on the session's own connection.
    pub(super) next_transaction_set: bool,
    pub(super) owed: Owed,
    /// The server is too old for `INSERT … RETURNING`.
    pub(super) unsupported: bool,
    /// The server reports the row of each condition (`GET DIAGNOSTICS …
    /// ROW_NUMBER`, MariaDB 10.7): a batch can commit without its skipped
    /// rows.
    pub(super) isolates_skipped_rows: bool,
    /// The session's last batchable text, so that its next INSERT of the
    /// same shape is classified by lexing only its rows.
    memo: sluice_classifier::Memo,
    /// The table facts this session used last.
    pub(super) recent_facts: RecentFacts,
}

impl SessionBatching {
    pub(crate) fn new(
        ctx: Arc<BatchContext>,
        conn_id: u64,
        backend: usize,
        server_version: Option<(u16, u16, u16)>,
    ) -> Self {
        let unsupported = server_version.is_none_or(|v| v < (10, 5, 0));
        let isolates_skipped_rows = server_version.is_some_and(|v| v >= (10, 7, 0));
        SessionBatching {
            ctx,
            conn_id,
            backend,
            fingerprint: None,
            last_key: None,
            tainted: false,
            next_transaction_set: false,
            owed: Owed::default(),
            unsupported,
            isolates_skipped_rows,
            memo: sluice_classifier::Memo::default(),
            recent_facts: RecentFacts::default(),
        }
    }

    /// The session settings may have changed: read them again before the
    /// next candidate.
    pub(super) fn forget_settings(&mut self) {
        self.fingerprint = None;
        self.last_key = None;
    }

    /// Classifies the SQL text `command` runs (a query's own, or a
    /// prepared statement's), as the session reads texts now.
    pub(crate) fn classify(
        &mut self,
        command: Option<&Command<'_>>,
        state: &SessionState,
    ) -> Option<Classification> {
        let (sql, prepared) = match command? {
            Command::Query(sql) => (*sql, false),
            Command::StmtExecute { stmt_id, .. } => {
                (state.statement(*stmt_id)?.sql.as_deref()?, true)
            }
            _ => return None,
        };
        Some(self.ctx.classifier.classify_remembering(
            sql,
            state.classifier_options(prepared),
            &mut self.memo,
        ))
    }

    /// Tries to batch `statement`.
    pub(crate) async fn offer(
        &mut self,
        statement: &Statement<'_>,
        io: &mut SessionIo<'_>,
    ) -> Result<Offer, SessionError> {
        let Some(source) = Source::of(statement, io.state) else {
            return Ok(Offer::Declined);
        };
        let Some(classification) = statement.classification.as_ref() else {
            return Ok(Offer::Declined);
        };
        // One clock read serves the table facts, the queue and both
        // latency figures, unless admission had to ask the server: a
        // row's wait starts when it is queued.
        let settings_known = self.fingerprint.is_some();
        let facts_reads = self.recent_facts.reads;
        let arrived = tokio::time::Instant::now();
        let Some(candidate) = self
            .candidate(statement, &source, classification, io, arrived.into_std())
            .await?
        else {
            return Ok(Offer::Declined);
        };
        // A candidate has its settings: they were read now if they were
        // not known before.
        let asked_server = !settings_known || self.recent_facts.reads != facts_reads;
        let queued_at = if asked_server {
            tokio::time::Instant::now()
        } else {
            arrived
        };
        let (reply, assignment) = oneshot::channel();
        let member = Member {
            conn_id: self.conn_id,
            row: candidate.row.clone(),
            rows: candidate.rows,
            generates_id: candidate.generates_id,
            reply,
        };
        let bytes = candidate.row.len();
        if self
            .ctx
            .manager
            .submit_at(
                queued_at.into_std(),
                candidate.key.clone(),
                member,
                bytes,
                candidate.max_wait,
            )
            .is_err()
        {
            self.ctx.stats.unbatched(Decline::QueueFull);
            return Ok(Offer::Declined);
        }
        let assignment = assignment.await;
        self.ctx.stats.metrics().row_waited(queued_at.elapsed());
        match assignment {
            Ok(Assignment::Lead(others)) => {
                leader::lead(self, io, statement, candidate, others).await?;
            }
            Ok(Assignment::Done(MemberResult::Inserted { insert_id, rows })) => {
                let generated = candidate.generates_id.then_some(insert_id);
                self.answer_inserted(io, insert_id, generated, rows).await?;
            }
            Ok(Assignment::Done(MemberResult::RunAlone(why))) => {
                self.ctx.stats.on_isolated(why);
                self.run_alone(io, statement).await?;
            }
            Ok(Assignment::Done(MemberResult::Unknown)) => {
                // Counted by the leader, with every row of the batch.
                self.answer_unknown(io).await?;
            }
            Err(_) => {
                // The leader went away without a word.
                self.ctx.stats.on_outcome_unknown();
                self.answer_unknown(io).await?;
            }
        }
        self.ctx.stats.metrics().row_answered(queued_at.elapsed());
        Ok(Offer::Handled)
    }

    /// Writes the OK packet the member would have got alone for `rows`
    /// rows put in without a warning.
    pub(super) async fn answer_inserted(
        &mut self,
        io: &mut SessionIo<'_>,
        insert_id: u64,
        generated_id: Option<u64>,
        rows: usize,
    ) -> Result<(), SessionError> {
        let status = io
            .state
            .status()
            .unwrap_or(StatusFlags::SERVER_STATUS_AUTOCOMMIT)
            .intersection(SESSION_FLAGS);
        let mut out = Vec::with_capacity(64);
        let payload = if rows > 1 {
            // What MariaDB adds to the OK of an INSERT of several rows.
            let info = format!("Records: {rows}  Duplicates: 0  Warnings: 0");
            ok_payload_with_info(rows as u64, insert_id, status, 0, &info)
        } else {
            ok_payload(1, insert_id, status, 0)
        };
        encode_packet(&mut out, 1, &payload);
        io.client.write_all(&out).await?;
        self.owed.on_batched(generated_id);
        Ok(())
    }

    pub(super) async fn answer_unknown(
        &mut self,
        io: &mut SessionIo<'_>,
    ) -> Result<(), SessionError> {
        let message = "Sluice lost the server connection while running the batch \
                       that held this INSERT: whether the row was written is unknown";
        let mut out = Vec::new();
        encode_packet(
            &mut out,
            1,
            &err_payload(ER_ERROR_DURING_COMMIT, b"HY000", message),
        );
        io.client.write_all(&out).await
    }

    /// Runs the member's own statement on its own connection and relays
    /// the server's answer, exactly as without batching.
    pub(super) async fn run_alone(
        &mut self,
        io: &mut SessionIo<'_>,
        statement: &Statement<'_>,
    ) -> Result<(), SessionError> {
        // Settle owed effects first, so the statement's own ROW_COUNT(),
        // warnings and (if it fails) unchanged LAST_INSERT_ID() are what
        // the client sees afterwards. Its rows cannot observe them; an
        // update clause may read ROW_COUNT(), and gets the full settling.
        let mut out = Vec::new();
        let may_read_session = statement
            .classification
            .as_ref()
            .and_then(|c| c.batchable().ok())
            .is_none_or(|insert| insert.update_clause().is_some());
        let settlement = self.owed.settle_before_own_insert(may_read_session);
        if let Some(sql) = &settlement {
            encode_query(&mut out, sql.as_bytes());
        }
        out.extend_from_slice(statement.packet);
        io.backend.write_all(&out).await?;
        if settlement.is_some() {
            Self::read_reconcile(io).await?;
        }
        relay_response_to(
            io,
            statement.command_byte(),
            statement.command.as_ref(),
            statement.classification.as_ref(),
        )
        .await
        .map(|_| ())
    }

    /// A batch this session led moved its connection's `LAST_INSERT_ID()`
    /// (from `previous_id`, when known) and its own statement now runs
    /// alone: should that fail, the value from before must stand, so it
    /// is owed, unless an earlier batched row already owes one.
    pub(super) fn restore_last_insert_id(&mut self, previous_id: Option<u64>) {
        if self.owed.last_insert_id.is_none() {
            self.owed.last_insert_id = previous_id;
        }
    }

    /// Before relaying `command` (a command byte): the statement that
    /// settles owed effects, to send ahead of it in the same write, when
    /// the command could observe them. Its answer is read with
    /// [`Self::read_reconcile`] once the command is written.
    pub(crate) fn reconcile_before(&mut self, command: u8) -> Option<String> {
        self.owed.settle_before(command)
    }

    /// Reads the answer to a pipelined reconcile statement.
    pub(crate) async fn read_reconcile(io: &mut SessionIo<'_>) -> Result<(), SessionError> {
        if let QueryResult::Err(e) = read_result(io.backend, io.caps).await? {
            sluice_metrics::warn_throttled!(
                code = e.code,
                message = %e.message,
                "reconcile statement failed"
            );
        }
        Ok(())
    }
}
