//! A batch whose server connection is lost after it was sent (the
//! commit travels in the same write as the INSERT): every member, the
//! leader included, is told that the outcome is unknown, the metrics
//! count every row, the batch is all or nothing, and Sluice goes on
//! serving.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use sluice_e2e::{direct_mode, sluice_status, MariaDb, Sluice};

const MEMBERS: usize = 8;
/// MariaDB's ER_ERROR_DURING_COMMIT, which Sluice uses for "unknown".
const OUTCOME_UNKNOWN: u16 = 1180;

/// Connection ids of server threads running a statement that starts with
/// `prefix`.
async fn running(direct: &mut mysql_async::Conn, prefix: &str) -> Vec<u64> {
    direct
        .exec(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE CONCAT(?, '%')",
            (prefix,),
        )
        .await
        .expect("processlist")
}

/// Waits up to 10 s for a server thread running a statement that starts
/// with `prefix`.
async fn wait_running(direct: &mut mysql_async::Conn, prefix: &str) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = running(direct, prefix).await;
        if !found.is_empty() || Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits up to 10 s for server thread `id` to reach the batch's commit.
async fn wait_committing(direct: &mut mysql_async::Conn, id: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let info: Option<Option<String>> = direct
            .exec_first(
                "SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = ?",
                (id,),
            )
            .await
            .expect("processlist");
        // The commit runs inside the IF statement sent with the INSERT;
        // the process list shows the statement or its COMMIT.
        if info
            .flatten()
            .is_some_and(|i| i.starts_with("IF") || i.starts_with("COMMIT"))
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Waits up to 10 s for Sluice's queue to hold `rows` rows.
async fn wait_queued(admin: &mut mysql_async::Conn, rows: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if sluice_status(admin).await["queue_depth"] == rows.to_string() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// When the batch's connection is killed.
#[derive(Clone, Copy, PartialEq)]
enum Stage {
    /// While its INSERT waits for a row lock.
    Insert,
    /// While its commit waits for the binary log's group commit.
    Commit,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_killed_during_the_insert_leaves_every_member_an_unknown_outcome() {
    lose_the_batch_connection(Stage::Insert).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_killed_during_the_commit_leaves_every_member_an_unknown_outcome() {
    lose_the_batch_connection(Stage::Commit).await;
}

async fn lose_the_batch_connection(stage: Stage) {
    if direct_mode() {
        eprintln!("skipped in direct mode: it kills a batch's connection");
        return;
    }
    // Binary-log group commit can be told to wait, which holds a COMMIT
    // long enough to kill its connection.
    let db = MariaDb::builder()
        .arg("--log-bin=binlog")
        .arg("--server-id=1")
        .start()
        .await;
    db.sql(
        "CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
         tag VARCHAR(20) NOT NULL UNIQUE) ENGINE=InnoDB",
    )
    .await;
    // Rows behind an executing statement wait for it up to max_delay_ms:
    // long enough here that they wait for the blocked lone row.
    let sluice = Sluice::builder(&db)
        .env("SLUICE_WRITEBATCH__MAX_DELAY_MS", "30000")
        .start()
        .await;
    let opts = sluice.root_opts().db_name(Some("app"));
    let mut admin = mysql_async::Conn::new(opts.clone()).await.unwrap();
    // Table facts are cached from here on.
    admin
        .query_drop("INSERT INTO t (tag) VALUES ('warm')")
        .await
        .unwrap();

    // Two open transactions hold the unique keys 'lone' and 'm0': a lone
    // row waits on the first, and the batch queued behind it on the second.
    let mut lone_blocker = db.root_conn().await;
    lone_blocker.query_drop("START TRANSACTION").await.unwrap();
    lone_blocker
        .query_drop("INSERT INTO app.t (tag) VALUES ('lone')")
        .await
        .unwrap();
    let mut batch_blocker = db.root_conn().await;
    batch_blocker.query_drop("START TRANSACTION").await.unwrap();
    batch_blocker
        .query_drop("INSERT INTO app.t (tag) VALUES ('m0')")
        .await
        .unwrap();
    let mut direct = db.root_conn().await;

    let mut lone_client = mysql_async::Conn::new(opts.clone()).await.unwrap();
    let lone = tokio::spawn(async move {
        lone_client
            .query_drop("INSERT INTO t (tag) VALUES ('lone')")
            .await
    });
    let lone_prefix = "INSERT INTO t (tag) VALUES ('lone')";
    assert!(
        !wait_running(&mut direct, lone_prefix).await.is_empty(),
        "the lone row never reached the server"
    );

    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let mut conn = mysql_async::Conn::new(opts.clone()).await.unwrap();
        // Reads the session's settings now, so the INSERT below only queues.
        conn.query_drop("DO 1").await.unwrap();
        members.push(tokio::spawn(async move {
            conn.query_drop(format!("INSERT INTO t (tag) VALUES ('m{i}')"))
                .await
        }));
    }
    assert!(
        wait_queued(&mut admin, MEMBERS).await,
        "the members' rows never queued: {:?}",
        sluice_status(&mut admin).await
    );

    // The lone row goes in; the members leave as one batch and wait on 'm0'.
    lone_blocker.query_drop("ROLLBACK").await.unwrap();
    lone.await.unwrap().expect("the lone row");
    // The batch is an INSERT IGNORE on MariaDB 10.7 and later.
    let batch = wait_running(&mut direct, "INSERT IGNORE INTO t (tag) VALUES ('m").await;
    assert!(!batch.is_empty(), "the batch never reached the server");
    let leader_thread = batch[0];

    if stage == Stage::Commit {
        // Every commit now waits for 1000 others (or 3 s); the batch's
        // INSERT goes in and its commit waits, and then its connection
        // dies.
        direct
            .query_drop(
                "SET GLOBAL binlog_commit_wait_count = 1000, binlog_commit_wait_usec = 3000000",
            )
            .await
            .unwrap();
        batch_blocker.query_drop("ROLLBACK").await.unwrap();
        assert!(
            wait_committing(&mut direct, leader_thread).await,
            "the batch's commit never started"
        );
    }
    direct
        .query_drop(format!("KILL {leader_thread}"))
        .await
        .unwrap();

    let mut unknown = 0;
    for member in members {
        match member.await.unwrap() {
            Err(mysql_async::Error::Server(e)) if e.code == OUTCOME_UNKNOWN => {
                assert!(e.message.contains("unknown"), "{}", e.message);
                unknown += 1;
            }
            other => panic!("a member of the lost batch got {other:?}"),
        }
    }
    assert_eq!(unknown, MEMBERS);
    let after = sluice_status(&mut admin).await;
    assert_eq!(after["outcome_unknown"], MEMBERS.to_string(), "{after:?}");
    direct
        .query_drop("SET GLOBAL binlog_commit_wait_count = 0")
        .await
        .unwrap();

    if stage == Stage::Insert {
        batch_blocker.query_drop("ROLLBACK").await.unwrap();
    }

    // Whether the server committed is its own affair, but the batch is
    // one transaction: all of its rows or none.
    let members_written: u64 = direct
        .query_first("SELECT COUNT(*) FROM app.t WHERE tag LIKE 'm%'")
        .await
        .unwrap()
        .unwrap();
    assert!(
        members_written == 0 || members_written == MEMBERS as u64,
        "{members_written} of the batch's {MEMBERS} rows written"
    );
    let others: Vec<String> = direct
        .query("SELECT tag FROM app.t WHERE tag NOT LIKE 'm%' ORDER BY tag")
        .await
        .unwrap();
    assert_eq!(others, ["lone", "warm"]);
    let mut again = mysql_async::Conn::new(opts).await.unwrap();
    again
        .query_drop("INSERT INTO t (tag) VALUES ('after')")
        .await
        .unwrap();
    sluice.assert_no_panic();
}
