//! Classification cost: a typical batchable INSERT (8 columns, literals)
//! on a cached shape and cold (sqlparser), plus a SELECT and a rendered
//! prepared row.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use sluice_classifier::{classify_prepared, render_row, BoundValue, Classifier, RenderOptions};

const ROWS: [&str; 4] = [
    "INSERT INTO shop.orders (id, customer_id, sku, quantity, price, note, created_at, status) VALUES (1001, 42, 'SKU-1234', 3, 19.99, 'gift wrap, please', NOW(), 'new')",
    "INSERT INTO shop.orders (id, customer_id, sku, quantity, price, note, created_at, status) VALUES (1002, 7, 'SKU-9', 1, 5.00, 'it''s urgent', NOW(), 'new') /* batch:10 */",
    "INSERT INTO shop.orders (id, customer_id, sku, quantity, price, note, created_at, status) VALUES (1003, -1, X'00FF', 12, 1e3, NULL, '2024-01-02 03:04:05', DEFAULT)",
    "INSERT INTO shop.orders (id, customer_id, sku, quantity, price, note, created_at, status) VALUES (1004, 99, _utf8mb4'caf\u{e9}', 2, 0.5, '', CURRENT_TIMESTAMP, 'paid');",
];

fn bench(c: &mut Criterion) {
    let hot = Classifier::new(4096);
    for r in ROWS {
        assert!(hot.classify(r.as_bytes()).batchable().is_ok());
    }
    let mut i = 0;
    c.bench_function("insert_8_cols_cached", |b| {
        b.iter(|| {
            i = (i + 1) % ROWS.len();
            black_box(hot.classify(black_box(ROWS[i].as_bytes())))
        })
    });
    // What sysbench's oltp_insert sends: two long string literals.
    let sysbench = b"INSERT INTO sbtest1 (id, k, c, pad) VALUES (0, 5021, \
        '68487932199-96439406143-93774651418-41631865787-96406072701-20604855487-\
        25459966574-28203206787-41238978918-19503783441', \
        '22195207048-70116052123-74140395089-76317954521-98694440064')";
    assert!(hot.classify(sysbench).batchable().is_ok());
    c.bench_function("insert_sysbench_row", |b| {
        b.iter(|| black_box(hot.classify(black_box(sysbench))))
    });
    let cold = Classifier::new(0);
    c.bench_function("insert_8_cols_cold", |b| {
        b.iter(|| black_box(cold.classify(black_box(ROWS[0].as_bytes()))))
    });
    c.bench_function("select", |b| {
        b.iter(|| black_box(hot.classify(black_box(b"SELECT id, name FROM users WHERE id = 42"))))
    });
    let sql = b"INSERT INTO shop.orders (id, customer_id, sku, quantity, price, note, created_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
    let shape = classify_prepared(sql).into_batchable().expect("batchable");
    let row = shape.row_bytes(sql).expect("row").to_vec();
    let values = [
        BoundValue::Int(1001),
        BoundValue::Int(42),
        BoundValue::Text(b"SKU-1234"),
        BoundValue::UInt(3),
        BoundValue::Double(19.99),
        BoundValue::Text(b"gift wrap, it's"),
        BoundValue::DateTime {
            year: 2024,
            month: 1,
            day: 2,
            hour: 3,
            minute: 4,
            second: 5,
            micros: 6,
        },
        BoundValue::Null,
    ];
    c.bench_function("render_prepared_row_8", |b| {
        b.iter(|| {
            black_box(render_row(
                black_box(&row),
                shape.placeholders(),
                &values,
                &RenderOptions::default(),
            ))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
