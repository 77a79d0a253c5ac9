//! A statement's code tokens (comments and executable-comment markers
//! removed) and helpers to read keywords and names from them.

use crate::kind::TableName;
use crate::lexer::{Tok, Token};

/// The code tokens of a statement (comments and executable-comment
/// markers removed) with the text they index.
pub(crate) struct Code<'a> {
    pub(crate) sql: &'a [u8],
    pub(crate) toks: Vec<Token>,
}

impl<'a> Code<'a> {
    pub(crate) fn new(sql: &'a [u8], tokens: &[Token]) -> Self {
        let mut toks = Vec::with_capacity(tokens.len());
        toks.extend(tokens.iter().copied().filter(|t| t.tok.is_code()));
        Code { sql, toks }
    }

    pub(crate) fn kw(&self, i: usize, kw: &str) -> bool {
        self.toks.get(i).is_some_and(|t| t.is_kw(self.sql, kw))
    }

    pub(crate) fn tok(&self, i: usize) -> Option<Tok> {
        self.toks.get(i).map(|t| t.tok)
    }

    /// Index of the first word at paren depth 0 from `from` that is one of
    /// `kws`.
    pub(crate) fn find_top(&self, from: usize, kws: &[&str]) -> Option<usize> {
        let mut depth = 0usize;
        for (i, t) in self.toks.iter().enumerate().skip(from) {
            match t.tok {
                Tok::LParen => depth += 1,
                Tok::RParen => depth = depth.saturating_sub(1),
                Tok::Word if depth == 0 && kws.iter().any(|k| t.is_kw(self.sql, k)) => {
                    return Some(i)
                }
                _ => {}
            }
        }
        None
    }

    /// True if a word in `names` is directly followed by `(` anywhere.
    pub(crate) fn calls_any(&self, names: &[&str]) -> bool {
        self.toks
            .windows(2)
            .any(|w| w[1].tok == Tok::LParen && names.iter().any(|n| w[0].is_kw(self.sql, n)))
    }

    /// Read an identifier token's unquoted text.
    pub(crate) fn ident(&self, i: usize) -> Option<String> {
        let t = self.toks.get(i)?;
        let b = t.bytes(self.sql);
        match t.tok {
            Tok::Word => Some(String::from_utf8_lossy(b).into_owned()),
            Tok::Backtick => Some(unquote(b, b'`')),
            Tok::Str { quote: b'"' } => Some(unquote(b, b'"')),
            _ => None,
        }
    }

    /// `Some(i)` if the token at `i` is an identifier.
    pub(crate) fn ident_at(&self, i: usize) -> Option<usize> {
        matches!(
            self.tok(i),
            Some(Tok::Word | Tok::Backtick | Tok::Str { quote: b'"' })
        )
        .then_some(i)
    }

    /// The index after a `[schema.]name` at `i`, without building it.
    pub(crate) fn table_end(&self, i: usize) -> Option<usize> {
        self.ident_at(i)?;
        if self.tok(i + 1) == Some(Tok::Dot) {
            self.ident_at(i + 2)?;
            return Some(i + 3);
        }
        Some(i + 1)
    }

    /// Parse `[schema.]name` at `i`; returns it and the next index.
    pub(crate) fn table_name(&self, i: usize) -> Option<(TableName, usize)> {
        let first = self.ident(i)?;
        if self.tok(i + 1) == Some(Tok::Dot) {
            let second = self.ident(i + 2)?;
            return Some((
                TableName {
                    schema: Some(first),
                    name: second,
                },
                i + 3,
            ));
        }
        Some((
            TableName {
                schema: None,
                name: first,
            },
            i + 1,
        ))
    }

    /// Comma-separated table names from `i`, stopping at anything else.
    pub(crate) fn table_list(&self, mut i: usize) -> Vec<TableName> {
        let mut out = Vec::new();
        while let Some((t, next)) = self.table_name(i) {
            out.push(t);
            i = next;
            if self.tok(i) != Some(Tok::Comma) {
                break;
            }
            i += 1;
        }
        out
    }
}

/// Strip quotes and undouble the quote character.
pub(crate) fn unquote(b: &[u8], q: u8) -> String {
    let inner = if b.len() >= 2 { &b[1..b.len() - 1] } else { b };
    let mut v = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        v.push(inner[i]);
        if inner[i] == q && inner.get(i + 1) == Some(&q) {
            i += 1;
        }
        i += 1;
    }
    String::from_utf8_lossy(&v).into_owned()
}
