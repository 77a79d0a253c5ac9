//! Several backends (`[backend] cluster = primary`): new sessions go to
//! the first server that can take writes; when it stops qualifying the
//! sessions on it are closed with a clear error and new ones go to the
//! next; with none left a login fails within the connect timeout instead
//! of hanging; a server that qualifies again is a candidate once more.
//! Two real MariaDB servers; the monitor user reads `@@read_only`.

use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_e2e::differential::SMALL_DELAY;
use sluice_e2e::http::{backend_series, get, series_value};
use sluice_e2e::{direct_mode, wait_until, MariaDb, Sluice, SluiceBuilder};
use tokio::sync::Barrier;

const MONITOR_USER: &str = "sluice_monitor";
const MONITOR_PASSWORD: &str = "m0n-Pass_7x";

async fn prepared_server() -> MariaDb {
    let db = MariaDb::start().await;
    db.sql(&format!(
        "CREATE USER '{MONITOR_USER}'@'%' IDENTIFIED BY '{MONITOR_PASSWORD}'; \
         GRANT USAGE ON *.* TO '{MONITOR_USER}'@'%'; \
         CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
         n INT NOT NULL) ENGINE=InnoDB"
    ))
    .await;
    db
}

async fn port_of(conn: &mut Conn) -> u16 {
    conn.query_first("SELECT @@port")
        .await
        .expect("SELECT @@port")
        .expect("a row")
}

async fn writer_is(sluice: &Sluice, db: &MariaDb) -> bool {
    let (_, metrics) = get(sluice.metrics_port(), "/metrics").await;
    let series = backend_series("sluice_backend_writer", db.addr());
    series_value(&metrics, &series) == Some(1.0)
}

/// Sluice in `primary` mode in front of `first, second`, probing every
/// 100 ms with the monitor user.
fn primary_sluice(first: &MariaDb, second: &MariaDb, connect_timeout: &str) -> SluiceBuilder {
    Sluice::builder(first)
        .backend_address(format!("{}, {}", first.addr(), second.addr()))
        .env("SLUICE_BACKEND__CLUSTER", "primary")
        .env("SLUICE_BACKEND__CONNECT_TIMEOUT", connect_timeout)
        .env("SLUICE_METRICS__PROBE_INTERVAL", "100ms")
        .env("SLUICE_METRICS__MONITOR_USER", MONITOR_USER)
        .env("SLUICE_METRICS__MONITOR_PASSWORD", MONITOR_PASSWORD)
}

/// `clients` concurrent single-row INSERTs through Sluice; the ids they
/// were told.
async fn insert_concurrently(sluice: &Sluice, clients: usize, base: i64) -> Vec<u64> {
    let barrier = Arc::new(Barrier::new(clients));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let opts = sluice.root_opts().db_name(Some("app"));
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(opts).await.expect("connect through Sluice");
            barrier.wait().await;
            let n = base + i64::try_from(c).unwrap();
            conn.exec_drop("INSERT INTO t (n) VALUES (?)", (n,))
                .await
                .expect("insert");
            let id = conn.last_insert_id().expect("an id");
            let _ = conn.disconnect().await;
            id
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    ids.sort_unstable();
    ids
}

async fn ids_and_values(db: &MariaDb) -> Vec<(u64, i64)> {
    let mut conn = db.root_conn().await;
    let rows = conn
        .query("SELECT id, n FROM app.t ORDER BY id")
        .await
        .unwrap();
    let _ = conn.disconnect().await;
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_sessions_follow_the_writable_server_and_old_ones_are_closed() {
    if direct_mode() {
        eprintln!("skipped in direct mode: needs the daemon");
        return;
    }
    let first = prepared_server().await;
    let second = prepared_server().await;
    let mut builder =
        primary_sluice(&first, &second, "1s").env("SLUICE_METRICS__UNHEALTHY_AFTER", "0s");
    for (key, value) in SMALL_DELAY {
        builder = builder.env(*key, *value);
    }
    let sluice = builder.start().await;

    // (a) Both writable: the first listed takes the sessions, and the
    // rows batched through Sluice land there with the ids each was told.
    let mut early = sluice.root_conn().await;
    assert_eq!(port_of(&mut early).await, first.port());
    let told = insert_concurrently(&sluice, 16, 0).await;
    let stored: Vec<u64> = ids_and_values(&first).await.iter().map(|r| r.0).collect();
    assert_eq!(told, stored, "every id told is a row of the first server");
    assert!(ids_and_values(&second).await.is_empty());

    // (b) The first turns read-only: the writer moves to the second
    // within a few probes, the session on the first is closed with a
    // clear error, and new sessions (and their batches) go to the second.
    first.sql("SET GLOBAL read_only = 1").await;
    let (sluice_ref, second_ref) = (&sluice, &second);
    assert!(
        wait_until(Duration::from_secs(10), || async move {
            writer_is(sluice_ref, second_ref).await
        })
        .await,
        "the writer did not move to the second server; log:\n{}",
        sluice.log_tail(30)
    );
    let closed = early.query_drop("SELECT 1").await;
    let error = closed.expect_err("the session on the read-only server was closed");
    let text = error.to_string();
    assert!(
        text.contains("1927") && text.contains("can no longer take writes"),
        "{text}"
    );
    let mut moved = sluice.root_conn().await;
    assert_eq!(port_of(&mut moved).await, second.port());
    let told = insert_concurrently(&sluice, 16, 100).await;
    let on_second = ids_and_values(&second).await;
    assert_eq!(
        told,
        on_second.iter().map(|r| r.0).collect::<Vec<_>>(),
        "every id told is a row of the second server"
    );
    assert_eq!(
        ids_and_values(&first).await.len(),
        16,
        "nothing more went to the first"
    );
    let (_, metrics) = get(sluice.metrics_port(), "/metrics").await;
    assert_eq!(
        series_value(&metrics, "sluice_backend_failovers_total"),
        Some(1.0)
    );
    let candidate = backend_series("sluice_backend_candidate", first.addr());
    assert_eq!(series_value(&metrics, &candidate), Some(0.0), "{metrics}");

    // (c) The first is writable again but, without fail_back, only a
    // candidate: sessions stay with the second.
    first.sql("SET GLOBAL read_only = 0").await;
    let (sluice_ref, first_ref) = (&sluice, &first);
    assert!(
        wait_until(Duration::from_secs(10), || async move {
            let (_, metrics) = get(sluice_ref.metrics_port(), "/metrics").await;
            let series = backend_series("sluice_backend_candidate", first_ref.addr());
            series_value(&metrics, &series) == Some(1.0)
        })
        .await
    );
    let mut still = sluice.root_conn().await;
    assert_eq!(port_of(&mut still).await, second.port(), "no fail-back");

    // (d) The second dies: its sessions get an error, not a hang, and new
    // sessions go back to the first.
    let _ = std::process::Command::new("kill")
        .arg("-9")
        .arg(second.pid().to_string())
        .status();
    let lost = tokio::time::timeout(Duration::from_secs(10), moved.query_drop("SELECT 1")).await;
    assert!(
        matches!(lost, Ok(Err(_))),
        "a session on the killed server gets an error at once"
    );
    assert!(
        wait_until(Duration::from_secs(10), || async move {
            writer_is(sluice_ref, first_ref).await
        })
        .await,
        "the writer did not move back to the first server"
    );
    let mut back = sluice.root_conn().await;
    assert_eq!(port_of(&mut back).await, first.port());
    let (_, metrics) = get(sluice.metrics_port(), "/metrics").await;
    assert_eq!(
        series_value(&metrics, "sluice_backend_failovers_total"),
        Some(2.0)
    );

    // (e) No server can take writes: /health says why, and a login fails
    // with a clear error within the connect timeout (1 s) instead of
    // hanging.
    first.sql("SET GLOBAL read_only = 1").await;
    let port = sluice.metrics_port();
    assert!(
        wait_until(Duration::from_secs(10), || async move {
            let (code, body) = get(port, "/health").await;
            code == 503 && body.contains("no backend can take writes")
        })
        .await,
        "{}",
        get(port, "/health").await.1
    );
    let started = std::time::Instant::now();
    let refused = Conn::new(sluice.root_opts()).await;
    let waited = started.elapsed();
    let text = refused.expect_err("no server to log in to").to_string();
    assert!(
        text.contains("no database server can take new sessions"),
        "{text}"
    );
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    let (_, body) = get(port, "/health").await;
    assert!(body.contains("\"backends\":[{"), "{body}");
    assert!(body.contains("\"problem\":\"read-only\""), "{body}");
    sluice.assert_no_panic();
}

/// A command running when its server stops qualifying may finish within
/// the connect timeout, and the client reads the closing error at its
/// next command; one that runs longer has its connection closed, so the
/// client is not held until TCP gives up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_command_finishes_or_is_cut_off_when_its_server_is_given_up() {
    if direct_mode() {
        eprintln!("skipped in direct mode: needs the daemon");
        return;
    }
    let first = prepared_server().await;
    let second = prepared_server().await;
    let sluice = primary_sluice(&first, &second, "2s").start().await;
    let mut short = sluice.root_conn().await;
    let mut long = sluice.root_conn().await;
    assert_eq!(port_of(&mut short).await, first.port());
    assert_eq!(port_of(&mut long).await, first.port());

    // Both start a command, then the server turns read-only.
    let short_sleep = tokio::spawn(async move {
        let result: Result<Option<i64>, _> = short.query_first("SELECT SLEEP(1)").await;
        (result.map_err(|e| e.to_string()), short)
    });
    let long_sleep = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let result: Result<Option<i64>, _> = long.query_first("SELECT SLEEP(8)").await;
        (result.map_err(|e| e.to_string()), started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    first.sql("SET GLOBAL read_only = 1").await;

    // Within the grace: the answer arrives, then the session is closed.
    let (answer, mut short) = short_sleep.await.unwrap();
    assert_eq!(answer, Ok(Some(0)), "the running command finished");
    let next = short
        .query_drop("SELECT 1")
        .await
        .expect_err("closed after it");
    assert!(next.to_string().contains("1927"), "{next}");

    // Beyond it: the connection is closed about two seconds after the
    // server was given up, not after the eight-second command.
    let (answer, waited) = long_sleep.await.unwrap();
    assert!(answer.is_err(), "cut off: {answer:?}");
    assert!(waited < Duration::from_secs(6), "waited {waited:?}");
    sluice.assert_no_panic();
}
