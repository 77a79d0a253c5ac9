//! Regression tests for batching bugs the differential tests once found.
use mysql_async::prelude::Queryable;
use sluice_e2e::differential::{self, batching_sluice, Client, Scenario, Step};
use sluice_e2e::MariaDb;

fn scenario(setup: &str, clients: Vec<Client>, contents: &[&str]) -> Scenario {
    Scenario {
        databases: vec!["app".into()],
        setup: setup.into(),
        clients,
        contents: contents.iter().map(|s| s.to_string()).collect(),
        ids: Some("SELECT id, tag FROM app.t".into()),
        warmup: vec![Client::root("app").sql("INSERT INTO t (tag) VALUES ('warmup')")],
    }
}

/// Runs `clients` alone and then concurrently through a batching Sluice,
/// each on a fresh MariaDB, requires equal results, and requires that
/// some batch committed (so the scenario really shared batches).
async fn batched_like_alone(setup: &str, clients: Vec<Client>, contents: &[&str]) {
    let db = MariaDb::start().await;
    let sluice = batching_sluice(&db).await;
    differential::differential(&db, &sluice, &scenario(setup, clients, contents))
        .await
        .assert_batches_committed(1);
}

const T: &str = "CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
    tag VARCHAR(20) NOT NULL UNIQUE) ENGINE=InnoDB AUTO_INCREMENT=1000; \
    INSERT INTO app.t (id, tag) VALUES (1, 'existing')";

/// After a batched INSERT, a failed INSERT leaves LAST_INSERT_ID(),
/// ROW_COUNT() and SHOW WARNINGS wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_effects_after_a_failed_insert() {
    let db = MariaDb::start().await;
    let sluice = batching_sluice(&db).await;
    let clients = (0..16)
        .map(|i| {
            Client::root("app")
                .sql(format!("INSERT INTO t (tag) VALUES ('q{i}')"))
                .sql("INSERT INTO t (tag) VALUES ('existing')")
                .step(Step::text("SELECT LAST_INSERT_ID()").ids(&[0]))
                .sql(format!("INSERT INTO t (tag) VALUES ('r{i}')"))
                .sql(format!(
                    "INSERT INTO t (id, tag) VALUES ({}, 'existing')",
                    100 + i
                ))
                .sql("SELECT ROW_COUNT()")
                .sql("SHOW WARNINGS")
        })
        .collect();
    differential::differential(&db, &sluice, &scenario(T, clients, &[])).await;
}

/// A column DEFAULT expression must run in the member's own session, so
/// such tables are not batched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_expressions_run_in_the_members_session() {
    let db = MariaDb::start().await;
    let sluice = batching_sluice(&db).await;
    let clients = (0..16)
        .map(|i| {
            Client::root("app")
                .sql(format!("INSERT INTO t (tag) VALUES ('d{i}')"))
                .sql(format!(
                    "SELECT conn = CONNECTION_ID() FROM t WHERE tag = 'd{i}'"
                ))
        })
        .collect();
    let setup = "CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
        tag VARCHAR(20), conn BIGINT DEFAULT (CONNECTION_ID())) ENGINE=InnoDB";
    differential::differential(&db, &sluice, &scenario(setup, clients, &[])).await;
}

/// A stored function that changes time_zone must not leave a stale
/// session fingerprint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fingerprint_refreshed_after_a_function_changes_the_session() {
    let db = MariaDb::start().await;
    let sluice = batching_sluice(&db).await;
    let clients = (0..16)
        .map(|i| {
            Client::root("app")
                .sql(format!("INSERT INTO t (tag) VALUES ('a{i}')"))
                .sql(if i % 2 == 0 {
                    "SELECT app.east()"
                } else {
                    "SELECT 1"
                })
                .sql(format!(
                    "INSERT INTO t (tag, ts) VALUES ('b{i}', '2024-01-01 12:00:00')"
                ))
        })
        .collect();
    let setup = "CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
        tag VARCHAR(20), ts TIMESTAMP NULL) ENGINE=InnoDB; \
        CREATE FUNCTION app.east() RETURNS INT DETERMINISTIC BEGIN SET time_zone = '+05:00'; RETURN 1; END";
    differential::differential(
        &db,
        &sluice,
        &scenario(
            setup,
            clients,
            &[
                "SET time_zone = '+00:00'",
                "SELECT tag, ts FROM app.t ORDER BY tag",
            ],
        ),
    )
    .await;
}

/// A read-only session must not write through another session's batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_sessions_cannot_write_through_a_batch() {
    let db = MariaDb::start().await;
    let sluice = batching_sluice(&db).await;
    let clients = (0..16)
        .map(|i| {
            Client::root("app")
                .sql(if i % 2 == 0 {
                    "SET SESSION TRANSACTION READ ONLY"
                } else {
                    "DO 1"
                })
                .sql(format!("INSERT INTO t (tag) VALUES ('r{i}')"))
                .sql(format!("INSERT INTO t (tag) VALUES ('s{i}')"))
        })
        .collect();
    differential::differential(
        &db,
        &sluice,
        &scenario(T, clients, &["SELECT tag FROM app.t ORDER BY tag"]),
    )
    .await;
}

/// sql_log_bin must be part of the batch key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_log_bin_is_part_of_the_key() {
    let db = MariaDb::builder()
        .arg("--log-bin=binlog")
        .arg("--binlog-format=STATEMENT")
        .arg("--server-id=1")
        .start()
        .await;
    let sluice = batching_sluice(&db).await;
    let clients = (0..32)
        .map(|i| {
            let c = Client::root("app");
            if i % 2 == 0 {
                c.sql("SET SESSION sql_log_bin = 0")
                    .sql(format!("INSERT INTO t (tag) VALUES ('nolog{i}')"))
            } else {
                c.sql("DO 1")
                    .sql(format!("INSERT INTO t (tag) VALUES ('log{i}')"))
            }
        })
        .collect();
    let s = scenario(T, clients, &["SELECT tag FROM app.t ORDER BY tag"]);
    differential::run_alone(&db, &s).await;
    let alone = binlog_tags(&db).await;
    db.sql("RESET MASTER").await;
    differential::run_concurrent(&db, sluice.port(), &s).await;
    let batched = binlog_tags(&db).await;
    assert_eq!(
        alone, batched,
        "binary log: rows of sql_log_bin=0 sessions logged or logged rows missing"
    );
}

async fn binlog_tags(db: &MariaDb) -> Vec<String> {
    let mut out = Vec::new();
    let mut c = db.root_conn().await;
    let logs: Vec<mysql_async::Row> = c.query("SHOW BINARY LOGS").await.unwrap();
    for l in logs {
        let name: String = l.get(0).unwrap();
        let ev: Vec<mysql_async::Row> = c
            .query(format!("SHOW BINLOG EVENTS IN '{name}'"))
            .await
            .unwrap();
        for e in ev {
            let info: String = e.get(5).unwrap();
            out.extend(
                info.split('\'')
                    .filter(|p| p.starts_with("nolog") || p.starts_with("log"))
                    .map(String::from),
            );
        }
    }
    out.sort();
    out
}

/// In `sql_mode = ORACLE` a bare `BEGIN` opens a block instead of a
/// transaction, so the batch must open its transaction another way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oracle_sql_mode_sessions_batch_exactly() {
    let clients = (0..32)
        .map(|i| {
            Client::root("app")
                .sql("SET SESSION sql_mode = 'ORACLE'")
                .sql(format!("INSERT INTO t (tag) VALUES ('o{i}')"))
                .step(Step::text("SELECT LAST_INSERT_ID()").ids(&[0]))
                .sql(format!("INSERT INTO t (tag) VALUES ('p{i}')"))
                .sql("SELECT ROW_COUNT()")
                .sql("SHOW WARNINGS")
        })
        .collect();
    batched_like_alone(T, clients, &["SELECT tag FROM app.t ORDER BY tag"]).await;
}

/// `completion_type` changes what a plain `COMMIT` does: `CHAIN` opens a
/// new transaction and `RELEASE` closes the connection. A batch must end
/// its transaction the same way whatever the leader's session says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_type_does_not_change_how_a_batch_ends() {
    let clients = (0..32)
        .map(|i| {
            let mode = ["NO_CHAIN", "CHAIN", "RELEASE"][i % 3];
            Client::root("app")
                .sql(format!("SET SESSION completion_type = '{mode}'"))
                .sql(format!("INSERT INTO t (tag) VALUES ('c{i}')"))
                .sql(format!("INSERT INTO t (tag) VALUES ('d{i}')"))
                .sql("SELECT @@in_transaction")
                .sql(format!("INSERT INTO t (tag) VALUES ('e{i}')"))
        })
        .collect();
    batched_like_alone(T, clients, &["SELECT tag FROM app.t ORDER BY tag"]).await;
}

/// With `sql_notes = 0` the server neither counts nor lists notes, so a
/// batch led by such a session would hide from the others the notes
/// their rows raise (here: a DECIMAL value rounded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_notes_is_part_of_the_key() {
    let clients = (0..32)
        .map(|i| {
            Client::root("app")
                .sql(format!("SET SESSION sql_notes = {}", i % 2))
                .sql(format!("INSERT INTO t (tag, d) VALUES ('n{i}', 1.555)"))
                .sql("SHOW WARNINGS")
                .sql(format!("INSERT INTO t (tag, d) VALUES ('m{i}', 2.5)"))
        })
        .collect();
    let setup = "CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
        tag VARCHAR(20) NOT NULL UNIQUE, d DECIMAL(4,2)) ENGINE=InnoDB";
    batched_like_alone(setup, clients, &["SELECT tag, d FROM app.t ORDER BY tag"]).await;
}

const DECIMALS: &str =
    "CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
    tag VARCHAR(20) NOT NULL UNIQUE, d DECIMAL(4,2), r DOUBLE, at DATETIME(6)) ENGINE=InnoDB";

/// `note_verbosity = ''` (MariaDB 10.6.16 and later) hides notes like
/// `sql_notes = 0` does: it must keep a session out of the others' batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn note_verbosity_is_part_of_the_key() {
    let clients = (0..32)
        .map(|i| {
            let verbosity = if i % 2 == 0 { "''" } else { "DEFAULT" };
            Client::root("app")
                .sql(format!("SET SESSION note_verbosity = {verbosity}"))
                .sql(format!("INSERT INTO t (tag, d) VALUES ('n{i}', 1.555)"))
                .sql("SHOW WARNINGS")
                .sql(format!("INSERT INTO t (tag, d) VALUES ('m{i}', 2.5)"))
        })
        .collect();
    batched_like_alone(
        DECIMALS,
        clients,
        &["SELECT tag, d FROM app.t ORDER BY tag"],
    )
    .await;
}

/// `SET SESSION TRANSACTION READ ONLY` makes the session read-only, and a
/// `SET TRANSACTION READ ONLY` without scope the session's next statement:
/// either way the member's INSERT fails alone, so it must not succeed in
/// someone else's batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_characteristics_stay_with_their_session() {
    let clients = (0..48)
        .map(|i| {
            let client = Client::root("app").sql(format!("INSERT INTO t (tag) VALUES ('a{i}')"));
            match i % 3 {
                0 => client
                    .sql("SET SESSION TRANSACTION READ ONLY")
                    .sql(format!("INSERT INTO t (tag) VALUES ('b{i}')"))
                    .sql("SET SESSION TRANSACTION READ WRITE")
                    .sql(format!("INSERT INTO t (tag) VALUES ('c{i}')")),
                1 => client
                    .sql("SET TRANSACTION READ ONLY")
                    .sql(format!("INSERT INTO t (tag) VALUES ('b{i}')"))
                    .sql(format!("INSERT INTO t (tag) VALUES ('c{i}')")),
                _ => client
                    .sql("DO 1")
                    .sql(format!("INSERT INTO t (tag) VALUES ('b{i}')"))
                    .sql(format!("INSERT INTO t (tag) VALUES ('c{i}')")),
            }
        })
        .collect();
    batched_like_alone(T, clients, &["SELECT tag FROM app.t ORDER BY tag"]).await;
}

/// A clock pinned to about now looks unpinned to the session fingerprint,
/// and `rand_seed1`/`rand_seed2` read back as 0: a session that sets them
/// must not have its `NOW()` or `RAND()` evaluated in another session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_clock_and_random_seed_stay_with_their_session() {
    let clients = (0..48)
        .map(|i| {
            let client = Client::root("app");
            // Within the fingerprint's one-second tolerance for a pinned
            // clock, but far enough from now to tell the two apart.
            let (client, tag) = match i % 3 {
                0 => (
                    client.sql("SET timestamp = UNIX_TIMESTAMP(NOW(6)) - 0.9"),
                    format!("p{i}"),
                ),
                1 => (
                    client.sql("SET rand_seed1 = 7, rand_seed2 = 11"),
                    format!("s{i}"),
                ),
                _ => (client.sql("DO 1"), format!("u{i}")),
            };
            client
                .sql(format!(
                    "INSERT INTO t (tag, r, at) VALUES ('{tag}', RAND(), NOW(6))"
                ))
                // Pinned: the row's time is the session's clock, to the
                // microsecond but for the rounding of a DOUBLE.
                .sql(format!(
                    "SELECT ABS(TIMESTAMPDIFF(MICROSECOND, at, FROM_UNIXTIME(@@timestamp))) \
                     < 100000 FROM t WHERE tag = '{tag}' AND tag LIKE 'p%'"
                ))
        })
        .collect();
    // Unseeded RAND() differs from run to run: compare the seeded rows.
    let contents = ["SELECT tag, r FROM app.t WHERE tag LIKE 's%' ORDER BY tag"];
    batched_like_alone(DECIMALS, clients, &contents).await;
}

/// The word TEMPORARY in a string literal once marked the session as
/// holding a temporary table, and it was never batched again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_word_inside_a_string_does_not_taint_the_session() {
    let clients = (0..32)
        .map(|i| {
            Client::root("app")
                .sql("BEGIN")
                .sql(format!(
                    "INSERT INTO t (tag) VALUES ('tmp{i} a temporary note')"
                ))
                .sql("COMMIT")
                .sql(format!("INSERT INTO t (tag) VALUES ('lock tables {i}')"))
                .sql(format!("INSERT INTO t (tag) VALUES ('b{i}')"))
                .sql(format!("INSERT INTO t (tag) VALUES ('c{i}')"))
        })
        .collect();
    let wide = "CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
        tag VARCHAR(40) NOT NULL UNIQUE) ENGINE=InnoDB";
    batched_like_alone(wide, clients, &["SELECT tag FROM app.t ORDER BY tag"]).await;
}

/// Under NO_BACKSLASH_ESCAPES `'C:\'` ends at its second quote, so the
/// stored function call after it is code: the function changes a setting
/// of the fingerprint (untracked, so the server does not announce it), and
/// the session's next INSERT must not join a batch under the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routine_calls_are_found_without_backslash_escapes() {
    let clients = (0..32)
        .map(|i| {
            let call = if i % 2 == 0 {
                "SELECT 'C:\\', app.finer()"
            } else {
                "SELECT 'C:\\', 1"
            };
            Client::root("app")
                .sql("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
                .sql(format!("INSERT INTO t (tag, v) VALUES ('a{i}', 1/3)"))
                .sql(call)
                .sql(format!("INSERT INTO t (tag, v) VALUES ('b{i}', 1/3)"))
        })
        .collect();
    let setup = "CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
        tag VARCHAR(20) NOT NULL UNIQUE, v DECIMAL(40,20)) ENGINE=InnoDB; \
        CREATE FUNCTION app.finer() RETURNS INT NOT DETERMINISTIC \
        BEGIN SET div_precision_increment = 12; RETURN 1; END";
    batched_like_alone(setup, clients, &["SELECT tag, v FROM app.t ORDER BY tag"]).await;
}
