//! Reading one value of a row tuple, for the batcher: whether the row
//! lets the server generate its AUTO_INCREMENT id. A text row's values are
//! read once, while the classifier checks the tuple ([`ValueForm`]); a
//! rendered prepared row is lexed in the session's mode, so a comma or a
//! parenthesis inside a string literal or a comment never splits a value.

use crate::code::Code;
use crate::lexer::{lex, Tok, Token};
use crate::{lex_config, Options};

/// How a row treats the AUTO_INCREMENT column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSource {
    /// The server generates the id (NULL, DEFAULT, or 0 without
    /// `NO_AUTO_VALUE_ON_ZERO`).
    Generated,
    /// The row gives the id.
    Explicit,
}

/// What the value at `index` of the row tuple `row` (`( v0, v1, … )`)
/// means for an AUTO_INCREMENT column. `None` when the value is an
/// expression Sluice does not evaluate, or `row` is not one tuple.
pub fn auto_increment_source(
    row: &[u8],
    index: usize,
    opts: Options,
    no_auto_value_on_zero: bool,
) -> Option<IdSource> {
    let lexed = lex(row, lex_config(opts));
    if lexed.tokens.iter().any(|t| t.tok == Tok::Error) {
        return None;
    }
    let code = Code::new(row, &lexed.tokens);
    let value = tuple_values(&code.toks)?.into_iter().nth(index)?;
    id_source(row, value, no_auto_value_on_zero)
}

/// The code tokens of each value of a tuple that spans all of `toks`.
fn tuple_values(toks: &[Token]) -> Option<Vec<&[Token]>> {
    let (first, inner) = toks.split_first()?;
    let (last, inner) = inner.split_last()?;
    if first.tok != Tok::LParen || last.tok != Tok::RParen {
        return None;
    }
    let mut values = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, t) in inner.iter().enumerate() {
        match t.tok {
            Tok::LParen => depth += 1,
            Tok::RParen => depth = depth.checked_sub(1)?,
            Tok::Comma if depth == 0 => {
                values.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return None;
    }
    values.push(&inner[start..]);
    Some(values)
}

fn id_source(row: &[u8], value: &[Token], no_auto_value_on_zero: bool) -> Option<IdSource> {
    ValueForm::of(row, value).id_source(no_auto_value_on_zero)
}

/// What one value of a row tuple is, as far as an AUTO_INCREMENT column
/// cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueForm {
    /// `NULL` or `DEFAULT`.
    NullOrDefault,
    /// An integer literal of zeros, signed or not.
    Zero,
    /// Any other integer literal, signed or not.
    Integer,
    /// A `?` placeholder: the bound value decides.
    Placeholder,
    /// Anything else: an expression Sluice does not evaluate.
    Other,
}

impl ValueForm {
    /// The form of `value`, the code tokens of one value in `sql`.
    pub(crate) fn of(sql: &[u8], value: &[Token]) -> ValueForm {
        match value {
            [word] if word.is_kw(sql, "NULL") || word.is_kw(sql, "DEFAULT") => {
                ValueForm::NullOrDefault
            }
            [mark] if mark.tok == Tok::Placeholder => ValueForm::Placeholder,
            [number] | [_, number]
                if number.tok == Tok::Number
                    && (value.len() == 1 || matches!(value[0].bytes(sql), b"-" | b"+")) =>
            {
                let digits = number.bytes(sql);
                if !digits.iter().all(u8::is_ascii_digit) {
                    ValueForm::Other
                } else if digits.iter().all(|&d| d == b'0') {
                    ValueForm::Zero
                } else {
                    ValueForm::Integer
                }
            }
            _ => ValueForm::Other,
        }
    }

    /// What a value of this form means for an AUTO_INCREMENT column;
    /// `None` when only the value itself could say.
    pub fn id_source(self, no_auto_value_on_zero: bool) -> Option<IdSource> {
        match self {
            ValueForm::NullOrDefault => Some(IdSource::Generated),
            ValueForm::Zero if !no_auto_value_on_zero => Some(IdSource::Generated),
            ValueForm::Zero | ValueForm::Integer => Some(IdSource::Explicit),
            ValueForm::Placeholder | ValueForm::Other => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EscapeMode;

    fn source(row: &str, index: usize, zero_is_value: bool) -> Option<IdSource> {
        let opts = Options {
            escapes: EscapeMode::Backslash,
            ..Options::default()
        };
        auto_increment_source(row.as_bytes(), index, opts, zero_is_value)
    }

    #[test]
    fn values_split_at_top_level_commas_only() {
        let row = "('a,b', f(2,3), /* , */ 5, -- c,\n 0)";
        assert_eq!(source(row, 2, false), Some(IdSource::Explicit));
        assert_eq!(source(row, 3, false), Some(IdSource::Generated));
        assert_eq!(source(row, 3, true), Some(IdSource::Explicit));
        assert_eq!(source(row, 1, false), None);
        assert_eq!(source(row, 4, false), None);
        assert_eq!(source("( 'it''s', 7 )", 1, false), Some(IdSource::Explicit));
        assert_eq!(source("(1, 'open", 0, false), None);
        assert_eq!(source("1, 2", 0, false), None);
        assert_eq!(source("(1) (2)", 0, false), None);
    }

    #[test]
    fn the_escape_mode_decides_where_a_string_ends() {
        let row = br"('a\', 2)";
        let no_escapes = Options {
            escapes: EscapeMode::NoBackslash,
            ..Options::default()
        };
        assert_eq!(
            auto_increment_source(row, 1, no_escapes, false),
            Some(IdSource::Explicit)
        );
        let escapes = Options {
            escapes: EscapeMode::Backslash,
            ..Options::default()
        };
        assert_eq!(auto_increment_source(row, 1, escapes, false), None);
    }

    #[test]
    fn id_values() {
        for (value, zero_is_value, want) in [
            (" NULL ", false, Some(IdSource::Generated)),
            ("default", false, Some(IdSource::Generated)),
            ("0", false, Some(IdSource::Generated)),
            ("000", false, Some(IdSource::Generated)),
            ("0", true, Some(IdSource::Explicit)),
            ("42", false, Some(IdSource::Explicit)),
            ("-3", false, Some(IdSource::Explicit)),
            ("+0", false, Some(IdSource::Generated)),
            ("'7'", false, None),
            ("1+1", false, None),
            ("1.5", false, None),
            ("0x10", false, None),
            ("- - 1", false, None),
        ] {
            assert_eq!(
                source(&format!("({value})"), 0, zero_is_value),
                want,
                "{value}"
            );
        }
    }

    #[test]
    fn forms_read_while_classifying_agree_with_reading_the_row_again() {
        let classifier = crate::Classifier::default();
        let opts = Options {
            escapes: EscapeMode::Backslash,
            ..Options::default()
        };
        for row in [
            "(NULL, 'a,b', 0)",
            "(DEFAULT, CONCAT(2,3), -0)",
            "(7, /* , */ 'x', 1+1)",
            "(-3, 'it''s', '7')",
            "(0x10, 1.5, +12)",
            "( 000 , 'a\\\\', - - 1)",
        ] {
            let sql = format!("INSERT INTO t (a, b, c) VALUES {row}");
            let classification = classifier.classify_with(sql.as_bytes(), opts);
            let insert = classification.batchable().expect(&sql);
            for index in 0..3 {
                for zero_is_value in [false, true] {
                    let form = insert.value_form(index).expect("three values");
                    assert_eq!(
                        form.id_source(zero_is_value),
                        auto_increment_source(row.as_bytes(), index, opts, zero_is_value),
                        "{row} value {index}"
                    );
                }
            }
            assert_eq!(insert.value_form(3), None);
        }
        let prepared = crate::Classifier::default().classify_with(
            b"INSERT INTO t (a, b) VALUES (?, 1)",
            Options {
                prepared: true,
                ..opts
            },
        );
        let insert = prepared.batchable().expect("prepared");
        assert_eq!(insert.value_form(0), Some(ValueForm::Placeholder));
        assert_eq!(insert.value_form(1), Some(ValueForm::Integer));
    }
}
