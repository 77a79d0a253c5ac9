//! Client INSERTs of several rows (up to `[writebatch] max_statement_rows`)
//! share batches with other clients' rows of the same shape: each client
//! is told the affected rows, the first generated id and the `Records:`
//! info MariaDB would give it alone; a row that fails or warns makes its
//! statement run alone, so the client gets MariaDB's own answer and none
//! of its rows is stored in a way it would not be alone.

use mysql_async::prelude::*;
use mysql_async::Value;
use sluice_e2e::differential::{self, batching_sluice, Client, Scenario, Step, SMALL_DELAY};
use sluice_e2e::{sluice_status, MariaDb, Sluice};

const SETUP: &str = "CREATE DATABASE app; \
    CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
      tag VARCHAR(12) NOT NULL UNIQUE, n INT NOT NULL) ENGINE=InnoDB AUTO_INCREMENT=1000; \
    INSERT INTO app.t (tag, n) VALUES ('shared', 0)";

/// The rows client `i` sends in round `k`: `count` rows, the first of
/// them (in round 2, for every fourth client) a duplicate of the `shared`
/// row, or (in round 3) a tag too long for the column. (The first: a
/// multi-row INSERT that fails on a later row leaves `LAST_INSERT_ID()`
/// at the id its first row got and lost, a number that depends on how
/// far the counter had gone, so that alone and batched runs cannot be
/// compared there.)
fn rows(i: usize, k: usize, count: usize) -> Vec<(String, i32)> {
    (0..count)
        .map(|r| {
            let tag = match (k, r) {
                (2, 0) if i % 4 == 1 => "shared".to_string(),
                (3, 0) => format!("long-tag-{i}-{k}-{r}"),
                _ => format!("c{i}-{k}-{r}"),
            };
            (tag, i32::try_from(i * 10 + r).unwrap())
        })
        .collect()
}

/// Client `i`'s INSERT of `rows`: text for most, prepared for some.
fn insert(i: usize, rows: &[(String, i32)]) -> Step {
    if i % 8 == 3 {
        let marks = vec!["(?, ?)"; rows.len()].join(", ");
        let params = rows
            .iter()
            .flat_map(|(tag, n)| [Value::from(tag.as_str()), Value::from(*n)])
            .collect();
        Step::prepared(format!("INSERT INTO t (tag, n) VALUES {marks}"), params)
    } else {
        let values: Vec<String> = rows.iter().map(|(t, n)| format!("('{t}', {n})")).collect();
        Step::text(format!(
            "INSERT INTO t (tag, n) VALUES {}",
            values.join(",")
        ))
    }
}

/// 64 clients, four rounds each, sending INSERTs of 1, 5, 3 and 2 rows
/// (text and prepared), with a duplicate key inside a multi-row INSERT
/// and, for a quarter of the clients in non-strict mode, an over-long
/// value (a truncation warning alone, an error in strict mode). Every
/// client sees what it would alone (OK packets with their info text,
/// errors, `LAST_INSERT_ID()`, warnings), and the table ends the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_row_inserts_share_batches_and_answer_as_alone() {
    let clients = (0..64)
        .map(|i| {
            let mut client = Client::root("app");
            if i % 4 == 2 {
                client = client.sql("SET SESSION sql_mode = ''");
            }
            let count = [1, 5, 3, 2][i % 4];
            for k in 0..4 {
                client = client
                    .step(insert(i, &rows(i, k, count)))
                    .step(Step::text("SELECT LAST_INSERT_ID()").ids(&[0]))
                    .sql("SHOW WARNINGS");
            }
            client
        })
        .collect();
    let scenario = Scenario {
        databases: vec!["app".into()],
        setup: SETUP.into(),
        clients,
        contents: vec!["SELECT tag, n FROM app.t ORDER BY tag".into()],
        ids: Some("SELECT id, tag FROM app.t".into()),
        warmup: vec![Client::root("app").sql("INSERT INTO t (tag, n) VALUES ('w1', 0), ('w2', 0)")],
    };
    let db = MariaDb::start().await;
    let sluice = batching_sluice(&db).await;
    let comparison = differential::differential(&db, &sluice, &scenario).await;
    comparison.assert_batches_committed(1);
    if !sluice.is_direct() {
        let mut conn = sluice.root_conn().await;
        let status = sluice_status(&mut conn).await;
        let declined = |reason: &str| {
            status
                .get(&format!("unbatched_{reason}"))
                .map_or(0, |v| v.parse::<u64>().unwrap_or(0))
        };
        assert_eq!(declined("several_rows"), 0, "{status:?}");
        assert_eq!(declined("rows_over_limit"), 0, "{status:?}");
    }
    sluice.assert_no_panic();
}

/// Each member of a batch of 5-row INSERTs is told its own first id and
/// its 5 rows, and its `LAST_INSERT_ID()` is that id; the rows of one
/// statement went in one batch with other clients' rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_of_five_rows_is_told_its_first_id() {
    let db = MariaDb::start().await;
    db.sql(
        "CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
         tag VARCHAR(40) NOT NULL UNIQUE, n INT NOT NULL) ENGINE=InnoDB",
    )
    .await;
    let sluice = batching_sluice(&db).await;
    if !sluice.is_real("a_member_of_five_rows_is_told_its_first_id") {
        return;
    }
    const MEMBERS: usize = 16;
    let statement = |tag: &str| {
        let rows: Vec<String> = (0..5).map(|r| format!("('{tag}-{r}', {r})")).collect();
        format!("INSERT INTO t (tag, n) VALUES {}", rows.join(", "))
    };
    let sent = differential::warm_then_each_at_once(
        &sluice,
        MEMBERS,
        |i| statement(&format!("warm-{i}")),
        |i| statement(&format!("m{i}")),
    )
    .await;
    for (i, (result, mut conn)) in sent.into_iter().enumerate() {
        result.unwrap_or_else(|e| panic!("member {i}: {e}"));
        assert_eq!(conn.affected_rows(), 5);
        assert_eq!(conn.info(), "Records: 5  Duplicates: 0  Warnings: 0");
        let id = conn.last_insert_id().expect("an id");
        let first: Option<u64> = conn
            .query_first(format!("SELECT id FROM t WHERE tag = 'm{i}-0'"))
            .await
            .unwrap();
        assert_eq!(
            Some(id),
            first,
            "member {i} is told the id of its first row"
        );
        let last: Option<u64> = conn.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
        assert_eq!(last, Some(id));
        let count: Option<u64> = conn
            .query_first(format!("SELECT COUNT(*) FROM t WHERE tag LIKE 'm{i}-%'"))
            .await
            .unwrap();
        assert_eq!(count, Some(5));
    }
    let mut conn = sluice.root_conn().await;
    let status = sluice_status(&mut conn).await;
    let batched: u64 = status["rows_batched"].parse().unwrap();
    assert!(
        batched >= 10,
        "rows of multi-row members went out in batches: {status:?}"
    );
    sluice.assert_no_panic();
}

/// INSERTs of more rows than `max_statement_rows`, and multi-row INSERTs
/// in a form a batch cannot answer for (IGNORE, upserts, values for the
/// AUTO_INCREMENT column) run as sent, each counted under its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_row_inserts_a_batch_cannot_answer_for_run_as_sent() {
    let db = MariaDb::start().await;
    db.sql(
        "CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
         n INT NOT NULL) ENGINE=InnoDB",
    )
    .await;
    let mut builder = Sluice::builder(&db).env("SLUICE_WRITEBATCH__MAX_STATEMENT_ROWS", "3");
    for (key, value) in SMALL_DELAY {
        builder = builder.env(*key, *value);
    }
    let sluice = builder.start().await;
    if !sluice.is_real("multi_row_inserts_a_batch_cannot_answer_for_run_as_sent") {
        return;
    }
    let mut conn = sluice.root_conn().await;
    conn.query_drop("USE app").await.unwrap();
    conn.query_drop("INSERT INTO t (n) VALUES (1),(2),(3),(4)")
        .await
        .unwrap();
    assert_eq!(conn.affected_rows(), 4);
    for sql in [
        "INSERT IGNORE INTO t (n) VALUES (1),(2)",
        "INSERT INTO t (n) VALUES (1),(2) ON DUPLICATE KEY UPDATE n = n + 1",
        "REPLACE INTO t (n) VALUES (1),(2)",
        "INSERT INTO t (id, n) VALUES (NULL, 1),(NULL, 2)",
    ] {
        conn.query_drop(sql).await.unwrap();
        assert_eq!(conn.affected_rows(), 2, "{sql}");
    }
    let status = sluice_status(&mut conn).await;
    assert_eq!(status["unbatched_rows_over_limit"], "1", "{status:?}");
    assert_eq!(status["unbatched_several_rows_form"], "4", "{status:?}");
    sluice.assert_no_panic();
}
