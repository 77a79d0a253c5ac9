//! `/health` with the `[metrics]` probe settings: a monitor user that logs
//! in and runs `SELECT 1`, a wrong monitor password, and a short
//! `unhealthy_after` / `probe_interval` through a backend outage.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use sluice_e2e::http::{get, wait_for_health};
use sluice_e2e::{direct_mode, wait_until, MariaDb, Sluice, SluiceBuilder};

const MONITOR_USER: &str = "sluice_monitor";
const MONITOR_PASSWORD: &str = "m0n-Pass_7x";

/// Rows of the server's general log for the monitor user's connections.
async fn monitor_log_rows(db: &MariaDb, command_type: &str, argument: Option<&str>) -> u64 {
    let mut conn = db.root_conn().await;
    let n: Option<u64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM mysql.general_log \
             WHERE user_host LIKE CONCAT(?, '[%') AND command_type = ? \
             AND (? IS NULL OR argument = ?)",
            (MONITOR_USER, command_type, argument, argument),
        )
        .await
        .expect("read the general log");
    let _ = conn.disconnect().await;
    n.unwrap_or(0)
}

fn probe_env(builder: SluiceBuilder, password: &str) -> SluiceBuilder {
    builder
        .env("SLUICE_METRICS__PROBE_INTERVAL", "200ms")
        .env("SLUICE_METRICS__UNHEALTHY_AFTER", "1s")
        .env("SLUICE_METRICS__MONITOR_USER", MONITOR_USER)
        .env("SLUICE_METRICS__MONITOR_PASSWORD", password)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_user_runs_select_1_and_a_wrong_password_turns_health_503() {
    if direct_mode() {
        eprintln!("skipped in direct mode: needs the daemon");
        return;
    }
    // The general log, as a table, shows what each account ran.
    let db = MariaDb::builder()
        .arg("--general-log=1")
        .arg("--log-output=TABLE")
        .start()
        .await;
    db.sql(&format!(
        "CREATE USER '{MONITOR_USER}'@'%' IDENTIFIED BY '{MONITOR_PASSWORD}'; \
         GRANT USAGE ON *.* TO '{MONITOR_USER}'@'%'"
    ))
    .await;
    let good = probe_env(Sluice::builder(&db), MONITOR_PASSWORD)
        .start()
        .await;
    let bad = probe_env(Sluice::builder(&db), "not-the-password")
        .start()
        .await;

    // (a) The right password: healthy, and the server ran SELECT 1 for
    // the monitor user again and again, each connection ended by COM_QUIT.
    let (body, _) = wait_for_health(good.metrics_port(), 200, Duration::from_secs(10)).await;
    assert!(body.contains("\"backend_reachable\":true"), "{body}");
    let db_ref = &db;
    let ran = wait_until(Duration::from_secs(10), || async move {
        monitor_log_rows(db_ref, "Query", Some("SELECT 1")).await >= 3
            && monitor_log_rows(db_ref, "Quit", None).await >= 3
    })
    .await;
    assert!(
        ran,
        "the monitor user's SELECT 1 / Quit did not show up in the general log \
         (queries: {}, quits: {}); sluice log:\n{}",
        monitor_log_rows(&db, "Query", Some("SELECT 1")).await,
        monitor_log_rows(&db, "Quit", None).await,
        good.log_tail(20)
    );
    let (_, metrics) = get(good.metrics_port(), "/metrics").await;
    let up = |value: u8| format!("\nsluice_backend_up{{backend=\"{}\"}} {value}\n", db.addr());
    assert!(metrics.contains(&up(1)), "{metrics}");

    // (b) The wrong password: 503 within unhealthy_after (1 s) plus a few
    // probe intervals, with the monitor login's refusal as the reason.
    let (body, _) = wait_for_health(bad.metrics_port(), 503, Duration::from_secs(8)).await;
    // The seconds count depends on when the poll lands.
    assert!(
        body.contains("\"reason\":\"backend unreachable for "),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            "s: monitor login as '{MONITOR_USER}' refused: error 1045: \
             Access denied for user '{MONITOR_USER}'"
        )),
        "{body}"
    );
    assert!(body.contains("\"backend_reachable\":false"), "{body}");
    let (_, metrics) = get(bad.metrics_port(), "/metrics").await;
    assert!(metrics.contains(&up(0)), "{metrics}");
    // Logged once, on the change, not at every probe; never the password.
    let log = bad.log_contents();
    assert_eq!(
        log.matches("backend down").count(),
        1,
        "one line per state change:\n{log}"
    );
    assert!(log.contains("1045"), "{log}");
    for sluice in [&good, &bad] {
        let log = sluice.log_contents();
        assert!(!log.contains(MONITOR_PASSWORD), "password logged:\n{log}");
        assert!(!log.contains("not-the-password"), "password logged:\n{log}");
    }
    // Refused logins are not handshake errors: the host is not blocked,
    // and clients through Sluice still work.
    assert_eq!(get(good.metrics_port(), "/health").await.0, 200);
    let mut conn = bad.root_conn().await;
    let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    drop(conn);
    good.assert_no_panic();
    bad.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_unhealthy_after_reports_an_outage_quickly() {
    if direct_mode() {
        eprintln!("skipped in direct mode: needs the daemon");
        return;
    }
    let db = MariaDb::start().await;
    let sluice = Sluice::builder(&db)
        .env("SLUICE_METRICS__PROBE_INTERVAL", "200ms")
        .env("SLUICE_METRICS__UNHEALTHY_AFTER", "1s")
        .start()
        .await;
    let port = sluice.metrics_port();
    wait_for_health(port, 200, Duration::from_secs(10)).await;
    drop(db);
    // The default threshold (10 s) and interval (5 s) would take 10-15 s.
    let (body, took) = wait_for_health(port, 503, Duration::from_secs(5)).await;
    assert!(
        body.contains("\"reason\":\"backend unreachable for "),
        "after {took:?}: {body}"
    );
    assert!(
        body.contains("s: cannot connect to 127.0.0.1:"),
        "after {took:?}: {body}"
    );
    sluice.assert_no_panic();
}
