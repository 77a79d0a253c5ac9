//! Finding the row tuple of an `INSERT` and building its shape key, from
//! the lexer's tokens alone (the fast path).
//!
//! The recogniser reads `INSERT [IGNORE] [INTO] [schema.]table [(cols)]
//! VALUES|VALUE (row) [ON DUPLICATE KEY UPDATE …] [;]`, or the same with
//! `REPLACE` (without `IGNORE` or the update clause). Clauses that make a
//! statement unbatchable and that are visible without a parser (SET
//! form, several rows, PARTITION, RETURNING, …) are reported here; the
//! final word on a new shape is sqlparser's ([`crate::cold`]).

use crate::code::Code;
use crate::kind::TableName;
use crate::lexer::{Tok, Token};
use crate::shape::NotBatchable;

/// A located single-row INSERT.
#[derive(Debug)]
pub(crate) struct Located {
    /// Index (in `Code::toks`) of the tuple's `(`.
    pub(crate) open: usize,
    /// Index (in `Code::toks`) of the tuple's `)`.
    pub(crate) close: usize,
    /// Every row as (open, close) indices; one entry unless several rows
    /// were allowed.
    pub(crate) rows: Vec<(usize, usize)>,
    /// Index of the table name's first token.
    table_at: usize,
    /// Index of each column name's token.
    pub(crate) column_at: Vec<usize>,
    /// `INSERT IGNORE`.
    pub(crate) ignore: bool,
    /// `REPLACE` rather than `INSERT`.
    pub(crate) replace: bool,
    /// Index of the `ON` of `ON DUPLICATE KEY UPDATE`, when there is one;
    /// the clause runs to the end of the statement.
    pub(crate) update_at: Option<usize>,
}

impl Located {
    /// The table and column names (built only for a new shape).
    pub(crate) fn names(&self, code: &Code<'_>) -> (TableName, Vec<String>) {
        let table = code
            .table_name(self.table_at)
            .map(|(t, _)| t)
            .unwrap_or(TableName {
                schema: None,
                name: String::new(),
            });
        let columns = self
            .column_at
            .iter()
            .map(|&i| code.ident(i).unwrap_or_default())
            .collect();
        (table, columns)
    }
}

/// Recognise the statement's structure; `code` starts at `INSERT`. With
/// `several`, a list of rows is accepted (and `close` is the last row's).
pub(crate) fn locate(code: &Code<'_>, several: bool) -> Result<Located, NotBatchable> {
    let sql = code.sql;
    let toks = &code.toks;
    let kw = |i: usize, k: &str| toks.get(i).is_some_and(|t| t.is_kw(sql, k));
    let tok = |i: usize| toks.get(i).map(|t| t.tok);
    let replace = kw(0, "REPLACE");
    if !kw(0, "INSERT") && !replace {
        return Err(NotBatchable::NotInsert);
    }
    let mut i = 1;
    if kw(i, "LOW_PRIORITY") || kw(i, "DELAYED") || kw(i, "HIGH_PRIORITY") {
        return Err(NotBatchable::PriorityModifier);
    }
    let ignore = kw(i, "IGNORE");
    if ignore {
        if replace {
            return Err(NotBatchable::ParseFailure);
        }
        i += 1;
    }
    if kw(i, "INTO") {
        i += 1;
    }
    let table_at = i;
    i = code.table_end(i).ok_or(NotBatchable::ParseFailure)?;
    if kw(i, "PARTITION") {
        return Err(NotBatchable::Partition);
    }
    let mut column_at = Vec::new();
    if tok(i) == Some(Tok::LParen) {
        if kw(i + 1, "SELECT") || kw(i + 1, "WITH") || tok(i + 1) == Some(Tok::LParen) {
            return Err(NotBatchable::SelectSource);
        }
        i += 1;
        if tok(i) == Some(Tok::RParen) {
            i += 1;
        } else {
            loop {
                // `col`, `t.col` or `db.t.col`: the column is the last part.
                let mut name = code.ident_at(i).ok_or(NotBatchable::ParseFailure)?;
                i += 1;
                while tok(i) == Some(Tok::Dot) {
                    name = code.ident_at(i + 1).ok_or(NotBatchable::ParseFailure)?;
                    i += 2;
                }
                column_at.push(name);
                match tok(i) {
                    Some(Tok::Comma) => i += 1,
                    Some(Tok::RParen) => {
                        i += 1;
                        break;
                    }
                    _ => return Err(NotBatchable::ParseFailure),
                }
            }
        }
    }
    if kw(i, "SET") {
        return Err(NotBatchable::SetForm);
    }
    if kw(i, "SELECT") || kw(i, "WITH") || kw(i, "TABLE") || tok(i) == Some(Tok::LParen) {
        return Err(NotBatchable::SelectSource);
    }
    if !(kw(i, "VALUES") || kw(i, "VALUE")) {
        return Err(NotBatchable::ParseFailure);
    }
    i += 1;
    if tok(i) != Some(Tok::LParen) {
        return Err(NotBatchable::ParseFailure);
    }
    let open = i;
    let (rows, after) = row_list(toks, open, several).ok_or(NotBatchable::ParseFailure)?;
    let close = rows[rows.len() - 1].1;
    i = after;
    let mut update_at = None;
    if kw(i, "ON") {
        if replace || !(kw(i + 1, "DUPLICATE") && kw(i + 2, "KEY") && kw(i + 3, "UPDATE")) {
            return Err(NotBatchable::ParseFailure);
        }
        update_at = Some(i);
        i = update_clause_end(code, i + 4)?;
    }
    match tok(i) {
        None => {}
        Some(Tok::Semi) if i + 1 < toks.len() => return Err(NotBatchable::MultiStatement),
        Some(Tok::Semi) => {}
        Some(Tok::Comma) => return Err(NotBatchable::SeveralRows),
        Some(Tok::Word) if kw(i, "AS") => return Err(NotBatchable::RowAlias),
        Some(Tok::Word) if kw(i, "RETURNING") => return Err(NotBatchable::Returning),
        Some(_) => return Err(NotBatchable::ParseFailure),
    }
    Ok(Located {
        open,
        close,
        rows,
        table_at,
        column_at,
        ignore,
        replace,
        update_at,
    })
}

/// The index just past an `ON DUPLICATE KEY UPDATE` clause whose
/// assignments start at `start`: the end of the statement, or its final
/// `;`. The clause runs only when its row meets an existing key, and then
/// the member's own statement runs alone: its content is the server's
/// business, but it must be one clause of one statement.
fn update_clause_end(code: &Code<'_>, start: usize) -> Result<usize, NotBatchable> {
    let toks = &code.toks;
    let mut depth = 0usize;
    let mut i = start;
    while let Some(t) = toks.get(i) {
        match t.tok {
            Tok::LParen => depth += 1,
            Tok::RParen => depth = depth.checked_sub(1).ok_or(NotBatchable::ParseFailure)?,
            Tok::Semi => break,
            // A prepared statement's parameter outside the row: the batch
            // carries only rows.
            Tok::Placeholder => return Err(NotBatchable::Placeholder),
            Tok::Word if depth == 0 && t.is_kw(code.sql, "RETURNING") => {
                return Err(NotBatchable::Returning)
            }
            _ => {}
        }
        i += 1;
    }
    if i == start || depth != 0 {
        return Err(NotBatchable::ParseFailure);
    }
    Ok(i)
}

/// The row tuples from the `(` at `open`: `( … )` and, with `several`,
/// each `, ( … )` that follows, as pairs of token indices, and the index
/// of the token after the last one. `None` if a tuple does not close.
pub(crate) fn row_list(
    toks: &[Token],
    open: usize,
    several: bool,
) -> Option<(Vec<(usize, usize)>, usize)> {
    let tok = |i: usize| toks.get(i).map(|t| t.tok);
    let mut close = matching_paren(toks, open)?;
    let mut rows = vec![(open, close)];
    while several && tok(close + 1) == Some(Tok::Comma) && tok(close + 2) == Some(Tok::LParen) {
        let next = close + 2;
        close = matching_paren(toks, next)?;
        rows.push((next, close));
    }
    Some((rows, close + 1))
}

fn matching_paren(toks: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t.tok {
            Tok::LParen => depth += 1,
            Tok::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            Tok::Semi => return None,
            _ => {}
        }
    }
    None
}

/// Build the shape key bytes: every significant token outside the row
/// (length-prefixed, so the encoding is unambiguous), the row replaced by
/// a marker carrying its number of values, a final `;` left out.
pub(crate) fn key_bytes(
    sql: &[u8],
    tokens: &[Token],
    row_start: usize,
    row_end: usize,
    values: usize,
    out: &mut Vec<u8>,
) {
    out.clear();
    let mut marked = false;
    let last_code = tokens
        .iter()
        .rposition(|t| !t.tok.is_trivia())
        .filter(|&i| tokens[i].tok == Tok::Semi && tokens[i].start >= row_end);
    for (i, t) in tokens.iter().enumerate() {
        if t.tok.is_trivia() || Some(i) == last_code {
            continue;
        }
        if t.start >= row_start && t.end <= row_end {
            if !marked {
                marked = true;
                out.extend_from_slice(&u32::MAX.to_le_bytes());
                out.extend_from_slice(&(values as u64).to_le_bytes());
            }
            continue;
        }
        let b = t.bytes(sql);
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    }
}

/// True if an optimizer hint or executable-comment marker lies inside the
/// row (its bytes would be cut in two by splicing).
pub(crate) fn markers_inside(tokens: &[Token], row_start: usize, row_end: usize) -> bool {
    tokens.iter().any(|t| {
        matches!(t.tok, Tok::ExecOpen | Tok::ExecClose | Tok::OptimizerHint)
            && t.start >= row_start
            && t.end <= row_end
    })
}
