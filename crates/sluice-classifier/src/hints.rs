//! Hints written in comments: `/* batch:N file:app.rs line:42 */`.
//!
//! A hint is a word `name:value` inside any plain comment (`/* */`, `--`,
//! `#`), in any order, separated by whitespace or commas. Unknown words are
//! ignored, so hints can share a comment with other text. The first valid
//! value of each hint wins. Comments never enter the shape key, so hints
//! never split a batch.

use crate::lexer::{Tok, Token};

/// Hints found in a statement's comments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hints {
    /// `batch:N`: the longest this statement may wait in a batch, in
    /// milliseconds. `batch:0` means never batch it.
    pub batch_ms: Option<u32>,
    /// `file:…`: the caller's source file.
    pub file: Option<String>,
    /// `line:N`: the caller's source line.
    pub line: Option<u32>,
}

impl Hints {
    /// True when no hint was found.
    pub fn is_empty(&self) -> bool {
        self.batch_ms.is_none() && self.file.is_none() && self.line.is_none()
    }
}

/// Collect the hints of every plain comment in `tokens`.
pub(crate) fn collect(sql: &[u8], tokens: &[Token]) -> Hints {
    let mut hints = Hints::default();
    for t in tokens.iter().filter(|t| t.tok == Tok::Comment) {
        let body = comment_body(t.bytes(sql));
        if memchr_colon(body) {
            parse_into(body, &mut hints);
        }
    }
    hints
}

fn memchr_colon(b: &[u8]) -> bool {
    b.contains(&b':')
}

/// The text of a comment without its delimiters.
fn comment_body(c: &[u8]) -> &[u8] {
    if let Some(rest) = c.strip_prefix(b"/*") {
        rest.strip_suffix(b"*/").unwrap_or(rest)
    } else if let Some(rest) = c.strip_prefix(b"--") {
        rest
    } else if let Some(rest) = c.strip_prefix(b"#") {
        rest
    } else {
        c
    }
}

/// Parse the hint words of one comment body.
fn parse_into(body: &[u8], hints: &mut Hints) {
    let words = body
        .split(|b| b.is_ascii_whitespace() || *b == b',')
        .filter(|w| !w.is_empty());
    for w in words {
        let Some(colon) = w.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&w[..colon], &w[colon + 1..]);
        if value.is_empty() {
            continue;
        }
        if name.eq_ignore_ascii_case(b"batch") {
            if hints.batch_ms.is_none() {
                hints.batch_ms = parse_u32(value);
            }
        } else if name.eq_ignore_ascii_case(b"line") {
            if hints.line.is_none() {
                hints.line = parse_u32(value);
            }
        } else if name.eq_ignore_ascii_case(b"file") && hints.file.is_none() {
            hints.file = Some(String::from_utf8_lossy(value).into_owned());
        }
    }
}

/// A decimal `u32`, optionally followed by `ms`.
fn parse_u32(v: &[u8]) -> Option<u32> {
    let digits = v.strip_suffix(b"ms").unwrap_or(v);
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::{lex, LexConfig};

    fn hints(sql: &str) -> Hints {
        let l = lex(sql.as_bytes(), LexConfig::DEFAULT);
        collect(sql.as_bytes(), &l.tokens)
    }

    #[test]
    fn any_order_any_comment() {
        let h = hints("INSERT /* line:42 batch:5 file:src/a.rs */ INTO t VALUES (1)");
        assert_eq!(h.batch_ms, Some(5));
        assert_eq!(h.line, Some(42));
        assert_eq!(h.file.as_deref(), Some("src/a.rs"));
        let h = hints("INSERT INTO t VALUES (1) -- batch:0\n");
        assert_eq!(h.batch_ms, Some(0));
        let h = hints("INSERT INTO t VALUES (1) # file:x.py, line:7");
        assert_eq!((h.file.as_deref(), h.line), (Some("x.py"), Some(7)));
    }

    #[test]
    fn malformed_ignored_and_first_wins() {
        let h =
            hints("/* batch:abc batch:-1 batch:99999999999 */ /* batch:10ms batch:20 */ SELECT 1");
        assert_eq!(h.batch_ms, Some(10));
        assert!(hints("SELECT 1 /* nothing here */").is_empty());
        // strings are not comments
        assert!(hints("SELECT '/* batch:5 */'").is_empty());
        // executable comments are code, not hints
        assert!(hints("SELECT 1 /*! batch:5 */").is_empty());
    }
}
