//! `SHOW SLUICE STATUS` answers from Sluice itself with figures that move
//! with real traffic.

use mysql_async::prelude::Queryable;
use sluice_e2e::{direct_mode, sluice_status, MariaDb, Sluice};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_sluice_status_counts_batches() {
    if direct_mode() {
        eprintln!("skipped in direct mode: a Sluice statement");
        return;
    }
    let db = MariaDb::start().await;
    db.sql("CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, n INT) ENGINE=InnoDB")
        .await;
    let sluice = Sluice::builder(&db)
        .env("SLUICE_WRITEBATCH__INITIAL_DELAY_MS", "20")
        .env("SLUICE_WRITEBATCH__MIN_DELAY_MS", "20")
        .env("SLUICE_WRITEBATCH__MAX_DELAY_MS", "50")
        .start()
        .await;
    let mut admin = mysql_async::Conn::new(sluice.root_opts().db_name(Some("app")))
        .await
        .unwrap();
    let before = sluice_status(&mut admin).await;
    assert_eq!(before["batching_enabled"], "1");
    assert_eq!(before["batches"], "0");
    // Warm the table facts, then 16 clients insert at once, three times.
    admin
        .query_drop("INSERT INTO t (n) VALUES (0)")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for c in 0..16 {
        let opts = sluice.root_opts().db_name(Some("app"));
        tasks.push(tokio::spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.unwrap();
            for i in 0..3 {
                conn.query_drop(format!("INSERT INTO t (n) VALUES ({})", c * 10 + i))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let after = sluice_status(&mut admin).await;
    let batches: u64 = after["batches"].parse().unwrap();
    let rows: u64 = after["rows_batched"].parse().unwrap();
    assert!(batches >= 1, "{after:?}");
    assert!(rows >= 2 * batches, "batches hold several rows: {after:?}");
    assert_eq!(after["queue_depth"], "0");
    let avg: f64 = after["average_batch_size"].parse().unwrap();
    assert!(avg >= 2.0, "{after:?}");
    // The statement is Sluice's: the server never saw it.
    let mut direct = db.root_conn().await;
    let rows_in_table: i64 = direct
        .query_first("SELECT COUNT(*) FROM app.t")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rows_in_table, 49);
    sluice.assert_no_panic();
}
