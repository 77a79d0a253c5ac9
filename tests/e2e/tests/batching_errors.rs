//! Write batching, errors and warnings per row: when one row of a batch
//! fails, exactly that client gets MariaDB's own error (code, SQLSTATE,
//! text), the others succeed, and no row is applied twice; warnings of a
//! non-strict session go to the clients whose rows caused them.

use sluice_e2e::differential::{self, batching_sluice, Client, Outcome, Scenario, Step};
use sluice_e2e::MariaDb;

const CLIENTS: usize = 64;
const ROUNDS: usize = 5;

/// The values of one client's row in one round: `(tag, code, parent_id,
/// short, n)`, with one faulty value when the row is a bad one.
fn row_values(i: usize, k: usize) -> String {
    let mut tag = format!("'r{i}-{k}'");
    let (mut code, mut parent, mut short, mut n) = ("NULL", "1".to_string(), "'ok'", "7");
    // Rounds 1 and 3 hold four bad rows each, of eight kinds in all;
    // rounds 0, 2 and 4 are clean.
    if (k == 1 || k == 3) && i % 16 == k {
        match i / 16 + if k == 3 { 4 } else { 0 } {
            0 => code = "'DUP00'",          // duplicate of an existing row's unique key
            1 => short = "'much too long'", // ER_DATA_TOO_LONG in strict mode
            2 => parent = "99".to_string(), // foreign key violation
            3 => tag = "'existing'".to_string(), // duplicate of another unique key
            4 => tag = "NULL".to_string(),  // NOT NULL column
            5 => n = "300",                 // out of range for TINYINT
            6 => n = "-1",                  // CHECK constraint
            _ => n = "1/0",                 // division by zero in strict mode
        }
    }
    format!("({tag}, {code}, {parent}, {short}, {n})")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_rows_get_their_own_error_and_others_succeed() {
    let db = MariaDb::start().await;
    let sluice = batching_sluice(&db).await;
    let clients = (0..CLIENTS)
        .map(|i| {
            let mut client = Client::root("app");
            for k in 0..ROUNDS {
                client = client.sql(format!(
                    "INSERT INTO t (tag, code, parent_id, short, n) VALUES {}",
                    row_values(i, k)
                ));
            }
            client
        })
        .collect();
    let scenario = Scenario {
        databases: vec!["app".into()],
        setup: "CREATE DATABASE app; \
            CREATE TABLE app.parent (id INT PRIMARY KEY) ENGINE=InnoDB; \
            INSERT INTO app.parent VALUES (1), (2), (3); \
            CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
              tag VARCHAR(40) NOT NULL UNIQUE, code CHAR(5) UNIQUE, parent_id INT, \
              short VARCHAR(4), n TINYINT CHECK (n >= 0), \
              FOREIGN KEY (parent_id) REFERENCES app.parent (id)) ENGINE=InnoDB; \
            INSERT INTO app.t (tag, code, parent_id) VALUES ('existing', 'DUP00', 1)"
            .into(),
        clients,
        contents: vec![
            "SELECT tag, code, parent_id, short, n FROM app.t ORDER BY tag".into(),
            "SELECT COUNT(*) FROM app.t".into(),
        ],
        ids: Some("SELECT id, tag FROM app.t".into()),
        warmup: vec![Client::root("app").sql(format!(
            "INSERT INTO t (tag, code, parent_id, short, n) VALUES {}",
            row_values(99, 0)
        ))],
    };
    let result = differential::differential(&db, &sluice, &scenario).await;

    // The alone run holds the errors the scenario is about.
    let mut codes: Vec<u16> = result
        .alone
        .outcomes
        .iter()
        .flatten()
        .filter_map(Outcome::error_code)
        .collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(
        codes,
        vec![1048, 1062, 1264, 1365, 1406, 1452, 4025],
        "the scenario's errors"
    );
    let failures = result
        .alone
        .outcomes
        .iter()
        .flatten()
        .filter(|o| !o.is_done())
        .count();
    assert_eq!(failures, 8);
    let rows: i64 = result.batched.contents[1][0][0]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(rows as usize, 1 + CLIENTS * ROUNDS - failures);
    // The clean rounds were batched; a batch with a bad row was rolled
    // back and its rows ran alone.
    result.assert_batches_committed(3);
    sluice.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_strict_warnings_go_to_the_rows_that_caused_them() {
    let db = MariaDb::start().await;
    let sluice = batching_sluice(&db).await;
    let clients = (0..CLIENTS)
        .map(|i| {
            let mut client = Client::root("app").sql("SET SESSION sql_mode = ''");
            for k in 0..4 {
                // Rounds 0 and 2 are clean for everyone; in rounds 1 and 3
                // some clients' rows truncate a string, clip a number, or
                // both.
                let (short, n) = match (k % 2 == 1, (i + k) % 8) {
                    (true, 0) => ("'much too long'", "5"),
                    (true, 2) => ("'ok'", "1000"),
                    (true, 4) => ("'truncated too'", "-1000"),
                    _ => ("'ok'", "5"),
                };
                client = client
                    .sql(format!(
                        "INSERT INTO w (tag, short, n) VALUES ('w{i}-{k}', {short}, {n})"
                    ))
                    .step(Step::text("SHOW WARNINGS"));
            }
            client.sql("SELECT @@warning_count, @@error_count")
        })
        .collect();
    let scenario = Scenario {
        databases: vec!["app".into()],
        setup: "CREATE DATABASE app; \
            CREATE TABLE app.w (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(40) UNIQUE, \
              short VARCHAR(4), n TINYINT) ENGINE=InnoDB"
            .into(),
        clients,
        contents: vec!["SELECT tag, short, n FROM app.w ORDER BY tag".into()],
        ids: Some("SELECT id, tag FROM app.w".into()),
        warmup: vec![Client::root("app").sql("INSERT INTO w (tag) VALUES ('warmup')")],
    };
    let result = differential::differential(&db, &sluice, &scenario).await;
    let warned = result
        .alone
        .outcomes
        .iter()
        .flatten()
        .filter(|o| matches!(o, Outcome::Done { warnings, .. } if *warnings > 0))
        .count();
    assert_eq!(warned, CLIENTS * 2 * 3 / 8, "INSERTs with warnings");
    let listed = result
        .alone
        .outcomes
        .iter()
        .flatten()
        .filter(
            |o| matches!(o, Outcome::Done { rows, .. } if !rows.is_empty() && rows[0].len() == 3),
        )
        .count();
    assert_eq!(listed, warned, "SHOW WARNINGS lists them");
    result.assert_batches_committed(2);
    sluice.assert_no_panic();
}
