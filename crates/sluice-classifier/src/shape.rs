//! The batchable INSERT shape, its key, the reasons a statement is not
//! batchable, and splicing rows into one statement.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use crate::kind::TableName;
use crate::row::ValueForm;

/// Why a statement is not batchable. [`NotBatchable::as_str`] gives a
/// stable snake_case label for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotBatchable {
    /// Not an `INSERT` at all.
    NotInsert,
    /// `VALUES (…) AS alias` row alias.
    RowAlias,
    /// `INSERT … SELECT` / `TABLE` / a query as source.
    SelectSource,
    /// `INSERT … SET col = …`.
    SetForm,
    /// `RETURNING …`.
    Returning,
    /// `PARTITION (…)`.
    Partition,
    /// `LOW_PRIORITY`, `DELAYED` or `HIGH_PRIORITY`.
    PriorityModifier,
    /// More than one row tuple.
    SeveralRows,
    /// Several statements in one text.
    MultiStatement,
    /// MariaDB `SET STATEMENT … FOR INSERT …`.
    SetStatement,
    /// A session-dependent function in the values (`LAST_INSERT_ID()`,
    /// `CONNECTION_ID()`, `USER()`, `GET_LOCK()`, `SLEEP()`, …).
    SessionFunction,
    /// A function that is not on the list of known deterministic or
    /// per-row builtins (stored functions, UDFs, unlisted builtins).
    UnknownFunction,
    /// A sequence function (`NEXTVAL`, `NEXT VALUE FOR`, `LASTVAL`, …).
    Sequence,
    /// A user variable (`@x`).
    UserVariable,
    /// A system variable (`@@x`).
    SystemVariable,
    /// A subquery in the values.
    Subquery,
    /// A `?` placeholder in a text-protocol statement.
    Placeholder,
    /// An expression outside the accepted value grammar (column
    /// references, `CASE`, `INTERVAL`, `CAST`, comparison operators, …).
    UnsupportedExpression,
    /// The text's token boundaries depend on `NO_BACKSLASH_ESCAPES`,
    /// `ANSI_QUOTES` or a multibyte character set.
    AmbiguousEscapes,
    /// A version-conditional comment (`/*!50100 …*/`, `/*M! …*/`) whose
    /// execution would change the verdict.
    ConditionalComment,
    /// The statement carries the hint `batch:0`.
    HintNoBatch,
    /// The statement does not parse.
    ParseFailure,
}

impl NotBatchable {
    /// The metric label: snake_case and stable.
    pub fn as_str(&self) -> &'static str {
        match self {
            NotBatchable::NotInsert => "not_insert",
            NotBatchable::RowAlias => "row_alias",
            NotBatchable::SelectSource => "select_source",
            NotBatchable::SetForm => "set_form",
            NotBatchable::Returning => "returning",
            NotBatchable::Partition => "partition",
            NotBatchable::PriorityModifier => "priority_modifier",
            NotBatchable::SeveralRows => "several_rows",
            NotBatchable::MultiStatement => "multi_statement",
            NotBatchable::SetStatement => "set_statement",
            NotBatchable::SessionFunction => "session_function",
            NotBatchable::UnknownFunction => "unknown_function",
            NotBatchable::Sequence => "sequence",
            NotBatchable::UserVariable => "user_variable",
            NotBatchable::SystemVariable => "system_variable",
            NotBatchable::Subquery => "subquery",
            NotBatchable::Placeholder => "placeholder",
            NotBatchable::UnsupportedExpression => "unsupported_expression",
            NotBatchable::AmbiguousEscapes => "ambiguous_escapes",
            NotBatchable::ConditionalComment => "conditional_comment",
            NotBatchable::HintNoBatch => "hint_no_batch",
            NotBatchable::ParseFailure => "parse_failure",
        }
    }

    /// Every reason, for metric registration.
    pub const ALL: &'static [NotBatchable] = &[
        NotBatchable::NotInsert,
        NotBatchable::RowAlias,
        NotBatchable::SelectSource,
        NotBatchable::SetForm,
        NotBatchable::Returning,
        NotBatchable::Partition,
        NotBatchable::PriorityModifier,
        NotBatchable::SeveralRows,
        NotBatchable::MultiStatement,
        NotBatchable::SetStatement,
        NotBatchable::SessionFunction,
        NotBatchable::UnknownFunction,
        NotBatchable::Sequence,
        NotBatchable::UserVariable,
        NotBatchable::SystemVariable,
        NotBatchable::Subquery,
        NotBatchable::Placeholder,
        NotBatchable::UnsupportedExpression,
        NotBatchable::AmbiguousEscapes,
        NotBatchable::ConditionalComment,
        NotBatchable::HintNoBatch,
        NotBatchable::ParseFailure,
    ];
}

impl fmt::Display for NotBatchable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Two statements share a shape key exactly when their rows can be
/// concatenated into one `VALUES` list: same target, same columns, same
/// number of values, same code outside the row tuple. Whitespace and plain
/// comments (hence hints) are not part of it; a final `;` is not either.
///
/// The key holds the normalised bytes themselves (no lossy hash), so equal
/// keys mean equal shapes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShapeKey(pub(crate) Arc<[u8]>);

impl ShapeKey {
    /// The normalised bytes (an opaque, unambiguous encoding).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ShapeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShapeKey({:?})", String::from_utf8_lossy(&self.0))
    }
}

/// What is shared by every statement of one shape (cached by key).
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) key: ShapeKey,
    pub(crate) table: TableName,
    pub(crate) columns: Vec<String>,
    pub(crate) values: usize,
}

/// A batchable INSERT of one or more rows: its target, its shape key and
/// where its row tuples lie in the text it was classified from.
#[derive(Clone, Debug)]
pub struct BatchableInsert {
    pub(crate) frame: Arc<Frame>,
    /// From the first row's `(` to the last row's `)`.
    pub(crate) row: Range<usize>,
    /// How many row tuples `row` holds.
    pub(crate) rows: usize,
    pub(crate) len: usize,
    pub(crate) placeholders: Vec<Range<usize>>,
    /// The form of each value of the rows, read as the rows were checked
    /// ([`ValueForm::Other`] where rows differ).
    pub(crate) forms: Vec<ValueForm>,
    /// Where `IGNORE ` goes to make the statement an `INSERT IGNORE`: the
    /// start of the first code token after `INSERT`.
    pub(crate) ignore_at: usize,
    /// The statement is an `INSERT IGNORE` already.
    pub(crate) ignore: bool,
    /// The verb (`INSERT` or `REPLACE`) in the text.
    pub(crate) verb: Range<usize>,
    /// The verb is `REPLACE`.
    pub(crate) replace: bool,
    /// The `ON DUPLICATE KEY UPDATE` clause, from `ON` to the end of its
    /// last token.
    pub(crate) update: Option<Range<usize>>,
}

impl PartialEq for BatchableInsert {
    fn eq(&self, other: &Self) -> bool {
        self.frame.key == other.frame.key
            && self.row == other.row
            && self.rows == other.rows
            && self.len == other.len
            && self.placeholders == other.placeholders
    }
}

impl BatchableInsert {
    /// The schema, if the table name was qualified.
    pub fn schema(&self) -> Option<&str> {
        self.frame.table.schema.as_deref()
    }

    /// The table name, unquoted.
    pub fn table(&self) -> &str {
        &self.frame.table.name
    }

    /// Schema and table together.
    pub fn table_name(&self) -> &TableName {
        &self.frame.table
    }

    /// The column list as written (unquoted, in written order); empty when
    /// the statement has no column list.
    pub fn columns(&self) -> &[String] {
        &self.frame.columns
    }

    /// The form of the value at `index` (in written order), read while
    /// the rows were checked: whether an AUTO_INCREMENT column gets a
    /// generated id is known without reading the row again. With several
    /// rows, the form they all share, or [`ValueForm::Other`].
    pub fn value_form(&self, index: usize) -> Option<ValueForm> {
        self.forms.get(index).copied()
    }

    /// The number of values in the row tuple.
    pub fn value_count(&self) -> usize {
        self.frame.values
    }

    /// The shape key.
    pub fn shape_key(&self) -> &ShapeKey {
        &self.frame.key
    }

    /// How many row tuples the statement inserts.
    pub fn row_count(&self) -> usize {
        self.rows
    }

    /// Byte range of the row tuples, parentheses included: the one tuple
    /// of a single-row INSERT, from the first `(` to the last `)` (commas
    /// between included) of several.
    pub fn row(&self) -> Range<usize> {
        self.row.clone()
    }

    /// Byte range of the text before the row tuple.
    pub fn prefix(&self) -> Range<usize> {
        0..self.row.start
    }

    /// Byte range of the text after the row tuple.
    pub fn suffix(&self) -> Range<usize> {
        self.row.end..self.len
    }

    /// Whether the statement is an `INSERT IGNORE`: a row the server
    /// skips is then answered with a warning, not an error.
    pub fn is_ignore(&self) -> bool {
        self.ignore
    }

    /// Whether the statement is a `REPLACE`.
    pub fn is_replace(&self) -> bool {
        self.replace
    }

    /// Byte range of the verb, `INSERT` or `REPLACE`.
    pub fn verb(&self) -> Range<usize> {
        self.verb.clone()
    }

    /// Byte range of the `ON DUPLICATE KEY UPDATE …` clause, if any.
    pub fn update_clause(&self) -> Option<Range<usize>> {
        self.update.clone()
    }

    /// Whether a row that meets an existing key does something other
    /// than fail or be skipped (`REPLACE`, `ON DUPLICATE KEY UPDATE`): a
    /// batch can take the row only as an `INSERT IGNORE` that may skip
    /// it, the statement running alone if it does.
    pub fn acts_on_conflict(&self) -> bool {
        self.replace || self.update.is_some()
    }

    /// Byte range of the text after the row up to the update clause (all
    /// of it when there is none): what follows the rows of a batch.
    pub fn suffix_before_update(&self) -> Range<usize> {
        self.row.end..self.update.as_ref().map_or(self.len, |u| u.start)
    }

    /// The text before the row split where `IGNORE ` makes the statement
    /// an `INSERT IGNORE` (right before the token that follows `INSERT`:
    /// `INSERT INTO t` becomes `INSERT IGNORE INTO t`). Both ranges
    /// together are [`Self::prefix`].
    pub fn prefix_around_ignore(&self) -> (Range<usize>, Range<usize>) {
        (0..self.ignore_at, self.ignore_at..self.row.start)
    }

    /// For prepared statements: the `?` placeholders of the tuples, as
    /// byte ranges relative to the start of [`row`](Self::row), in order.
    pub fn placeholders(&self) -> &[Range<usize>] {
        &self.placeholders
    }

    /// The row tuple's bytes in `sql` (the text this was classified from).
    pub fn row_bytes<'s>(&self, sql: &'s [u8]) -> Result<&'s [u8], SpliceError> {
        self.check(sql)?;
        sql.get(self.row.clone()).ok_or(SpliceError::OutOfRange)
    }

    /// Build the multi-row statement: this statement's prefix, `rows`
    /// joined by `,`, this statement's suffix. `sql` must be the text this
    /// shape was classified from; `rows` are other members' row tuples
    /// (see [`row_bytes`](Self::row_bytes)) or rendered prepared rows.
    ///
    /// ```
    /// use sluice_classifier::classify;
    ///
    /// let a = b"INSERT INTO t (a, b) VALUES (1, 'x') /* batch:5 */";
    /// let b = b"INSERT INTO t (a, b)\nVALUES (2, 'y');";
    /// let (ca, cb) = (classify(a), classify(b));
    /// let (sa, sb) = (ca.batchable().unwrap(), cb.batchable().unwrap());
    /// assert_eq!(sa.shape_key(), sb.shape_key());
    /// let rows = [sa.row_bytes(a).unwrap(), sb.row_bytes(b).unwrap()];
    /// let out = sa.splice(a, &rows).unwrap();
    /// assert_eq!(out, b"INSERT INTO t (a, b) VALUES (1, 'x'),(2, 'y') /* batch:5 */");
    /// ```
    pub fn splice(&self, sql: &[u8], rows: &[&[u8]]) -> Result<Vec<u8>, SpliceError> {
        self.check(sql)?;
        let prefix = sql.get(self.prefix()).ok_or(SpliceError::OutOfRange)?;
        let suffix = sql.get(self.suffix()).ok_or(SpliceError::OutOfRange)?;
        if rows.is_empty() {
            return Err(SpliceError::NoRows);
        }
        Ok(splice(prefix, rows, suffix))
    }

    fn check(&self, sql: &[u8]) -> Result<(), SpliceError> {
        if sql.len() != self.len || self.row.start > self.row.end || self.row.end > sql.len() {
            return Err(SpliceError::OutOfRange);
        }
        Ok(())
    }
}

/// Errors of [`BatchableInsert::splice`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpliceError {
    /// The text is not the one the shape was classified from.
    #[error("statement text does not match the classified spans")]
    OutOfRange,
    /// No rows were given.
    #[error("no rows to splice")]
    NoRows,
}

/// Concatenate `prefix`, the `rows` joined by `,`, and `suffix`.
///
/// ```
/// let out = sluice_classifier::splice(b"INSERT INTO t VALUES ", &[b"(1)", b"(2)"], b";");
/// assert_eq!(out, b"INSERT INTO t VALUES (1),(2);");
/// ```
pub fn splice(prefix: &[u8], rows: &[&[u8]], suffix: &[u8]) -> Vec<u8> {
    let rows_len: usize = rows.iter().map(|r| r.len()).sum();
    let mut out = Vec::with_capacity(prefix.len() + rows_len + rows.len() + suffix.len());
    out.extend_from_slice(prefix);
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(r);
    }
    out.extend_from_slice(suffix);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for r in NotBatchable::ALL {
            let s = r.as_str();
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            assert!(seen.insert(s), "{s}");
        }
    }
}
