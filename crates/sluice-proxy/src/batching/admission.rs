//! Admission: whether a statement may join a batch from this session, and
//! what it turns into when it may (its batch key, its row bytes, whether
//! the server generates its id). Every reason to refuse is counted.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_classifier::{
    auto_increment_source, BatchableInsert, Classification, IdSource, Kind, ValueForm,
};
use sluice_protocol::command::Command;
use sluice_protocol::stmt::ExecuteParams;
use sluice_protocol::CapabilityFlags;

use super::decline::Decline;
use super::facts::TableFacts;
use super::fingerprint::Fingerprint;
use super::key::{BatchKey, KeyParts};
use super::prepared;
use super::SessionBatching;
use crate::error::SessionError;
use crate::exchange::SessionIo;
use crate::session_state::SessionState;
use crate::statement::Statement;

/// Where a row comes from.
pub(super) enum Source<'a> {
    /// COM_QUERY text, in the client's packet.
    Text(&'a [u8]),
    /// COM_STMT_EXECUTE of a prepared statement.
    Prepared {
        sql: Arc<[u8]>,
        stmt_id: u32,
        num_params: u16,
        params: &'a [u8],
    },
}

impl<'a> Source<'a> {
    /// The row source of a command batching could take: a query, or the
    /// execution of a prepared statement whose text is known and whose
    /// long data (sent apart, which a batch cannot carry) is not pending.
    pub(super) fn of(statement: &Statement<'a>, state: &SessionState) -> Option<Source<'a>> {
        match statement.command? {
            Command::Query(sql) => Some(Source::Text(sql)),
            Command::StmtExecute {
                stmt_id, params, ..
            } => {
                let stmt = state.statement(stmt_id)?;
                if stmt.long_data_pending {
                    return None;
                }
                Some(Source::Prepared {
                    sql: stmt.sql.clone()?,
                    stmt_id,
                    num_params: stmt.num_params,
                    params,
                })
            }
            _ => None,
        }
    }

    fn sql(&self) -> &[u8] {
        match self {
            Source::Text(sql) => sql,
            Source::Prepared { sql, .. } => sql,
        }
    }
}

/// What one batchable statement turned into.
pub(super) struct Candidate {
    pub(super) key: BatchKey,
    /// The row tuples: a slice of the client's packet for a query (never
    /// copied before it goes into the batch text), the rendered rows for a
    /// prepared statement.
    pub(super) row: Bytes,
    /// How many tuples `row` holds: 1, or up to `max_statement_rows` for a
    /// client INSERT of several rows (then every row generates its id, or
    /// the table has no AUTO_INCREMENT column).
    pub(super) rows: usize,
    pub(super) generates_id: bool,
    pub(super) max_wait: Option<Duration>,
    /// The batch may commit without the rows the server skips: the
    /// server names each condition's row (MariaDB 10.7), the session's
    /// `sql_mode` reads the report's compound statement, and the session
    /// takes the result set it returns.
    pub(super) reports_skipped_rows: bool,
    /// The statement says `INSERT IGNORE` itself.
    pub(super) written_ignore: bool,
    /// The statement the candidate came from, and where its own text
    /// goes in the batch.
    text: Text,
    around: Around,
    pub(super) facts: Arc<TableFacts>,
}

/// The text around the row, as ranges of the statement's text.
struct Around {
    /// Up to where `IGNORE ` would go.
    head: Range<usize>,
    /// From there to the row.
    tail: Range<usize>,
    /// After the row, without an `ON DUPLICATE KEY UPDATE` clause: the
    /// batch is an `INSERT IGNORE` whose skipped rows run their own
    /// statement alone.
    suffix: Range<usize>,
    /// The `REPLACE` (within `head`) that the batch says as `INSERT`.
    replace: Option<Range<usize>>,
}

impl Around {
    fn of(insert: &BatchableInsert) -> Around {
        let (head, tail) = insert.prefix_around_ignore();
        Around {
            head,
            tail,
            suffix: insert.suffix_before_update(),
            replace: insert.is_replace().then(|| insert.verb()),
        }
    }
}

/// The statement text a candidate came from.
enum Text {
    /// The COM_QUERY text, in the client's packet.
    Query,
    /// A prepared statement's text.
    Prepared(Arc<[u8]>),
}

impl Candidate {
    fn text<'a>(&'a self, statement: &'a Statement<'_>) -> &'a [u8] {
        match &self.text {
            Text::Query => statement.sql_text(),
            Text::Prepared(sql) => sql,
        }
    }

    /// Writes the statement's text before the row, as the batch says it:
    /// `REPLACE` as `INSERT`, and `IGNORE` added when `ignore` is asked
    /// and the statement does not say it already.
    pub(super) fn write_head(&self, statement: &Statement<'_>, ignore: bool, out: &mut Vec<u8>) {
        let text = self.text(statement);
        let Around {
            head,
            tail,
            replace,
            ..
        } = &self.around;
        match replace {
            Some(verb) => {
                out.extend_from_slice(&text[head.start..verb.start]);
                out.extend_from_slice(b"INSERT");
                out.extend_from_slice(&text[verb.end..head.end]);
            }
            None => out.extend_from_slice(&text[head.clone()]),
        }
        if ignore && !self.written_ignore {
            out.extend_from_slice(b"IGNORE ");
        }
        out.extend_from_slice(&text[tail.clone()]);
    }

    /// The statement's text after the row, as the batch says it.
    pub(super) fn suffix<'a>(&'a self, statement: &'a Statement<'_>) -> &'a [u8] {
        &self.text(statement)[self.around.suffix.clone()]
    }

    /// Bytes of the text around the row, for sizing the batch.
    pub(super) fn text_len(&self) -> usize {
        self.around.head.len() + self.around.tail.len() + self.around.suffix.len()
    }
}

impl SessionBatching {
    /// Whether `sql` may join a batch from this session, and under which
    /// key. May read the session fingerprint and table facts on the
    /// session's own connection.
    pub(super) async fn candidate(
        &mut self,
        statement: &Statement<'_>,
        source: &Source<'_>,
        classification: &Classification,
        io: &mut SessionIo<'_>,
        now: std::time::Instant,
    ) -> Result<Option<Candidate>, SessionError> {
        if !self.ctx.enabled() || self.unsupported {
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
        let rows = insert.row_count();
        if rows > self.ctx.max_statement_rows() {
            self.ctx.stats.unbatched(Decline::RowsOverLimit);
            return Ok(None);
        }
        if rows > 1 && (insert.is_ignore() || insert.acts_on_conflict()) {
            self.ctx.stats.unbatched(Decline::SeveralRowsForm);
            return Ok(None);
        }
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
        if self.ctx.hint_mode() && hint.is_none() {
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
        // The report is a result set from inside a compound statement,
        // which the server sends only to a client that takes several.
        let reports_skipped_rows = self.isolates_skipped_rows
            && !fingerprint.oracle_syntax
            && io
                .caps
                .flags
                .contains(CapabilityFlags::CLIENT_MULTI_RESULTS);
        // A row that meets an existing key must be skipped by the batch
        // and run alone, which needs the report.
        if insert.acts_on_conflict() && !reports_skipped_rows {
            self.ctx.stats.unbatched(if insert.is_replace() {
                Decline::Replace
            } else {
                Decline::OnDuplicateKeyUpdate
            });
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
            .lookup(
                &mut self.recent_facts,
                now,
                io.backend,
                io.caps,
                &user,
                schema,
                insert.table(),
            )
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
                Ok(row) => statement.packet.slice_ref(row),
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
                    Ok(row) => Bytes::from(row),
                    Err(reason) => {
                        self.ctx.stats.unbatched(reason);
                        return Ok(None);
                    }
                }
            }
        };
        let generates_id = match &facts.auto_increment {
            None => false,
            Some(column) => match insert
                .columns()
                .iter()
                .position(|c| c.eq_ignore_ascii_case(column))
            {
                None => true,
                // Alone, such an INSERT reports the first generated id, or
                // the last explicit one when none is generated: not read
                // from a batch's ids here.
                Some(_) if rows > 1 => {
                    self.ctx.stats.unbatched(Decline::SeveralRowsForm);
                    return Ok(None);
                }
                Some(index) => {
                    let zero_is_value = fingerprint.no_auto_value_on_zero;
                    let source = match insert.value_form(index) {
                        // A bound value, rendered into the row.
                        Some(ValueForm::Placeholder) => auto_increment_source(
                            &row,
                            index,
                            io.state.classifier_options(false),
                            zero_is_value,
                        ),
                        Some(form) => form.id_source(zero_is_value),
                        None => None,
                    };
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
        let key = match self.last_key.take() {
            Some(key) if key.is_for(insert.shape_key()) => key,
            _ => BatchKey::new(KeyParts {
                backend: self.backend,
                user,
                database: fingerprint.database.clone(),
                fingerprint: fingerprint.bytes.clone(),
                shape: insert.shape_key().clone(),
            }),
        };
        self.last_key = Some(key.clone());
        Ok(Some(Candidate {
            key,
            row,
            rows,
            generates_id,
            max_wait: hint.map(|ms| Duration::from_millis(u64::from(ms))),
            reports_skipped_rows,
            written_ignore: insert.is_ignore(),
            text: Text::of(source),
            around: Around::of(insert),
            facts,
        }))
    }
}

impl Text {
    fn of(source: &Source<'_>) -> Text {
        match source {
            Source::Text(_) => Text::Query,
            Source::Prepared { sql, .. } => Text::Prepared(sql.clone()),
        }
    }
}

#[cfg(test)]
impl Candidate {
    /// A query's candidate as admission would make it, for the leader's
    /// tests: the table facts and the key are given, not read.
    pub(super) fn of_query(
        statement: &Statement<'_>,
        facts: TableFacts,
        key: BatchKey,
        reports_skipped_rows: bool,
    ) -> Candidate {
        let classification = statement.classification.as_ref().expect("classified");
        let insert = classification.batchable().expect("a batchable INSERT");
        let sql = statement.sql_text();
        Candidate {
            key,
            row: statement
                .packet
                .slice_ref(insert.row_bytes(sql).expect("row")),
            rows: insert.row_count(),
            generates_id: facts.auto_increment.is_some(),
            max_wait: None,
            reports_skipped_rows,
            written_ignore: insert.is_ignore(),
            text: Text::of(&Source::Text(sql)),
            around: Around::of(insert),
            facts: Arc::new(facts),
        }
    }
}
