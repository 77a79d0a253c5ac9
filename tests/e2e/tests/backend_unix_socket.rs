//! A backend reached through its Unix socket (`[backend] address =
//! /path/to/mysqld.sock`): logins, relayed statements, batching and the
//! health probe all go over the socket, and the server sees local
//! connections, not TCP ones.

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use sluice_e2e::differential::SMALL_DELAY;
use sluice_e2e::{direct_mode, sluice_status, MariaDb, Sluice};
use tokio::sync::Barrier;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_batching_and_probe_work_over_a_unix_socket() {
    if direct_mode() {
        eprintln!("skipped in direct mode: needs the daemon");
        return;
    }
    let db = MariaDb::start().await;
    db.sql(
        "CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
         n INT NOT NULL) ENGINE=InnoDB",
    )
    .await;
    let socket = db.socket_path();
    let mut builder = Sluice::builder(&db).backend_address(socket.to_str().unwrap());
    for (key, value) in SMALL_DELAY {
        builder = builder.env(*key, *value);
    }
    let sluice = builder.start().await;

    // The session's server connection is a local one: no host port.
    let mut conn = sluice.root_conn().await;
    let host: String = conn
        .query_first("SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(host, "localhost", "the server sees a socket connection");
    let greeting_id = conn.id();
    let server_id: u64 = conn
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        u64::from(greeting_id),
        server_id,
        "the server's own greeting"
    );

    // Concurrent single-row INSERTs are batched over the socket, each
    // client told its own id.
    let clients = 16;
    let barrier = Arc::new(Barrier::new(clients));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let opts = sluice.root_opts().db_name(Some("app"));
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.unwrap();
            conn.query_drop("INSERT INTO t (n) VALUES (-1)")
                .await
                .unwrap();
            barrier.wait().await;
            let mut told = Vec::new();
            for i in 0..5 {
                conn.query_drop(format!("INSERT INTO t (n) VALUES ({})", c * 10 + i))
                    .await
                    .unwrap();
                told.push((conn.last_insert_id().unwrap(), c * 10 + i));
            }
            told
        }));
    }
    let mut check = db.root_conn().await;
    for task in tasks {
        for (id, n) in task.await.unwrap() {
            let stored: Option<i64> = check
                .exec_first("SELECT n FROM app.t WHERE id = ?", (id,))
                .await
                .unwrap();
            assert_eq!(stored, Some(n as i64), "id {id}");
        }
    }
    let status = sluice_status(&mut conn).await;
    let batched: u64 = status.get("rows_batched").map_or(0, |v| v.parse().unwrap());
    assert!(batched > 0, "nothing was batched: {status:?}");

    // The probe reaches the server over the socket too.
    let (code, body) = sluice_e2e::http::get(sluice.metrics_port(), "/health").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"backend_reachable\":true"), "{body}");
    sluice.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_socket_is_a_clear_login_error() {
    if direct_mode() {
        eprintln!("skipped in direct mode: needs the daemon");
        return;
    }
    let db = MariaDb::start().await;
    let missing = db.socket_path().with_file_name("no-such.sock");
    let sluice = Sluice::builder(&db)
        .backend_address(missing.to_str().unwrap())
        .start()
        .await;
    match mysql_async::Conn::new(sluice.root_opts()).await {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!(e.code, 1105, "{e:?}");
            assert!(e.message.contains("no-such.sock"), "{}", e.message);
        }
        other => panic!("expected an error packet, got {other:?}"),
    }
    sluice.assert_no_panic();
}
