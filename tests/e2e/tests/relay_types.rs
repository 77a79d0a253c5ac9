//! Column types through Sluice, text and binary protocol: values and column
//! metadata equal to what MariaDB returns directly.

use mysql_async::prelude::Queryable;
use mysql_async::{Column, Conn, Row, Value};
use sluice_e2e::Pair;

const CREATE: &str = "CREATE DATABASE app; CREATE TABLE app.types (
    id INT PRIMARY KEY,
    n INT NULL,
    b BLOB,
    d DECIMAL(30,10),
    dt DATETIME(6),
    tm TIME(6),
    tm2 TIME,
    s VARCHAR(100) CHARACTER SET utf8mb4,
    j JSON,
    u BIGINT UNSIGNED,
    f DOUBLE,
    bits BIT(8),
    e ENUM('x','y'),
    dte DATE,
    yr YEAR
) ENGINE=InnoDB";

const TEXT: &str = "héllo 🦀 世界 \u{1F389}";
const JSON: &str = r#"{"a": [1, 2, {"b": null}], "emoji": "🎉"}"#;
const DECIMAL: &str = "-12345678901234567890.0123456789";

fn all_bytes() -> Vec<u8> {
    (0..=255u8).collect()
}

/// Row 1 inserted with SQL literals, straight into MariaDB.
fn literal_insert() -> String {
    format!(
        "INSERT INTO app.types VALUES (1, NULL, X'{}', {DECIMAL}, '2024-02-29 23:59:59.123456', \
         '-838:59:59.000000', '-01:02:03', '{TEXT}', '{JSON}', 18446744073709551615, 1.5e300, \
         b'10101010', 'y', '1000-01-01', 2024)",
        all_bytes()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<String>()
    )
}

async fn text_rows(conn: &mut Conn) -> Vec<Vec<Value>> {
    let rows: Vec<Row> = conn
        .query("SELECT * FROM app.types ORDER BY id")
        .await
        .unwrap();
    rows.into_iter().map(Row::unwrap).collect()
}

async fn binary_rows(conn: &mut Conn) -> Vec<Vec<Value>> {
    let rows: Vec<Row> = conn
        .exec("SELECT * FROM app.types WHERE id > ? ORDER BY id", (0,))
        .await
        .unwrap();
    rows.into_iter().map(Row::unwrap).collect()
}

type ColumnMeta = Vec<(String, String, u16, u32, u8, u16, u8)>;

fn meta_of(cols: &[Column]) -> ColumnMeta {
    cols.iter()
        .map(|c| {
            (
                c.name_str().into_owned(),
                c.org_table_str().into_owned(),
                c.character_set(),
                c.column_length(),
                c.column_type() as u8,
                c.flags().bits(),
                c.decimals(),
            )
        })
        .collect()
}

async fn column_meta(conn: &mut Conn, binary: bool) -> ColumnMeta {
    if binary {
        let stmt = conn.prep("SELECT * FROM app.types").await.unwrap();
        let prepared = meta_of(&stmt.columns());
        let mut result = conn.exec_iter(stmt, ()).await.unwrap();
        let executed = meta_of(&result.columns().expect("columns"));
        assert_eq!(prepared, executed, "prepare and execute metadata");
        let _: Vec<Row> = result.collect().await.unwrap();
        executed
    } else {
        let mut result = conn.query_iter("SELECT * FROM app.types").await.unwrap();
        let meta = meta_of(&result.columns().expect("columns"));
        let _: Vec<Row> = result.collect().await.unwrap();
        meta
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn types_equal_direct_text_and_binary() {
    let pair = Pair::start().await;
    pair.db.sql(CREATE).await;
    pair.db.sql(&literal_insert()).await;

    // Row 2 inserted through Sluice with the binary protocol (bound params).
    let mut conn = pair.conn().await;
    conn.exec_drop(
        "INSERT INTO app.types VALUES (2, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            Value::NULL,
            Value::Bytes(all_bytes()),
            Value::Bytes(DECIMAL.as_bytes().to_vec()),
            Value::Date(2024, 2, 29, 23, 59, 59, 123_456),
            Value::Time(true, 34, 22, 59, 59, 0),
            Value::Time(true, 0, 1, 2, 3, 0),
            Value::Bytes(TEXT.as_bytes().to_vec()),
            Value::Bytes(JSON.as_bytes().to_vec()),
            Value::UInt(u64::MAX),
            Value::Double(1.5e300),
            Value::Bytes(vec![0b1010_1010]),
            Value::Bytes(b"y".to_vec()),
            Value::Date(1000, 1, 1, 0, 0, 0, 0),
            Value::Int(2024),
        ],
    )
    .await
    .unwrap();
    // Row 3 inserted through Sluice with the text protocol.
    conn.query_drop(literal_insert().replace("VALUES (1,", "VALUES (3,"))
        .await
        .unwrap();

    let mut direct = pair.direct().await;
    let via_text = text_rows(&mut conn).await;
    let via_binary = binary_rows(&mut conn).await;
    let direct_text = text_rows(&mut direct).await;
    let direct_binary = binary_rows(&mut direct).await;
    assert_eq!(
        via_text, direct_text,
        "text protocol through Sluice = direct"
    );
    assert_eq!(
        via_binary, direct_binary,
        "binary protocol through Sluice = direct"
    );
    assert_eq!(via_text.len(), 3);

    // All three rows hold the same values, whichever way they went in.
    for rows in [&via_text, &via_binary] {
        for row in rows.iter().skip(1) {
            assert_eq!(&row[1..], &rows[0][1..]);
        }
    }

    // Spot checks of decoded values.
    let text = &via_text[0];
    assert_eq!(text[1], Value::NULL);
    assert_eq!(text[2], Value::Bytes(all_bytes()));
    assert_eq!(text[3], Value::Bytes(DECIMAL.as_bytes().to_vec()));
    assert_eq!(
        text[4],
        Value::Bytes(b"2024-02-29 23:59:59.123456".to_vec())
    );
    assert_eq!(text[5], Value::Bytes(b"-838:59:59.000000".to_vec()));
    assert_eq!(text[6], Value::Bytes(b"-01:02:03".to_vec()));
    assert_eq!(text[7], Value::Bytes(TEXT.as_bytes().to_vec()));
    assert_eq!(text[8], Value::Bytes(JSON.as_bytes().to_vec()));
    assert_eq!(text[9], Value::Bytes(b"18446744073709551615".to_vec()));
    let bin = &via_binary[0];
    assert_eq!(bin[1], Value::NULL);
    assert_eq!(bin[2], Value::Bytes(all_bytes()));
    assert_eq!(bin[4], Value::Date(2024, 2, 29, 23, 59, 59, 123_456));
    assert_eq!(bin[5], Value::Time(true, 34, 22, 59, 59, 0));
    assert_eq!(bin[6], Value::Time(true, 0, 1, 2, 3, 0));
    assert_eq!(bin[9], Value::UInt(u64::MAX));
    assert_eq!(bin[10], Value::Double(1.5e300));

    // Column metadata (type, charset, length, flags, decimals) equal too:
    // BLOB keeps charset 63 (binary), text keeps utf8mb4.
    for binary in [false, true] {
        let via = column_meta(&mut conn, binary).await;
        let dir = column_meta(&mut direct, binary).await;
        assert_eq!(via, dir, "column definitions (binary = {binary})");
        let blob = via.iter().find(|c| c.0 == "b").unwrap();
        assert_eq!(blob.2, 63, "BLOB column charset is binary");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utf8mb4_and_charset_session_settings() {
    let pair = Pair::start().await;
    pair.db
        .sql("CREATE DATABASE app; CREATE TABLE app.s (id INT PRIMARY KEY, v VARCHAR(20)) CHARACTER SET utf8mb4")
        .await;
    let mut conn = pair.conn().await;
    conn.query_drop("SET NAMES utf8mb4").await.unwrap();
    conn.exec_drop("INSERT INTO app.s VALUES (?, ?)", (1, "🦀🎉 ok"))
        .await
        .unwrap();
    let (v, len, chars): (String, i64, i64) = conn
        .query_first("SELECT v, LENGTH(v), CHAR_LENGTH(v) FROM app.s WHERE id = 1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v, "🦀🎉 ok");
    assert_eq!((len, chars), (11, 5));

    // latin1 session: the server converts, Sluice passes bytes through.
    conn.query_drop("SET NAMES latin1").await.unwrap();
    let v: Vec<u8> = conn
        .query_first("SELECT CONVERT('é' USING latin1)")
        .await
        .unwrap()
        .unwrap();
    let mut direct = pair.direct().await;
    direct.query_drop("SET NAMES latin1").await.unwrap();
    let d: Vec<u8> = direct
        .query_first("SELECT CONVERT('é' USING latin1)")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v, d);
}
