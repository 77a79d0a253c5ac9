//! SIGTERM while rows wait in a batch queue: every queued row is executed
//! and its client answered before Sluice exits.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use sluice_e2e::{direct_mode, MariaDb, Sluice};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_queued_rows_and_answers_every_client() {
    if direct_mode() {
        eprintln!("skipped in direct mode: needs the daemon");
        return;
    }
    let db = MariaDb::start().await;
    db.sql(
        "CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
         tag VARCHAR(20) NOT NULL UNIQUE) ENGINE=InnoDB",
    )
    .await;
    // Rows wait 20 s for company unless a hint or the drain sends them.
    let mut sluice = Sluice::builder(&db)
        .env("SLUICE_WRITEBATCH__INITIAL_DELAY_MS", "20000")
        .env("SLUICE_WRITEBATCH__MIN_DELAY_MS", "20000")
        .env("SLUICE_WRITEBATCH__MAX_DELAY_MS", "20000")
        .env("SLUICE_PROXY__SHUTDOWN_TIMEOUT", "30s")
        .start()
        .await;
    let mut conns = Vec::new();
    for i in 0..8 {
        let mut c = mysql_async::Conn::new(sluice.root_opts().db_name(Some("app")))
            .await
            .expect("connect through Sluice");
        // Warm-up: the hint lets this row leave after 1 ms, and the session
        // learns its settings and the table's facts.
        c.query_drop(format!(
            "INSERT INTO t (tag) VALUES ('warm{i}') /* batch:1 */"
        ))
        .await
        .expect("warm-up insert");
        conns.push(c);
    }
    let mut waiting = Vec::new();
    for (i, mut c) in conns.into_iter().enumerate() {
        waiting.push(tokio::spawn(async move {
            let r = c
                .query_drop(format!("INSERT INTO t (tag) VALUES ('queued{i}')"))
                .await;
            (r, c.last_insert_id())
        }));
    }
    // Let the rows reach the queue, then stop Sluice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let queued_before_stop = db
        .root_conn()
        .await
        .query_first::<i64, _>("SELECT COUNT(*) FROM app.t WHERE tag LIKE 'queued%'")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        queued_before_stop, 0,
        "rows are still queued when SIGTERM arrives"
    );
    sluice.send_signal(libc::SIGTERM);
    let mut told = Vec::new();
    for w in waiting {
        let (r, id) = tokio::time::timeout(Duration::from_secs(10), w)
            .await
            .unwrap_or_else(|_| panic!("a queued row was not answered\n{}", sluice.log_tail(30)))
            .unwrap();
        r.unwrap_or_else(|e| panic!("queued row failed: {e}\n{}", sluice.log_tail(30)));
        told.push(id.expect("an insert id"));
    }
    let status = sluice
        .wait_exit(Duration::from_secs(15))
        .await
        .expect("Sluice exits after draining");
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        sluice.log_tail(30)
    );
    let mut direct = db.root_conn().await;
    for (i, id) in told.iter().enumerate() {
        let tag: Option<String> = direct
            .exec_first("SELECT tag FROM app.t WHERE id = ?", (id,))
            .await
            .unwrap();
        assert_eq!(
            tag.as_deref(),
            Some(format!("queued{i}").as_str()),
            "id {id}"
        );
    }
    let total: i64 = direct
        .query_first("SELECT COUNT(*) FROM app.t")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(total, 16, "every row once");
    sluice.assert_no_panic();
}
