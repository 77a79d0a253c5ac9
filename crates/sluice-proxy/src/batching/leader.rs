//! The leader's side of a batch: build one multi-row INSERT from the
//! members' own row bytes, run it on this session's connection inside a
//! transaction, and tell every member its result.
//!
//! The transaction is what keeps results exact: the multi-row statement
//! is committed only if it succeeded for every row without a warning and
//! returned one id per row. Otherwise it is rolled back and every member
//! runs its own statement alone, on its own connection, and gets the
//! server's own answer (error, warnings and all). A row is never applied
//! twice, and only a connection lost during COMMIT leaves an outcome
//! unknown.

use sluice_batch::BatchManager;

use super::key::BatchKey;
use super::member::{Assignment, LeaderPicker, Member, MemberResult};
use super::{Candidate, SessionBatching, SessionIo};
use crate::error::SessionError;
use crate::internal::{encode_query, quote_ident, read_result, QueryResult};
use crate::io::Packet;

/// Calls `complete` for the key when the batch is over, however it ends,
/// so rows queued behind it are never stuck.
struct InFlight<'a> {
    manager: &'a BatchManager<BatchKey, Member, LeaderPicker>,
    key: &'a BatchKey,
    rows: usize,
    committing: bool,
}

impl InFlight<'_> {
    /// The batch executed and waits for its COMMIT: the rows queued
    /// behind it may execute meanwhile.
    fn committing(&mut self) {
        if !self.committing {
            self.committing = true;
            self.manager.committing(self.key, self.rows);
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.manager.complete(self.key, self.rows, self.committing);
    }
}

/// Outcome of running the batch statement.
enum BatchRun {
    /// Committed: one insert id per member (0 without AUTO_INCREMENT).
    Committed(Vec<u64>),
    /// Rolled back or never applied: everyone runs alone.
    NotApplied(&'static str),
    /// The connection failed during COMMIT.
    Unknown(SessionError),
    /// The connection failed before COMMIT: the server rolled back.
    LostBeforeCommit(SessionError),
}

pub(super) async fn lead(
    batching: &mut SessionBatching,
    io: &mut SessionIo<'_>,
    packet: &Packet,
    candidate: Candidate,
    others: Vec<Member>,
) -> Result<(), SessionError> {
    let ctx = batching.ctx.clone();
    let mut in_flight = InFlight {
        manager: &ctx.manager,
        key: &candidate.key,
        rows: others.len() + 1,
        committing: false,
    };
    if others.is_empty() {
        // Alone in its batch: the plain statement gives the exact result.
        let result = batching.run_alone(io, packet).await;
        drop(in_flight);
        return result;
    }
    let rows = others.len() + 1;
    let sql = build_statement(&candidate, packet, &others);
    let started = std::time::Instant::now();
    let returning = candidate.facts.auto_increment.is_some();
    let run = run_batch(io, &sql, returning, rows, &mut in_flight).await;
    drop(in_flight);
    tracing::debug!(
        rows,
        elapsed_us = started.elapsed().as_micros() as u64,
        "batch ran"
    );
    match run {
        BatchRun::Committed(ids) => {
            ctx.stats.on_batch(rows, &candidate.facts.label);
            for (member, id) in others.into_iter().zip(&ids[1..]) {
                let _ = member
                    .reply
                    .send(Assignment::Done(MemberResult::Inserted { insert_id: *id }));
            }
            let own = ids[0];
            let generated = candidate.generates_id.then_some(own);
            batching.answer_inserted(io, own, generated).await
        }
        BatchRun::NotApplied(why) => {
            tracing::debug!(rows, why, "batch not applied; members run alone");
            ctx.stats.on_failure();
            tell_all(others, MemberResult::RunAlone);
            ctx.stats.on_isolated();
            batching.run_alone(io, packet).await
        }
        BatchRun::LostBeforeCommit(e) => {
            ctx.stats.on_failure();
            tell_all(others, MemberResult::RunAlone);
            Err(e)
        }
        BatchRun::Unknown(e) => {
            tracing::warn!(rows, error = %e, "connection lost during COMMIT of a batch");
            for _ in 0..others.len() {
                ctx.stats.on_outcome_unknown();
            }
            tell_all(others, MemberResult::Unknown);
            ctx.stats.on_outcome_unknown();
            Err(e)
        }
    }
}

fn tell_all(members: Vec<Member>, result: MemberResult) {
    for member in members {
        let _ = member.reply.send(Assignment::Done(result));
    }
}

/// `prefix row1,row2,… [RETURNING col] suffix`: the leader's own text
/// around the rows, which every member shares by the batch key.
fn build_statement(candidate: &Candidate, packet: &Packet, others: &[Member]) -> Vec<u8> {
    let text = candidate.text(packet);
    let (prefix, suffix) = (
        &text[candidate.prefix.clone()],
        &text[candidate.suffix.clone()],
    );
    let rows_len: usize =
        others.iter().map(|m| m.row.len() + 1).sum::<usize>() + candidate.row.len();
    let mut sql = Vec::with_capacity(prefix.len() + rows_len + suffix.len() + 40);
    sql.extend_from_slice(prefix);
    sql.extend_from_slice(&candidate.row);
    for member in others {
        sql.push(b',');
        sql.extend_from_slice(&member.row);
    }
    if let Some(column) = &candidate.facts.auto_increment {
        sql.extend_from_slice(b" RETURNING ");
        sql.extend_from_slice(quote_ident(column).as_bytes());
        sql.push(b' ');
    }
    sql.extend_from_slice(suffix);
    sql
}

async fn run_batch(
    io: &mut SessionIo<'_>,
    sql: &[u8],
    returning: bool,
    rows: usize,
    in_flight: &mut InFlight<'_>,
) -> BatchRun {
    let mut out = Vec::with_capacity(sql.len() + 32);
    encode_query(&mut out, b"BEGIN");
    encode_query(&mut out, sql);
    if let Err(e) = io.backend.write_all(&out).await {
        return BatchRun::LostBeforeCommit(e);
    }
    let begin = match read_result(io.backend, io.caps).await {
        Ok(r) => r,
        Err(e) => return BatchRun::LostBeforeCommit(e),
    };
    let insert = match read_result(io.backend, io.caps).await {
        Ok(r) => r,
        Err(e) => return BatchRun::LostBeforeCommit(e),
    };
    if !matches!(begin, QueryResult::Ok { .. }) {
        // BEGIN failed, so the INSERT ran in autocommit mode; this cannot
        // happen in an autocommit-idle session, but if it did the INSERT's
        // own result stands only if it is an error.
        return match insert {
            QueryResult::Err(_) => BatchRun::NotApplied("begin failed"),
            _ => BatchRun::Unknown(SessionError::protocol(crate::error::Peer::Backend)(
                sluice_protocol::ProtocolError::Malformed {
                    what: "batch",
                    detail: "BEGIN failed but the INSERT ran".into(),
                },
            )),
        };
    }
    let ids = match insert {
        QueryResult::Rows {
            rows: got,
            warnings: 0,
            ..
        } if returning && got.len() == rows => {
            let ids: Option<Vec<u64>> = got
                .iter()
                .map(|r| {
                    r.first()
                        .and_then(|v| v.as_deref())
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .and_then(|v| v.parse::<i64>().ok())
                        // The OK packet carries a negative explicit id as
                        // its two's complement, as MariaDB does.
                        .map(|id| id as u64)
                })
                .collect();
            ids
        }
        QueryResult::Ok {
            affected_rows,
            warnings: 0,
            ..
        } if !returning && affected_rows == rows as u64 => Some(vec![0; rows]),
        _ => None,
    };
    let Some(ids) = ids else {
        return match finish(io, b"ROLLBACK").await {
            Ok(_) => BatchRun::NotApplied("error, warnings or unexpected result"),
            Err(e) => BatchRun::LostBeforeCommit(e),
        };
    };
    in_flight.committing();
    match finish(io, b"COMMIT").await {
        Ok(QueryResult::Ok { .. }) => BatchRun::Committed(ids),
        Ok(_) => BatchRun::NotApplied("commit failed"),
        Err(e) => BatchRun::Unknown(e),
    }
}

async fn finish(io: &mut SessionIo<'_>, sql: &[u8]) -> Result<QueryResult, SessionError> {
    let mut out = Vec::with_capacity(16);
    encode_query(&mut out, sql);
    io.backend.write_all(&out).await?;
    read_result(io.backend, io.caps).await
}
