//! The compressed protocol on the client leg: `mariadb --compress` and
//! mysql_async with compression get through Sluice what they get from
//! MariaDB directly, large results and client files included, and their
//! single-row INSERTs are batched like everyone else's.

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::{Compression, Conn, Opts, OptsBuilder, Row};
use sluice_e2e::cli::Cli;
use sluice_e2e::differential::batching_sluice;
use sluice_e2e::{http, MariaDb, Sluice};
use tokio::sync::Barrier;

/// A metric's value in a `/metrics` page (0 when absent).
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn compressed_sessions(sluice: &Sluice) -> f64 {
    let (_, page) = http::get(sluice.metrics_port(), "/metrics").await;
    sample(&page, "sluice_compressed_sessions_total")
}

/// The same script, with `{db}` standing for a database of its own.
fn script(db: &str, infile: &std::path::Path) -> String {
    format!(
        "CREATE DATABASE {db};
USE {db};
CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(40) UNIQUE, body LONGTEXT);
INSERT INTO t (tag, body) VALUES ('a', REPEAT('abc', 1000));
INSERT INTO t (tag, body) VALUES ('a', 'again');
SELECT id, tag, LENGTH(body) FROM t;
LOAD DATA LOCAL INFILE '{}' INTO TABLE t FIELDS TERMINATED BY ',' (tag, body);
SELECT COUNT(*), SUM(LENGTH(body)), MD5(GROUP_CONCAT(body ORDER BY id SEPARATOR '')) FROM t;
SELECT MD5(REPEAT('sluice', 2000000)), LENGTH(REPEAT('sluice', 2000000));
SELECT REPEAT('xyz', 30000) AS wide;
SELECT 1; SELECT 2;
DROP DATABASE {db};
",
        infile.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_compress_sees_what_it_sees_directly() {
    let db = MariaDb::start().await;
    let sluice = Sluice::start(&db).await;
    let infile = sluice_e2e::e2e_dir().join(sluice_e2e::unique_name("compress-infile.csv"));
    let rows: String = (0..2000)
        .map(|i| format!("row{i},{}\n", "payload ".repeat(i % 50)))
        .collect();
    std::fs::write(&infile, rows).unwrap();
    let mut outputs = Vec::new();
    for (port, name) in [(db.port(), "direct"), (sluice.port(), "sluice")] {
        let out = Cli::new(port)
            .arg("--compress")
            .arg("--local-infile=1")
            .arg("--force")
            .stdin(script(&format!("c_{name}"), &infile))
            .run("")
            .await;
        let status = Cli::new(port).arg("--compress").run("status").await;
        assert!(
            status.stdout.contains("Compressed"),
            "{name}: the session is compressed: {}",
            status.stdout
        );
        outputs.push((out.stdout, out.stderr.replace(&format!("c_{name}"), "c_")));
    }
    let _ = std::fs::remove_file(&infile);
    assert!(
        outputs[0].1.contains("1062"),
        "the script meets a duplicate key"
    );
    assert_eq!(outputs[0], outputs[1], "directly, then through Sluice");
    if sluice.is_real("mariadb_compress_sees_what_it_sees_directly") {
        assert!(compressed_sessions(&sluice).await >= 2.0);
    }
    sluice.assert_no_panic();
}

fn compressed(opts: OptsBuilder) -> Opts {
    Opts::from(opts.compression(Some(Compression::default())))
}

/// Rows of a few queries that cross packet and compression boundaries.
async fn session_results(conn: &mut Conn) -> Vec<Vec<Row>> {
    let mut results = Vec::new();
    for sql in [
        "SELECT REPEAT('a', 70000) AS a, 1 AS one",
        "SELECT MD5(REPEAT('q', 5000000)), LENGTH(REPEAT('q', 5000000))",
        "SELECT seq, REPEAT(CHAR(65 + seq % 26), seq) FROM mysql.seq_1_to_400",
    ] {
        results.push(conn.query(sql).await.unwrap());
    }
    let big: Vec<Row> = conn
        .exec("SELECT ?, REPEAT(?, 100000)", ("x".repeat(100_000), "yz"))
        .await
        .unwrap();
    results.push(big);
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_async_with_compression_gets_the_same_results() {
    let db = MariaDb::start().await;
    let sluice = Sluice::start(&db).await;
    let mut direct = Conn::new(compressed(db.root_opts())).await.unwrap();
    let mut via = Conn::new(compressed(sluice.root_opts())).await.unwrap();
    let want = session_results(&mut direct).await;
    let got = session_results(&mut via).await;
    assert_eq!(want.len(), got.len());
    for (w, g) in want.iter().zip(&got) {
        let w: Vec<Vec<mysql_async::Value>> = w.iter().map(|r| r.clone().unwrap()).collect();
        let g: Vec<Vec<mysql_async::Value>> = g.iter().map(|r| r.clone().unwrap()).collect();
        assert_eq!(w, g);
    }
    if sluice.is_real("mysql_async_with_compression_gets_the_same_results") {
        assert_eq!(compressed_sessions(&sluice).await, 1.0);
    }
    via.disconnect().await.unwrap();
    direct.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_clients_batch_like_the_rest() {
    const CLIENTS: usize = 24;
    let db = MariaDb::start().await;
    db.sql("CREATE DATABASE app").await;
    db.sql("CREATE TABLE app.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(20) NOT NULL)")
        .await;
    let sluice = batching_sluice(&db).await;
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        // Every other client compressed, so batches mix both kinds.
        let opts = sluice.root_opts().db_name(Some("app"));
        let opts = if i % 2 == 0 {
            compressed(opts)
        } else {
            Opts::from(opts)
        };
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(opts).await.unwrap();
            let mut ids = Vec::new();
            for round in 0..5 {
                barrier.wait().await;
                let tag = format!("c{i}-{round}");
                conn.exec_drop("INSERT INTO t (tag) VALUES (?)", (tag.clone(),))
                    .await
                    .unwrap();
                ids.push((conn.last_insert_id().unwrap(), tag));
            }
            conn.disconnect().await.unwrap();
            ids
        }));
    }
    let mut check = db.root_conn().await;
    for task in tasks {
        for (id, tag) in task.await.unwrap() {
            let stored: Option<String> = check
                .exec_first("SELECT tag FROM app.t WHERE id = ?", (id,))
                .await
                .unwrap();
            assert_eq!(stored.as_deref(), Some(tag.as_str()), "id {id}");
        }
    }
    let count: Option<u64> = check
        .query_first("SELECT COUNT(*) FROM app.t")
        .await
        .unwrap();
    assert_eq!(count, Some((CLIENTS * 5) as u64));
    if sluice.is_real("compressed_clients_batch_like_the_rest") {
        let (_, page) = http::get(sluice.metrics_port(), "/metrics").await;
        let batched: f64 = page
            .lines()
            .filter(|l| l.starts_with("sluice_write_batched_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert!(batched > 0.0, "some rows were batched:\n{page}");
        assert_eq!(sample(&page, "sluice_compressed_sessions_total"), 12.0);
    }
}
