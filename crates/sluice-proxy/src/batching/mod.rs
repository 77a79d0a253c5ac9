//! Write batching inside a session: decide whether a statement may join a
//! batch, queue it, and then either lead the batch on this session's own
//! backend connection or answer the client with the result the leader
//! sent. Everything else in the session loop is unaware of batching but
//! for two hooks: [`SessionBatching::offer`] before a statement is relayed
//! and [`SessionBatching::after_relay`] after.

mod decline;
mod facts;
mod fingerprint;
mod key;
mod leader;
mod member;
mod owed;
mod prepared;
mod stats;
mod verdict;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice_batch::{BatchManager, BatchSettings};
use sluice_classifier::{
    auto_increment_source, Classification, Classifier, Effects, IdSource, Kind, OtherKind,
    SessionKind, TransactionKind,
};
use sluice_protocol::command::Command;
use sluice_protocol::ok::{err_payload, ok_payload};
use sluice_protocol::packet::encode_packet;
use sluice_protocol::stmt::ExecuteParams;
use sluice_protocol::StatusFlags;
use tokio::sync::oneshot;

use crate::error::SessionError;
use crate::exchange::SessionIo;
use crate::internal::{encode_query, read_result, QueryResult};
use crate::io::Packet;
use crate::session_state::SessionState;

pub use self::decline::Decline;
use self::facts::FactsCache;
use self::fingerprint::Fingerprint;
use self::key::BatchKey;
use self::member::{Assignment, LeaderPicker, Member, MemberResult};
use self::owed::Owed;
pub use self::stats::BatchStats;

/// Which statements may be batched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchMode {
    /// Every INSERT the classifier and the session allow.
    Auto,
    /// Only statements carrying a `/* batch:N */` hint.
    Hint,
}

/// Batching settings the daemon passes in.
#[derive(Debug, Clone)]
pub struct BatchingSettings {
    /// Batching on; off makes Sluice a plain relay.
    pub enabled: bool,
    /// Which statements may be batched.
    pub mode: BatchMode,
    /// Queue and delay settings.
    pub batch: BatchSettings,
}

/// MariaDB error used when a batch's outcome cannot be known.
const ER_ERROR_DURING_COMMIT: u16 = 1180;

/// Status flags that describe the session rather than one statement, and
/// so appear in the OK packet Sluice writes for a batched member.
const SESSION_FLAGS: StatusFlags = StatusFlags::SERVER_STATUS_AUTOCOMMIT
    .union(StatusFlags::SERVER_STATUS_NO_BACKSLASH_ESCAPES)
    .union(StatusFlags::SERVER_STATUS_ANSI_QUOTES);

/// Shared by all sessions.
pub struct BatchContext {
    /// Reloadable: whether batching is on, and in hint mode.
    enabled: AtomicBool,
    hint_mode: AtomicBool,
    manager: BatchManager<BatchKey, Member, LeaderPicker>,
    classifier: Classifier,
    facts: FactsCache,
    stats: Arc<BatchStats>,
}

impl BatchContext {
    /// Starts the batch manager (needs a tokio runtime).
    pub fn start(
        settings: BatchingSettings,
        metrics: sluice_metrics::Metrics,
    ) -> Arc<BatchContext> {
        let stats = Arc::new(BatchStats::new(metrics));
        let adjust_stats = stats.clone();
        Arc::new(BatchContext {
            enabled: AtomicBool::new(settings.enabled),
            hint_mode: AtomicBool::new(settings.mode == BatchMode::Hint),
            manager: BatchManager::start(settings.batch, LeaderPicker, move |a| {
                adjust_stats.on_adjustment(a)
            }),
            classifier: Classifier::default(),
            facts: FactsCache::default(),
            stats,
        })
    }

    /// Whether batching is on (it can be switched by a reload).
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Counters for metrics and tests.
    pub fn stats(&self) -> &Arc<BatchStats> {
        &self.stats
    }

    /// Shutdown: every queued row leaves now.
    pub fn drain(&self) {
        self.manager.drain();
    }

    /// Applies reloaded settings (SIGHUP); sessions see them at their
    /// next statement.
    pub fn set_settings(&self, settings: BatchingSettings) {
        self.enabled.store(settings.enabled, Ordering::Relaxed);
        self.hint_mode
            .store(settings.mode == BatchMode::Hint, Ordering::Relaxed);
        self.manager.set_settings(settings.batch);
    }

    /// Current adaptive delay and queue depth.
    pub fn manager_stats(&self) -> sluice_batch::ManagerStats {
        self.manager.stats()
    }
}

/// Whether batching took the statement.
pub(crate) enum Offer {
    /// The client has its answer.
    Handled,
    /// Relay the statement as usual; its classification, when it was
    /// classified, serves again after the relay.
    Declined(Option<Classification>),
}

/// Per-session batching state.
pub(crate) struct SessionBatching {
    pub(crate) ctx: Arc<BatchContext>,
    /// `None` until read, and again after anything that may change it.
    fingerprint: Option<Fingerprint>,
    /// The session may hold temporary tables or table locks, or has
    /// pinned its clock or random seed: never batch.
    tainted: bool,
    /// A `SET TRANSACTION` without scope waits for the session's next
    /// transaction, which must run on the session's own connection.
    next_transaction_set: bool,
    owed: Owed,
    /// The server is too old for `INSERT … RETURNING`.
    unsupported: bool,
}

/// Where a row comes from.
enum Source<'a> {
    /// COM_QUERY text.
    Text(&'a [u8]),
    /// COM_STMT_EXECUTE of a prepared statement.
    Prepared {
        sql: Arc<[u8]>,
        stmt_id: u32,
        num_params: u16,
        params: &'a [u8],
    },
}

impl Source<'_> {
    fn sql(&self) -> &[u8] {
        match self {
            Source::Text(sql) => sql,
            Source::Prepared { sql, .. } => sql,
        }
    }
}

/// What one batchable statement turned into.
struct Candidate {
    key: BatchKey,
    row: Vec<u8>,
    generates_id: bool,
    max_wait: Option<Duration>,
    /// The text around the row, for the leader: ranges of `text`.
    text: Text,
    prefix: std::ops::Range<usize>,
    suffix: std::ops::Range<usize>,
    facts: Arc<facts::TableFacts>,
}

/// The statement text a candidate came from.
enum Text {
    /// The COM_QUERY payload after its command byte.
    Query,
    /// A prepared statement's text.
    Prepared(Arc<[u8]>),
}

impl Candidate {
    fn text<'a>(&'a self, packet: &'a Packet) -> &'a [u8] {
        match &self.text {
            Text::Query => &packet.payload()[1..],
            Text::Prepared(sql) => sql,
        }
    }
}

impl SessionBatching {
    pub(crate) fn new(ctx: Arc<BatchContext>, server_version: Option<(u16, u16, u16)>) -> Self {
        let unsupported = server_version.is_none_or(|v| v < (10, 5, 0));
        SessionBatching {
            ctx,
            fingerprint: None,
            tainted: false,
            next_transaction_set: false,
            owed: Owed::default(),
            unsupported,
        }
    }

    /// Tries to batch the command in `packet`.
    pub(crate) async fn offer(
        &mut self,
        packet: &Packet,
        command: Option<&Command<'_>>,
        io: &mut SessionIo<'_>,
    ) -> Result<Offer, SessionError> {
        let source = match command {
            Some(Command::Query(sql)) => Source::Text(sql),
            Some(&Command::StmtExecute {
                stmt_id, params, ..
            }) => match io.state.statement(stmt_id) {
                Some(stmt) if !stmt.long_data_pending => match &stmt.sql {
                    Some(sql) => Source::Prepared {
                        sql: sql.clone(),
                        stmt_id,
                        num_params: stmt.num_params,
                        params,
                    },
                    None => return Ok(Offer::Declined(None)),
                },
                _ => return Ok(Offer::Declined(None)),
            },
            _ => return Ok(Offer::Declined(None)),
        };
        let prepared = matches!(source, Source::Prepared { .. });
        let classification = self
            .ctx
            .classifier
            .classify_with(source.sql(), io.state.classifier_options(prepared));
        let Some(candidate) = self.candidate(&source, &classification, io).await? else {
            return Ok(Offer::Declined(Some(classification)));
        };
        let (reply, assignment) = oneshot::channel();
        let member = Member {
            row: candidate.row.clone(),
            generates_id: candidate.generates_id,
            reply,
        };
        let bytes = candidate.row.len();
        let queued_at = std::time::Instant::now();
        if self
            .ctx
            .manager
            .submit(candidate.key.clone(), member, bytes, candidate.max_wait)
            .is_err()
        {
            self.ctx.stats.unbatched(Decline::QueueFull);
            return Ok(Offer::Declined(Some(classification)));
        }
        let assignment = assignment.await;
        self.ctx.stats.metrics().row_waited(queued_at.elapsed());
        match assignment {
            Ok(Assignment::Lead(others)) => {
                leader::lead(self, io, packet, candidate, others).await?;
            }
            Ok(Assignment::Done(MemberResult::Inserted { insert_id })) => {
                let generated = candidate.generates_id.then_some(insert_id);
                self.answer_inserted(io, insert_id, generated).await?;
            }
            Ok(Assignment::Done(MemberResult::RunAlone)) => {
                self.ctx.stats.on_isolated();
                self.run_alone(io, packet).await?;
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

    /// Whether `sql` may join a batch from this session, and under which
    /// key. May read the session fingerprint and table facts on the
    /// session's own connection.
    async fn candidate(
        &mut self,
        source: &Source<'_>,
        classification: &Classification,
        io: &mut SessionIo<'_>,
    ) -> Result<Option<Candidate>, SessionError> {
        if !self.ctx.enabled.load(Ordering::Relaxed) || self.unsupported {
            return Ok(None);
        }
        let sql = source.sql();
        let insert = match classification.batchable() {
            Ok(insert) => insert,
            Err(reason) => {
                if matches!(classification.kind, Kind::Write(_)) {
                    self.ctx.stats.unbatched(Decline::Statement(reason));
                }
                return Ok(None);
            }
        };
        if !io.state.is_autocommit_idle() {
            self.ctx.stats.unbatched(Decline::InTransaction);
            return Ok(None);
        }
        if self.tainted {
            self.ctx.stats.unbatched(Decline::SessionState);
            return Ok(None);
        }
        if self.next_transaction_set {
            self.ctx
                .stats
                .unbatched(Decline::NextTransactionCharacteristics);
            return Ok(None);
        }
        let hint = classification.hints.batch_ms;
        if self.ctx.hint_mode.load(Ordering::Relaxed) && hint.is_none() {
            self.ctx.stats.unbatched(Decline::NoHint);
            return Ok(None);
        }
        if self.fingerprint.is_none() {
            self.fingerprint = Fingerprint::read(io.backend, io.caps).await?;
        }
        let Some(fingerprint) = self.fingerprint.as_ref() else {
            // The server refused the settings query (a variable it does not
            // have): this session is not batched, and not asked again.
            self.unsupported = true;
            self.ctx.stats.unbatched(Decline::SessionSettingsUnreadable);
            return Ok(None);
        };
        if !fingerprint.batchable {
            self.ctx.stats.unbatched(Decline::SessionSettings);
            return Ok(None);
        }
        let schema: &[u8] = match insert.schema() {
            Some(schema) => schema.as_bytes(),
            None => match &fingerprint.database {
                Some(db) => db,
                None => return Ok(None),
            },
        };
        let user = fingerprint.current_user.clone();
        let Some(facts) = self
            .ctx
            .facts
            .lookup(io.backend, io.caps, &user, schema, insert.table())
            .await?
        else {
            self.ctx.stats.unbatched(Decline::TableFactsPending);
            return Ok(None);
        };
        if !facts.batchable {
            self.ctx.stats.unbatched(Decline::Table);
            return Ok(None);
        }
        let row = match source {
            Source::Text(_) => match insert.row_bytes(sql) {
                Ok(row) => row.to_vec(),
                Err(_) => return Ok(None),
            },
            Source::Prepared {
                stmt_id,
                num_params,
                params,
                ..
            } => {
                let Ok(params) = ExecuteParams::parse(params, *num_params) else {
                    return Ok(None);
                };
                if let Some(types) = params.param_types() {
                    io.state.on_types_bound(*stmt_id, types);
                }
                let Some(types) = io
                    .state
                    .statement(*stmt_id)
                    .and_then(|s| s.bound_types.clone())
                else {
                    return Ok(None);
                };
                match prepared::render_prepared_row(
                    sql,
                    insert,
                    &params,
                    &types,
                    &fingerprint.charset,
                ) {
                    Ok(row) => row,
                    Err(reason) => {
                        self.ctx.stats.unbatched(reason);
                        return Ok(None);
                    }
                }
            }
        };
        let row = row.as_slice();
        let generates_id = match &facts.auto_increment {
            None => false,
            Some(column) => match insert
                .columns()
                .iter()
                .position(|c| c.eq_ignore_ascii_case(column))
            {
                None => true,
                Some(index) => {
                    let source = auto_increment_source(
                        row,
                        index,
                        io.state.classifier_options(false),
                        fingerprint.no_auto_value_on_zero,
                    );
                    match source {
                        Some(IdSource::Generated) => true,
                        Some(IdSource::Explicit) => false,
                        None => {
                            self.ctx.stats.unbatched(Decline::IdExpression);
                            return Ok(None);
                        }
                    }
                }
            },
        };
        let key = BatchKey {
            user,
            database: fingerprint.database.clone(),
            fingerprint: fingerprint.bytes.clone(),
            shape: insert.shape_key().clone(),
        };
        Ok(Some(Candidate {
            key,
            row: row.to_vec(),
            generates_id,
            max_wait: hint.map(|ms| Duration::from_millis(u64::from(ms))),
            text: match source {
                Source::Text(_) => Text::Query,
                Source::Prepared { sql, .. } => Text::Prepared(sql.clone()),
            },
            prefix: insert.prefix(),
            suffix: insert.suffix(),
            facts,
        }))
    }

    /// Writes the OK packet the member would have got alone.
    async fn answer_inserted(
        &mut self,
        io: &mut SessionIo<'_>,
        insert_id: u64,
        generated_id: Option<u64>,
    ) -> Result<(), SessionError> {
        let status = io
            .state
            .status()
            .unwrap_or(StatusFlags::SERVER_STATUS_AUTOCOMMIT)
            .intersection(SESSION_FLAGS);
        let mut out = Vec::with_capacity(24);
        encode_packet(&mut out, 1, &ok_payload(1, insert_id, status, 0));
        io.client.write_all(&out).await?;
        self.owed.on_batched(generated_id);
        Ok(())
    }

    async fn answer_unknown(&mut self, io: &mut SessionIo<'_>) -> Result<(), SessionError> {
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
    async fn run_alone(
        &mut self,
        io: &mut SessionIo<'_>,
        packet: &Packet,
    ) -> Result<(), SessionError> {
        // Settle owed effects first, so the statement's own ROW_COUNT(),
        // warnings and (if it fails) unchanged LAST_INSERT_ID() are what
        // the client sees afterwards. The INSERT cannot observe them.
        let mut out = Vec::new();
        let reconcile = self.owed.is_pending();
        if reconcile {
            encode_query(&mut out, self.owed.reconcile_sql().as_bytes());
            self.owed = Owed::default();
        }
        out.extend_from_slice(&packet.bytes);
        io.backend.write_all(&out).await?;
        if reconcile {
            Self::read_reconcile(io).await?;
        }
        crate::exchange::relay_one_response(io, Some(packet.payload())).await
    }

    /// Before relaying a command that may observe the session's last
    /// statement: sends the reconcile statement ahead of it (pipelined, no
    /// extra round trip) and consumes its answer after the command is
    /// written. Returns whether a reconcile answer must be read.
    pub(crate) fn reconcile_before(&mut self, command: u8, out: &mut Vec<u8>) -> bool {
        use sluice_protocol::command::code;
        let harmless = matches!(
            command,
            code::PING
                | code::STATISTICS
                | code::STMT_CLOSE
                | code::STMT_RESET
                | code::STMT_SEND_LONG_DATA
                | code::QUIT
                | code::SET_OPTION
        );
        if harmless || !self.owed.is_pending() {
            return false;
        }
        if matches!(command, code::RESET_CONNECTION | code::CHANGE_USER) {
            self.owed = Owed::default();
            return false;
        }
        encode_query(out, self.owed.reconcile_sql().as_bytes());
        self.owed = Owed::default();
        true
    }

    /// Reads the answer to a pipelined reconcile statement.
    pub(crate) async fn read_reconcile(io: &mut SessionIo<'_>) -> Result<(), SessionError> {
        if let QueryResult::Err(e) = read_result(io.backend, io.caps).await? {
            tracing::warn!(code = e.code, message = %e.message, "reconcile statement failed");
        }
        Ok(())
    }

    /// After a statement was relayed: note what it may have changed.
    /// `lexing` is how the session read texts when the statement was sent.
    pub(crate) fn after_relay(
        &mut self,
        command: Option<&Command<'_>>,
        state: &SessionState,
        lexing: sluice_classifier::Options,
        classified: Option<Classification>,
    ) {
        use sluice_protocol::command::Command as C;
        if state
            .status()
            .is_none_or(|s| s.contains(StatusFlags::SERVER_SESSION_STATE_CHANGED))
        {
            // The server says session state changed (a stored function
            // may set a variable): read the fingerprint again.
            self.fingerprint = None;
        }
        match command {
            Some(C::Query(sql)) => self.after_sql(sql, lexing, classified),
            Some(C::StmtExecute { stmt_id, .. }) => {
                match state.statement(*stmt_id).and_then(|s| s.sql.clone()) {
                    Some(sql) => self.after_sql(&sql, lexing, classified),
                    None => self.fingerprint = None,
                }
            }
            Some(C::InitDb(_)) => self.fingerprint = None,
            Some(C::ChangeUser) | Some(C::ResetConnection) => {
                self.fingerprint = None;
                self.tainted = false;
                self.next_transaction_set = false;
                self.owed = Owed::default();
            }
            Some(
                C::Ping
                | C::Statistics
                | C::StmtClose { .. }
                | C::StmtReset { .. }
                | C::StmtFetch { .. }
                | C::StmtSendLongData { .. }
                | C::StmtPrepare(_)
                | C::FieldList
                | C::ProcessKill
                | C::SetOption
                | C::Quit,
            ) => {}
            _ => self.fingerprint = None,
        }
    }

    /// `classified` is the statement's classification when the offer made
    /// one (same text, same mode): it is not made twice.
    fn after_sql(
        &mut self,
        sql: &[u8],
        lexing: sluice_classifier::Options,
        classified: Option<Classification>,
    ) {
        let classification =
            classified.unwrap_or_else(|| self.ctx.classifier.classify_with(sql, lexing));
        let effects = classification.effects;
        let next_only = match &classification.kind {
            Kind::Transaction(TransactionKind::SetTransaction { next_only }) => *next_only,
            Kind::Transaction(_) => false,
            // One hidden in a multi-statement text.
            _ => effects.sets_next_transaction,
        };
        if next_only {
            self.next_transaction_set = true;
        } else if matches!(
            classification.kind,
            Kind::Write(_)
                | Kind::Transaction(TransactionKind::Begin | TransactionKind::Start { .. })
        ) {
            // This statement's transaction took the characteristics.
            self.next_transaction_set = false;
        }
        match &classification.kind {
            Kind::Read(_) | Kind::Write(_) => {}
            Kind::Transaction(TransactionKind::SetTransaction { .. }) => {
                // `SET SESSION TRANSACTION READ ONLY` changes tx_read_only.
                self.fingerprint = None;
            }
            Kind::Transaction(_) => {}
            Kind::Ddl(_) => {
                self.ctx.facts.forget_all();
                self.fingerprint = None;
            }
            Kind::Session(kind) => {
                if matches!(
                    kind,
                    SessionKind::CreateTemporaryTable { .. } | SessionKind::LockTables
                ) {
                    self.tainted = true;
                }
                self.fingerprint = None;
            }
            Kind::Other(other) => {
                if matches!(
                    other,
                    OtherKind::Call | OtherKind::Compound | OtherKind::Unknown
                ) {
                    self.tainted = true;
                }
                self.fingerprint = None;
            }
        }
        if effects.may_call_routine {
            self.fingerprint = None;
        }
        if taints_session(&classification.kind, &effects) {
            self.tainted = true;
            self.fingerprint = None;
        }
    }
}

/// Whether a statement leaves the session in a state no fingerprint
/// shows, for good: a temporary table or table lock (also hidden in a
/// multi-statement text); a global read lock or backup stage, which a
/// batch from another session would wait on; a pinned clock or random
/// seed, which the server reads back as if unset (a clock pinned to about
/// now looks unpinned, the seeds read as 0). The last two are not looked
/// for in a single read or write, where `timestamp = …` is a column.
fn taints_session(kind: &Kind, effects: &Effects) -> bool {
    if effects.temporary_table || effects.table_lock {
        return true;
    }
    let single_read_or_write =
        matches!(kind, Kind::Read(_) | Kind::Write(_)) && !effects.several_statements;
    !single_read_or_write && (effects.global_lock || effects.pins_clock_or_seed)
}

#[cfg(test)]
mod tests {
    use super::taints_session;
    use sluice_classifier::Classifier;

    #[test]
    fn pinning_and_global_locks_taint_but_a_timestamp_column_does_not() {
        let classifier = Classifier::default();
        let taints = |sql: &str| {
            let classification = classifier.classify(sql.as_bytes());
            taints_session(&classification.kind, &classification.effects)
        };
        assert!(taints("SET timestamp = 1700000000"));
        assert!(taints("SET @@session.rand_seed2 = 3"));
        assert!(taints("SELECT 1; SET timestamp = 5"));
        assert!(taints("FLUSH TABLES WITH READ LOCK"));
        assert!(taints("BACKUP STAGE START"));
        assert!(taints("CREATE TEMPORARY TABLE t (a INT)"));
        assert!(taints("SELECT 1; LOCK TABLES t WRITE"));
        assert!(!taints("UPDATE t SET timestamp = NOW() WHERE id = 1"));
        assert!(!taints("SELECT * FROM t WHERE timestamp = 5"));
        assert!(!taints("SET sql_mode = ''"));
        assert!(!taints("INSERT INTO t (v) VALUES ('a temporary note')"));
        assert!(!taints("SELECT 'lock tables', 'read lock'; SELECT 1"));
    }
}
