//! Prepared statements, escape modes, hints and the cache.

use sluice_classifier::{
    classify, classify_prepared, render_row, BoundValue, Classifier, EscapeMode, NotBatchable,
    Options, RenderOptions,
};

#[test]
fn placeholders_are_listed_relative_to_the_row() {
    let sql = b"INSERT INTO t (a, b, c) VALUES (?, '?', ? /* ? */)";
    let c = classify_prepared(sql);
    let shape = c.batchable().expect("batchable");
    let row = shape.row_bytes(sql).expect("row");
    assert_eq!(row, b"(?, '?', ? /* ? */)");
    assert_eq!(shape.placeholders(), &[1..2, 9..10]);
    let out = render_row(
        row,
        shape.placeholders(),
        &[BoundValue::Double(2.5), BoundValue::Binary(b"\x00")],
        &RenderOptions::default(),
    );
    assert_eq!(out.as_deref(), Ok(&b"(2.5e0, '?', X'00' /* ? */)"[..]));
}

#[test]
fn several_rows_read_as_one_span_with_their_placeholders_and_forms() {
    let sql = b"INSERT INTO t (id, a) VALUES (NULL, ?), (NULL, 'x'),\n(NULL, ?)";
    let c = classify_prepared(sql);
    let shape = c.batchable().expect("batchable");
    assert_eq!(shape.row_count(), 3);
    let rows = shape.row_bytes(sql).expect("rows");
    assert_eq!(rows, b"(NULL, ?), (NULL, 'x'),\n(NULL, ?)");
    assert_eq!(shape.placeholders(), &[7..8, 31..32]);
    assert_eq!(
        shape.value_form(0),
        Some(sluice_classifier::ValueForm::NullOrDefault),
        "every row agrees"
    );
    assert_eq!(
        shape.value_form(1),
        Some(sluice_classifier::ValueForm::Other),
        "rows differ"
    );
    let out = render_row(
        rows,
        shape.placeholders(),
        &[BoundValue::Int(1), BoundValue::Int(2)],
        &RenderOptions::default(),
    );
    assert_eq!(
        out.as_deref(),
        Ok(&b"(NULL, 1), (NULL, 'x'),\n(NULL, 2)"[..])
    );
    let one = classify(b"INSERT INTO t (id, a) VALUES (NULL, 5)");
    assert_eq!(
        one.batchable().map(|s| s.shape_key().clone()),
        Ok(shape.shape_key().clone()),
        "one row or several: one shape"
    );
}

#[test]
fn placeholder_rules() {
    // text protocol: a `?` is a syntax error on the server
    assert_eq!(
        classify(b"INSERT INTO t VALUES (?)").batchable().err(),
        Some(NotBatchable::Placeholder)
    );
    // prepared, but the `?` is outside the row
    assert_eq!(
        classify_prepared(b"INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = ?")
            .batchable()
            .err(),
        Some(NotBatchable::Placeholder)
    );
    assert_eq!(
        classify_prepared(b"INSERT INTO t VALUES (?) /*! ? */")
            .batchable()
            .err(),
        Some(NotBatchable::ParseFailure)
    );
    // prepared and text rows of one shape share a key
    let a = classify_prepared(b"INSERT INTO t (a) VALUES (?)");
    let b = classify(b"INSERT INTO t (a) VALUES (1)");
    assert_eq!(
        a.batchable().map(|s| s.shape_key().clone()),
        b.batchable().map(|s| s.shape_key().clone())
    );
}

#[test]
fn escape_modes() {
    let c = Classifier::new(16);
    let with = |sql: &[u8], escapes| {
        c.classify_with(
            sql,
            Options {
                prepared: false,
                escapes,
                ansi_quotes: false,
            },
        )
        .batchable()
        .map(|s| s.row())
    };
    let sql = br"INSERT INTO t VALUES ('it\'s', 1)";
    assert_eq!(
        with(sql, EscapeMode::Unknown),
        Err(NotBatchable::AmbiguousEscapes)
    );
    assert_eq!(with(sql, EscapeMode::Backslash), Ok(21..33));
    // read without escapes, the text is a string, a word and an open quote
    assert_eq!(
        with(sql, EscapeMode::NoBackslash),
        Err(NotBatchable::ParseFailure)
    );
    let sql = br"INSERT INTO t VALUES ('a\', 'b')";
    assert_eq!(with(sql, EscapeMode::NoBackslash), Ok(21..32));
    assert_eq!(
        with(sql, EscapeMode::Backslash),
        Err(NotBatchable::ParseFailure)
    );
    // a backslash that reads the same both ways
    let sql = br"INSERT INTO t VALUES ('C:\\dir')";
    assert_eq!(with(sql, EscapeMode::Unknown), Ok(21..32));
    // a multibyte character set could hide a backslash in a character
    let sql = b"INSERT INTO t VALUES ('\x95\\\\')";
    assert_eq!(
        with(sql, EscapeMode::Backslash),
        Err(NotBatchable::AmbiguousEscapes)
    );
}

#[test]
fn hints_do_not_split_shapes() {
    let c = Classifier::new(16);
    let keys: Vec<_> = [
        &b"INSERT INTO t (a) VALUES (1)"[..],
        b"/* batch:5 */ INSERT INTO t (a) VALUES (2)",
        b"INSERT /* file:x.rs line:9 */ INTO t (a)\nVALUES ('3') -- batch:7",
        b"INSERT INTO t (a) VALUES (4);",
    ]
    .iter()
    .map(|sql| {
        c.classify(sql)
            .into_batchable()
            .map(|s| s.shape_key().clone())
    })
    .collect();
    assert!(keys.iter().all(|k| k.is_ok() && *k == keys[0]), "{keys:?}");
    assert_eq!(c.cached_shapes(), 1);
    // a different column list, table or arity is a different shape
    for other in [
        &b"INSERT INTO t (b) VALUES (1)"[..],
        b"INSERT INTO u (a) VALUES (1)",
        b"INSERT INTO db.t (a) VALUES (1)",
        b"INSERT INTO t (a) VALUE (1)",
        b"INSERT INTO t VALUES (1, 2)",
        b"INSERT INTO t VALUES (1)",
    ] {
        let k = c
            .classify(other)
            .into_batchable()
            .map(|s| s.shape_key().clone());
        assert_ne!(k, keys[0], "{}", String::from_utf8_lossy(other));
    }
}

#[test]
fn cache_is_bounded_and_still_right() {
    let c = Classifier::new(32);
    for i in 0..1000 {
        let sql = format!("INSERT INTO t{i} (a) VALUES ({i})");
        let got = c.classify(sql.as_bytes());
        assert_eq!(
            got.batchable().map(|s| s.table().to_string()),
            Ok(format!("t{i}"))
        );
        assert!(c.cached_shapes() <= 32);
    }
    // negative verdicts are cached too, and stay right
    for _ in 0..3 {
        let r = c.classify(b"INSERT INTO t VALUES (1) RETURNING id");
        assert_eq!(r.batchable().err(), Some(NotBatchable::Returning));
    }
}

#[test]
fn classifier_is_shared_across_threads() {
    let c = std::sync::Arc::new(Classifier::new(64));
    let handles: Vec<_> = (0..4)
        .map(|n| {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let sql = format!("INSERT INTO t{} (a) VALUES ({i})", i % 10 + n);
                    assert!(c.classify(sql.as_bytes()).batchable().is_ok());
                }
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().is_ok());
    }
}
