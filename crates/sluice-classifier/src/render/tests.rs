use super::*;

fn r(v: BoundValue<'_>) -> Result<String, RenderError> {
    let mut out = Vec::new();
    render_value(&v, &RenderOptions::default(), &mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn ok(v: BoundValue<'_>) -> String {
    match r(v) {
        Ok(s) => s,
        Err(e) => panic!("{v:?}: {e}"),
    }
}

#[test]
fn integers() {
    assert_eq!(ok(BoundValue::Int(0)), "0");
    assert_eq!(ok(BoundValue::Int(42)), "42");
    assert_eq!(ok(BoundValue::Int(-42)), "(-42)");
    assert_eq!(ok(BoundValue::Int(i64::MIN)), "(-9223372036854775808)");
    assert_eq!(ok(BoundValue::UInt(u64::MAX)), "18446744073709551615");
    assert_eq!(ok(BoundValue::Null), "NULL");
}

#[test]
fn floats_round_trip() {
    assert_eq!(ok(BoundValue::Double(1.5)), "1.5e0");
    assert_eq!(ok(BoundValue::Double(-0.001)), "(-1e-3)");
    assert_eq!(ok(BoundValue::Double(0.0)), "0e0");
    assert_eq!(ok(BoundValue::Double(f64::MAX)), "1.7976931348623157e308");
    assert_eq!(
        ok(BoundValue::Double(f64::MIN_POSITIVE)),
        "2.2250738585072014e-308"
    );
    // a FLOAT becomes the double the server would compute from it
    assert_eq!(ok(BoundValue::Float(0.1)), "1.0000000149011612e-1");
    for d in [0.1, 1.0 / 3.0, 123456.789e100, -5e-324, 9007199254740993.0] {
        let s = ok(BoundValue::Double(d));
        let s = s.trim_start_matches('(').trim_end_matches(')');
        assert_eq!(s.parse::<f64>().ok(), Some(d), "{s}");
    }
    assert_eq!(r(BoundValue::Double(f64::NAN)), Err(RenderError::NonFinite));
    assert_eq!(
        r(BoundValue::Float(f32::INFINITY)),
        Err(RenderError::NonFinite)
    );
}

#[test]
fn decimals() {
    assert_eq!(ok(BoundValue::Decimal(b"123.4500")), "123.4500");
    assert_eq!(ok(BoundValue::Decimal(b"-0.5")), "(-0.5)");
    assert_eq!(ok(BoundValue::Decimal(b"+7")), "7");
    assert_eq!(ok(BoundValue::Decimal(b".5")), "0.5");
    assert_eq!(ok(BoundValue::Decimal(b"5.")), "5");
    for bad in [&b""[..], b".", b"1e5", b"1.2.3", b"--1", b"0x10", b"1 "] {
        assert_eq!(
            r(BoundValue::Decimal(bad)),
            Err(RenderError::InvalidDecimal),
            "{bad:?}"
        );
    }
    let long = [b'9'; 66];
    assert_eq!(
        r(BoundValue::Decimal(&long)),
        Err(RenderError::InvalidDecimal)
    );
}

#[test]
fn text_is_mode_independent() {
    assert_eq!(ok(BoundValue::Text(b"abc")), "'abc'");
    assert_eq!(ok(BoundValue::Text(b"it's")), "'it''s'");
    assert_eq!(ok(BoundValue::Text(b"")), "''");
    assert_eq!(ok(BoundValue::Text("é\"x\n".as_bytes())), "'é\"x\n'");
    assert_eq!(ok(BoundValue::Text(br"a\b")), "_utf8mb4 X'615C62'");
    assert_eq!(ok(BoundValue::Text(b"a\0b")), "_utf8mb4 X'610062'");
    assert_eq!(ok(BoundValue::Json(br#"{"a":1}"#)), r#"'{"a":1}'"#);
    let mut out = Vec::new();
    let opts = RenderOptions { charset: "latin1" };
    render_value(&BoundValue::Text(b"\x1b"), &opts, &mut out).unwrap_or_default();
    assert_eq!(out, b"_latin1 X'1B'");
    let bad = RenderOptions { charset: "x' OR 1" };
    assert_eq!(
        render_value(&BoundValue::Text(b"\\"), &bad, &mut Vec::new()),
        Err(RenderError::InvalidCharset)
    );
}

#[test]
fn quoted_text_never_contains_backslash_or_lone_quote() {
    // every byte value, alone and next to quotes
    for b in 0..=255u8 {
        let data = [b'\'', b, b'\''];
        let s = ok(BoundValue::Text(&data));
        if let Some(inner) = s.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) {
            assert!(!inner.contains('\\'));
            assert!(!inner.replace("''", "").contains('\''), "{s}");
        } else {
            assert!(s.starts_with("_utf8mb4 X'"), "{s}");
        }
    }
}

#[test]
fn binary_and_bits() {
    assert_eq!(ok(BoundValue::Binary(b"\x00\xff")), "X'00FF'");
    assert_eq!(ok(BoundValue::Binary(b"")), "X''");
    assert_eq!(ok(BoundValue::Bit(&[0x05])), "b'00000101'");
    assert_eq!(ok(BoundValue::Bit(&[1, 0])), "b'0000000100000000'");
    assert_eq!(ok(BoundValue::Bit(&[])), "X''");
}

#[test]
fn dates_and_times() {
    let d = |year, month, day| BoundValue::Date { year, month, day };
    assert_eq!(ok(d(2024, 2, 29)), "DATE'2024-02-29'");
    assert_eq!(ok(d(1, 1, 1)), "DATE'0001-01-01'");
    for bad in [
        d(2023, 2, 29),
        d(0, 0, 0),
        d(2024, 13, 1),
        d(2024, 4, 31),
        d(10000, 1, 1),
    ] {
        assert_eq!(r(bad), Err(RenderError::InvalidTemporal), "{bad:?}");
    }
    let dt = |hour, micros| BoundValue::DateTime {
        year: 2024,
        month: 1,
        day: 2,
        hour,
        minute: 3,
        second: 4,
        micros,
    };
    assert_eq!(ok(dt(13, 0)), "TIMESTAMP'2024-01-02 13:03:04'");
    assert_eq!(ok(dt(0, 120)), "TIMESTAMP'2024-01-02 00:03:04.000120'");
    assert_eq!(r(dt(24, 0)), Err(RenderError::InvalidTemporal));
    assert_eq!(r(dt(1, 1_000_000)), Err(RenderError::InvalidTemporal));
    let t = |negative, days, hours, micros| BoundValue::Time {
        negative,
        days,
        hours,
        minutes: 59,
        seconds: 59,
        micros,
    };
    assert_eq!(ok(t(false, 0, 1, 0)), "TIME'01:59:59'");
    assert_eq!(ok(t(true, 1, 2, 5)), "TIME'-26:59:59.000005'");
    assert_eq!(ok(t(true, 34, 22, 0)), "TIME'-838:59:59'");
    assert_eq!(r(t(false, 34, 22, 1)), Err(RenderError::TimeOutOfRange));
    assert_eq!(r(t(false, 35, 0, 0)), Err(RenderError::TimeOutOfRange));
    assert_eq!(
        r(t(false, u32::MAX, 23, 0)),
        Err(RenderError::TimeOutOfRange)
    );
    let zero = BoundValue::Time {
        negative: true,
        days: 0,
        hours: 0,
        minutes: 0,
        seconds: 0,
        micros: 0,
    };
    assert_eq!(ok(zero), "TIME'00:00:00'");
}

#[test]
fn rows() {
    let tuple = b"(?, 'x?', ?)";
    let ph = [1..2, 10..11];
    let out = render_row(
        tuple,
        &ph,
        &[BoundValue::Null, BoundValue::UInt(3)],
        &RenderOptions::default(),
    );
    assert_eq!(out.as_deref(), Ok(&b"(NULL, 'x?', 3)"[..]));
    assert!(matches!(
        render_row(tuple, &ph, &[BoundValue::Null], &RenderOptions::default()),
        Err(RenderError::Count { .. })
    ));
    assert!(matches!(
        render_row(
            tuple,
            &[1..2, 5..6],
            &[BoundValue::Null, BoundValue::Null],
            &RenderOptions::default()
        ),
        Err(RenderError::BadPlaceholder(_))
    ));
    assert!(matches!(
        render_row(
            tuple,
            &[1..2, 99..100],
            &[BoundValue::Null, BoundValue::Null],
            &RenderOptions::default()
        ),
        Err(RenderError::BadPlaceholder(_))
    ));
    assert!(matches!(
        render_row(
            tuple,
            &[10..11, 1..2],
            &[BoundValue::Null, BoundValue::Null],
            &RenderOptions::default()
        ),
        Err(RenderError::BadPlaceholder(_))
    ));
}
