//! Isolation that costs the failing row, not the batch: a batch runs as
//! `INSERT IGNORE`, a row that meets a duplicate key is skipped, the batch
//! commits without it, and only its member runs its own statement alone
//! and gets MariaDB's own error.

use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::{Error, Value};
use sluice_e2e::differential::{
    self, batching_sluice, com_counters, counter_delta, Client, Scenario, Step,
};
use sluice_e2e::MariaDb;
use tokio::sync::Barrier;

const CLIENTS: usize = 32;
/// A table of unique tags, one of them (`existing`) taken.
const TAGS_WITH_ONE_TAKEN: &str = "CREATE DATABASE app; \
    CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
      tag VARCHAR(40) NOT NULL UNIQUE) ENGINE=InnoDB; \
    INSERT INTO app.t (tag) VALUES ('existing')";
const DUPLICATE_OF: &str = "existing";

/// One duplicate among 32 rows that leave as one batch: the batch commits
/// the 31 others, the duplicate alone gets 1062. It costs a handful of
/// statements, where re-running every member alone would cost 33 INSERTs
/// and a rollback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_duplicate_in_a_batch_of_32_costs_a_handful_of_statements() {
    let cost = one_bad_row_among_32(BadRow {
        tag: DUPLICATE_OF,
        code: 1062,
        message: "Duplicate entry 'existing' for key 'tag'",
    })
    .await;
    // The blocked row, the batch of 32 (or a few batches, should the
    // clients straggle), and the duplicate alone; the one rollback is the
    // holder's own.
    assert!(
        cost.inserts <= 6,
        "{} INSERT statements for 33 rows with one duplicate: {cost:?}",
        cost.inserts
    );
    assert_eq!(cost.rollbacks, 1, "no batch was rolled back: {cost:?}");
    assert_eq!(
        (cost.isolated_duplicate_key, cost.isolated_batch_failed),
        (1, 0),
        "{cost:?}"
    );
}

/// One row among 32 that fails in a way that is not a skipped row (a
/// value too long for its column, which `IGNORE` would truncate): the
/// batch is rolled back and halved, the good halves commit as batches, and
/// only the bad row runs alone and gets 1406. About 2·log2 32 batch
/// statements, where running every member alone costs 32.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_row_in_a_batch_of_32_is_found_by_halving() {
    let cost = one_bad_row_among_32(BadRow {
        tag: "a value far too long for its forty-character column",
        code: 1406,
        message: "Data too long for column 'tag' at row 1",
    })
    .await;
    // The blocked row, at most 11 batch statements (the budget for 32
    // rows: 1 + 2 per level), the bad row alone, and room for clients
    // that straggle into a second batch.
    assert!(
        cost.inserts <= 16,
        "{} INSERT statements for 33 rows with one bad row: {cost:?}",
        cost.inserts
    );
    assert!(
        (2..=12).contains(&cost.rollbacks),
        "the holder's and one per failed part: {cost:?}"
    );
    // The bad row, and the row that shared its last part of two (a part
    // of one row runs alone).
    assert_eq!(cost.isolated_duplicate_key, 0, "{cost:?}");
    assert!((1..=2).contains(&cost.isolated_batch_failed), "{cost:?}");
}

struct BadRow {
    tag: &'static str,
    code: u16,
    message: &'static str,
}

#[derive(Debug)]
struct Cost {
    inserts: u64,
    rollbacks: u64,
    /// `sluice_write_isolated_rows_total` by reason.
    isolated_duplicate_key: u64,
    isolated_batch_failed: u64,
}

/// 32 clients send a row each, one of them `bad`, while a 33rd waits on a
/// lock, so that the 32 leave as one batch. Every good row is stored once
/// with the id its client was told; the bad row's client gets the server's
/// own error. Returns the statements the server ran meanwhile.
async fn one_bad_row_among_32(bad: BadRow) -> Cost {
    let db = MariaDb::start().await;
    db.sql(TAGS_WITH_ONE_TAKEN).await;
    let sluice = batching_sluice(&db).await;
    let mut conns = Vec::new();
    for _ in 0..=CLIENTS {
        let mut conn = sluice.root_conn().await;
        conn.query_drop("USE app").await.unwrap();
        conns.push(conn);
    }
    // Every session has its settings and the table's facts read, so the
    // rows below are batched from their first statement.
    for (i, conn) in conns.iter_mut().enumerate() {
        conn.query_drop(format!("INSERT INTO t (tag) VALUES ('warm-{i}')"))
            .await
            .unwrap();
    }

    // A direct transaction holds the key 'blocker': the first row through
    // Sluice waits on it, in flight, while the 32 queue behind it.
    let mut holder = db.root_conn().await;
    holder
        .query_drop("START TRANSACTION; INSERT INTO app.t (tag) VALUES ('blocker')")
        .await
        .unwrap();
    let before = com_counters(&db).await;
    let mut blocked = conns.pop().unwrap();
    let first = tokio::spawn(async move {
        let result = blocked
            .query_drop("INSERT INTO t (tag) VALUES ('blocker')")
            .await;
        (blocked, result)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let barrier = Arc::new(Barrier::new(CLIENTS));
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut conn)| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let tag = if i == 7 {
                    bad.tag.to_string()
                } else {
                    format!("row-{i}")
                };
                barrier.wait().await;
                let result = conn
                    .query_drop(format!("INSERT INTO t (tag) VALUES ('{tag}')"))
                    .await
                    .map(|()| conn.last_insert_id());
                (i, tag, result, conn)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    holder.query_drop("ROLLBACK").await.unwrap();
    let (_, first_result) = first.await.unwrap();
    first_result.expect("the blocked row goes in once the holder rolls back");

    let mut check = db.root_conn().await;
    for task in tasks {
        let (i, tag, result, _conn) = task.await.unwrap();
        if i == 7 {
            match result {
                Err(Error::Server(e)) => {
                    assert_eq!(e.code, bad.code, "{e:?}");
                    assert_eq!(e.message, bad.message);
                }
                other => panic!("the bad row got {other:?}"),
            }
            continue;
        }
        let id = result
            .unwrap_or_else(|e| panic!("client {i}: {e}"))
            .unwrap();
        let stored: Option<String> = check
            .exec_first("SELECT tag FROM app.t WHERE id = ?", (id,))
            .await
            .unwrap();
        assert_eq!(stored.as_deref(), Some(tag.as_str()), "client {i} id {id}");
    }
    let after = com_counters(&db).await;
    let delta = counter_delta(&before, &after);
    let count: u64 = check
        .query_first("SELECT COUNT(*) FROM app.t WHERE tag LIKE 'row-%'")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(count, CLIENTS as u64 - 1, "every other row once");

    sluice.assert_no_panic();
    let (_, metrics) = sluice_e2e::http::get(sluice.metrics_port(), "/metrics").await;
    let isolated = |reason: &str| -> u64 {
        let series = format!("sluice_write_isolated_rows_total{{reason=\"{reason}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
    };
    Cost {
        inserts: delta.get("Com_insert").copied().unwrap_or(0),
        rollbacks: delta.get("Com_rollback").copied().unwrap_or(0),
        isolated_duplicate_key: isolated("duplicate_key"),
        isolated_batch_failed: isolated("batch_failed"),
    }
}

fn scenario(setup: &str, clients: Vec<Client>, contents: &[&str]) -> Scenario {
    Scenario {
        databases: vec!["app".into()],
        setup: setup.into(),
        clients,
        contents: contents.iter().map(|s| s.to_string()).collect(),
        ids: Some("SELECT id, tag FROM app.t".into()),
        warmup: vec![
            Client::root("app").sql("INSERT INTO t (tag, n) VALUES ('warmup', 0)"),
            Client::root("app").sql("INSERT IGNORE INTO t (tag, n) VALUES ('warmup', 0)"),
        ],
    }
}

const TABLE: &str = "CREATE DATABASE app; \
    CREATE TABLE app.parent (id INT PRIMARY KEY) ENGINE=InnoDB; \
    INSERT INTO app.parent VALUES (1); \
    CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
      tag VARCHAR(20) NOT NULL UNIQUE, n INT CHECK (n >= 0), parent_id INT, \
      short VARCHAR(4), FOREIGN KEY (parent_id) REFERENCES app.parent (id)) \
      ENGINE=InnoDB AUTO_INCREMENT=1000; \
    INSERT INTO app.t (id, tag, n) VALUES (1, 'existing', 0)";

/// 64 clients of plain and `INSERT IGNORE` rows, text and prepared, some
/// of which meet a taken key (an existing row's, or their own earlier
/// row's), a missing parent or a failed CHECK; in strict and non-strict
/// mode,
/// where `IGNORE` turns an over-long value into a truncation. Every
/// client sees what it would alone: OK packets, errors, warnings,
/// `ROW_COUNT()`, `LAST_INSERT_ID()`; the table ends the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_and_failing_rows_give_every_client_its_own_answer() {
    let clients = (0..64)
        .map(|i| {
            let verb = if i % 2 == 0 {
                "INSERT"
            } else {
                "INSERT IGNORE"
            };
            let mut client = Client::root("app");
            if i % 4 == 3 {
                client = client.sql("SET SESSION sql_mode = ''");
            }
            for k in 0..4 {
                // Each round holds a few bad rows of each kind.
                let (tag, n, parent, short) = match (i + k) % 16 {
                    0 => ("'existing'".to_string(), 0, "NULL", "'ok'"),
                    // The client's own row of an earlier round, if any.
                    1 if k > 0 => (format!("'r{i}-0'"), 0, "1", "'ok'"),
                    2 => (format!("'p{i}-{k}'"), 0, "9", "'ok'"),
                    3 => (format!("'c{i}-{k}'"), -1, "NULL", "'ok'"),
                    4 => (format!("'l{i}-{k}'"), 0, "NULL", "'too long'"),
                    _ => (format!("'r{i}-{k}'"), 0, "1", "'ok'"),
                };
                let step = if i % 8 >= 6 {
                    // Prepared, with the same values bound.
                    let unquote = |s: &str| Value::from(s.trim_matches('\''));
                    let parent = parent.parse::<i32>().map_or(Value::NULL, Value::from);
                    Step::prepared(
                        format!("{verb} INTO t (tag, n, parent_id, short) VALUES (?, ?, ?, ?)"),
                        vec![unquote(&tag), Value::from(n), parent, unquote(short)],
                    )
                } else {
                    Step::text(format!(
                        "{verb} INTO t (tag, n, parent_id, short) \
                         VALUES ({tag}, {n}, {parent}, {short})"
                    ))
                };
                client = client
                    .step(step)
                    .sql("SELECT ROW_COUNT()")
                    .step(Step::text("SELECT LAST_INSERT_ID()").ids(&[0]))
                    .sql("SHOW WARNINGS");
            }
            client
        })
        .collect();
    let db = MariaDb::start().await;
    let sluice = batching_sluice(&db).await;
    differential::differential(
        &db,
        &sluice,
        &scenario(
            TABLE,
            clients,
            &["SELECT tag, n, parent_id, short FROM app.t ORDER BY tag"],
        ),
    )
    .await
    .assert_batches_committed(1);
    sluice.assert_no_panic();
}

/// A key whose batches mostly skip rows (here a quarter of every round's
/// rows repeat a taken key) sends the report of its conditions in the
/// settling `IF`'s place, with the INSERT, once its recent batches show
/// it: the server then runs fewer settling `IF`s than reports. Every
/// client still sees what it would alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_whose_batches_mostly_skip_rows_reports_with_the_insert() {
    let clients = (0..32)
        .map(|i| {
            let mut client = Client::root("app");
            for round in 0..16 {
                let tag = if (i + round) % 4 == 0 {
                    "'existing'".to_string()
                } else {
                    format!("'r{i}-{round}'")
                };
                client = client
                    .step(Step::text(format!(
                        "INSERT INTO t (tag, n) VALUES ({tag}, {round})"
                    )))
                    .step(Step::text("SELECT ROW_COUNT(), LAST_INSERT_ID()").ids(&[1]));
            }
            client
        })
        .collect();
    let db = MariaDb::start().await;
    db.sql("SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 1")
        .await;
    let sluice = batching_sluice(&db).await;
    differential::differential(
        &db,
        &sluice,
        &scenario(TABLE, clients, &["SELECT tag, n FROM app.t ORDER BY tag"]),
    )
    .await
    .assert_batches_committed(4);
    let (reports, settling_ifs): (u64, u64) = db
        .root_conn()
        .await
        .query_first(
            "SELECT CAST(SUM(argument LIKE 'BEGIN NOT ATOMIC%') AS UNSIGNED), \
                    CAST(SUM(argument LIKE 'IF @@warning_count%') AS UNSIGNED) \
             FROM mysql.general_log WHERE command_type = 'Query'",
        )
        .await
        .unwrap()
        .unwrap();
    eprintln!("{reports} reports, {settling_ifs} settling IFs");
    assert!(
        reports > settling_ifs,
        "{reports} reports, {settling_ifs} settling IFs: each report came after an IF"
    );
    sluice.assert_no_panic();
}

/// Members of one batch that insert the same new key: one row goes in,
/// and every other member gets what a serial order gives it, 1062 for a
/// plain INSERT, an OK with 0 rows and the duplicate's warning for
/// `INSERT IGNORE`. The key is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_inserting_the_same_new_key_give_one_row() {
    let db = MariaDb::start().await;
    db.sql(
        "CREATE DATABASE app; \
         CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
           tag VARCHAR(40) NOT NULL UNIQUE) ENGINE=InnoDB",
    )
    .await;
    let sluice = batching_sluice(&db).await;
    for verb in ["INSERT", "INSERT IGNORE"] {
        let mut outcomes = Vec::new();
        let sent = differential::warm_then_all_at_once(
            &sluice,
            16,
            |i| format!("{verb} INTO t (tag) VALUES ('warm-{verb}-{i}')"),
            &format!("{verb} INTO t (tag) VALUES ('same-{verb}')"),
        )
        .await;
        for (result, mut conn) in sent {
            let result = result.map(|()| (conn.affected_rows(), conn.get_warnings()));
            let warnings: Vec<(String, u16, String)> =
                conn.query("SHOW WARNINGS").await.unwrap_or_default();
            outcomes.push((result, warnings));
        }
        let (mut inserted, mut refused) = (0, 0);
        for outcome in outcomes {
            match outcome {
                (Ok((1, 0)), warnings) => {
                    assert!(warnings.is_empty(), "{warnings:?}");
                    inserted += 1;
                }
                (Ok((0, 1)), warnings) if verb == "INSERT IGNORE" => {
                    assert_eq!(warnings.len(), 1, "{warnings:?}");
                    assert_eq!(warnings[0].1, 1062, "{warnings:?}");
                    refused += 1;
                }
                (Err(Error::Server(e)), _) if verb == "INSERT" => {
                    assert_eq!(e.code, 1062, "{e:?}");
                    refused += 1;
                }
                other => panic!("{verb}: {other:?}"),
            }
        }
        assert_eq!((inserted, refused), (1, 15), "{verb}");
        let stored: u64 = db
            .root_conn()
            .await
            .query_first(format!(
                "SELECT COUNT(*) FROM app.t WHERE tag = 'same-{verb}'"
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored, 1, "{verb}");
    }
    sluice.assert_no_panic();
}

/// An error packet carries no status flags, but a failed single INSERT
/// cannot have opened or ended a transaction: the session's next INSERT is
/// batched (it used to be turned away as "in transaction", so that with
/// 5 % repeated keys one row in twenty was sent alone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_insert_failed_is_batched_again() {
    let db = MariaDb::start().await;
    db.sql(TAGS_WITH_ONE_TAKEN).await;
    let sluice = batching_sluice(&db).await;
    let mut conn = sluice.root_conn().await;
    conn.query_drop("USE app").await.unwrap();
    for round in 0..5 {
        conn.query_drop(format!("INSERT INTO t (tag) VALUES ('a{round}')"))
            .await
            .unwrap();
        let duplicate = conn
            .query_drop("INSERT INTO t (tag) VALUES ('existing')")
            .await;
        assert!(matches!(duplicate, Err(Error::Server(ref e)) if e.code == 1062));
    }
    let status: Vec<(String, String)> = conn.query("SHOW SLUICE STATUS").await.unwrap();
    let in_transaction = status
        .iter()
        .find(|(name, _)| name == "unbatched_in_transaction")
        .map(|(_, value)| value.as_str());
    assert_eq!(in_transaction, None, "{status:?}");
    sluice.assert_no_panic();
}
