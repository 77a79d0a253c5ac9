//! A session's last batchable statement, remembered so that the next one
//! of the same shape is classified by comparing bytes: a client that sends
//! `INSERT INTO t (a, b) VALUES (…)` again and again repeats everything
//! but the rows, so only the rows are lexed and checked again.
//!
//! Sound because lexing is a left-to-right scan whose state at a token
//! boundary depends only on the bytes before it: the remembered text was
//! in plain code (no executable comment open) where its first row's `(`
//! began, and the same bytes lead there now; after the last row's `)` the
//! remembered text went on in plain code, and the same bytes follow now.
//! Every debug build checks the answer against a full classification.

use std::ops::Range;
use std::sync::Arc;

use crate::code::Code;
use crate::insert::row_list;
use crate::lexer::{lex_into, Tok, Token};
use crate::shape::{BatchableInsert, Frame};
use crate::{ambiguous, check_rows, lex_config, Classification, Effects, Hints, Kind, Options};

/// The last batchable statement of one session; see [`crate::Classifier::classify_remembering`].
#[derive(Debug, Default)]
pub struct Memo {
    last: Option<Remembered>,
    /// The token buffer of the last recall, kept for the next one.
    tokens: Vec<Token>,
}

#[derive(Debug)]
struct Remembered {
    opts: Options,
    /// The text before the first row's `(`.
    prefix: Vec<u8>,
    /// The text after the last row's `)`.
    suffix: Vec<u8>,
    kind: Kind,
    hints: Hints,
    frame: Arc<Frame>,
    ignore_at: usize,
    ignore: bool,
    verb: Range<usize>,
    replace: bool,
    /// The `ON DUPLICATE KEY UPDATE` clause, as distances from the end of
    /// the text (it lies in the suffix).
    update_from_end: Option<(usize, usize)>,
}

impl Memo {
    /// Remembers `classification` of `sql` when it is a batchable INSERT
    /// and its text is plain (`plain`: no executable or conditional
    /// comment, which would make the lexer's state at the rows depend on
    /// more than the bytes before them).
    pub(crate) fn remember(
        &mut self,
        sql: &[u8],
        opts: Options,
        classification: &Classification,
        plain: bool,
    ) {
        let Ok(shape) = classification.batch.as_ref() else {
            return;
        };
        if !plain {
            return;
        }
        let (mut prefix, mut suffix) = match self.last.take() {
            Some(old) => (old.prefix, old.suffix),
            None => (Vec::new(), Vec::new()),
        };
        prefix.clear();
        prefix.extend_from_slice(&sql[..shape.row.start]);
        suffix.clear();
        suffix.extend_from_slice(&sql[shape.row.end..]);
        self.last = Some(Remembered {
            opts,
            prefix,
            suffix,
            kind: classification.kind.clone(),
            hints: classification.hints.clone(),
            frame: shape.frame.clone(),
            ignore_at: shape.ignore_at,
            ignore: shape.ignore,
            verb: shape.verb.clone(),
            replace: shape.replace,
            update_from_end: shape
                .update
                .as_ref()
                .map(|u| (sql.len() - u.start, sql.len() - u.end)),
        });
    }

    /// The classification of `sql`, if it is the remembered statement
    /// with other rows of the same number of values; `None` to classify
    /// it in full.
    pub(crate) fn recall(&mut self, sql: &[u8], opts: Options) -> Option<Classification> {
        let Memo { last, tokens } = self;
        let last = last.as_ref()?;
        if last.opts != opts
            || sql.len() < last.prefix.len() + last.suffix.len() + 2
            || !sql.starts_with(&last.prefix)
            || !sql.ends_with(&last.suffix)
        {
            return None;
        }
        let span = last.prefix.len()..sql.len() - last.suffix.len();
        let text = &sql[span.clone()];
        if text.first() != Some(&b'(') || text.last() != Some(&b')') {
            return None;
        }
        let lexed = lex_into(text, lex_config(opts), std::mem::take(tokens));
        // Only code between the rows: a comment could carry a hint or a
        // marker, and its absence keeps the check simple.
        if lexed.saw_conditional
            || lexed
                .tokens
                .iter()
                .any(|t| !t.tok.is_code() || t.tok == Tok::Error)
            || ambiguous(text, &lexed, opts.escapes)
        {
            *tokens = lexed.tokens;
            return None;
        }
        // Every token is code: they are the code tokens as they are.
        let code = Code {
            sql: text,
            toks: lexed.tokens,
        };
        let checked = rows_of(&code).and_then(|rows| {
            check_rows(text, &code, &rows, 0, opts.prepared)
                .ok()
                .map(|tuple| (rows.len(), tuple))
        });
        *tokens = code.toks;
        let (rows, tuple) = checked?;
        if tuple.values != last.frame.values {
            return None;
        }
        let len = sql.len();
        Some(Classification {
            kind: last.kind.clone(),
            hints: last.hints.clone(),
            effects: Effects::default(),
            batch: Ok(BatchableInsert {
                frame: last.frame.clone(),
                row: span,
                rows,
                len,
                placeholders: tuple.placeholders,
                forms: tuple.forms,
                ignore_at: last.ignore_at,
                ignore: last.ignore,
                verb: last.verb.clone(),
                replace: last.replace,
                update: last
                    .update_from_end
                    .map(|(start, end)| len - start..len - end),
            }),
        })
    }
}

/// The row tuples `( … ), ( … )` that make up all of `code`, as pairs of
/// token indices, read as the full classification reads a row list;
/// `None` if anything else is there.
fn rows_of(code: &Code<'_>) -> Option<Vec<(usize, usize)>> {
    if code.tok(0) != Some(Tok::LParen) {
        return None;
    }
    let (rows, after) = row_list(&code.toks, 0, true)?;
    (after == code.toks.len()).then_some(rows)
}

/// Whether two classifications agree in every field, including those
/// `PartialEq` leaves out: the debug check of [`Memo::recall`].
pub(crate) fn same_in_full(a: &Classification, b: &Classification) -> bool {
    if a != b {
        return false;
    }
    match (&a.batch, &b.batch) {
        (Ok(x), Ok(y)) => {
            x.forms == y.forms
                && x.ignore_at == y.ignore_at
                && x.ignore == y.ignore
                && x.verb == y.verb
                && x.replace == y.replace
                && x.update == y.update
                && x.frame.table == y.frame.table
                && x.frame.columns == y.frame.columns
                && x.frame.values == y.frame.values
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Classifier, EscapeMode};

    const BACKSLASH: Options = Options {
        prepared: false,
        escapes: EscapeMode::Backslash,
        ansi_quotes: false,
    };

    /// Classifies `first`, then `next` with the memo: whether `next` was
    /// recalled, after checking the answer against a full classification.
    fn recalled(first: &str, next: &str, opts: Options) -> bool {
        let classifier = Classifier::new(64);
        let mut memo = Memo::default();
        classifier.classify_remembering(first.as_bytes(), opts, &mut memo);
        let hit = memo.recall(next.as_bytes(), opts).is_some();
        let answer = classifier.classify_remembering(next.as_bytes(), opts, &mut memo);
        let full = classifier.classify_with(next.as_bytes(), opts);
        assert!(
            same_in_full(&answer, &full),
            "{next}: {answer:?} / {full:?}"
        );
        hit
    }

    #[test]
    fn only_the_rows_of_the_remembered_shape_are_recalled() {
        let base = "INSERT INTO t (a, b) VALUES (1, 'x')";
        let cases: &[(&str, &str, bool)] = &[
            (
                "other values",
                "INSERT INTO t (a, b) VALUES (22, 'y z')",
                true,
            ),
            (
                "parentheses in a string",
                "INSERT INTO t (a, b) VALUES (3, ')(')",
                true,
            ),
            (
                "several rows",
                "INSERT INTO t (a, b) VALUES (1, 'a'), (2, 'b')",
                true,
            ),
            (
                "an upsert after the row",
                "INSERT INTO t (a, b) VALUES (1, 'x') ON DUPLICATE KEY UPDATE b = (2)",
                false,
            ),
            (
                "a second statement",
                "INSERT INTO t (a, b) VALUES (1, 'x'); DELETE FROM t WHERE (1)",
                false,
            ),
            (
                "rows side by side",
                "INSERT INTO t (a, b) VALUES (1, 'x')(2, 'y')",
                false,
            ),
            ("fewer values", "INSERT INTO t (a, b) VALUES (1)", false),
            (
                "a hint inside the row",
                "INSERT INTO t (a, b) VALUES (1, /* batch:0 */ 'x')",
                false,
            ),
            (
                "a string left open",
                "INSERT INTO t (a, b) VALUES (1, 'x)",
                false,
            ),
            (
                "a function the row may not call",
                "INSERT INTO t (a, b) VALUES (1, SLEEP(5))",
                false,
            ),
            (
                "another table",
                "INSERT INTO u (a, b) VALUES (1, 'x')",
                false,
            ),
            (
                "an executable comment",
                "INSERT INTO t (a, b) VALUES (1, /*!50000 'x' */)",
                false,
            ),
        ];
        for (what, next, hit) in cases {
            assert_eq!(recalled(base, next, BACKSLASH), *hit, "{what}");
        }
    }

    #[test]
    fn the_escape_mode_is_part_of_what_is_remembered() {
        let first = "INSERT INTO t (a) VALUES ('x')";
        let next = "INSERT INTO t (a) VALUES ('it\\'s')";
        assert!(recalled(first, next, BACKSLASH));
        // Unknown mode: a backslash makes the boundaries uncertain.
        assert!(!recalled(first, next, Options::default()));
        let classifier = Classifier::new(8);
        let mut memo = Memo::default();
        classifier.classify_remembering(first.as_bytes(), BACKSLASH, &mut memo);
        let no_backslash = Options {
            escapes: EscapeMode::NoBackslash,
            ..BACKSLASH
        };
        assert!(memo.recall(next.as_bytes(), no_backslash).is_none());
    }

    #[test]
    fn a_text_with_an_executable_comment_is_not_remembered() {
        let first = "INSERT /*!50000 INTO */ t (a) VALUES (1)";
        assert!(!recalled(
            first,
            "INSERT /*!50000 INTO */ t (a) VALUES (2)",
            BACKSLASH
        ));
    }

    #[test]
    fn what_follows_the_rows_keeps_its_place() {
        let first =
            "INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a) /* batch:5 */";
        let next = "INSERT INTO t (a) VALUES (12345), (6) ON DUPLICATE KEY UPDATE a = VALUES(a) /* batch:5 */";
        assert!(recalled(first, next, BACKSLASH));
        let classifier = Classifier::new(8);
        let mut memo = Memo::default();
        classifier.classify_remembering(first.as_bytes(), BACKSLASH, &mut memo);
        let c = memo.recall(next.as_bytes(), BACKSLASH).expect("recalled");
        assert_eq!(c.hints.batch_ms, Some(5));
        let shape = c.batchable().expect("batchable");
        assert_eq!(shape.rows, 2);
        let update = shape.update.clone().expect("update clause");
        assert_eq!(
            &next.as_bytes()[update],
            b"ON DUPLICATE KEY UPDATE a = VALUES(a)"
        );
    }

    #[test]
    fn placeholders_of_a_prepared_text_are_found_in_the_new_rows() {
        let opts = Options {
            prepared: true,
            ..BACKSLASH
        };
        assert!(recalled(
            "INSERT INTO t (a, b) VALUES (?, 1)",
            "INSERT INTO t (a, b) VALUES (?, ?), (3, ?)",
            opts
        ));
    }
}
