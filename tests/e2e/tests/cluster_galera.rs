//! Sluice in front of a real 3-node Galera cluster on this host
//! (`make test-cluster`; skipped by a plain `cargo test`): batches keep
//! every id exact under `wsrep_auto_increment_control`; SIGKILL of the
//! writer under 64 clients loses and duplicates nothing and new sessions
//! move to another node; the killed node rejoins as a candidate; two
//! Sluice instances writing the same keys through two nodes see
//! certification conflicts isolated, never an unknown outcome.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use sluice_e2e::differential::SMALL_DELAY;
use sluice_e2e::galera::{cluster_tests_enabled, GaleraCluster, GaleraNode};
use sluice_e2e::http::{backend_series, family_sum, get, series_value};
use sluice_e2e::{direct_mode, wait_until, Sluice};
use tokio::sync::Barrier;

const MONITOR_USER: &str = "sluice_monitor";
const MONITOR_PASSWORD: &str = "m0n-Pass_7x";
/// The probe interval and connect timeout the tests give Sluice.
const PROBE_INTERVAL: Duration = Duration::from_millis(200);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on any one client operation: a client that waits longer hangs.
const NO_HANG: Duration = Duration::from_secs(30);

fn enabled() -> bool {
    if direct_mode() || !cluster_tests_enabled() {
        eprintln!("skipped: run `make test-cluster` (needs the daemon and galera-4)");
        return false;
    }
    true
}

/// A cluster with the monitor user and database `app`.
async fn cluster() -> GaleraCluster {
    let cluster = GaleraCluster::start(3).await;
    cluster
        .node(0)
        .sql(&format!(
            "CREATE USER '{MONITOR_USER}'@'%' IDENTIFIED BY '{MONITOR_PASSWORD}'; \
             GRANT USAGE ON *.* TO '{MONITOR_USER}'@'%'; CREATE DATABASE app"
        ))
        .await;
    cluster
}

/// Sluice in `galera` mode in front of `addresses`.
async fn sluice_for(addresses: String) -> Sluice {
    let mut builder = Sluice::builder_for(addresses)
        .env("SLUICE_BACKEND__CLUSTER", "galera")
        .env(
            "SLUICE_BACKEND__CONNECT_TIMEOUT",
            format!("{}ms", CONNECT_TIMEOUT.as_millis()),
        )
        .env(
            "SLUICE_METRICS__PROBE_INTERVAL",
            format!("{}ms", PROBE_INTERVAL.as_millis()),
        )
        .env("SLUICE_METRICS__MONITOR_USER", MONITOR_USER)
        .env("SLUICE_METRICS__MONITOR_PASSWORD", MONITOR_PASSWORD);
    for (key, value) in SMALL_DELAY {
        builder = builder.env(*key, *value);
    }
    builder.start().await
}

/// The sum of every sample of `family` in `/metrics`.
async fn metric_sum(sluice: &Sluice, family: &str) -> f64 {
    let (_, metrics) = get(sluice.metrics_port(), "/metrics").await;
    family_sum(&metrics, family)
}

/// The node new sessions go to, per `sluice_backend_writer`.
async fn writer_of(sluice: &Sluice, cluster: &GaleraCluster) -> Option<usize> {
    let (_, metrics) = get(sluice.metrics_port(), "/metrics").await;
    cluster.nodes().iter().position(|node| {
        let series = backend_series("sluice_backend_writer", node.address());
        series_value(&metrics, &series) == Some(1.0)
    })
}

/// Reads `sql` on `node`, waiting while the node is between views: a
/// survivor of a killed node goes through a membership change when the
/// dead node's suspect timeout ends, and answers 1047 ("WSREP has not yet
/// prepared node for application use") meanwhile.
async fn rows_of(node: &GaleraNode, sql: &str) -> Vec<(u64, i64)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut conn = node.root_conn().await;
        let result = conn.query(sql).await;
        let _ = conn.disconnect().await;
        match result {
            Ok(rows) => return rows,
            Err(mysql_async::Error::Server(e))
                if e.code == 1047 && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("read the table on {}: {e}", node.address()),
        }
    }
}

fn app(opts: OptsBuilder) -> OptsBuilder {
    opts.db_name(Some("app"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_on_galera_keep_every_id() {
    if !enabled() {
        return;
    }
    let cluster = cluster().await;
    cluster
        .node(0)
        .sql("CREATE TABLE app.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, n BIGINT NOT NULL UNIQUE)")
        .await;
    let sluice = sluice_for(cluster.addresses()).await;

    // 64 clients, half text and half prepared, 10 INSERTs each, all at once.
    let clients = 64;
    let per_client = 10;
    let barrier = Arc::new(Barrier::new(clients));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let opts = app(sluice.root_opts());
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(opts).await.expect("connect through Sluice");
            let port: u16 = conn.query_first("SELECT @@port").await.unwrap().unwrap();
            barrier.wait().await;
            let mut told = Vec::new();
            for i in 0..per_client {
                let n = i64::try_from(c * 1000 + i).unwrap();
                if c % 2 == 0 {
                    conn.query_drop(format!("INSERT INTO t (n) VALUES ({n})"))
                        .await
                        .expect("text insert");
                } else {
                    conn.exec_drop("INSERT INTO t (n) VALUES (?)", (n,))
                        .await
                        .expect("prepared insert");
                }
                told.push((conn.last_insert_id().expect("an id"), n));
            }
            let _ = conn.disconnect().await;
            (port, told)
        }));
    }
    let mut told = Vec::new();
    let mut ports = BTreeSet::new();
    for task in tasks {
        let (port, rows) = task.await.unwrap();
        ports.insert(port);
        told.extend(rows);
    }
    told.sort_unstable();
    assert_eq!(ports.len(), 1, "every session on the one writer: {ports:?}");
    assert_eq!(
        ports.first().copied(),
        Some(cluster.node(0).port()),
        "the first listed node is the writer"
    );

    // Every id told is the stored row's, on every node; ids are spaced by
    // the cluster size, as wsrep_auto_increment_control sets them.
    for node in cluster.nodes() {
        let stored = rows_of(node, "SELECT id, n FROM app.t ORDER BY id").await;
        let told: Vec<(u64, i64)> = told.clone();
        assert_eq!(stored, told, "rows of {}", node.address());
    }
    let offsets: BTreeSet<u64> = told.iter().map(|(id, _)| id % 3).collect();
    assert_eq!(offsets.len(), 1, "one node's ids, one offset: {offsets:?}");
    let batches = metric_sum(&sluice, "sluice_write_batches_total").await;
    let batched = metric_sum(&sluice, "sluice_write_batched_total").await;
    assert!(
        batches > 0.0 && batched > batches,
        "rows went out in multi-row batches ({batched} rows in {batches} batches)"
    );
    assert_eq!(
        metric_sum(&sluice, "sluice_write_outcome_unknown_total").await,
        0.0
    );
    sluice.assert_no_panic();
}

/// What one load client saw.
#[derive(Default)]
struct Seen {
    /// Values whose INSERT was acknowledged.
    acked: Vec<i64>,
    /// Errors told to the client (the client then reconnected).
    errors: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_writer_under_load_loses_nothing() {
    if !enabled() {
        return;
    }
    let mut cluster = cluster().await;
    cluster
        .node(0)
        .sql("CREATE TABLE app.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, n BIGINT NOT NULL UNIQUE)")
        .await;
    let sluice = sluice_for(cluster.addresses()).await;
    let writer = writer_of(&sluice, &cluster).await.expect("a writer");

    // 64 clients insert unique values in a loop; after an error a client
    // reconnects and goes on. Every operation is bounded: none may hang.
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut tasks = Vec::new();
    for c in 0..64i64 {
        let opts = app(sluice.root_opts());
        let (stop, seen) = (stop.clone(), seen.clone());
        tasks.push(tokio::spawn(async move {
            let mut seq = 0i64;
            let mut conn: Option<Conn> = None;
            while !stop.load(Ordering::Relaxed) {
                let step = tokio::time::timeout(NO_HANG, async {
                    let mut open = match conn.take() {
                        Some(open) => open,
                        None => Conn::new(opts.clone()).await?,
                    };
                    seq += 1;
                    let n = c * 1_000_000 + seq;
                    let result = open.exec_drop("INSERT INTO t (n) VALUES (?)", (n,)).await;
                    if result.is_ok() {
                        conn = Some(open);
                    }
                    result.map(|()| n)
                })
                .await;
                match step {
                    Ok(Ok(n)) => seen.lock().unwrap().acked.push(n),
                    Ok(Err(e)) => {
                        seen.lock().unwrap().errors.push(e.to_string());
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(_) => panic!("client {c} waited more than {NO_HANG:?}"),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let acked_before = seen.lock().unwrap().acked.len();
    assert!(acked_before > 0, "the load runs before the kill");

    // SIGKILL the writer; measure until a new session lands elsewhere.
    let killed_port = cluster.node(writer).port();
    cluster.kill(writer);
    let killed_at = Instant::now();
    let moved_after = loop {
        let attempt = tokio::time::timeout(NO_HANG, async {
            let mut conn = Conn::new(sluice.root_opts()).await?;
            let port: Option<u16> = conn.query_first("SELECT @@port").await?;
            let _ = conn.disconnect().await;
            Ok::<_, mysql_async::Error>(port)
        })
        .await
        .expect("a login through Sluice never hangs");
        if matches!(attempt, Ok(Some(port)) if port != killed_port) {
            break killed_at.elapsed();
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(30),
            "new sessions still not served by another node: {attempt:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("new sessions served by another node {moved_after:?} after the kill");
    // The bound: one probe interval plus one connect timeout
    // (with room for a loaded 2-core machine).
    assert!(
        moved_after < PROBE_INTERVAL + CONNECT_TIMEOUT + Duration::from_secs(3),
        "{moved_after:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("a load client panicked");
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert!(
        seen.acked.len() > acked_before,
        "the load went on after the failover"
    );
    eprintln!(
        "{} rows acknowledged, {} errors told",
        seen.acked.len(),
        seen.errors.len()
    );

    // Every acknowledged row is on both survivors exactly once (n is
    // unique, so a row is never there twice); unacknowledged ones may or
    // may not be; the survivors agree.
    let survivors: Vec<usize> = (0..3).filter(|&i| i != writer).collect();
    let mut contents = Vec::new();
    for &i in &survivors {
        let rows = rows_of(cluster.node(i), "SELECT id, n FROM app.t ORDER BY id").await;
        let values: BTreeSet<i64> = rows.iter().map(|r| r.1).collect();
        assert_eq!(values.len(), rows.len());
        for n in &seen.acked {
            assert!(
                values.contains(n),
                "acknowledged {n} missing on node{}",
                i + 1
            );
        }
        contents.push(rows);
    }
    assert_eq!(contents[0], contents[1], "the survivors agree");

    // The killed node comes back and rejoins as a candidate; without
    // fail_back the writer does not move back to it. (The node that
    // donates its state is Donor/Desynced meanwhile, so the writer may
    // move on to the third node.)
    cluster.restart(writer).await;
    let address = cluster.node(writer).address();
    let sluice_ref = &sluice;
    let candidate = wait_until(Duration::from_secs(10), || {
        let address = address.clone();
        async move {
            let (_, metrics) = get(sluice_ref.metrics_port(), "/metrics").await;
            let series = backend_series("sluice_backend_candidate", &address);
            series_value(&metrics, &series) == Some(1.0)
        }
    })
    .await;
    assert!(candidate, "the restarted node is a candidate again");
    let writer_now = writer_of(&sluice, &cluster).await;
    assert!(
        writer_now.is_some() && writer_now != Some(writer),
        "no fail-back to the restarted node: {writer_now:?}"
    );
    let back = rows_of(cluster.node(writer), "SELECT id, n FROM app.t ORDER BY id").await;
    assert_eq!(back, contents[0], "the restarted node caught up");
    assert!(metric_sum(&sluice, "sluice_backend_failovers_total").await >= 1.0);
    sluice.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_batches_on_two_nodes_are_isolated() {
    if !enabled() {
        return;
    }
    let cluster = cluster().await;
    cluster
        .node(0)
        .sql(
            "CREATE TABLE app.u (id BIGINT AUTO_INCREMENT PRIMARY KEY, \
             k BIGINT NOT NULL UNIQUE, side BIGINT NOT NULL)",
        )
        .await;
    // Two instances, each with one node: their batches race on the same
    // keys through two nodes, so certification decides.
    let sides = [
        sluice_for(cluster.node(0).address()).await,
        sluice_for(cluster.node(1).address()).await,
    ];
    let keys = 3000i64;
    let per_side = 32i64;
    let barrier = Arc::new(Barrier::new(2 * usize::try_from(per_side).unwrap()));
    let mut tasks = Vec::new();
    for (side, sluice) in sides.iter().enumerate() {
        let side = i64::try_from(side).unwrap();
        for c in 0..per_side {
            let opts = app(sluice.root_opts());
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                let mut conn = Conn::new(opts).await.expect("connect through Sluice");
                barrier.wait().await;
                let mut outcomes = Vec::new();
                let mut k = c;
                while k < keys {
                    let insert = conn.exec_drop("INSERT INTO u (k, side) VALUES (?, ?)", (k, side));
                    let result = tokio::time::timeout(NO_HANG, insert)
                        .await
                        .expect("an INSERT never hangs");
                    let outcome = match result {
                        Ok(()) => None,
                        Err(mysql_async::Error::Server(e)) => Some(e.code),
                        Err(e) => panic!("not a server error: {e}"),
                    };
                    outcomes.push((k, side, outcome));
                    k += per_side;
                }
                let _ = conn.disconnect().await;
                outcomes
            }));
        }
    }
    // key -> sides told success; every error code seen.
    let mut succeeded: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut codes: BTreeMap<u16, usize> = BTreeMap::new();
    for task in tasks {
        for (k, side, outcome) in task.await.unwrap() {
            match outcome {
                None => succeeded.entry(k).or_default().push(side),
                Some(code) => *codes.entry(code).or_default() += 1,
            }
        }
    }
    eprintln!("errors by code: {codes:?}");
    for code in codes.keys() {
        assert!(
            [1062, 1213].contains(code),
            "only duplicate-key or deadlock errors, got {code}"
        );
    }
    let stored = rows_of(cluster.node(2), "SELECT k, side FROM app.u ORDER BY k").await;
    let stored: BTreeMap<i64, i64> = stored
        .into_iter()
        .map(|(k, side)| (i64::try_from(k).unwrap(), side))
        .collect();
    for k in 0..keys {
        match (succeeded.get(&k).map(Vec::as_slice), stored.get(&k)) {
            (Some([side]), Some(stored_side)) => assert_eq!(
                side, stored_side,
                "key {k}: the side told success is the side stored"
            ),
            (None, None) => {}
            (told, row) => panic!("key {k}: told success by {told:?}, stored {row:?}"),
        }
    }
    let mut isolated = 0.0;
    for sluice in &sides {
        isolated += metric_sum(sluice, "sluice_write_isolated_rows_total").await;
        assert_eq!(
            metric_sum(sluice, "sluice_write_outcome_unknown_total").await,
            0.0,
            "a conflict is a failed batch, never an unknown outcome"
        );
        sluice.assert_no_panic();
    }
    eprintln!("{isolated} rows isolated");
    assert!(
        isolated > 0.0,
        "the two sides' batches met on the same keys"
    );
}
