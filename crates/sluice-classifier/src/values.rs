//! The grammar a row tuple must fit to be batchable.
//!
//! It is checked on every statement, cached shape or not, so it is the
//! one place that decides whether a row's *values* allow batching:
//! literals, `?` placeholders (prepared statements), `DEFAULT`, `NULL`,
//! unary `-`/`+`, arithmetic, parentheses, and calls of a list of builtins
//! whose result does not depend on the session that runs the statement.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::OnceLock;

use crate::cache::FastBuild;
use crate::lexer::{Tok, Token};
use crate::row::ValueForm;
use crate::shape::NotBatchable;

/// Builtins that are deterministic, or evaluated per row or per statement
/// without reading session state (`NOW()`, `UUID()`, `RAND()`).
const ALLOWED_FUNCS: &[&str] = &[
    // time: evaluated once per statement (NOW) or per call (SYSDATE)
    "NOW",
    "CURRENT_TIMESTAMP",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "CURDATE",
    "CURTIME",
    "LOCALTIME",
    "LOCALTIMESTAMP",
    "UTC_TIMESTAMP",
    "UTC_DATE",
    "UTC_TIME",
    "SYSDATE",
    "UNIX_TIMESTAMP",
    "FROM_UNIXTIME",
    "STR_TO_DATE",
    "DATE_FORMAT",
    "MAKEDATE",
    "MAKETIME",
    "TIMESTAMP",
    "DATE",
    "TIME",
    "YEAR",
    "MONTH",
    "DAY",
    "HOUR",
    "MINUTE",
    "SECOND",
    // identifiers and randomness: fine per row
    "UUID",
    "UUID_SHORT",
    "SYS_GUID",
    "RAND",
    // strings
    "CONCAT",
    "CONCAT_WS",
    "LOWER",
    "UPPER",
    "LCASE",
    "UCASE",
    "LTRIM",
    "RTRIM",
    "SUBSTR",
    "MID",
    "LENGTH",
    "CHAR_LENGTH",
    "CHARACTER_LENGTH",
    "OCTET_LENGTH",
    "REPEAT",
    "LPAD",
    "RPAD",
    "REVERSE",
    "HEX",
    "UNHEX",
    "SPACE",
    "ASCII",
    "ORD",
    "MD5",
    "SHA1",
    "SHA",
    "SHA2",
    "CRC32",
    "TO_BASE64",
    "FROM_BASE64",
    "COMPRESS",
    "UNCOMPRESS",
    "INET_ATON",
    "INET_NTOA",
    "INET6_ATON",
    "INET6_NTOA",
    "BIN",
    "OCT",
    "CONV",
    "SOUNDEX",
    "QUOTE",
    "ELT",
    "FIELD",
    "LOCATE",
    "INSTR",
    "SUBSTRING_INDEX",
    "UUID_TO_BIN",
    "BIN_TO_UUID",
    "AES_ENCRYPT",
    "AES_DECRYPT",
    // numbers
    "ABS",
    "CEILING",
    "ROUND",
    "MOD",
    "POW",
    "POWER",
    "SQRT",
    "EXP",
    "LN",
    "LOG",
    "LOG2",
    "LOG10",
    "SIGN",
    "PI",
    "DEGREES",
    "RADIANS",
    "SIN",
    "COS",
    "TAN",
    "GREATEST",
    "LEAST",
    // null handling and conditionals
    "COALESCE",
    "IFNULL",
    "NULLIF",
    "IF",
    // JSON and spatial constructors
    "JSON_OBJECT",
    "JSON_ARRAY",
    "JSON_QUOTE",
    "JSON_COMPACT",
    "JSON_EXTRACT",
    "POINT",
    "ST_GEOMFROMTEXT",
    "ST_POINTFROMTEXT",
    "ST_GEOMFROMWKB",
    "ST_GEOMFROMGEOJSON",
];

/// Functions whose result depends on the session that runs them.
const SESSION_FUNCS: &[&str] = &[
    "LAST_INSERT_ID",
    "CONNECTION_ID",
    "ROW_COUNT",
    "FOUND_ROWS",
    "DATABASE",
    "SCHEMA",
    "USER",
    "CURRENT_USER",
    "SESSION_USER",
    "SYSTEM_USER",
    "CURRENT_ROLE",
    "GET_LOCK",
    "RELEASE_LOCK",
    "RELEASE_ALL_LOCKS",
    "IS_FREE_LOCK",
    "IS_USED_LOCK",
    "SLEEP",
    "BENCHMARK",
    "MASTER_POS_WAIT",
    "MASTER_GTID_WAIT",
    "LOAD_FILE",
    "VALUES",
    "VALUE",
    "LAST_VALUE",
    "ROWNUM",
    "COLUMN_GET",
    "GET_FORMAT",
    "CHARSET",
    "COLLATION",
    "COERCIBILITY",
    "PASSWORD",
    "ENCRYPT",
    "DES_ENCRYPT",
    "DES_DECRYPT",
    "ENCODE",
    "DECODE",
];

/// Words that stand for the session when written without parentheses.
const SESSION_WORDS: &[&str] = &["CURRENT_USER", "CURRENT_ROLE", "SESSION_USER"];

/// Words that are a value when written without parentheses.
const NILADIC: &[&str] = &[
    "CURRENT_TIMESTAMP",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "LOCALTIME",
    "LOCALTIMESTAMP",
    "UTC_TIMESTAMP",
    "UTC_DATE",
    "UTC_TIME",
];

const SEQUENCE_FUNCS: &[&str] = &["NEXTVAL", "LASTVAL", "SETVAL", "PREVIOUS", "NEXT"];

/// Nesting allowed in a row: parentheses, calls and unary operators
/// together. sqlparser recurses on each and overflows a 2 MiB stack at
/// about 24 levels of nested parentheses in a debug build, so the grammar
/// stops well before (a test in `cold.rs` checks 20 levels parse).
const MAX_DEPTH: u32 = 16;

/// A tuple that fits the grammar.
#[derive(Debug, Default)]
pub(crate) struct Tuple {
    /// Number of values.
    pub(crate) values: usize,
    /// `?` placeholders, relative to the tuple's first byte.
    pub(crate) placeholders: Vec<Range<usize>>,
    /// The form of each value, in order.
    pub(crate) forms: Vec<ValueForm>,
}

/// Check the code tokens of a tuple, `(` and `)` included.
pub(crate) fn check_tuple(
    sql: &[u8],
    toks: &[Token],
    allow_placeholders: bool,
) -> Result<Tuple, NotBatchable> {
    let base = toks.first().map_or(0, |t| t.start);
    let mut v = Validator {
        sql,
        toks,
        i: 1,
        allow_placeholders,
        base,
        depth: 0,
        out: Tuple::default(),
    };
    if toks.len() < 2 || toks[0].tok != Tok::LParen || toks[toks.len() - 1].tok != Tok::RParen {
        return Err(NotBatchable::ParseFailure);
    }
    let last = toks.len() - 1;
    if v.i == last {
        return Ok(v.out);
    }
    loop {
        let first = v.i;
        if v.lone_literal() {
            // Most values are one number or string: what `expr` would
            // accept, without walking the grammar for it.
            v.i += 1;
        } else {
            v.expr()?;
        }
        v.out.values += 1;
        let form = ValueForm::of(sql, &toks[first..v.i]);
        v.out.forms.push(form);
        match v.peek() {
            Some(Tok::Comma) => v.i += 1,
            Some(Tok::RParen) if v.i == last => return Ok(v.out),
            _ => return Err(NotBatchable::UnsupportedExpression),
        }
    }
}

/// `X'…'` must hold an even number of hex digits and `B'…'` binary
/// digits, as the server requires; `N'…'` anything.
pub(crate) fn prefixed_ok(b: &[u8]) -> bool {
    let inner = b.get(2..b.len().saturating_sub(1)).unwrap_or_default();
    match b.first() {
        Some(b'x' | b'X') => inner.len() % 2 == 0 && inner.iter().all(u8::is_ascii_hexdigit),
        Some(b'b' | b'B') => inner.iter().all(|c| matches!(c, b'0' | b'1')),
        _ => true,
    }
}

struct Validator<'a> {
    sql: &'a [u8],
    toks: &'a [Token],
    i: usize,
    allow_placeholders: bool,
    base: usize,
    depth: u32,
    out: Tuple,
}

const ALLOWED: u8 = 1;
const SESSION: u8 = 2;
const SEQUENCE: u8 = 4;
const BARE_VALUE: u8 = 8;
const BARE_SESSION: u8 = 16;

/// Whether `word` names a built-in function this module knows (allowed in
/// a row, reading the session, or of sequences).
pub(crate) fn is_known_function(word: &[u8]) -> bool {
    word_class(word) & (ALLOWED | SESSION | SEQUENCE) != 0
}

/// Which lists a word is on (bit set), looked up upper-cased.
fn word_class(word: &[u8]) -> u8 {
    static TABLE: OnceLock<HashMap<&'static [u8], u8, FastBuild>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut m: HashMap<&'static [u8], u8, FastBuild> = HashMap::default();
        for (list, bit) in [
            (ALLOWED_FUNCS, ALLOWED),
            (SESSION_FUNCS, SESSION),
            (SEQUENCE_FUNCS, SEQUENCE),
            (NILADIC, BARE_VALUE),
            (SESSION_WORDS, BARE_SESSION),
        ] {
            for w in list {
                *m.entry(w.as_bytes()).or_default() |= bit;
            }
        }
        m
    });
    let mut buf = [0u8; 32];
    let Some(upper) = buf.get_mut(..word.len()) else {
        return 0;
    };
    upper.copy_from_slice(word);
    upper.make_ascii_uppercase();
    table.get(&*upper).copied().unwrap_or(0)
}

impl Validator<'_> {
    fn peek(&self) -> Option<Tok> {
        self.toks.get(self.i).map(|t| t.tok)
    }

    /// A number or `'…'` string that is the whole value (a `,` or `)`
    /// follows it).
    fn lone_literal(&self) -> bool {
        matches!(self.peek(), Some(Tok::Number | Tok::Str { quote: b'\'' }))
            && matches!(
                self.peek_at(1).map(|t| t.tok),
                Some(Tok::Comma | Tok::RParen)
            )
    }

    fn peek_at(&self, off: usize) -> Option<&Token> {
        self.toks.get(self.i + off)
    }

    fn op_is(&self, at: usize, ops: &[u8]) -> bool {
        self.toks.get(at).is_some_and(|t| {
            t.tok == Tok::Op && matches!(t.bytes(self.sql), [c] if ops.contains(c))
        })
    }

    fn expr(&mut self) -> Result<(), NotBatchable> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(NotBatchable::UnsupportedExpression);
        }
        self.unary()?;
        loop {
            let word_op = self
                .toks
                .get(self.i)
                .is_some_and(|t| t.is_kw(self.sql, "DIV"));
            if self.op_is(self.i, b"+-*/%") || word_op {
                self.i += 1;
                self.unary()?;
            } else {
                break;
            }
        }
        self.depth -= 1;
        Ok(())
    }

    fn unary(&mut self) -> Result<(), NotBatchable> {
        let mut ops = 0;
        while self.op_is(self.i, b"-+") {
            self.i += 1;
            ops += 1;
        }
        self.depth += ops;
        if self.depth > MAX_DEPTH {
            return Err(NotBatchable::UnsupportedExpression);
        }
        let r = self.primary();
        self.depth -= ops;
        r
    }

    /// Optional `COLLATE name` after a string.
    fn collate(&mut self) {
        if self
            .toks
            .get(self.i)
            .is_some_and(|t| t.is_kw(self.sql, "COLLATE"))
            && self
                .peek_at(1)
                .is_some_and(|t| matches!(t.tok, Tok::Word | Tok::Backtick | Tok::Str { .. }))
        {
            self.i += 2;
        }
    }

    fn primary(&mut self) -> Result<(), NotBatchable> {
        let Some(t) = self.toks.get(self.i).copied() else {
            return Err(NotBatchable::UnsupportedExpression);
        };
        self.i += 1;
        match t.tok {
            Tok::Number => Ok(()),
            Tok::PrefixedStr => {
                if !prefixed_ok(t.bytes(self.sql)) {
                    return Err(NotBatchable::ParseFailure);
                }
                self.collate();
                Ok(())
            }
            Tok::Str { quote: b'\'' } => {
                self.collate();
                Ok(())
            }
            // `"…"` is a string, or an identifier under ANSI_QUOTES: the
            // same bytes mean the same thing in the batch, so both are fine
            // only if it is a plain string; be conservative.
            Tok::Str { .. } => Err(NotBatchable::UnsupportedExpression),
            Tok::Placeholder => {
                if !self.allow_placeholders {
                    return Err(NotBatchable::Placeholder);
                }
                self.out
                    .placeholders
                    .push(t.start - self.base..t.end - self.base);
                Ok(())
            }
            Tok::At => {
                if self.peek() == Some(Tok::At) {
                    Err(NotBatchable::SystemVariable)
                } else {
                    Err(NotBatchable::UserVariable)
                }
            }
            Tok::LParen => {
                if self.subquery_ahead() {
                    return Err(NotBatchable::Subquery);
                }
                self.expr()?;
                if self.peek() != Some(Tok::RParen) {
                    return Err(NotBatchable::UnsupportedExpression);
                }
                self.i += 1;
                Ok(())
            }
            Tok::Word => self.word(t),
            _ => Err(NotBatchable::UnsupportedExpression),
        }
    }

    fn subquery_ahead(&self) -> bool {
        self.toks.get(self.i).is_some_and(|t| {
            ["SELECT", "WITH", "VALUES", "TABLE"]
                .iter()
                .any(|k| t.is_kw(self.sql, k))
        }) || (self.peek() == Some(Tok::LParen) && {
            // `((SELECT …))`
            let mut j = self.i;
            while self.toks.get(j).is_some_and(|t| t.tok == Tok::LParen) {
                j += 1;
            }
            self.toks
                .get(j)
                .is_some_and(|t| t.is_kw(self.sql, "SELECT") || t.is_kw(self.sql, "WITH"))
        })
    }

    fn word(&mut self, t: Token) -> Result<(), NotBatchable> {
        let w = t.bytes(self.sql);
        let next = self.peek();
        let call = next == Some(Tok::LParen);
        let class = word_class(w);
        let listed = |bit: u8| class & bit != 0;
        if !call {
            let kw = |k: &str| w.eq_ignore_ascii_case(k.as_bytes());
            if kw("NULL") || kw("TRUE") || kw("FALSE") || kw("DEFAULT") {
                return Ok(());
            }
            let hex_next = self.toks.get(self.i).is_some_and(|n| {
                n.tok == Tok::PrefixedStr && matches!(n.bytes(self.sql).first(), Some(b'x' | b'X'))
            });
            if w.first() == Some(&b'_') && (next == Some(Tok::Str { quote: b'\'' }) || hex_next) {
                // `_utf8mb4'x'`, `_binary X'00'`
                self.i += 1;
                self.collate();
                return Ok(());
            }
            if (kw("DATE") || kw("TIME") || kw("TIMESTAMP"))
                && next == Some(Tok::Str { quote: b'\'' })
            {
                self.i += 1;
                return Ok(());
            }
            if kw("SELECT") {
                return Err(NotBatchable::Subquery);
            }
            if kw("NEXT") || kw("PREVIOUS") {
                return Err(NotBatchable::Sequence);
            }
            if listed(BARE_VALUE) {
                return Ok(());
            }
            if listed(BARE_SESSION) {
                return Err(NotBatchable::SessionFunction);
            }
            if next == Some(Tok::Dot) {
                // `db.func(…)` is a stored function; `t.col` a column.
                let stored = self.peek_at(1).is_some_and(|x| x.tok == Tok::Word)
                    && self.peek_at(2).is_some_and(|x| x.tok == Tok::LParen);
                return Err(if stored {
                    NotBatchable::UnknownFunction
                } else {
                    NotBatchable::UnsupportedExpression
                });
            }
            return Err(NotBatchable::UnsupportedExpression);
        }
        if listed(SESSION) {
            return Err(NotBatchable::SessionFunction);
        }
        if listed(SEQUENCE) {
            return Err(NotBatchable::Sequence);
        }
        if !listed(ALLOWED) {
            return Err(NotBatchable::UnknownFunction);
        }
        // Arguments: `(` [expr {, expr}] `)`.
        self.i += 1;
        if self.peek() == Some(Tok::RParen) {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.expr()?;
            match self.peek() {
                Some(Tok::Comma) => self.i += 1,
                Some(Tok::RParen) => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(NotBatchable::UnsupportedExpression),
            }
        }
    }
}

/// The allowed function names, for tests that check sqlparser accepts
/// each of them.
#[cfg(test)]
pub(crate) fn allowed_functions() -> &'static [&'static str] {
    ALLOWED_FUNCS
}
