//! Restarts that refuse no connection: the test holds the client port as
//! systemd does for `sluice.socket` and passes it to each Sluice process
//! (`LISTEN_FDS`). Clients connect in a loop and batch text INSERTs while
//! Sluice is stopped (SIGTERM, drain) and started again twice. No connect
//! may fail, every acknowledged row must be in the table, and every row in
//! the table must have been acknowledged (a queued row whose client was
//! not answered would be there without an acknowledgement).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use sluice_e2e::differential::SMALL_DELAY;
use sluice_e2e::{direct_mode, MariaDb, Sluice};

const CLIENTS: usize = 16;
/// Statements per connection before the client reconnects.
const INSERTS_PER_CONNECTION: u32 = 25;

#[derive(Default)]
struct Record {
    /// (client, seq) of every acknowledged INSERT, with the process that
    /// was serving (0, 1, 2).
    acked: Vec<(u32, u32, usize)>,
    /// Every failed connect, with its error.
    failed_connects: Vec<String>,
    /// INSERTs the server refused (none should be).
    server_errors: Vec<String>,
    /// INSERTs whose connection closed before an answer (drained idle
    /// sessions; their rows must not be in the table).
    unanswered: usize,
}

async fn client_loop(
    client: u32,
    port: u16,
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicUsize>,
    record: Arc<Mutex<Record>>,
) {
    let mut seq = 0u32;
    while !stop.load(Ordering::Relaxed) {
        // Only the login: no settings query, so that a connect fails only
        // if the connection is refused or cut before the login ends. (A
        // session that logs in as the drain begins is closed before its
        // first command, as every idle session is; its client sees that on
        // its next statement.)
        let opts = sluice_e2e::mariadb::client_opts(port, "root", None)
            .db_name(Some("app"))
            .prefer_socket(false)
            .max_allowed_packet(Some(16 << 20))
            .wait_timeout(Some(28800));
        let mut conn = match mysql_async::Conn::new(opts).await {
            Ok(conn) => conn,
            Err(e) => {
                record.lock().unwrap().failed_connects.push(e.to_string());
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        for _ in 0..INSERTS_PER_CONNECTION {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            seq += 1;
            let sql = format!("INSERT INTO t (client, seq) VALUES ({client}, {seq})");
            match conn.query_drop(sql).await {
                Ok(()) => {
                    let serving = phase.load(Ordering::Relaxed);
                    record.lock().unwrap().acked.push((client, seq, serving));
                }
                Err(mysql_async::Error::Server(e)) => {
                    record.lock().unwrap().server_errors.push(e.to_string());
                }
                Err(_) => {
                    record.lock().unwrap().unanswered += 1;
                    break;
                }
            }
        }
        let _ = conn.disconnect().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_on_a_passed_socket_refuse_no_connect_and_lose_no_row() {
    if direct_mode() {
        eprintln!("skipped in direct mode: needs the daemon");
        return;
    }
    let db = MariaDb::start().await;
    db.sql(
        "CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
         client INT NOT NULL, seq INT NOT NULL, UNIQUE (client, seq)) ENGINE=InnoDB",
    )
    .await;
    // The port systemd would hold: it outlives every Sluice process.
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the held port");
    let port = held.local_addr().unwrap().port();
    let start = || async {
        let mut builder = Sluice::builder(&db)
            .activated_by(&held)
            .env("SLUICE_PROXY__SHUTDOWN_TIMEOUT", "20s");
        for (key, value) in SMALL_DELAY {
            builder = builder.env(*key, *value);
        }
        builder.start().await
    };
    let inserts_before = com_insert(&db).await;

    let stop = Arc::new(AtomicBool::new(false));
    let phase = Arc::new(AtomicUsize::new(0));
    let record = Arc::new(Mutex::new(Record::default()));
    let mut sluice = start().await;
    let clients: Vec<_> = (0..CLIENTS as u32)
        .map(|client| {
            tokio::spawn(client_loop(
                client,
                port,
                stop.clone(),
                phase.clone(),
                record.clone(),
            ))
        })
        .collect();
    for next_phase in 1..=2 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        sluice.send_signal(libc::SIGTERM);
        let status = sluice
            .wait_exit(Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("Sluice did not drain\n{}", sluice.log_tail(40)));
        assert!(status.success(), "{status}\n{}", sluice.log_tail(40));
        assert!(
            sluice
                .log_contents()
                .contains("accepting clients on the socket passed by systemd"),
            "{}",
            sluice.log_tail(40)
        );
        sluice.assert_no_panic();
        phase.store(next_phase, Ordering::Relaxed);
        sluice = start().await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        tokio::time::timeout(Duration::from_secs(30), client)
            .await
            .expect("a client is stuck")
            .unwrap();
    }
    sluice.assert_no_panic();

    let record = std::mem::take(&mut *record.lock().unwrap());
    assert!(
        record.failed_connects.is_empty(),
        "{} connects failed during restarts, e.g. {:?}",
        record.failed_connects.len(),
        record.failed_connects.first()
    );
    assert!(
        record.server_errors.is_empty(),
        "{:?}",
        record.server_errors
    );
    for serving in 0..=2 {
        let rows = record.acked.iter().filter(|a| a.2 == serving).count();
        assert!(
            rows > 100,
            "process {serving} acknowledged only {rows} rows"
        );
    }
    let acked: BTreeSet<(u32, u32)> = record.acked.iter().map(|&(c, s, _)| (c, s)).collect();
    let stored: BTreeSet<(u32, u32)> = db
        .root_conn()
        .await
        .query::<(u32, u32), _>("SELECT client, seq FROM app.t")
        .await
        .unwrap()
        .into_iter()
        .collect();
    let lost: Vec<_> = acked.difference(&stored).take(5).collect();
    assert!(lost.is_empty(), "acknowledged rows missing: {lost:?}");
    let unacknowledged: Vec<_> = stored.difference(&acked).take(5).collect();
    assert!(
        unacknowledged.is_empty(),
        "rows written without an answer to their client: {unacknowledged:?}"
    );
    // The rows were batched: fewer INSERT statements reached the server
    // than rows were written.
    let statements = com_insert(&db).await - inserts_before;
    assert!(
        statements < stored.len() as u64,
        "{statements} INSERT statements for {} rows: nothing was batched",
        stored.len()
    );
    eprintln!(
        "{} rows acknowledged in {statements} INSERT statements; {} sent on a \
         closing connection (not written)",
        stored.len(),
        record.unanswered
    );
}

async fn com_insert(db: &MariaDb) -> u64 {
    let (_, value): (String, u64) = db
        .root_conn()
        .await
        .query_first("SHOW GLOBAL STATUS LIKE 'Com_insert'")
        .await
        .unwrap()
        .unwrap();
    value
}
