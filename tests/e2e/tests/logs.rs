//! Logs an operator can follow: JSON lines with stable top-level fields,
//! session lines carrying the connection id and client address, batch
//! lines carrying the batch id and (at debug) its members, no SQL literal
//! and no password above debug, and warnings of one kind rate-limited with
//! a count of those left out.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use serde_json::Value;
use sluice_e2e::differential::SMALL_DELAY;
use sluice_e2e::{direct_mode, ClosedPort, MariaDb, Sluice};

const LITERAL: &str = "LITERAL-9Z4";
const PASSWORD: &str = "PASSWORD-7Q2";

fn json_lines(log: &str) -> Vec<serde_json::Map<String, Value>> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match serde_json::from_str::<Value>(l) {
            Ok(Value::Object(object)) => object,
            _ => panic!("not a JSON object: {l}"),
        })
        .collect()
}

fn with_message<'a>(
    lines: &'a [serde_json::Map<String, Value>],
    message: &str,
) -> Vec<&'a serde_json::Map<String, Value>> {
    lines
        .iter()
        .filter(|l| l.get("message").and_then(Value::as_str) == Some(message))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_carry_session_and_batch_fields_and_no_literal_above_debug() {
    if direct_mode() {
        eprintln!("skipped in direct mode: needs the daemon");
        return;
    }
    let db = MariaDb::start().await;
    db.sql(&format!(
        "CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
         tag VARCHAR(40) NOT NULL UNIQUE) ENGINE=InnoDB; \
         CREATE USER 'app'@'%' IDENTIFIED BY '{PASSWORD}'; GRANT ALL ON app.* TO 'app'@'%'"
    ))
    .await;
    let mut builder = Sluice::builder(&db)
        .env("SLUICE_LOG__FORMAT", "json")
        .env("SLUICE_LOG__LEVEL", "debug");
    for (key, value) in SMALL_DELAY {
        builder = builder.env(*key, *value);
    }
    let mut sluice = builder.start().await;
    let app = |password: &str| sluice.opts_for("app", Some(password)).db_name(Some("app"));

    // Concurrent single-row INSERTs with the literal: batches form.
    let mut writers = Vec::new();
    for client in 0..16 {
        let opts = app(PASSWORD);
        writers.push(tokio::spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.expect("connect as app");
            for row in 0..20 {
                conn.query_drop(format!(
                    "INSERT INTO t (tag) VALUES ('{LITERAL}-{client}-{row}')"
                ))
                .await
                .expect("insert");
            }
            conn.disconnect().await.unwrap();
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    // Failures whose server messages repeat the literal, a prepared
    // statement with it as a parameter, and a wrong password.
    let mut conn = mysql_async::Conn::new(app(PASSWORD)).await.unwrap();
    let duplicate = format!("INSERT INTO t (tag) VALUES ('{LITERAL}-0-0')");
    assert!(conn.query_drop(&duplicate).await.is_err());
    assert!(conn
        .query_drop(format!("SELEC '{LITERAL}' FROM nowhere"))
        .await
        .is_err());
    conn.exec_drop(
        "INSERT INTO t (tag) VALUES (?)",
        (format!("{LITERAL}-prepared"),),
    )
    .await
    .unwrap();
    conn.disconnect().await.unwrap();
    assert!(mysql_async::Conn::new(app(&format!("{PASSWORD}-wrong")))
        .await
        .is_err());

    sluice.send_signal(libc::SIGTERM);
    sluice
        .wait_exit(Duration::from_secs(15))
        .await
        .expect("Sluice exits");
    let lines = json_lines(&sluice.log_contents());

    for line in &lines {
        for field in ["timestamp", "level", "target", "message"] {
            assert!(line.contains_key(field), "no {field} in {line:?}");
        }
        let text = Value::Object(line.clone()).to_string();
        if text.contains(LITERAL) || text.contains(PASSWORD) {
            let level = line["level"].as_str().unwrap();
            assert!(
                level == "DEBUG" || level == "TRACE",
                "a literal or password at {level}: {text}"
            );
        }
    }
    let logins = with_message(&lines, "logged in");
    assert!(logins.len() >= 17, "{} logins logged", logins.len());
    for line in logins {
        assert!(line["conn_id"].as_u64().is_some(), "{line:?}");
        assert!(
            line["client"]
                .as_str()
                .is_some_and(|c| c.starts_with("127.0.0.1:")),
            "{line:?}"
        );
        assert!(line["backend_conn_id"].as_u64().is_some(), "{line:?}");
    }
    let refused = with_message(&lines, "backend refused the login");
    assert_eq!(refused.len(), 1, "the wrong password");
    assert!(refused[0]["conn_id"].as_u64().is_some());
    let batches = with_message(&lines, "batch formed");
    assert!(!batches.is_empty(), "no batch formed");
    for line in &batches {
        assert!(line["batch_id"].as_u64().is_some(), "{line:?}");
        assert!(line["conn_id"].as_u64().is_some(), "the leader's: {line:?}");
        let members = line["members"].as_str().unwrap();
        assert!(members.starts_with('[') && members.len() > 2, "{line:?}");
    }
    let mut batch_ids: Vec<u64> = batches
        .iter()
        .map(|l| l["batch_id"].as_u64().unwrap())
        .collect();
    batch_ids.dedup();
    assert_eq!(batch_ids.len(), batches.len(), "one id per batch");
    // The span reaches the batch's other lines.
    assert!(with_message(&lines, "batch ran")
        .iter()
        .all(|l| l.contains_key("batch_id")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_outage_writes_a_few_warnings_with_a_count() {
    if direct_mode() {
        eprintln!("skipped in direct mode: needs the daemon");
        return;
    }
    let closed = ClosedPort::reserve();
    let placeholder = MariaDb::start().await;
    let mut sluice = Sluice::builder(&placeholder)
        .backend_port(closed.port())
        .env("SLUICE_LOG__FORMAT", "json")
        .start()
        .await;
    const ATTEMPTS: u64 = 300;
    let opts = sluice.root_opts().prefer_socket(false);
    for _ in 0..ATTEMPTS {
        assert!(mysql_async::Conn::new(opts.clone()).await.is_err());
    }
    // After the window, one more: its line counts those left out.
    tokio::time::sleep(sluice_metrics::LOG_WINDOW + Duration::from_millis(500)).await;
    assert!(mysql_async::Conn::new(opts.clone()).await.is_err());

    let (_, metrics) = sluice_e2e::http::get(sluice.metrics_port(), "/metrics").await;
    sluice.send_signal(libc::SIGTERM);
    sluice.wait_exit(Duration::from_secs(15)).await;
    let lines = json_lines(&sluice.log_contents());
    let failed = with_message(&lines, "login failed");
    assert!(
        failed.len() <= 2 * sluice_metrics::LOG_BURST as usize,
        "{} 'login failed' lines for {} failed logins",
        failed.len(),
        ATTEMPTS + 1
    );
    let accounted: u64 = failed
        .iter()
        .map(|l| 1 + l["suppressed"].as_u64().expect("a suppressed count"))
        .sum();
    assert!(failed.iter().all(|l| l.contains_key("conn_id")));
    let warnings = lines.iter().filter(|l| l["level"] == "WARN").count();
    assert!(warnings <= 15, "{warnings} WARN lines");
    // The counter still counts each one.
    let connect_errors: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sluice_backend_connect_errors_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the counter");
    assert!(connect_errors > ATTEMPTS, "{connect_errors}");
    // (The harness's own readiness connect is one of them.)
    assert_eq!(
        accounted, connect_errors,
        "every failed login written or counted"
    );
}
