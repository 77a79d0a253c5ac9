//! Isolation that costs the failing row, not the batch: a batch runs as
//! `INSERT IGNORE`, a row that meets a duplicate key is skipped, the batch
//! commits without it, and only its member runs its own statement alone
//! and gets MariaDB's own error.

use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::Error;
use sluice_e2e::differential::{com_counters, counter_delta, SMALL_DELAY};
use sluice_e2e::{MariaDb, Sluice};
use tokio::sync::Barrier;

const CLIENTS: usize = 32;
const DUPLICATE_OF: &str = "existing";

/// One duplicate among 32 rows that leave as one batch: the batch commits
/// the 31 others, the duplicate alone gets 1062. It costs a handful of
/// statements, where re-running every member alone would cost 33 INSERTs
/// and a rollback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_duplicate_in_a_batch_of_32_costs_a_handful_of_statements() {
    let db = MariaDb::start().await;
    db.sql(
        "CREATE DATABASE app; \
         CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
           tag VARCHAR(40) NOT NULL UNIQUE) ENGINE=InnoDB; \
         INSERT INTO app.t (tag) VALUES ('existing')",
    )
    .await;
    let mut builder = Sluice::builder(&db);
    for (k, v) in SMALL_DELAY {
        builder = builder.env(*k, *v);
    }
    let sluice = builder.start().await;
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
                    DUPLICATE_OF.to_string()
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
                    assert_eq!(e.code, 1062, "{e:?}");
                    assert_eq!(e.state, "23000");
                    assert_eq!(e.message, "Duplicate entry 'existing' for key 'tag'");
                }
                other => panic!("the duplicate got {other:?}"),
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

    let inserts = delta.get("Com_insert").copied().unwrap_or(0);
    let rollbacks = delta.get("Com_rollback").copied().unwrap_or(0);
    // The blocked row, the batch of 32 (or a few batches, should the
    // clients straggle), and the duplicate alone; the one rollback is the
    // holder's own.
    assert!(
        inserts <= 6,
        "{inserts} INSERT statements for 33 rows with one duplicate: {delta:?}"
    );
    assert_eq!(rollbacks, 1, "no batch was rolled back: {delta:?}");
    sluice.assert_no_panic();
}
