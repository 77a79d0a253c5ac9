//! The cold path: sqlparser's verdict on a shape seen for the first time.
//!
//! sqlparser (MySQL dialect, unescaping off) parses the whole statement;
//! the AST must agree with what the lexer located: one `INSERT`, no
//! modifier or clause that forbids batching, a `VALUES` source with exactly
//! one row of the located number of values and columns. Only the verdict
//! is used: SQL is never re-printed from the AST.

use sqlparser::ast::{OnInsert, SetExpr, Statement};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::{Parser, ParserOptions};

use crate::lexer::{Tok, Token};
use crate::shape::NotBatchable;

/// The text sqlparser sees: same length as the input, comments and
/// executable-comment markers blanked (their content stays when it is
/// executed), bytes >= 0x80 replaced by `x` so the text is ASCII whatever
/// the client's character set.
pub(crate) fn parser_text(sql: &[u8], tokens: &[Token]) -> String {
    let mut out = Vec::with_capacity(sql.len());
    let mut at = 0;
    for t in tokens {
        // the whitespace before the token
        out.extend_from_slice(sql.get(at..t.start).unwrap_or_default());
        at = t.end;
        let b = t.bytes(sql);
        match t.tok {
            Tok::Comment | Tok::OptimizerHint | Tok::ExecOpen | Tok::ExecClose => {
                out.extend(b.iter().map(|&c| if c == b'\n' { b'\n' } else { b' ' }));
            }
            // String contents are opaque to the verdict; neutral bytes make
            // sqlparser (which always reads backslash escapes) find the
            // same boundaries as the lexer did in the session's mode.
            Tok::Str { .. } | Tok::Backtick => blank_inside(&mut out, b, 1, b'x'),
            Tok::PrefixedStr if matches!(b.first(), Some(b'n' | b'N')) => {
                blank_inside(&mut out, b, 2, b'x')
            }
            // X'…' and B'…' contents are checked by the row grammar.
            Tok::PrefixedStr => blank_inside(&mut out, b, 2, b'0'),
            _ => out.extend(b.iter().map(|&c| if c >= 0x80 { b'x' } else { c })),
        }
    }
    out.extend_from_slice(sql.get(at..).unwrap_or_default());
    String::from_utf8(out).unwrap_or_default()
}

/// Copy a quoted token, its content (after `open` bytes, before the
/// closing quote) replaced by `fill`.
fn blank_inside(out: &mut Vec<u8>, b: &[u8], open: usize, fill: u8) {
    for (i, &c) in b.iter().enumerate() {
        let keep = i < open || i + 1 == b.len();
        out.push(if keep { c } else { fill });
    }
}

/// What the lexer located, for cross-checking the AST.
pub(crate) struct Expect {
    pub(crate) columns: usize,
    pub(crate) values: usize,
    /// `REPLACE`.
    pub(crate) replace: bool,
    /// An `ON DUPLICATE KEY UPDATE` clause.
    pub(crate) update: bool,
}

/// Parse `text` and check it is a batchable single-row INSERT.
pub(crate) fn verdict(text: &str, expect: &Expect) -> Result<(), NotBatchable> {
    let dialect = MySqlDialect {};
    let statements = Parser::new(&dialect)
        .with_options(ParserOptions::new().with_unescape(false))
        .try_with_sql(text)
        .and_then(|mut p| p.parse_statements())
        .map_err(|_| NotBatchable::ParseFailure)?;
    let [statement] = statements.as_slice() else {
        return Err(if statements.is_empty() {
            NotBatchable::ParseFailure
        } else {
            NotBatchable::MultiStatement
        });
    };
    let Statement::Insert(ins) = statement else {
        return Err(NotBatchable::NotInsert);
    };
    if ins.replace_into != expect.replace {
        return Err(NotBatchable::ParseFailure);
    }
    if ins.priority.is_some() {
        return Err(NotBatchable::PriorityModifier);
    }
    if ins.partitioned.is_some() || !ins.after_columns.is_empty() {
        return Err(NotBatchable::Partition);
    }
    match &ins.on {
        None if !expect.update => {}
        Some(OnInsert::DuplicateKeyUpdate(assignments))
            if expect.update && !assignments.is_empty() => {}
        _ => return Err(NotBatchable::ParseFailure),
    }
    if ins.insert_alias.is_some() {
        return Err(NotBatchable::RowAlias);
    }
    if ins.returning.is_some() {
        return Err(NotBatchable::Returning);
    }
    if !ins.assignments.is_empty() {
        return Err(NotBatchable::SetForm);
    }
    if ins.table_alias.is_some()
        || ins.overwrite
        || ins.has_table_keyword
        || ins.or.is_some()
        || ins.output.is_some()
        || ins.settings.is_some()
        || ins.format_clause.is_some()
        || ins.multi_table_insert_type.is_some()
    {
        return Err(NotBatchable::ParseFailure);
    }
    let Some(source) = &ins.source else {
        return Err(NotBatchable::ParseFailure);
    };
    if source.with.is_some()
        || source.order_by.is_some()
        || source.limit_clause.is_some()
        || source.fetch.is_some()
        || !source.locks.is_empty()
        || source.for_clause.is_some()
    {
        return Err(NotBatchable::SelectSource);
    }
    let SetExpr::Values(values) = source.body.as_ref() else {
        return Err(NotBatchable::SelectSource);
    };
    if values.explicit_row {
        return Err(NotBatchable::ParseFailure);
    }
    // The shape is shared by statements of one row and of several: each
    // row must be the expected tuple.
    if values.rows.is_empty()
        || values
            .rows
            .iter()
            .any(|row| row.content.len() != expect.values)
        || ins.columns.len() != expect.columns
    {
        return Err(NotBatchable::ParseFailure);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::{lex, LexConfig};

    #[test]
    fn parser_text_keeps_length_and_blanks_markers() {
        let sql = "INSERT /*! INTO */ t /* é */ VALUES ('é')".as_bytes();
        let l = lex(sql, LexConfig::DEFAULT);
        let text = parser_text(sql, &l.tokens);
        assert_eq!(text.len(), sql.len());
        assert_eq!(text, "INSERT     INTO    t          VALUES ('xx')");
        let sql = br"INSERT INTO `a``b` VALUES ('it''s', N'\\', X'0A')";
        let l = lex(sql, LexConfig::DEFAULT);
        let text = parser_text(sql, &l.tokens);
        assert_eq!(text, "INSERT INTO `xxxx` VALUES ('xxxxx', N'xx', X'00')");
    }

    #[test]
    fn nesting_the_row_grammar_allows_parses() {
        // The row grammar allows at most 16 levels (parentheses, calls and
        // unary operators together); sqlparser must parse that in a debug
        // build on a 2 MiB test thread, with room to spare.
        let e = Expect {
            columns: 0,
            values: 1,
            replace: false,
            update: false,
        };
        for n in [16usize, 20] {
            let parens = format!("INSERT INTO t VALUES ({}1{})", "(".repeat(n), ")".repeat(n));
            let calls = format!(
                "INSERT INTO t VALUES ({}1{})",
                "ABS(".repeat(n),
                ")".repeat(n)
            );
            let mixed = format!(
                "INSERT INTO t VALUES ({}1{})",
                "(- ".repeat(n),
                ")".repeat(n)
            );
            for text in [parens, calls, mixed] {
                assert_eq!(verdict(&text, &e), Ok(()), "{text}");
            }
        }
    }

    #[test]
    fn every_allowed_function_parses() {
        for f in crate::values::allowed_functions() {
            let text = format!("INSERT INTO t VALUES ({f}(1, 'a'))");
            let r = verdict(
                &text,
                &Expect {
                    columns: 0,
                    values: 1,
                    replace: false,
                    update: false,
                },
            );
            assert_eq!(r, Ok(()), "{text}");
        }
    }
}
