//! Statement classifier for Sluice: what may Sluice do with a statement?
//!
//! [`classify`] reads a statement text (the client's raw bytes) and says
//! what [`Kind`] of statement it is, whether it may change data
//! ([`Classification::writable`]), which hints its comments carry, and —
//! for the one statement shape Sluice batches, a single-row `INSERT … VALUES
//! (…)` — either the [`BatchableInsert`] shape (target, columns, row span,
//! [`ShapeKey`]) or the [`NotBatchable`] reason.
//!
//! The crate is pure: no I/O, no async. A [`Classifier`] owns a bounded,
//! thread-safe cache of shape verdicts; on a cached shape sqlparser is not
//! run at all, only a hand-written lexer and the row-value grammar.
//!
//! ```
//! use sluice_classifier::{classify, Kind, NotBatchable, WriteKind};
//!
//! let sql = b"INSERT INTO shop.orders (id, note) VALUES (7, 'hi') /* batch:20 */";
//! let c = classify(sql);
//! assert_eq!(c.kind, Kind::Write(WriteKind::Insert));
//! assert!(c.writable());
//! assert_eq!(c.hints.batch_ms, Some(20));
//! let shape = c.batchable().expect("batchable");
//! assert_eq!((shape.schema(), shape.table()), (Some("shop"), "orders"));
//! assert_eq!(shape.columns(), ["id", "note"]);
//! assert_eq!(&sql[shape.row()], b"(7, 'hi')");
//!
//! let c = classify(b"INSERT INTO t (a) SELECT a FROM u");
//! assert_eq!(c.batchable().unwrap_err(), NotBatchable::SelectSource);
//! assert_eq!(NotBatchable::SelectSource.as_str(), "select_source");
//! ```
#![deny(missing_docs)]

mod builtins;
mod cache;
mod code;
mod cold;
mod detect;
mod effects;
mod hints;
mod insert;
mod kind;
mod lexer;
mod memo;
mod render;
mod row;
mod shape;
mod values;

use std::sync::{Arc, OnceLock};

pub use effects::Effects;
pub use hints::Hints;
pub use kind::{
    Ddl, DdlOp, DdlTarget, Kind, OtherKind, ReadKind, SessionKind, TableName, TransactionKind,
    WriteKind,
};
pub use memo::Memo;
pub use render::{render_row, render_value, BoundValue, RenderError, RenderOptions};
pub use row::{auto_increment_source, IdSource, ValueForm};
pub use shape::{splice, BatchableInsert, NotBatchable, ShapeKey, SpliceError};

use cache::ShapeCache;
use code::Code;
use lexer::{lex, same_boundaries, LexConfig, Lexed, Tok};
use shape::Frame;

/// Everything the classifier says about one statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Classification {
    /// The statement's kind.
    pub kind: Kind,
    /// Hints found in its comments.
    pub hints: Hints,
    /// What it may do to its session beyond its kind (temporary tables,
    /// locks, routine calls, …), read from its code only.
    pub effects: Effects,
    batch: Result<BatchableInsert, NotBatchable>,
}

impl Classification {
    /// True for anything that may change data; see [`Kind::writable`].
    pub fn writable(&self) -> bool {
        self.kind.writable()
    }

    /// The batchable INSERT shape, or why the statement is not batchable.
    pub fn batchable(&self) -> Result<&BatchableInsert, NotBatchable> {
        self.batch.as_ref().map_err(|r| *r)
    }

    /// The batchable INSERT shape, taken by value.
    pub fn into_batchable(self) -> Result<BatchableInsert, NotBatchable> {
        self.batch
    }

    /// Whether the session's transaction state is what it was before, if
    /// this statement fails: one `INSERT`, `REPLACE`, `UPDATE` or
    /// `DELETE` neither opens nor ends a transaction by failing (a stored
    /// function it calls may not either). An error packet carries no
    /// status flags, so this is what keeps the state known.
    pub fn failure_keeps_transaction_state(&self) -> bool {
        matches!(
            self.kind,
            Kind::Write(
                WriteKind::Insert | WriteKind::Replace | WriteKind::Update | WriteKind::Delete
            )
        ) && !self.effects.several_statements
    }
}

/// How the session reads backslashes in string literals (its `sql_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EscapeMode {
    /// Not known: a statement whose token boundaries differ between the
    /// modes (e.g. `'it\'s'`) is not batchable.
    #[default]
    Unknown,
    /// Backslash escapes on (the default `sql_mode`); `ANSI_QUOTES` may or
    /// may not be set.
    Backslash,
    /// `NO_BACKSLASH_ESCAPES` is set.
    NoBackslash,
}

/// Options of [`Classifier::classify_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Options {
    /// The text is a prepared statement (`COM_STMT_PREPARE`): `?`
    /// placeholders are allowed in the row.
    pub prepared: bool,
    /// The session's backslash mode.
    pub escapes: EscapeMode,
    /// The session's `sql_mode` has `ANSI_QUOTES`: `"…"` is an
    /// identifier, in which a backslash escapes nothing.
    pub ansi_quotes: bool,
}

/// A classifier with a bounded cache of shapes, shared across connections
/// (it is `Send + Sync`; wrap it in an `Arc`).
///
/// ```
/// use sluice_classifier::Classifier;
///
/// let classifier = Classifier::new(1024);
/// let a = classifier.classify(b"INSERT INTO t (a) VALUES (1)");
/// let b = classifier.classify(b"INSERT INTO t (a) VALUES (-2) -- batch:5");
/// let (sa, sb) = (a.batchable().unwrap(), b.batchable().unwrap());
/// assert_eq!(sa.shape_key(), sb.shape_key());
/// assert_eq!(classifier.cached_shapes(), 1);
/// ```
pub struct Classifier {
    cache: ShapeCache,
}

impl Default for Classifier {
    fn default() -> Self {
        Classifier::new(Classifier::DEFAULT_CAPACITY)
    }
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("cached_shapes", &self.cache.len())
            .field("capacity", &self.cache.capacity())
            .finish()
    }
}

/// Classify a text-protocol statement (`COM_QUERY`) with a process-wide
/// [`Classifier`].
pub fn classify(sql: &[u8]) -> Classification {
    global().classify(sql)
}

/// Classify a prepared statement text (`COM_STMT_PREPARE`) with a
/// process-wide [`Classifier`]: `?` placeholders are allowed in the row,
/// and [`BatchableInsert::placeholders`] lists them.
pub fn classify_prepared(sql: &[u8]) -> Classification {
    global().classify_prepared(sql)
}

/// The session effects of a statement text alone, without classifying
/// it: for a relayed statement whose kind does not matter.
pub fn effects(sql: &[u8], opts: Options) -> Effects {
    let lexed = lex(sql, lex_config(opts));
    effects::scan(&Code::new(sql, &lexed.tokens))
}

/// Whether `sql` is Sluice's own `SHOW SLUICE STATUS` (any case, spacing
/// and comments, an optional trailing `;`), which Sluice answers itself.
/// A session that classifies its statements reads the same answer from
/// the kind, [`ReadKind::SluiceStatus`].
pub fn is_show_sluice_status(sql: &[u8]) -> bool {
    let lexed = lex(sql, LexConfig::DEFAULT);
    detect::detect(&Code::new(sql, &lexed.tokens), 0) == Kind::Read(ReadKind::SluiceStatus)
}

/// How the lexer reads quotes under `opts`.
fn lex_config(opts: Options) -> LexConfig {
    let backslash = opts.escapes != EscapeMode::NoBackslash;
    LexConfig {
        escapes_single: backslash,
        escapes_double: backslash && !opts.ansi_quotes,
        run_conditional: true,
    }
}

fn global() -> &'static Classifier {
    static GLOBAL: OnceLock<Classifier> = OnceLock::new();
    GLOBAL.get_or_init(Classifier::default)
}

impl Classifier {
    /// Cache capacity of [`Classifier::default`].
    pub const DEFAULT_CAPACITY: usize = 4096;

    /// A classifier caching at most `capacity` shapes (0: no cache).
    pub fn new(capacity: usize) -> Self {
        Classifier {
            cache: ShapeCache::new(capacity),
        }
    }

    /// Number of shapes cached now.
    pub fn cached_shapes(&self) -> usize {
        self.cache.len()
    }

    /// Classify a text-protocol statement, escape mode unknown.
    pub fn classify(&self, sql: &[u8]) -> Classification {
        self.classify_with(sql, Options::default())
    }

    /// Classify a prepared statement text, escape mode unknown.
    pub fn classify_prepared(&self, sql: &[u8]) -> Classification {
        self.classify_with(
            sql,
            Options {
                prepared: true,
                ..Options::default()
            },
        )
    }

    /// Classify with explicit options.
    pub fn classify_with(&self, sql: &[u8], opts: Options) -> Classification {
        self.classify_lexing(sql, opts).0
    }

    /// [`Classifier::classify_with`] for a session that keeps a [`Memo`]:
    /// a statement that repeats the session's last batchable INSERT but
    /// for its rows is classified from the memo, lexing only the rows.
    /// The answer is the same either way.
    ///
    /// ```
    /// use sluice_classifier::{Classifier, Memo, Options};
    ///
    /// let classifier = Classifier::new(16);
    /// let mut memo = Memo::default();
    /// let opts = Options::default();
    /// let first = classifier.classify_remembering(b"INSERT INTO t (a) VALUES (1)", opts, &mut memo);
    /// let next = classifier.classify_remembering(b"INSERT INTO t (a) VALUES (22), (3)", opts, &mut memo);
    /// assert_eq!(next.batchable().unwrap().shape_key(), first.batchable().unwrap().shape_key());
    /// assert_eq!(next.batchable().unwrap().row(), 25..34);
    /// ```
    pub fn classify_remembering(
        &self,
        sql: &[u8],
        opts: Options,
        memo: &mut Memo,
    ) -> Classification {
        if let Some(recalled) = memo.recall(sql, opts) {
            debug_assert!(
                memo::same_in_full(&recalled, &self.classify_with(sql, opts)),
                "the memo disagrees with a full classification of {:?}",
                String::from_utf8_lossy(sql)
            );
            return recalled;
        }
        let (classification, plain) = self.classify_lexing(sql, opts);
        memo.remember(sql, opts, &classification, plain);
        classification
    }

    /// Classifies `sql`; also says whether its text is plain: no
    /// executable or conditional comment anywhere.
    fn classify_lexing(&self, sql: &[u8], opts: Options) -> (Classification, bool) {
        let cfg = lex_config(opts);
        let lexed = lex(sql, cfg);
        let plain = !lexed.saw_conditional
            && !lexed
                .tokens
                .iter()
                .any(|t| matches!(t.tok, Tok::ExecOpen | Tok::ExecClose));
        let code = Code::new(sql, &lexed.tokens);
        let kind = detect::detect(&code, 0);
        let hints = hints::collect(sql, &lexed.tokens);
        let batch = self.batchability(sql, &lexed, &code, &kind, &hints, opts, cfg);
        // A batchable INSERT has no session effects by construction (one
        // statement, no unknown function, no conditional code): the scan
        // is skipped on the hot path, and checked in every debug build.
        let effects = if batch.is_ok() {
            debug_assert_eq!(effects::scan(&code), Effects::default(), "{sql:?}");
            Effects::default()
        } else {
            effects::scan(&code)
        };
        let classification = Classification {
            kind,
            hints,
            effects,
            batch,
        };
        (classification, plain)
    }

    #[allow(clippy::too_many_arguments)]
    fn batchability(
        &self,
        sql: &[u8],
        lexed: &Lexed,
        code: &Code<'_>,
        kind: &Kind,
        hints: &Hints,
        opts: Options,
        cfg: LexConfig,
    ) -> Result<BatchableInsert, NotBatchable> {
        match kind {
            Kind::Write(WriteKind::Insert | WriteKind::Replace) => {}
            _ => return Err(NotBatchable::NotInsert),
        }
        if code.toks.first().is_some_and(|t| t.is_kw(sql, "SET")) {
            return Err(NotBatchable::SetStatement);
        }
        if code
            .toks
            .first()
            .is_some_and(|t| !t.is_kw(sql, "INSERT") && !t.is_kw(sql, "REPLACE"))
        {
            // `WITH … INSERT`, `ANALYZE INSERT`, …
            return Err(NotBatchable::ParseFailure);
        }
        if ambiguous(sql, lexed, opts.escapes) {
            return Err(NotBatchable::AmbiguousEscapes);
        }
        if lexed.tokens.iter().any(|t| t.tok == Tok::Error) {
            return Err(NotBatchable::ParseFailure);
        }
        let shape = self.shape(sql, lexed, code, opts.prepared)?;
        if lexed.saw_conditional {
            // The server may or may not run the conditional comments: the
            // verdict must be the same both ways.
            let alt_lexed = lex(
                sql,
                LexConfig {
                    run_conditional: false,
                    ..cfg
                },
            );
            let alt_code = Code::new(sql, &alt_lexed.tokens);
            let same_kind = detect::detect(&alt_code, 0) == *kind;
            let alt = self.shape(sql, &alt_lexed, &alt_code, opts.prepared);
            match alt {
                Ok(a)
                    if same_kind
                        && a.row == shape.row
                        && a.rows == shape.rows
                        && a.columns() == shape.columns()
                        && a.ignore == shape.ignore
                        && a.replace == shape.replace
                        && a.update == shape.update => {}
                _ => return Err(NotBatchable::ConditionalComment),
            }
        }
        if hints.batch_ms == Some(0) {
            return Err(NotBatchable::HintNoBatch);
        }
        // The update clause is not checked like the row: it runs only on
        // the member's own connection, but what it may do to the session
        // (call a routine, …) is refused as for any batched statement.
        if shape.update.is_some() && effects::scan(code) != Effects::default() {
            return Err(NotBatchable::UnsupportedExpression);
        }
        Ok(shape)
    }

    /// Locate the row, look the shape up (or ask sqlparser), check the row.
    fn shape(
        &self,
        sql: &[u8],
        lexed: &Lexed,
        code: &Code<'_>,
        prepared: bool,
    ) -> Result<BatchableInsert, NotBatchable> {
        let located = insert::locate(code, true)?;
        let (open, close) = (&code.toks[located.open], &code.toks[located.close]);
        let row = open.start..close.end;
        let tuple = check_rows(sql, code, &located.rows, row.start, prepared)?;
        let mut key = Vec::with_capacity(sql.len());
        insert::key_bytes(
            sql,
            &lexed.tokens,
            row.start,
            row.end,
            tuple.values,
            &mut key,
        );
        if insert::markers_inside(&lexed.tokens, row.start, row.end) {
            return Err(NotBatchable::UnsupportedExpression);
        }
        let frame = match self.cache.get(&key) {
            Some(verdict) => verdict?,
            None => {
                let expect = cold::Expect {
                    columns: located.column_at.len(),
                    values: tuple.values,
                    replace: located.replace,
                    update: located.update_at.is_some(),
                };
                let text = cold::parser_text(sql, &lexed.tokens);
                let verdict = cold::verdict(&text, &expect);
                let key: Arc<[u8]> = Arc::from(key.as_slice());
                let verdict = verdict.map(|()| {
                    let (table, columns) = located.names(code);
                    Arc::new(Frame {
                        key: ShapeKey(key.clone()),
                        table,
                        columns,
                        values: tuple.values,
                    })
                });
                // A parse failure may come from the row's bytes, which are
                // not part of the key: never cache it.
                if !matches!(verdict, Err(NotBatchable::ParseFailure)) {
                    self.cache.insert(key, verdict.clone());
                }
                verdict?
            }
        };
        let ignore_at = code.toks.get(1).map_or(row.start, |t| t.start);
        let verb = code.toks.first().map_or(0..0, |t| t.start..t.end);
        let update = located.update_at.map(|on| {
            let last = code.toks[on..]
                .iter()
                .rev()
                .find(|t| t.tok != Tok::Semi)
                .map_or(sql.len(), |t| t.end);
            code.toks[on].start..last
        });
        Ok(BatchableInsert {
            frame,
            row,
            rows: located.rows.len(),
            len: sql.len(),
            placeholders: tuple.placeholders,
            forms: tuple.forms,
            ignore_at,
            ignore: located.ignore,
            verb,
            replace: located.replace,
            update,
        })
    }
}

/// Checks every row tuple of a statement (each must have as many values
/// as the first) and reads them as one: placeholders relative to
/// `span_start` (the first row's `(`), and each value's form where every
/// row agrees on it ([`ValueForm::Other`] where rows differ).
fn check_rows(
    sql: &[u8],
    code: &Code<'_>,
    rows: &[(usize, usize)],
    span_start: usize,
    prepared: bool,
) -> Result<values::Tuple, NotBatchable> {
    let mut merged: Option<values::Tuple> = None;
    for &(open, close) in rows {
        let mut tuple = values::check_tuple(sql, &code.toks[open..=close], prepared)?;
        let shift = code.toks[open].start - span_start;
        for placeholder in &mut tuple.placeholders {
            *placeholder = placeholder.start + shift..placeholder.end + shift;
        }
        match &mut merged {
            None => merged = Some(tuple),
            Some(all) => {
                if all.values != tuple.values {
                    return Err(NotBatchable::ParseFailure);
                }
                all.placeholders.extend(tuple.placeholders);
                for (form, other) in all.forms.iter_mut().zip(tuple.forms) {
                    if *form != other {
                        *form = ValueForm::Other;
                    }
                }
            }
        }
    }
    merged.ok_or(NotBatchable::ParseFailure)
}

/// The rows of a multi-row `INSERT … VALUES (…), (…)` and its shape key,
/// as read by [`Classifier::rows`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rows {
    /// The shape key: equal to the key of each single-row statement whose
    /// rows were spliced into this one.
    pub key: ShapeKey,
    /// Byte range of every row tuple, in order.
    pub rows: Vec<std::ops::Range<usize>>,
}

impl Classifier {
    /// Read a multi-row `INSERT` (such as a spliced batch) back: its rows
    /// and its shape key. Lexer and row grammar only; the cache and
    /// sqlparser are not involved. Used to check splices.
    ///
    /// ```
    /// use sluice_classifier::Classifier;
    /// let c = Classifier::new(16);
    /// let one = c.classify(b"INSERT INTO t (a) VALUES (1)");
    /// let key = one.batchable().unwrap().shape_key().clone();
    /// let many = c.rows(b"INSERT INTO t (a) VALUES (1),(2), (3)", false).unwrap();
    /// assert_eq!(many.key, key);
    /// assert_eq!(many.rows, vec![25..28, 29..32, 34..37]);
    /// ```
    pub fn rows(&self, sql: &[u8], prepared: bool) -> Result<Rows, NotBatchable> {
        let lexed = lex(sql, LexConfig::DEFAULT);
        if ambiguous(sql, &lexed, EscapeMode::Unknown) {
            return Err(NotBatchable::AmbiguousEscapes);
        }
        if lexed.tokens.iter().any(|t| t.tok == Tok::Error) {
            return Err(NotBatchable::ParseFailure);
        }
        let code = Code::new(sql, &lexed.tokens);
        let located = insert::locate(&code, true)?;
        let mut values = None;
        let mut rows = Vec::with_capacity(located.rows.len());
        for &(open, close) in &located.rows {
            let tuple = values::check_tuple(sql, &code.toks[open..=close], prepared)?;
            if values.is_some_and(|v| v != tuple.values) {
                return Err(NotBatchable::ParseFailure);
            }
            values = Some(tuple.values);
            rows.push(code.toks[open].start..code.toks[close].end);
        }
        let start = code.toks[located.open].start;
        let end = code.toks[located.close].end;
        let mut key = Vec::new();
        insert::key_bytes(
            sql,
            &lexed.tokens,
            start,
            end,
            values.unwrap_or(0),
            &mut key,
        );
        Ok(Rows {
            key: ShapeKey(Arc::from(key)),
            rows,
        })
    }
}

/// Would the token boundaries differ under another reading of
/// backslashes or double quotes?
fn ambiguous(sql: &[u8], lexed: &Lexed, mode: EscapeMode) -> bool {
    if lexed.charset_ambiguous {
        return true;
    }
    if !lexed.saw_backslash {
        return false;
    }
    let alt = match mode {
        EscapeMode::NoBackslash => return false,
        EscapeMode::Unknown => LexConfig {
            escapes_single: false,
            escapes_double: false,
            run_conditional: true,
        },
        // ANSI_QUOTES turns `"…"` into identifiers, without escapes.
        EscapeMode::Backslash => LexConfig {
            escapes_single: true,
            escapes_double: false,
            run_conditional: true,
        },
    };
    !same_boundaries(lexed, &lex(sql, alt))
}
