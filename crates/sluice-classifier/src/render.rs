//! Rendering the values bound by `COM_STMT_EXECUTE` as SQL literals.
//!
//! A prepared row joins a batch as text: each `?` of its tuple is replaced
//! by a literal that the server reads back as the value the client bound.
//! Every literal is correct with and without `NO_BACKSLASH_ESCAPES` and
//! with `ANSI_QUOTES`, because it never contains a backslash or a double
//! quote:
//!
//! | value | literal |
//! | --- | --- |
//! | NULL | `NULL` |
//! | integers | decimal digits; negatives in parentheses: `(-5)` |
//! | FLOAT / DOUBLE | shortest round-trip digits with an exponent, so the server reads a DOUBLE: `1.5e0`, `(-1e-7)`; a FLOAT is widened to the double the server would use; NaN and ±inf are errors |
//! | DECIMAL | the client's digits as they are (at most 65 digits) |
//! | text strings, JSON | `'…'` with `'` doubled when no byte is `\` or a control character other than tab, CR, LF; else `_<charset> X'…'` |
//! | BLOB / binary | `X'…'` |
//! | DATE, DATETIME, TIMESTAMP | `DATE'2024-02-29'`, `TIMESTAMP'2024-02-29 13:01:02.000120'` (fraction only when non-zero) |
//! | TIME | `TIME'-838:59:59'`, days folded into hours, fraction only when non-zero |
//! | BIT | `b'0101…'`, every bit of every byte |
//!
//! Values the server would not take back exactly (zero or invalid dates,
//! TIME beyond ±838:59:59, NaN) are a [`RenderError`]: such a row is not
//! batched, it runs alone as the client sent it.

use std::fmt::Write as _;
use std::ops::Range;

/// A value bound to a `?` by `COM_STMT_EXECUTE`, independent of any
/// protocol crate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BoundValue<'a> {
    /// SQL NULL (null bitmap bit set).
    Null,
    /// TINY / SHORT / INT24 / LONG / LONGLONG / YEAR, signed.
    Int(i64),
    /// The same types with the unsigned flag.
    UInt(u64),
    /// FLOAT.
    Float(f32),
    /// DOUBLE.
    Double(f64),
    /// DECIMAL / NEWDECIMAL: ASCII digits as sent.
    Decimal(&'a [u8]),
    /// STRING / VAR_STRING / VARCHAR / ENUM / SET: bytes in the
    /// connection's character set.
    Text(&'a [u8]),
    /// TINY_BLOB / BLOB / MEDIUM_BLOB / LONG_BLOB / GEOMETRY: bytes.
    Binary(&'a [u8]),
    /// DATE.
    Date {
        /// Year, 1..=9999.
        year: u16,
        /// Month, 1..=12.
        month: u8,
        /// Day, 1..=31 (checked against the month).
        day: u8,
    },
    /// DATETIME / TIMESTAMP.
    DateTime {
        /// Year.
        year: u16,
        /// Month.
        month: u8,
        /// Day.
        day: u8,
        /// Hour, 0..=23.
        hour: u8,
        /// Minute, 0..=59.
        minute: u8,
        /// Second, 0..=59.
        second: u8,
        /// Microseconds, 0..=999_999.
        micros: u32,
    },
    /// TIME, possibly negative and longer than a day.
    Time {
        /// A negative duration.
        negative: bool,
        /// Whole days.
        days: u32,
        /// Hours, 0..=23.
        hours: u8,
        /// Minutes, 0..=59.
        minutes: u8,
        /// Seconds, 0..=59.
        seconds: u8,
        /// Microseconds, 0..=999_999.
        micros: u32,
    },
    /// BIT: big-endian bytes.
    Bit(&'a [u8]),
    /// JSON text (utf8mb4).
    Json(&'a [u8]),
}

/// What the renderer must know about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenderOptions<'a> {
    /// The connection's `character_set_client` (e.g. `utf8mb4`): the
    /// introducer of text rendered in hex.
    pub charset: &'a str,
}

impl Default for RenderOptions<'_> {
    fn default() -> Self {
        RenderOptions { charset: "utf8mb4" }
    }
}

/// Why a row could not be rendered exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The number of values differs from the number of placeholders.
    #[error("{placeholders} placeholders but {values} values")]
    Count {
        /// Placeholders in the tuple.
        placeholders: usize,
        /// Values given.
        values: usize,
    },
    /// A placeholder range is out of order, outside the tuple or not `?`.
    #[error("placeholder span {0:?} does not match the tuple")]
    BadPlaceholder(Range<usize>),
    /// NaN or an infinity: MariaDB cannot store them.
    #[error("non-finite floating-point value")]
    NonFinite,
    /// A DECIMAL that is not plain digits, or longer than 65 digits.
    #[error("invalid DECIMAL value")]
    InvalidDecimal,
    /// A zero or impossible date or time of day.
    #[error("date or time not representable as a literal")]
    InvalidTemporal,
    /// A TIME beyond ±838:59:59.
    #[error("TIME value out of range")]
    TimeOutOfRange,
    /// The character set name is not a plain identifier.
    #[error("invalid character set name")]
    InvalidCharset,
}

/// Replace each placeholder of `tuple` (ranges relative to the tuple, as
/// [`crate::BatchableInsert::placeholders`] gives them) by the literal of the
/// value bound to it.
///
/// ```
/// use sluice_classifier::{classify_prepared, render_row, BoundValue, RenderOptions};
///
/// let sql = b"INSERT INTO t (a, b, c) VALUES (?, ?, NOW())";
/// let c = classify_prepared(sql);
/// let shape = c.batchable().unwrap();
/// let row = render_row(
///     shape.row_bytes(sql).unwrap(),
///     shape.placeholders(),
///     &[BoundValue::Int(-3), BoundValue::Text(b"it's")],
///     &RenderOptions::default(),
/// )
/// .unwrap();
/// assert_eq!(row, b"((-3), 'it''s', NOW())");
/// ```
pub fn render_row(
    tuple: &[u8],
    placeholders: &[Range<usize>],
    values: &[BoundValue<'_>],
    opts: &RenderOptions<'_>,
) -> Result<Vec<u8>, RenderError> {
    if placeholders.len() != values.len() {
        return Err(RenderError::Count {
            placeholders: placeholders.len(),
            values: values.len(),
        });
    }
    let mut out = Vec::with_capacity(tuple.len() + 16 * values.len());
    let mut at = 0;
    for (r, v) in placeholders.iter().zip(values) {
        if r.start < at || tuple.get(r.clone()) != Some(b"?".as_slice()) {
            return Err(RenderError::BadPlaceholder(r.clone()));
        }
        out.extend_from_slice(&tuple[at..r.start]);
        render_value(v, opts, &mut out)?;
        at = r.end;
    }
    out.extend_from_slice(&tuple[at..]);
    Ok(out)
}

/// Append the literal of one value to `out`.
///
/// ```
/// use sluice_classifier::{render_value, BoundValue, RenderOptions};
/// let mut out = Vec::new();
/// render_value(&BoundValue::Double(0.1), &RenderOptions::default(), &mut out).unwrap();
/// assert_eq!(out, b"1e-1");
/// ```
pub fn render_value(
    v: &BoundValue<'_>,
    opts: &RenderOptions<'_>,
    out: &mut Vec<u8>,
) -> Result<(), RenderError> {
    let mut s = String::new();
    match *v {
        BoundValue::Null => out.extend_from_slice(b"NULL"),
        BoundValue::Int(i) => signed(out, i < 0, &i.to_string()),
        BoundValue::UInt(u) => out.extend_from_slice(u.to_string().as_bytes()),
        BoundValue::Float(f) => double(out, f64::from(f))?,
        BoundValue::Double(d) => double(out, d)?,
        BoundValue::Decimal(d) => decimal(out, d)?,
        BoundValue::Text(t) | BoundValue::Json(t) => text(out, t, opts)?,
        BoundValue::Binary(b) => hex(out, b),
        BoundValue::Date { year, month, day } => {
            check_date(year, month, day)?;
            let _ = write!(s, "DATE'{year:04}-{month:02}-{day:02}'");
        }
        BoundValue::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
        } => {
            check_date(year, month, day)?;
            if hour > 23 || minute > 59 || second > 59 || micros > 999_999 {
                return Err(RenderError::InvalidTemporal);
            }
            let _ = write!(
                s,
                "TIMESTAMP'{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}"
            );
            fraction(&mut s, micros);
            s.push('\'');
        }
        BoundValue::Time {
            negative,
            days,
            hours,
            minutes,
            seconds,
            micros,
        } => {
            if hours > 23 || minutes > 59 || seconds > 59 || micros > 999_999 {
                return Err(RenderError::InvalidTemporal);
            }
            let total = u64::from(days) * 24 + u64::from(hours);
            if total > 838 || (total == 838 && (minutes, seconds, micros) > (59, 59, 0)) {
                return Err(RenderError::TimeOutOfRange);
            }
            let zero = total == 0 && minutes == 0 && seconds == 0 && micros == 0;
            let sign = if negative && !zero { "-" } else { "" };
            let _ = write!(s, "TIME'{sign}{total:02}:{minutes:02}:{seconds:02}");
            fraction(&mut s, micros);
            s.push('\'');
        }
        BoundValue::Bit(b) => {
            if b.is_empty() {
                out.extend_from_slice(b"X''");
            } else {
                s.push_str("b'");
                for byte in b {
                    let _ = write!(s, "{byte:08b}");
                }
                s.push('\'');
            }
        }
    }
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn signed(out: &mut Vec<u8>, negative: bool, digits: &str) {
    // Parenthesised so that a preceding `-` never makes `--`.
    if negative {
        out.push(b'(');
    }
    out.extend_from_slice(digits.as_bytes());
    if negative {
        out.push(b')');
    }
}

fn double(out: &mut Vec<u8>, d: f64) -> Result<(), RenderError> {
    if !d.is_finite() {
        return Err(RenderError::NonFinite);
    }
    // `{:e}` is Rust's shortest round-trip form, always with an exponent,
    // so MariaDB reads a DOUBLE, not a DECIMAL.
    let s = format!("{d:e}");
    signed(out, d.is_sign_negative(), &s);
    Ok(())
}

fn decimal(out: &mut Vec<u8>, d: &[u8]) -> Result<(), RenderError> {
    let (negative, body) = match d.first() {
        Some(b'-') => (true, &d[1..]),
        Some(b'+') => (false, &d[1..]),
        _ => (false, d),
    };
    let mut parts = body.splitn(2, |b| *b == b'.');
    let int = parts.next().unwrap_or_default();
    let frac = parts.next().unwrap_or_default();
    let digits = int.len() + frac.len();
    let ok = digits > 0
        && digits <= 65
        && int.iter().chain(frac).all(u8::is_ascii_digit)
        && !(body.ends_with(b".") && frac.is_empty() && int.is_empty());
    if !ok {
        return Err(RenderError::InvalidDecimal);
    }
    let text = std::str::from_utf8(body).map_err(|_| RenderError::InvalidDecimal)?;
    let text = if int.is_empty() {
        format!("0{text}")
    } else {
        text.to_string()
    };
    let text = text.strip_suffix('.').unwrap_or(&text);
    if negative {
        signed(out, true, &format!("-{text}"));
    } else {
        out.extend_from_slice(text.as_bytes());
    }
    Ok(())
}

/// Bytes that may appear as they are in a quoted literal in every mode.
fn plain_byte(b: u8) -> bool {
    b != b'\\' && (b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r'))
}

fn text(out: &mut Vec<u8>, t: &[u8], opts: &RenderOptions<'_>) -> Result<(), RenderError> {
    if t.iter().all(|&b| plain_byte(b)) {
        out.push(b'\'');
        for &b in t {
            if b == b'\'' {
                out.push(b'\'');
            }
            out.push(b);
        }
        out.push(b'\'');
        return Ok(());
    }
    let cs = opts.charset;
    if cs.is_empty() || !cs.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(RenderError::InvalidCharset);
    }
    out.push(b'_');
    out.extend_from_slice(cs.as_bytes());
    out.push(b' ');
    hex(out, t);
    Ok(())
}

fn hex(out: &mut Vec<u8>, b: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(b.len() * 2 + 3);
    out.extend_from_slice(b"X'");
    for &byte in b {
        out.push(DIGITS[usize::from(byte >> 4)]);
        out.push(DIGITS[usize::from(byte & 0xF)]);
    }
    out.push(b'\'');
}

fn fraction(s: &mut String, micros: u32) {
    if micros != 0 {
        let _ = write!(s, ".{micros:06}");
    }
}

fn check_date(year: u16, month: u8, day: u8) -> Result<(), RenderError> {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(RenderError::InvalidTemporal),
    };
    if year == 0 || year > 9999 || day == 0 || day > days {
        return Err(RenderError::InvalidTemporal);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
