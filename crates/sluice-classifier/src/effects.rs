//! What a statement text may do to its session beyond what its kind says,
//! read from its code tokens only: a word inside a string literal, a
//! quoted identifier or a comment is never taken for code, and code inside
//! an executable comment is. The lexer reads quotes with the session's
//! escape mode, so the same holds under `NO_BACKSLASH_ESCAPES` and
//! `ANSI_QUOTES`.

use crate::builtins::is_builtin;
use crate::code::Code;
use crate::lexer::{Tok, Token};
use crate::values::is_known_function;

/// Session effects of one statement text (several statements, when the
/// text holds several).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Mentions `TEMPORARY` (a temporary table created or dropped).
    pub temporary_table: bool,
    /// `LOCK TABLE[S]`.
    pub table_lock: bool,
    /// `… WITH READ LOCK`, `FOR EXPORT`, `BACKUP STAGE`: a lock that other
    /// sessions' batches would wait on.
    pub global_lock: bool,
    /// Assigns the system variable `timestamp`, `rand_seed1` or
    /// `rand_seed2` (not a user variable of that name), pinning what
    /// `NOW()` or `RAND()` return. In a single `UPDATE … SET timestamp =
    /// …` this is a column: see [`Effects::several_statements`].
    pub pins_clock_or_seed: bool,
    /// `SET TRANSACTION …` without a scope: characteristics for the
    /// session's next transaction only.
    pub sets_next_transaction: bool,
    /// A name followed by `(` that is not a built-in function: a stored
    /// function may run and change session settings unannounced.
    pub may_call_routine: bool,
    /// Holds the word `USE`: the current database may change.
    pub may_change_database: bool,
    /// More than one statement (code after a `;`).
    pub several_statements: bool,
}

/// Words after which `name (` is a table and its column list
/// (`INSERT t (a)`, `INSERT IGNORE t (a)`, `REPLACE t (a)`: `INTO` is
/// optional).
const TABLE_BEFORE: &[&str] = &[
    "INSERT",
    "IGNORE",
    "REPLACE",
    "INTO",
    "TABLE",
    "REFERENCES",
    "INDEX",
    "KEY",
    "ON",
    "UPDATE",
];

/// Session variables that pin what a row's functions return.
const PINNING_VARIABLES: &[&str] = &["timestamp", "rand_seed1", "rand_seed2"];

pub(crate) fn scan(code: &Code<'_>) -> Effects {
    let sql = code.sql;
    let toks = &code.toks;
    let kw = |i: usize, word: &str| toks.get(i).is_some_and(|t| t.is_kw(sql, word));
    let op = |i: usize, byte: u8| {
        toks.get(i)
            .is_some_and(|t| t.tok == Tok::Op && t.bytes(sql) == [byte])
    };
    let mut effects = Effects::default();
    // The last word before the current name that was not a qualifier.
    let mut previous: Option<&Token> = None;
    for (i, t) in toks.iter().enumerate() {
        match t.tok {
            Tok::Semi if i + 1 < toks.len() => effects.several_statements = true,
            Tok::Word | Tok::Backtick => {
                let calls = toks.get(i + 1).is_some_and(|n| n.tok == Tok::LParen);
                let qualified = i > 0 && toks[i - 1].tok == Tok::Dot;
                if calls {
                    let table =
                        previous.is_some_and(|p| TABLE_BEFORE.iter().any(|w| p.is_kw(sql, w)));
                    let name = t.bytes(sql);
                    let builtin = t.tok == Tok::Word
                        && !qualified
                        && (is_builtin(name) || is_known_function(name));
                    if !table && !builtin {
                        effects.may_call_routine = true;
                    }
                }
                if t.tok == Tok::Word {
                    let word = t.bytes(sql);
                    let is = |w: &str| word.eq_ignore_ascii_case(w.as_bytes());
                    if is("TEMPORARY") {
                        effects.temporary_table = true;
                    } else if is("USE") {
                        effects.may_change_database = true;
                    } else if is("LOCK") && (kw(i + 1, "TABLES") || kw(i + 1, "TABLE")) {
                        effects.table_lock = true;
                    } else if (is("READ") && kw(i + 1, "LOCK"))
                        || (is("FOR") && kw(i + 1, "EXPORT"))
                        || (is("BACKUP") && kw(i + 1, "STAGE"))
                    {
                        effects.global_lock = true;
                    } else if is("SET") && kw(i + 1, "TRANSACTION") {
                        effects.sets_next_transaction = true;
                    } else if PINNING_VARIABLES.iter().any(|v| is(v)) {
                        let user_variable = i > 0
                            && toks[i - 1].tok == Tok::At
                            && !(i > 1 && toks[i - 2].tok == Tok::At);
                        let assigned = op(i + 1, b'=') || (op(i + 1, b':') && op(i + 2, b'='));
                        if assigned && !user_variable {
                            effects.pins_clock_or_seed = true;
                        }
                    }
                }
                let qualifies = toks.get(i + 1).is_some_and(|n| n.tok == Tok::Dot);
                if !qualifies {
                    previous = Some(t);
                }
            }
            _ => {}
        }
    }
    effects
}
