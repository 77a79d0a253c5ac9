//! `REPLACE` and `INSERT … ON DUPLICATE KEY UPDATE` batched: the rows
//! that insert go in with the batch (an `INSERT IGNORE` without the update
//! clause); a row that meets an existing key, or another member's row of
//! the same batch, is skipped by it and its member runs its own statement
//! alone, so that affected rows, ids, `LAST_INSERT_ID()` and warnings are
//! MariaDB's own.

use mysql_async::prelude::*;
use mysql_async::Value;
use sluice_e2e::differential::{self, batching_sluice, Client, Scenario, Step};
use sluice_e2e::{sluice_status, MariaDb};

const TABLE: &str = "CREATE DATABASE app; \
    CREATE TABLE app.parent (id INT PRIMARY KEY) ENGINE=InnoDB; \
    INSERT INTO app.parent VALUES (1); \
    CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
      tag VARCHAR(20) NOT NULL UNIQUE, n INT CHECK (n >= 0), parent_id INT, \
      FOREIGN KEY (parent_id) REFERENCES app.parent (id)) \
      ENGINE=InnoDB AUTO_INCREMENT=1000";

/// Rows the clients meet: one shared by every upserting client (whose
/// update adds, so that the order does not change the end), and one per
/// replacing client (a row two clients replace would leave ids that one
/// of them saw and no row carries).
fn setup() -> String {
    let mut sql = format!("{TABLE}; INSERT INTO app.t (id, tag, n) VALUES (1, 'shared', 0)");
    for i in 0..64 {
        sql.push_str(&format!(
            "; INSERT INTO app.t (id, tag, n) VALUES ({}, 'own{i}', 5)",
            100 + i
        ));
    }
    sql
}

/// The statement client `i` sends for its row: as text, or for a quarter
/// of the clients prepared, with the row's values bound.
fn statement(i: usize, tag: &str, n: i32, parent: Option<i32>) -> Step {
    let form = |row: &str| {
        let row = format!("INTO t (tag, n, parent_id) VALUES {row}");
        match i % 4 {
            0 => format!("REPLACE {row}"),
            1 => format!("INSERT {row} ON DUPLICATE KEY UPDATE n = n + 1"),
            // The idiom that makes LAST_INSERT_ID() the existing row's id.
            2 => format!("INSERT {row} ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id), n = n + 1"),
            // VALUES(n) is the row's own value: n + 0 changes nothing, and
            // the client is told 0 rows affected.
            _ => format!("INSERT IGNORE {row} ON DUPLICATE KEY UPDATE n = n + VALUES(n)"),
        }
    };
    if i % 16 >= 12 {
        let parent = parent.map_or(Value::NULL, Value::from);
        Step::prepared(
            form("(?, ?, ?)"),
            vec![Value::from(tag), Value::from(n), parent],
        )
    } else {
        let parent = parent.map_or("NULL".to_string(), |p| p.to_string());
        Step::text(form(&format!("('{tag}', {n}, {parent})")))
    }
}

/// 64 clients of `REPLACE` and three kinds of upsert, four rounds each:
/// new rows, the shared or own existing row, the client's own earlier row,
/// a missing parent, a failed CHECK; a quarter in non-strict mode, a
/// quarter prepared (mixed with text clients of the same forms). Every
/// client sees what it would alone (OK packets, errors, warnings,
/// `ROW_COUNT()`, `LAST_INSERT_ID()`), and the table ends the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_and_upserts_give_every_client_its_own_answer() {
    let clients = (0..64)
        .map(|i| {
            let mut client = Client::root("app");
            if i % 8 >= 6 {
                client = client.sql("SET SESSION sql_mode = ''");
            }
            for k in 0..4 {
                let (tag, n, parent) = match (i + k) % 8 {
                    0 if i % 4 == 0 => (format!("own{i}"), 0, None),
                    0 => ("shared".to_string(), 0, None),
                    // An upsert of the client's own earlier row (a REPLACE
                    // of it would retire an id the client saw).
                    1 if k > 0 && i % 4 != 0 => (format!("r{i}-0"), 0, Some(1)),
                    2 => (format!("p{i}-{k}"), 0, Some(9)),
                    3 => (format!("c{i}-{k}"), -1, None),
                    _ => (format!("r{i}-{k}"), 0, Some(1)),
                };
                client = client
                    .step(statement(i, &tag, n, parent))
                    .sql("SELECT ROW_COUNT()")
                    .step(Step::text("SELECT LAST_INSERT_ID()").ids(&[0]))
                    .sql("SHOW WARNINGS");
            }
            client
        })
        .collect();
    let scenario = Scenario {
        databases: vec!["app".into()],
        setup: setup(),
        clients,
        contents: vec!["SELECT tag, n, parent_id FROM app.t ORDER BY tag".into()],
        ids: Some("SELECT id, tag FROM app.t".into()),
        warmup: vec![
            Client::root("app").sql("REPLACE INTO t (tag, n) VALUES ('warmup', 0)"),
            Client::root("app").sql(
                "INSERT INTO t (tag, n) VALUES ('warmup', 0) ON DUPLICATE KEY UPDATE n = n + 1",
            ),
        ],
    };
    let db = MariaDb::start().await;
    let sluice = batching_sluice(&db).await;
    differential::differential(&db, &sluice, &scenario)
        .await
        .assert_batches_committed(1);
    sluice.assert_no_panic();
}

/// Members of one batch that all write the same new key: one inserts, and
/// every other one gets what a serial order gives it (an upsert updates
/// the row, a REPLACE replaces it). The key is stored once, and the
/// upserts' count is the number of members.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_writing_the_same_new_key_act_in_some_serial_order() {
    let db = MariaDb::start().await;
    db.sql(
        "CREATE DATABASE app; \
         CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
           tag VARCHAR(40) NOT NULL UNIQUE, n INT NOT NULL) ENGINE=InnoDB",
    )
    .await;
    let sluice = batching_sluice(&db).await;
    const MEMBERS: usize = 16;
    for form in ["REPLACE", "UPSERT"] {
        let sql = |tag: &str| match form {
            "REPLACE" => format!("REPLACE INTO t (tag, n) VALUES ('{tag}', 1)"),
            _ => format!(
                "INSERT INTO t (tag, n) VALUES ('{tag}', 1) ON DUPLICATE KEY UPDATE n = n + 1"
            ),
        };
        let sent = differential::warm_then_all_at_once(
            &sluice,
            MEMBERS,
            |i| sql(&format!("warm-{form}-{i}")),
            &sql(&format!("same-{form}")),
        )
        .await;
        let mut affected = Vec::new();
        for (result, conn) in sent {
            result.unwrap_or_else(|e| panic!("{form}: {e}"));
            affected.push(conn.affected_rows());
        }
        affected.sort_unstable();
        let mut expected = vec![2; MEMBERS];
        expected[0] = 1;
        assert_eq!(affected, expected, "{form}: one insert, then updates");
        let (rows, n): (u64, i64) = db
            .root_conn()
            .await
            .query_first(format!(
                "SELECT COUNT(*), MAX(n) FROM app.t WHERE tag = 'same-{form}'"
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rows, 1, "{form}");
        let expected_n = if form == "REPLACE" { 1 } else { MEMBERS as i64 };
        assert_eq!(n, expected_n, "{form}");
    }
    let status = sluice_status(&mut sluice.root_conn().await).await;
    let batched: u64 = status.get("rows_batched").map_or(0, |v| v.parse().unwrap());
    assert!(batched > 0, "nothing was batched: {status:?}");
    sluice.assert_no_panic();
}

/// Where the server cannot report which rows a batch skipped (here: a
/// session in `sql_mode = ORACLE`, whose compound statements read
/// differently), `REPLACE` and upserts are relayed alone and counted under
/// their own reasons.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_skipped_rows_report_conflict_forms_run_alone() {
    let db = MariaDb::start().await;
    db.sql(
        "CREATE DATABASE app; \
         CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
           tag VARCHAR(40) NOT NULL UNIQUE, n INT NOT NULL) ENGINE=InnoDB; \
         INSERT INTO app.t (tag, n) VALUES ('existing', 1)",
    )
    .await;
    let sluice = batching_sluice(&db).await;
    let mut conn = sluice.root_conn().await;
    conn.query_drop("USE app").await.unwrap();
    conn.query_drop("SET SESSION sql_mode = 'ORACLE'")
        .await
        .unwrap();
    conn.query_drop("REPLACE INTO t (tag, n) VALUES ('existing', 2)")
        .await
        .unwrap();
    assert_eq!(conn.affected_rows(), 2);
    conn.query_drop(
        "INSERT INTO t (tag, n) VALUES ('existing', 0) ON DUPLICATE KEY UPDATE n = n + 1",
    )
    .await
    .unwrap();
    assert_eq!(conn.affected_rows(), 2);
    let status = sluice_status(&mut conn).await;
    let count = |name: &str| status.get(name).map_or(0, |v| v.parse::<u64>().unwrap());
    assert_eq!(count("unbatched_replace"), 1, "{status:?}");
    assert_eq!(count("unbatched_on_duplicate_key_update"), 1, "{status:?}");
    let n: i64 = db
        .root_conn()
        .await
        .query_first("SELECT n FROM app.t WHERE tag = 'existing'")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 3);
    sluice.assert_no_panic();
}
