//! Fuzz `classify`, `classify_prepared`, splicing and the renderer.
//!
//! Asserts: no panic; every span lies inside the input; splicing the row
//! twice gives a statement that classifies as several rows; a cold and a
//! cached classification agree; rendered rows keep the text around the
//! placeholders.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_classifier::{
    render_row, BoundValue, Classification, Classifier, EscapeMode, Options, RenderOptions,
};
use std::sync::OnceLock;

fn hot() -> &'static Classifier {
    static HOT: OnceLock<Classifier> = OnceLock::new();
    HOT.get_or_init(|| Classifier::new(256))
}

fn check_spans(sql: &[u8], c: &Classification, opts: Options) {
    let Ok(shape) = c.batchable() else { return };
    let row = shape.row();
    assert!(row.start < row.end && row.end <= sql.len());
    assert_eq!(sql[row.start], b'(');
    assert_eq!(sql[row.end - 1], b')');
    assert_eq!(shape.suffix().end, sql.len());
    for p in shape.placeholders() {
        assert!(p.end <= row.len() && sql[row.start + p.start] == b'?');
    }
    let r = shape.row_bytes(sql).expect("row bytes");
    let two = shape.splice(sql, &[r, r]).expect("splice");
    assert_eq!(two.len(), sql.len() + r.len() + 1);
    // Splicing must not read outside a shorter or longer text.
    assert!(shape.splice(&sql[..sql.len() - 1], &[r]).is_err());
    let again = Classifier::new(0).classify_with(&two, opts);
    assert_eq!(again.kind, c.kind);
    let several = again.batchable().expect("two rows of a batchable shape");
    assert_eq!(several.row_count(), 2);
    assert_eq!(several.shape_key(), shape.shape_key());
    assert_eq!(several.row(), row.start..row.end + r.len() + 1);
}

fn values(data: &[u8], n: usize) -> Vec<BoundValue<'_>> {
    (0..n)
        .map(|i| {
            let b = data.get(i).copied().unwrap_or(0);
            let s = data.get(i..).unwrap_or(&[]);
            let s = &s[..s.len().min(8)];
            match b % 12 {
                0 => BoundValue::Null,
                1 => BoundValue::Int(i64::from(b) - 128),
                2 => BoundValue::UInt(u64::from(b) << 56),
                3 => BoundValue::Double(f64::from_bits(
                    u64::from(b).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                )),
                4 => BoundValue::Float(f32::from_bits(u32::from(b).wrapping_mul(0x9E37_79B9))),
                5 => BoundValue::Decimal(s),
                6 => BoundValue::Text(s),
                7 => BoundValue::Binary(s),
                8 => BoundValue::Date {
                    year: u16::from(b) * 40,
                    month: b % 14,
                    day: b % 33,
                },
                9 => BoundValue::DateTime {
                    year: 2000 + u16::from(b),
                    month: 1 + b % 12,
                    day: 1 + b % 28,
                    hour: b % 25,
                    minute: b % 61,
                    second: b % 60,
                    micros: u32::from(b) * 4000,
                },
                10 => BoundValue::Time {
                    negative: b & 1 == 1,
                    days: u32::from(b) / 7,
                    hours: b % 24,
                    minutes: b % 60,
                    seconds: b % 60,
                    micros: u32::from(b) * 3,
                },
                _ => BoundValue::Bit(s),
            }
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let cold = Classifier::new(0);
    for prepared in [false, true] {
        for escapes in [
            EscapeMode::Unknown,
            EscapeMode::Backslash,
            EscapeMode::NoBackslash,
        ] {
            let opts = Options {
                prepared,
                escapes,
                ..Options::default()
            };
            let c = cold.classify_with(data, opts);
            check_spans(data, &c, opts);
            let h1 = hot().classify_with(data, opts);
            let h2 = hot().classify_with(data, opts);
            assert_eq!(h1, h2);
            assert_eq!(c.kind, h2.kind);
            assert_eq!(
                c.batchable().is_ok(),
                h2.batchable().is_ok(),
                "cold/hot disagree"
            );
            if let (Ok(shape), true) = (c.batchable(), prepared) {
                let row = shape.row_bytes(data).expect("row");
                let vals = values(data, shape.placeholders().len());
                if let Ok(out) =
                    render_row(row, shape.placeholders(), &vals, &RenderOptions::default())
                {
                    assert!(out.len() + shape.placeholders().len() >= row.len());
                    assert_eq!(out.first(), Some(&b'('));
                    assert_eq!(out.last(), Some(&b')'));
                }
            }
        }
    }
});
