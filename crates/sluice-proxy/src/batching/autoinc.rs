//! Whether a row lets the server generate its AUTO_INCREMENT id: decided
//! from the value it gives that column, read from the row's own bytes.

use std::ops::Range;

use super::scan::{find, skip_quoted};

/// How a row treats the AUTO_INCREMENT column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdSource {
    /// The server generates the id (column omitted, NULL, DEFAULT, or 0
    /// without `NO_AUTO_VALUE_ON_ZERO`).
    Generated,
    /// The row gives the id.
    Explicit,
}

/// Splits a row tuple `( a, 'b,c', f(1,2) )` into the byte ranges of its
/// values, relative to `row`. `None` if the text is not a balanced tuple.
pub(crate) fn split_values(row: &[u8], backslash_escapes: bool) -> Option<Vec<Range<usize>>> {
    let open = row.iter().position(|&b| b == b'(')?;
    let mut values = Vec::new();
    let mut depth = 0usize;
    let mut start = open + 1;
    let mut i = open;
    while i < row.len() {
        match row[i] {
            b'(' => depth += 1,
            b')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    values.push(start..i);
                    return Some(values);
                }
            }
            b',' if depth == 1 => {
                values.push(start..i);
                start = i + 1;
            }
            quote @ (b'\'' | b'"' | b'`') => i = skip_quoted(row, i, quote, backslash_escapes)?,
            b'/' if row.get(i + 1) == Some(&b'*') => {
                i = i + 2 + find(&row[i + 2..], b"*/")? + 1;
            }
            b'-' if row.get(i + 1) == Some(&b'-') => {
                i += row[i..].iter().position(|&b| b == b'\n')?
            }
            b'#' => i += row[i..].iter().position(|&b| b == b'\n')?,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Reads the value a row gives the AUTO_INCREMENT column. `None` when the
/// value is an expression Sluice does not evaluate (the row is then not
/// batched).
pub(crate) fn id_source(value: &[u8], no_auto_value_on_zero: bool) -> Option<IdSource> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if text.eq_ignore_ascii_case("NULL") || text.eq_ignore_ascii_case("DEFAULT") {
        return Some(IdSource::Generated);
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.bytes().all(|b| b == b'0') && !no_auto_value_on_zero {
        Some(IdSource::Generated)
    } else {
        Some(IdSource::Explicit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(row: &str) -> Vec<&str> {
        split_values(row.as_bytes(), true)
            .unwrap()
            .into_iter()
            .map(|r| &row[r])
            .collect()
    }

    #[test]
    fn splits_at_top_level_commas_only() {
        assert_eq!(values("(1, 'a,b', f(2,3))"), vec!["1", " 'a,b'", " f(2,3)"]);
        assert_eq!(
            values("( 'it''s', \"x\\\",\" , /* , */ 5)"),
            vec![" 'it''s'", " \"x\\\",\" ", " /* , */ 5"]
        );
        assert_eq!(values("(-- c,\n 1)"), vec!["-- c,\n 1"]);
        assert!(split_values(b"(1, 'open", true).is_none());
        assert!(split_values(b"1, 2", true).is_none());
        let no_escapes = split_values(b"('a\\', 2)", false).unwrap();
        assert_eq!(no_escapes.len(), 2);
    }

    #[test]
    fn id_sources() {
        assert_eq!(id_source(b" NULL ", false), Some(IdSource::Generated));
        assert_eq!(id_source(b"default", false), Some(IdSource::Generated));
        assert_eq!(id_source(b"0", false), Some(IdSource::Generated));
        assert_eq!(id_source(b"0", true), Some(IdSource::Explicit));
        assert_eq!(id_source(b"42", false), Some(IdSource::Explicit));
        assert_eq!(id_source(b"-3", false), Some(IdSource::Explicit));
        assert_eq!(id_source(b"'7'", false), None);
        assert_eq!(id_source(b"1+1", false), None);
    }
}
