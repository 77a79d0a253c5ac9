//! Operations under stress: `/health` through a backend outage and its
//! recovery, and SIGHUP reloads under load without a failed query.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use sluice_e2e::http::wait_for_health;
use sluice_e2e::{direct_mode, e2e_dir, unique_name, MariaDb, Sluice};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_a_backend_outage_and_recovery() {
    if direct_mode() {
        eprintln!("skipped in direct mode: needs the daemon");
        return;
    }
    let db = MariaDb::start().await;
    let backend_port = db.port();
    let sluice = Sluice::start(&db).await;
    let port = sluice.metrics_port();
    wait_for_health(port, 200, Duration::from_secs(10)).await;
    // Outage: the server goes away; after the unhealthy threshold (10 s)
    // plus a probe interval (5 s), /health says so.
    drop(db);
    let (body, _) = wait_for_health(port, 503, Duration::from_secs(30)).await;
    assert!(body.contains("unhealthy"), "{body}");
    // Recovery on the same port.
    let db = MariaDb::builder().port(backend_port).start().await;
    wait_for_health(port, 200, Duration::from_secs(20)).await;
    let mut conn = sluice.root_conn().await;
    let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    drop(db);
    sluice.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_under_load_fails_no_query() {
    if direct_mode() {
        eprintln!("skipped in direct mode: needs the daemon");
        return;
    }
    let db = MariaDb::start().await;
    db.sql("CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, n INT) ENGINE=InnoDB")
        .await;
    let config = e2e_dir().join(format!("{}.ini", unique_name("reload")));
    let write_config = |delay_ms: u32, enabled: bool| {
        std::fs::write(
            &config,
            format!(
                "[writebatch]\nenabled = {enabled}\nmax_delay_ms = {delay_ms}\n\n[log]\nlevel = info\n"
            ),
        )
        .unwrap();
    };
    write_config(5, true);
    let sluice = Sluice::builder(&db)
        .arg("--config")
        .arg(config.to_str().unwrap())
        .start()
        .await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..8 {
        let opts = sluice.root_opts().db_name(Some("app"));
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.unwrap();
            let mut done = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                conn.query_drop(format!("INSERT INTO t (n) VALUES ({c})"))
                    .await
                    .unwrap_or_else(|e| panic!("insert failed during reload: {e}"));
                let _: Option<i64> = conn
                    .query_first("SELECT COUNT(*) FROM t")
                    .await
                    .unwrap_or_else(|e| panic!("select failed during reload: {e}"));
                done += 1;
            }
            done
        }));
    }
    for (delay, enabled) in [(20, true), (1, false), (5, true), (0, true)] {
        tokio::time::sleep(Duration::from_millis(300)).await;
        write_config(delay, enabled);
        sluice.send_signal(libc::SIGHUP);
    }
    // An invalid file is refused and the old settings stay.
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(&config, "[writebatch]\nmax_delay_ms = soon\n").unwrap();
    sluice.send_signal(libc::SIGHUP);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for c in clients {
        total += c.await.expect("client task");
    }
    assert!(total > 0);
    let log = sluice.log_contents();
    assert_eq!(log.matches("configuration reloaded").count(), 4, "{log}");
    assert!(log.contains("reload refused"), "{log}");
    let rows: i64 = db
        .root_conn()
        .await
        .query_first("SELECT COUNT(*) FROM app.t")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        rows,
        i64::from(total),
        "every acknowledged insert is in the table once"
    );
    let _ = std::fs::remove_file(&config);
    sluice.assert_no_panic();
}
