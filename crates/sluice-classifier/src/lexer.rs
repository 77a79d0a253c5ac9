//! A small MySQL/MariaDB lexer over raw bytes.
//!
//! It knows just enough of the server's lexical rules to find token
//! boundaries exactly: strings with backslash escapes and doubled quotes,
//! backtick identifiers, the three comment styles, executable comments
//! (`/*! … */`, `/*!50100 … */`, `/*M! … */`) and optimizer hints
//! (`/*+ … */`). Every token carries its byte range in the input, so the
//! classifier can splice the client's own bytes.
//!
//! The lexer assumes an ASCII-compatible connection character set in which
//! no ASCII byte is ever the trail byte of a multibyte character (UTF-8,
//! latin1 and the other single-byte sets). For the rare sets where that is
//! false (GBK, SJIS, BIG5, …), see [`Lexed::charset_ambiguous`].

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    /// Unquoted identifier or keyword (also `_charset` introducers).
    Word,
    /// `` `identifier` ``.
    Backtick,
    /// `'…'` or `"…"`; `quote` is the quote byte.
    Str { quote: u8 },
    /// `N'…'`, `X'…'` or `B'…'` (any case).
    PrefixedStr,
    /// Decimal, float, `0x…` or `0b…` number.
    Number,
    /// `?`
    Placeholder,
    /// `@` (user or system variable sigil).
    At,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `;`
    Semi,
    /// `.`
    Dot,
    /// Any other single punctuation byte.
    Op,
    /// Whitespace (trivia).
    Space,
    /// A comment that is not code (trivia); hints live here.
    Comment,
    /// `/*+ … */` optimizer hint: significant for the shape key.
    OptimizerHint,
    /// Opening marker of an executed executable comment (`/*!50100`).
    ExecOpen,
    /// Closing `*/` of an executed executable comment.
    ExecClose,
    /// Something the server would reject (unterminated string or comment,
    /// nested executable comment, stray byte).
    Error,
}

impl Tok {
    /// Whitespace and plain comments: no meaning to the server.
    pub(crate) fn is_trivia(self) -> bool {
        matches!(self, Tok::Space | Tok::Comment)
    }

    /// Tokens that carry meaning for the statement's structure.
    pub(crate) fn is_code(self) -> bool {
        !matches!(
            self,
            Tok::Space | Tok::Comment | Tok::OptimizerHint | Tok::ExecOpen | Tok::ExecClose
        )
    }
}

/// One token and its byte range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Token {
    /// The token's bytes (empty if the range does not fit `sql`).
    pub(crate) fn bytes<'s>(&self, sql: &'s [u8]) -> &'s [u8] {
        sql.get(self.start..self.end).unwrap_or(&[])
    }

    /// True for a word equal (ASCII case-insensitively) to `kw`.
    pub(crate) fn is_kw(&self, sql: &[u8], kw: &str) -> bool {
        self.tok == Tok::Word && self.bytes(sql).eq_ignore_ascii_case(kw.as_bytes())
    }
}

/// How the lexer reads quotes and conditional comments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LexConfig {
    /// Backslash escapes inside `'…'`.
    pub(crate) escapes_single: bool,
    /// Backslash escapes inside `"…"`.
    pub(crate) escapes_double: bool,
    /// Execute version-conditional comments (`/*!NNNNN`, `/*M!`).
    pub(crate) run_conditional: bool,
}

impl LexConfig {
    pub(crate) const DEFAULT: LexConfig = LexConfig {
        escapes_single: true,
        escapes_double: true,
        run_conditional: true,
    };
}

/// The result of lexing one statement text.
#[derive(Debug, Default)]
pub(crate) struct Lexed {
    pub(crate) tokens: Vec<Token>,
    /// A quoted token contained a backslash (its extent may depend on
    /// `NO_BACKSLASH_ESCAPES` / `ANSI_QUOTES`).
    pub(crate) saw_backslash: bool,
    /// A version-conditional executable comment was seen.
    pub(crate) saw_conditional: bool,
    /// A byte >= 0x80 was directly followed by `\` or `` ` ``: in a
    /// multibyte charset such as GBK that could be one character, so the
    /// token boundaries are not certain.
    pub(crate) charset_ambiguous: bool,
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Lex `sql` into tokens, in order; the bytes between tokens are
/// whitespace.
pub(crate) fn lex(sql: &[u8], cfg: LexConfig) -> Lexed {
    lex_into(sql, cfg, Vec::with_capacity(sql.len() / 4 + 8))
}

/// [`lex`] into a token buffer the caller had (its contents are dropped).
pub(crate) fn lex_into(sql: &[u8], cfg: LexConfig, mut tokens: Vec<Token>) -> Lexed {
    tokens.clear();
    let mut out = Lexed {
        tokens,
        ..Lexed::default()
    };
    let mut i = 0;
    let mut in_exec = false;
    while i < sql.len() {
        let start = i;
        let b = sql[i];
        let next = sql.get(i + 1).copied();
        let tok = if is_space(b) {
            while i < sql.len() && is_space(sql[i]) {
                i += 1;
            }
            Tok::Space
        } else if b == b'#' || (b == b'-' && next == Some(b'-') && dash_comment(sql, i + 2)) {
            while i < sql.len() && sql[i] != b'\n' {
                i += 1;
            }
            Tok::Comment
        } else if b == b'*' && next == Some(b'/') && in_exec {
            in_exec = false;
            i += 2;
            Tok::ExecClose
        } else if b == b'/' && next == Some(b'*') {
            let (tok, end) = block_comment(sql, i, cfg, in_exec, &mut out.saw_conditional);
            if tok == Tok::ExecOpen {
                in_exec = true;
            }
            i = end;
            tok
        } else if b == b'\'' || b == b'"' {
            let escapes = if b == b'\'' {
                cfg.escapes_single
            } else {
                cfg.escapes_double
            };
            let (end, ok) = quoted(sql, i, b, escapes, &mut out);
            i = end;
            if ok {
                Tok::Str { quote: b }
            } else {
                Tok::Error
            }
        } else if b == b'`' {
            let (end, ok) = quoted(sql, i, b, false, &mut out);
            i = end;
            if ok {
                Tok::Backtick
            } else {
                Tok::Error
            }
        } else if matches!(b, b'n' | b'N' | b'x' | b'X' | b'b' | b'B') && next == Some(b'\'') {
            let escapes = matches!(b, b'n' | b'N') && cfg.escapes_single;
            let (end, ok) = quoted(sql, i + 1, b'\'', escapes, &mut out);
            i = end;
            if ok {
                Tok::PrefixedStr
            } else {
                Tok::Error
            }
        } else if b.is_ascii_digit() || (b == b'.' && next.is_some_and(|n| n.is_ascii_digit())) {
            let (end, tok) = number(sql, i);
            i = end;
            tok
        } else if is_ident_byte(b) {
            while i < sql.len() && is_ident_byte(sql[i]) {
                i += 1;
            }
            Tok::Word
        } else {
            i += 1;
            match b {
                b'?' => Tok::Placeholder,
                b'@' => Tok::At,
                b'(' => Tok::LParen,
                b')' => Tok::RParen,
                b',' => Tok::Comma,
                b';' => Tok::Semi,
                b'.' => Tok::Dot,
                b'!'..=b'~' => Tok::Op,
                _ => Tok::Error,
            }
        };
        // Whitespace is not kept: the gaps between tokens are whitespace.
        if tok != Tok::Space {
            out.tokens.push(Token { tok, start, end: i });
        }
    }
    out.charset_ambiguous = !sql.is_ascii()
        && sql
            .windows(2)
            .any(|w| w[0] >= 0x80 && matches!(w[1], b'\\' | b'`'));
    if in_exec {
        // An executable comment that never closes: the server rejects it.
        out.tokens.push(Token {
            tok: Tok::Error,
            start: sql.len(),
            end: sql.len(),
        });
    }
    out
}

/// `--` starts a comment only when followed by whitespace, a control
/// character or the end of the text.
fn dash_comment(sql: &[u8], at: usize) -> bool {
    match sql.get(at) {
        None => true,
        Some(&c) => c <= b' ',
    }
}

/// Lex a `/* … */` comment starting at `i`. Returns the token and its end.
fn block_comment(
    sql: &[u8],
    i: usize,
    cfg: LexConfig,
    in_exec: bool,
    saw_conditional: &mut bool,
) -> (Tok, usize) {
    let mut j = i + 2;
    let mut executable = false;
    let mut conditional = false;
    let mut hint = false;
    match sql.get(j) {
        Some(b'!') => {
            executable = true;
            j += 1;
        }
        Some(b'M') if sql.get(j + 1) == Some(&b'!') => {
            executable = true;
            conditional = true;
            j += 2;
        }
        Some(b'+') => hint = true,
        _ => {}
    }
    if executable {
        let digits = sql[j..]
            .iter()
            .take(6)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits >= 5 {
            conditional = true;
            j += digits;
        }
        if conditional {
            *saw_conditional = true;
        }
        if in_exec {
            return (Tok::Error, j);
        }
        if !conditional || cfg.run_conditional {
            return (Tok::ExecOpen, j);
        }
    }
    // A plain comment, a hint, or a conditional comment that is skipped:
    // it ends at the first `*/`.
    while j + 1 < sql.len() {
        if sql[j] == b'*' && sql[j + 1] == b'/' {
            let tok = if hint {
                Tok::OptimizerHint
            } else {
                Tok::Comment
            };
            return (tok, j + 2);
        }
        j += 1;
    }
    (Tok::Error, sql.len())
}

/// Lex a quoted token whose opening quote is at `i`. Returns its end and
/// whether it was terminated.
fn quoted(sql: &[u8], i: usize, quote: u8, escapes: bool, out: &mut Lexed) -> (usize, bool) {
    let mut j = i + 1;
    loop {
        // Long literals are most of an INSERT's bytes: jump to the next
        // byte that can end or escape one.
        let rest = match sql.get(j..) {
            Some(rest) => rest,
            None => return (sql.len(), false),
        };
        let next = if quote == b'`' {
            memchr::memchr(quote, rest)
        } else {
            memchr::memchr2(quote, b'\\', rest)
        };
        let Some(offset) = next else {
            return (sql.len(), false);
        };
        j += offset;
        if sql[j] == b'\\' {
            out.saw_backslash = true;
            j += if escapes { 2 } else { 1 };
            continue;
        }
        if sql.get(j + 1) == Some(&quote) {
            j += 2;
            continue;
        }
        return (j + 1, true);
    }
}

/// Lex a number at `i`; a digit run followed by identifier bytes is a word
/// (`1abc`), as on the server.
fn number(sql: &[u8], i: usize) -> (usize, Tok) {
    let mut j = i;
    let radix_prefix = sql[i] == b'0' && matches!(sql.get(i + 1), Some(b'x') | Some(b'b'));
    if radix_prefix {
        let hex = sql[i + 1] == b'x';
        j = i + 2;
        while j < sql.len()
            && (if hex {
                sql[j].is_ascii_hexdigit()
            } else {
                matches!(sql[j], b'0' | b'1')
            })
        {
            j += 1;
        }
        if j == i + 2 || sql.get(j).copied().is_some_and(is_ident_byte) {
            return ident_tail(sql, i);
        }
        return (j, Tok::Number);
    }
    while j < sql.len() && sql[j].is_ascii_digit() {
        j += 1;
    }
    let int_only = j;
    if sql.get(j) == Some(&b'.') {
        j += 1;
        while j < sql.len() && sql[j].is_ascii_digit() {
            j += 1;
        }
    }
    if matches!(sql.get(j), Some(b'e') | Some(b'E')) {
        let mut k = j + 1;
        if matches!(sql.get(k), Some(b'+') | Some(b'-')) {
            k += 1;
        }
        if sql.get(k).is_some_and(|c| c.is_ascii_digit()) {
            while k < sql.len() && sql[k].is_ascii_digit() {
                k += 1;
            }
            j = k;
        }
    }
    if sql.get(j).copied().is_some_and(is_ident_byte) && j == int_only {
        return ident_tail(sql, i);
    }
    (j, Tok::Number)
}

fn ident_tail(sql: &[u8], i: usize) -> (usize, Tok) {
    let mut j = i;
    while j < sql.len() && is_ident_byte(sql[j]) {
        j += 1;
    }
    (j, Tok::Word)
}

/// The byte ranges of tokens whose extent is decided by quoting rules, for
/// comparing two lexings of the same text.
pub(crate) fn same_boundaries(a: &Lexed, b: &Lexed) -> bool {
    a.tokens.len() == b.tokens.len()
        && a.tokens
            .iter()
            .zip(&b.tokens)
            .all(|(x, y)| x.start == y.start && x.end == y.end && x.tok == y.tok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<(Tok, &str)> {
        lex(sql.as_bytes(), LexConfig::DEFAULT)
            .tokens
            .iter()
            .filter(|t| t.tok != Tok::Space)
            .map(|t| (t.tok, &sql[t.start..t.end]))
            .collect()
    }

    #[test]
    fn strings_and_escapes() {
        let t = kinds(r#"'a\'b' 'c''d' "e\"f" `g``h`"#);
        assert_eq!(
            t,
            vec![
                (Tok::Str { quote: b'\'' }, r"'a\'b'"),
                (Tok::Str { quote: b'\'' }, "'c''d'"),
                (Tok::Str { quote: b'"' }, r#""e\"f""#),
                (Tok::Backtick, "`g``h`"),
            ]
        );
    }

    #[test]
    fn comments() {
        let t = kinds("a -- x\nb #y\nc /* z */ d--e /*+ H */ /*!50000 f */ /*M! g */");
        let k: Vec<Tok> = t.iter().map(|x| x.0).collect();
        assert_eq!(
            k,
            vec![
                Tok::Word,
                Tok::Comment,
                Tok::Word,
                Tok::Comment,
                Tok::Word,
                Tok::Comment,
                Tok::Word,
                Tok::Op,
                Tok::Op,
                Tok::Word,
                Tok::OptimizerHint,
                Tok::ExecOpen,
                Tok::Word,
                Tok::ExecClose,
                Tok::ExecOpen,
                Tok::Word,
                Tok::ExecClose,
            ]
        );
    }

    #[test]
    fn skipped_conditional() {
        let cfg = LexConfig {
            run_conditional: false,
            ..LexConfig::DEFAULT
        };
        let l = lex(b"a /*!50000 b */ c", cfg);
        assert!(l.saw_conditional);
        let k: Vec<Tok> = l.tokens.iter().map(|t| t.tok).collect();
        assert_eq!(k, vec![Tok::Word, Tok::Comment, Tok::Word]);
    }

    #[test]
    fn numbers() {
        let t = kinds("1 1.5 .5 1e3 1e-3 0x1F 0b01 1abc 0xZZ X'0A' b'01' n'x'");
        let k: Vec<Tok> = t.iter().map(|x| x.0).collect();
        assert_eq!(
            k,
            vec![
                Tok::Number,
                Tok::Number,
                Tok::Number,
                Tok::Number,
                Tok::Number,
                Tok::Number,
                Tok::Number,
                Tok::Word,
                Tok::Word,
                Tok::PrefixedStr,
                Tok::PrefixedStr,
                Tok::PrefixedStr,
            ]
        );
    }

    #[test]
    fn unterminated() {
        assert_eq!(kinds("'abc").last().map(|t| t.0), Some(Tok::Error));
        assert_eq!(kinds("/* abc").last().map(|t| t.0), Some(Tok::Error));
        assert_eq!(kinds("/*! abc").last().map(|t| t.0), Some(Tok::Error));
    }

    #[test]
    fn escape_ambiguity_is_visible() {
        let on = lex(br"'a\' , 'b'", LexConfig::DEFAULT);
        let off = lex(
            br"'a\' , 'b'",
            LexConfig {
                escapes_single: false,
                escapes_double: false,
                run_conditional: true,
            },
        );
        assert!(on.saw_backslash);
        assert!(!same_boundaries(&on, &off));
        let on = lex(br"'a\\b'", LexConfig::DEFAULT);
        let off = lex(
            br"'a\\b'",
            LexConfig {
                escapes_single: false,
                escapes_double: false,
                run_conditional: true,
            },
        );
        assert!(same_boundaries(&on, &off));
    }
}
