//! The leader's side of a batch: build one multi-row INSERT from the
//! members' own row bytes, run it on this session's connection inside a
//! transaction, and tell every member its result.
//!
//! The transaction is what keeps results exact: the multi-row statement
//! is committed as it stands only if it succeeded for every row without a
//! warning, which the server decides itself in a statement sent in the
//! same write as the INSERT. On MariaDB 10.7 and later the batch runs as
//! `INSERT IGNORE`, so a row that meets a duplicate key (or a missing
//! parent, a failed CHECK, no partition) is skipped instead of failing
//! the batch; the transaction then stays open, Sluice asks the server
//! for each condition with its row (in the first write already, when the
//! key's batches mostly leave conditions: `recent.rs`), and if every
//! condition is a skipped row the batch is committed and only the
//! skipped rows' members run their own statement alone (`skips.rs`).
//! Anything else rolls the batch back and every member runs alone, on its
//! own connection, and gets the server's own answer (error, warnings and
//! all). A row is never applied twice; a connection lost after the batch
//! was sent and before the server's answer leaves the outcome unknown.

use std::borrow::Cow;
use std::collections::VecDeque;

use sluice_batch::BatchManager;
use tracing::Instrument;

use super::admission::Candidate;
use super::halving;
use super::key::BatchKey;
use super::member::{Assignment, Isolation, LeaderPicker, Member, MemberResult};
use super::skips::{RowFate, SKIPPING_ERRORS};
use super::verdict::{
    ids_of, interrupted, member_result, previous_last_insert_id, skip_splits_a_member, verdict,
    verdict_on_report, verdict_reported, Answers, Ending, Verdict,
};
use super::{BatchContext, SessionBatching};
use crate::error::SessionError;
use crate::exchange::SessionIo;
use crate::internal::{encode_query, quote_ident, read_result, QueryResult};
use crate::statement::Statement;

/// Calls `complete` for the key when the batch is over, however it ends,
/// so rows queued behind it are never stuck.
struct InFlight<'a> {
    manager: &'a BatchManager<BatchKey, Member, LeaderPicker>,
    key: &'a BatchKey,
    rows: usize,
    committing: bool,
}

impl<'a> InFlight<'a> {
    fn new(ctx: &'a BatchContext, key: &'a BatchKey, rows: usize) -> InFlight<'a> {
        InFlight {
            manager: &ctx.manager,
            key,
            rows,
            committing: false,
        }
    }

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

/// How running the batch ended, with the error that ended the leader's
/// session where there is one.
enum BatchRun {
    Ended(Ending),
    /// The batch could not be sent, or its rollback failed: the server
    /// rolls back as the connection closes.
    NotCommitted(SessionError),
    /// The connection failed after the batch was sent, or the server's
    /// answer made no sense: it may or may not have committed.
    Unknown(SessionError),
}

pub(super) async fn lead(
    batching: &mut SessionBatching,
    io: &mut SessionIo<'_>,
    statement: &Statement<'_>,
    candidate: Candidate,
    others: Vec<Member>,
) -> Result<(), SessionError> {
    let ctx = batching.ctx.clone();
    if others.is_empty() {
        // Alone in its batch: the plain statement gives the exact result.
        let in_flight = InFlight::new(&ctx, &candidate.key, 1);
        let result = batching.run_alone(io, statement).await;
        drop(in_flight);
        return result;
    }
    // Its lines carry the batch's number; the members' ids are at debug.
    let span = tracing::info_span!("batch", batch_id = ctx.next_batch_id());
    lead_group(batching, io, statement, candidate, others)
        .instrument(span)
        .await
}

/// Runs the batch of `candidate` and `others` and tells every member. A
/// batch that fails as a whole (anything but skipped rows) is halved, and
/// each half run as a batch of its own, down to the rows that fail, which
/// run alone: about 2·log2 N statements per bad row instead of N
/// (`halving.rs` bounds how many).
async fn lead_group(
    batching: &mut SessionBatching,
    io: &mut SessionIo<'_>,
    statement: &Statement<'_>,
    candidate: Candidate,
    others: Vec<Member>,
) -> Result<(), SessionError> {
    let ctx = batching.ctx.clone();
    let rows = others.len() + 1;
    let mut in_flight = InFlight::new(&ctx, &candidate.key, rows);
    tracing::debug!(
        rows,
        members = ?others.iter().map(|m| m.conn_id).collect::<Vec<_>>(),
        "batch formed"
    );
    let isolating = candidate.reports_skipped_rows;
    let returning = candidate.facts.auto_increment.is_some();
    let mut parts: VecDeque<Vec<Slot>> = VecDeque::from([std::iter::once(Slot::Leader)
        .chain(others.into_iter().map(Slot::Member))
        .collect::<Vec<_>>()]);
    let mut batches_left = halving::batch_budget(rows);
    let mut own = None;
    let mut before = LastInsertId::default();
    let mut lost = None;
    while let Some(part) = parts.pop_front() {
        if lost.is_some() || part.len() < 2 || batches_left == 0 {
            // Not run as a batch: each runs its own statement alone (the
            // leader last, below, on this connection if it still works).
            let why = if lost.is_some() {
                Isolation::NotSent
            } else {
                Isolation::BatchFailed
            };
            for slot in part {
                match slot {
                    Slot::Leader => own = Some(MemberResult::RunAlone(why)),
                    Slot::Member(member) => tell(member, MemberResult::RunAlone(why)),
                }
            }
            continue;
        }
        batches_left -= 1;
        let weights: Vec<usize> = part.iter().map(|slot| slot.rows(&candidate)).collect();
        let part_rows: usize = weights.iter().sum();
        let sql = build_statement(&candidate, statement, &part, isolating);
        let settling = if isolating {
            Settling::Reporting {
                may_commit: weights.iter().all(|&w| w == 1),
                at_once: candidate.key.recent().expect_conditions(),
            }
        } else {
            Settling::InServer
        };
        let started = std::time::Instant::now();
        let run = run_batch(io, &sql, settling, returning, &weights, &mut in_flight).await;
        tracing::debug!(
            rows = part_rows,
            elapsed_us = started.elapsed().as_micros() as u64,
            "batch ran"
        );
        let (ending, error) = match run {
            BatchRun::Ended(ending) => (ending, None),
            BatchRun::NotCommitted(e) => (Ending::NotCommitted, Some(e)),
            BatchRun::Unknown(e) => (Ending::Unknown, Some(e)),
        };
        match ending {
            Ending::Committed { rows, previous_id } => {
                before.observe(previous_id);
                let went_in = rows.iter().filter_map(|r| r.id()).count();
                if went_in > 0 {
                    ctx.stats.on_batch(went_in, &candidate.facts.label);
                    before.moved(returning);
                }
                let mut start = 0;
                for (slot, n) in part.into_iter().zip(weights) {
                    // The verdict gave one fate per row; should it not
                    // have, nobody is told a row went in that may not.
                    let result = match rows.get(start..start + n) {
                        Some(mine) => member_result(mine),
                        None => {
                            ctx.stats.on_outcome_unknown();
                            MemberResult::Unknown
                        }
                    };
                    start += n;
                    match slot {
                        Slot::Leader => own = Some(result),
                        Slot::Member(member) => tell(member, result),
                    }
                }
            }
            Ending::NotApplied { previous_id } => {
                before.observe(previous_id);
                ctx.stats.on_failure();
                let (first, second) = halving::halves(part);
                parts.push_front(second);
                parts.push_front(first);
            }
            Ending::NotCommitted => {
                // Nothing of this part was written, and the connection is
                // unusable: its members run alone, the leader's session ends.
                ctx.stats.on_failure();
                for slot in part {
                    if let Slot::Member(member) = slot {
                        tell(member, MemberResult::RunAlone(Isolation::NotSent));
                    }
                }
                let error = error.unwrap_or_else(|| unexpected("batch not committed"));
                lost = Some((error, false));
            }
            Ending::Unknown => {
                let error = error.unwrap_or_else(|| unexpected("batch outcome unknown"));
                sluice_metrics::warn_throttled!(
                    rows = part_rows,
                    error = %error,
                    "outcome of a batch unknown"
                );
                let mut leader_here = false;
                for slot in part {
                    ctx.stats.on_outcome_unknown();
                    match slot {
                        Slot::Leader => leader_here = true,
                        Slot::Member(member) => tell(member, MemberResult::Unknown),
                    }
                }
                lost = Some((error, leader_here));
            }
        }
    }
    drop(in_flight);
    match (own, lost) {
        (
            Some(MemberResult::Inserted {
                insert_id: id,
                rows,
            }),
            lost,
        ) => {
            let generated = candidate.generates_id.then_some(id);
            let answered = batching.answer_inserted(io, id, generated, rows).await;
            match lost {
                // The row went in with an earlier part; the connection is
                // gone or out of step since: the session ends.
                Some((error, _)) => Err(error),
                None => answered,
            }
        }
        (_, Some((error, leader_unknown))) => {
            if leader_unknown {
                // The leader's client is told too, then the session ends:
                // its server connection is gone or out of step.
                let _ = batching.answer_unknown(io).await;
            }
            Err(error)
        }
        (Some(MemberResult::Unknown), None) => batching.answer_unknown(io).await,
        (own, None) => {
            // The leader's own row was skipped, or failed with its part.
            let why = match own {
                Some(MemberResult::RunAlone(why)) => why,
                _ => Isolation::BatchFailed,
            };
            ctx.stats.on_isolated(why);
            batching.restore_last_insert_id(before.value());
            batching.run_alone(io, statement).await
        }
    }
}

/// One member of a batch or of a part of it: the leader's own statement,
/// or another session's.
enum Slot {
    Leader,
    Member(Member),
}

impl Slot {
    /// How many rows it puts in the batch.
    fn rows(&self, candidate: &Candidate) -> usize {
        match self {
            Slot::Leader => candidate.rows,
            Slot::Member(member) => member.rows,
        }
    }
}

fn tell(member: Member, result: MemberResult) {
    // A member whose session is gone has no one to tell.
    let _ = member.reply.send(Assignment::Done(result));
}

/// `LAST_INSERT_ID()` of the leader's connection before the first part
/// that moved it, for the leader's own statement should it run alone.
#[derive(Default)]
struct LastInsertId {
    value: Option<u64>,
    moved: bool,
}

impl LastInsertId {
    /// A part's `RETURNING` read the value before that part.
    fn observe(&mut self, previous: Option<u64>) {
        if !self.moved && self.value.is_none() {
            self.value = previous;
        }
    }

    /// A part committed rows with generated ids.
    fn moved(&mut self, returning: bool) {
        self.moved |= returning;
    }

    fn value(&self) -> Option<u64> {
        self.value
    }
}

/// `prefix row1,row2,… [RETURNING col] suffix`: the leader's own text
/// around the rows, which every member shares by the batch key.
/// With `reporting`, the statement is an `INSERT IGNORE` (if it does not
/// say so already). Its `RETURNING` also gives `LAST_INSERT_ID()` as it
/// was before the statement (the function reads the previous statement's
/// value), to be put back should the leader's own statement run alone.
fn build_statement(
    candidate: &Candidate,
    statement: &Statement<'_>,
    part: &[Slot],
    reporting: bool,
) -> Vec<u8> {
    let row = |slot: &'_ Slot| match slot {
        Slot::Leader => candidate.row.clone(),
        Slot::Member(member) => member.row.clone(),
    };
    let rows_len: usize = part.iter().map(|s| row(s).len() + 1).sum();
    let mut sql = Vec::with_capacity(candidate.text_len() + rows_len + 64);
    candidate.write_head(statement, reporting, &mut sql);
    for (i, slot) in part.iter().enumerate() {
        if i > 0 {
            sql.push(b',');
        }
        sql.extend_from_slice(&row(slot));
    }
    if let Some(column) = &candidate.facts.auto_increment {
        sql.extend_from_slice(b" RETURNING ");
        sql.extend_from_slice(quote_ident(column).as_bytes());
        sql.extend_from_slice(b", LAST_INSERT_ID()");
        sql.push(b' ');
    }
    sql.extend_from_slice(candidate.suffix(statement));
    sql
}

/// Opens the batch's transaction. `BEGIN` would open a block instead
/// under `sql_mode = ORACLE`.
const OPEN: &[u8] = b"START TRANSACTION";

/// How a batch's transaction is settled.
#[derive(Debug, Clone, Copy)]
enum Settling {
    /// Before MariaDB 10.7: the server commits a clean batch and rolls
    /// back anything else itself ([`SETTLE_IN_SERVER`]).
    InServer,
    /// An `INSERT IGNORE` batch: the server commits a clean batch
    /// ([`SETTLE_CLEAN`]); one with conditions stays open until Sluice has
    /// asked which rows they name ([`report`]). `may_commit`: no member's
    /// statement has several rows, so the report may commit a batch
    /// whose every condition is a skipped row. `at_once`: the key's
    /// batches mostly leave conditions (`recent.rs`), so the report is
    /// the settling statement itself, sent with the INSERT.
    Reporting { may_commit: bool, at_once: bool },
}

/// Sent in the same write as the INSERT, so the server commits without
/// waiting for another round trip. `@@warning_count` still holds the
/// INSERT's errors and warnings (a statement that uses no table keeps
/// them), so the batch commits only if every row went in cleanly. The
/// rollback branch raises [`ROLLED_BACK`]: which branch ran is the
/// server's word, not a guess. `NO CHAIN NO RELEASE` overrides the
/// session's `completion_type`, which could otherwise open a new
/// transaction or close the connection.
const SETTLE_IN_SERVER: &[u8] = b"IF @@warning_count = 0 THEN COMMIT AND NO CHAIN NO RELEASE; \
    ELSE ROLLBACK AND NO CHAIN NO RELEASE; \
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'sluice: batch rolled back'; END IF";

/// As [`SETTLE_IN_SERVER`], but a batch with conditions stays open: its
/// answer's status flags say whether the server committed. Its only
/// branch is the commit, because the server parses every branch of a
/// compound statement whichever runs: with [`report`] as its `ELSE`, it
/// cost a clean batch about 0.1 ms more server CPU (of about 0.5 ms for
/// 28 rows, measured on 10.11).
const SETTLE_CLEAN: &[u8] = b"IF @@warning_count = 0 THEN COMMIT AND NO CHAIN NO RELEASE; END IF";

/// The report of a batch of `rows` rows (MariaDB 10.7 and later), sent
/// after [`SETTLE_CLEAN`] left the batch open, or in its place: reads
/// each condition of the INSERT (`errno:row`, for `skips.rs`). It commits
/// there and then, saving a round trip, a batch without conditions, and
/// one whose every condition is a skipped row (one of
/// [`SKIPPING_ERRORS`], rows named once each, in order, within the
/// batch) when all were kept and `may_commit`. It reports
/// `@@warning_count`, the conditions kept, the list, and whether it
/// commits; a transaction it does not commit stays open for Sluice to
/// decide. Neither it nor the settling `IF` before it uses a table, so
/// the INSERT's diagnostics are still there to read. The row goes out
/// before the `COMMIT`, so a commit that fails (a Galera certification
/// conflict, say) makes the whole answer that error.
fn report(rows: usize, may_commit: bool) -> Vec<u8> {
    let skipping = SKIPPING_ERRORS.map(|e| e.to_string()).join(", ");
    format!(
        "BEGIN NOT ATOMIC \
         DECLARE w, n, i, e, r, prev, c INT DEFAULT 0; DECLARE s TEXT DEFAULT ''; \
         DECLARE good INT DEFAULT {good}; \
         SET w = @@warning_count; GET DIAGNOSTICS n = NUMBER; SET i = 1; \
         WHILE i <= n DO GET DIAGNOSTICS CONDITION i e = MYSQL_ERRNO, r = ROW_NUMBER; \
         IF e NOT IN ({skipping}) OR r <= prev OR r > {rows} THEN SET good = 0; END IF; \
         SET prev = r; SET s = CONCAT(s, e, ':', r, ' '); SET i = i + 1; END WHILE; \
         SET c = w = n AND (n = 0 OR good = 1); SELECT w, n, s, c; \
         IF c THEN COMMIT AND NO CHAIN NO RELEASE; END IF; END",
        good = u8::from(may_commit),
    )
    .into_bytes()
}

/// Commits a batch whose skipped rows were reported.
const COMMIT: &[u8] = b"COMMIT AND NO CHAIN NO RELEASE";

/// Ends the transaction when [`SETTLE`] itself failed.
const ROLLBACK: &[u8] = b"ROLLBACK AND NO CHAIN NO RELEASE";

/// Runs one batch whose members put in `weights` rows each.
async fn run_batch(
    io: &mut SessionIo<'_>,
    sql: &[u8],
    settling: Settling,
    returning: bool,
    weights: &[usize],
    in_flight: &mut InFlight<'_>,
) -> BatchRun {
    let rows: usize = weights.iter().sum();
    let settle = match settling {
        Settling::InServer => Cow::Borrowed(SETTLE_IN_SERVER),
        Settling::Reporting { at_once: false, .. } => Cow::Borrowed(SETTLE_CLEAN),
        Settling::Reporting {
            at_once: true,
            may_commit,
        } => Cow::Owned(report(rows, may_commit)),
    };
    let mut out = Vec::with_capacity(sql.len() + OPEN.len() + settle.len() + 16);
    encode_query(&mut out, OPEN);
    encode_query(&mut out, sql);
    encode_query(&mut out, &settle);
    if let Err(e) = io.backend.write_all(&out).await {
        // The settling statement is the last bytes written: the server
        // cannot have run it, and rolls back as the connection closes.
        return BatchRun::NotCommitted(e);
    }
    // From here on the server may have committed whatever is not read.
    let mut answers = [None, None, None];
    let mut lost = None;
    for (i, answer) in answers.iter_mut().enumerate() {
        let result = match read_result(io.backend, io.caps).await {
            Ok(result) => result,
            Err(e) => {
                lost = Some(e);
                break;
            }
        };
        if i == 1 && ids_of(&result, returning, rows).is_some() {
            // The server is committing: the rows queued behind may
            // execute while the commit reaches disk.
            in_flight.committing();
        }
        *answer = Some(result);
    }
    let [opened, insert, settled] = &answers;
    let answers = Answers {
        opened: opened.as_ref(),
        insert: insert.as_ref(),
        settled: settled.as_ref(),
    };
    let previous_id = previous_last_insert_id(answers.insert);
    if let (Settling::Reporting { .. }, Some(insert)) = (settling, answers.insert) {
        if let Some(conditions) = left_conditions(insert) {
            in_flight.key.recent().record(conditions);
        }
    }
    let mut decided = match settling {
        Settling::Reporting { at_once: true, .. } => verdict_reported(answers, returning, rows),
        _ => verdict(answers, returning, rows),
    };
    if let (Verdict::Report, Settling::Reporting { may_commit, .. }, Some(insert)) =
        (&decided, settling, answers.insert)
    {
        match ask(io, &report(rows, may_commit)).await {
            Ok(report) => decided = verdict_on_report(insert, &report, returning, rows),
            Err(Asked::NotSent(e)) => return BatchRun::NotCommitted(e),
            // The report may have committed.
            Err(Asked::Lost(e)) => return BatchRun::Unknown(e),
        }
    }
    match decided {
        Verdict::Committed(ids) => BatchRun::Ended(Ending::Committed {
            rows: ids.into_iter().map(RowFate::Inserted).collect(),
            previous_id,
        }),
        Verdict::CommittedSkipping(fates) => {
            let skipped = fates.iter().filter(|f| f.id().is_none()).count();
            tracing::debug!(
                rows,
                skipped,
                "batch committed by the server without its skipped rows"
            );
            BatchRun::Ended(Ending::Committed {
                rows: fates,
                previous_id,
            })
        }
        Verdict::CommitSkipping(fates) if skip_splits_a_member(&fates, weights) => {
            roll_back(
                io,
                "a skipped row of a client INSERT of several rows",
                previous_id,
            )
            .await
        }
        Verdict::CommitSkipping(fates) => match commit_skipping(io, in_flight).await {
            Ok(QueryResult::Ok { .. }) => {
                let skipped = fates.iter().filter(|f| f.id().is_none()).count();
                tracing::debug!(rows, skipped, "batch committed without its skipped rows");
                BatchRun::Ended(Ending::Committed {
                    rows: fates,
                    previous_id,
                })
            }
            // Stopped from outside: it may have committed first.
            Ok(stopped) if interrupted(&stopped) => {
                BatchRun::Unknown(unexpected("COMMIT interrupted"))
            }
            // A commit refused (a Galera certification conflict, say).
            Ok(_) => roll_back(io, "commit failed", previous_id).await,
            Err(e) => BatchRun::Unknown(e),
        },
        Verdict::NotApplied(why) => {
            tracing::debug!(rows, why, "batch not applied; members run alone");
            BatchRun::Ended(Ending::NotApplied { previous_id })
        }
        Verdict::RollBack(why) => roll_back(io, why, previous_id).await,
        Verdict::Report => roll_back(io, "warnings left the transaction open", previous_id).await,
        Verdict::Unknown(why) => BatchRun::Unknown(lost.unwrap_or_else(|| unexpected(why))),
    }
}

/// Whether an INSERT that ran left conditions (`None`: it failed).
fn left_conditions(insert: &QueryResult) -> Option<bool> {
    match insert {
        QueryResult::Ok { warnings, .. } | QueryResult::Rows { warnings, .. } => {
            Some(*warnings > 0)
        }
        QueryResult::Err(_) => None,
    }
}

/// Rolls the batch back; the members then run alone. If even that fails,
/// the leader's session ends, and the server rolls back as the
/// connection closes.
async fn roll_back(
    io: &mut SessionIo<'_>,
    why: &'static str,
    previous_id: Option<u64>,
) -> BatchRun {
    match finish(io, ROLLBACK).await {
        Ok(QueryResult::Ok { .. }) => {
            tracing::debug!(why, "batch rolled back; members run alone");
            BatchRun::Ended(Ending::NotApplied { previous_id })
        }
        Ok(_) => BatchRun::NotCommitted(unexpected("ROLLBACK failed")),
        Err(e) => BatchRun::NotCommitted(e),
    }
}

fn unexpected(detail: &'static str) -> SessionError {
    SessionError::protocol(crate::error::Peer::Backend)(sluice_protocol::ProtocolError::Malformed {
        what: "batch",
        detail: detail.into(),
    })
}

/// Commits a batch whose skipped rows were reported. Its rows are decided
/// once the `COMMIT` is on its way: the rows queued behind it may execute
/// while it reaches disk.
async fn commit_skipping(
    io: &mut SessionIo<'_>,
    in_flight: &mut InFlight<'_>,
) -> Result<QueryResult, SessionError> {
    let mut out = Vec::with_capacity(COMMIT.len() + 8);
    encode_query(&mut out, COMMIT);
    io.backend.write_all(&out).await?;
    in_flight.committing();
    read_result(io.backend, io.caps).await
}

/// Why [`ask`] got no answer.
enum Asked {
    /// The statement could not be written: the server never ran it.
    NotSent(SessionError),
    /// The connection failed after it was written.
    Lost(SessionError),
}

/// Sends one statement and reads its answer, telling apart a statement
/// that never left from one whose effect is unknown.
async fn ask(io: &mut SessionIo<'_>, sql: &[u8]) -> Result<QueryResult, Asked> {
    let mut out = Vec::with_capacity(sql.len() + 8);
    encode_query(&mut out, sql);
    io.backend.write_all(&out).await.map_err(Asked::NotSent)?;
    read_result(io.backend, io.caps).await.map_err(Asked::Lost)
}

async fn finish(io: &mut SessionIo<'_>, sql: &[u8]) -> Result<QueryResult, SessionError> {
    ask(io, sql).await.map_err(|asked| match asked {
        Asked::NotSent(e) | Asked::Lost(e) => e,
    })
}

#[cfg(test)]
mod tests;
