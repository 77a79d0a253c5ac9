//! Many connections: sequential churn without leaks, and 200 concurrent clients.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_e2e::raw::RawConn;
use sluice_e2e::Pair;

/// Waits until the backend's client connection count is back to `baseline`.
async fn assert_back_to_baseline(pair: &Pair, baseline: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = pair.db.client_connections().await;
        if now <= baseline {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "backend connections did not return to the baseline {baseline}: still {now}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_connects_leave_no_backend_connections() {
    let pair = Pair::start().await;
    let baseline = pair.db.client_connections().await;
    let started = Instant::now();
    for i in 0..1000u32 {
        match i % 4 {
            // Clean disconnect with COM_QUIT.
            0 | 1 => {
                let mut conn = Conn::new(pair.sluice.root_opts())
                    .await
                    .unwrap_or_else(|e| panic!("connect #{i}: {e}\n{}", pair.sluice.log_tail(40)));
                if i % 100 == 0 {
                    let v: i64 = conn.query_first("SELECT 1").await.unwrap().unwrap();
                    assert_eq!(v, 1);
                }
                conn.disconnect().await.unwrap();
            }
            // COM_QUIT from the raw client.
            2 => {
                let c = RawConn::connect(pair.sluice.addr()).await.unwrap();
                c.quit().await.unwrap();
            }
            // Abrupt close: socket dropped without COM_QUIT.
            _ => {
                let c = RawConn::connect(pair.sluice.addr()).await.unwrap();
                drop(c);
            }
        }
    }
    eprintln!("1000 connects took {:?}", started.elapsed());
    assert_back_to_baseline(&pair, baseline).await;
    let mut conn = pair.conn().await;
    conn.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_clients() {
    const CLIENTS: usize = 200;
    const INSERTS: usize = 3;
    let pair = Arc::new(Pair::start().await);
    pair.db
        .sql("CREATE DATABASE app; CREATE TABLE app.hits (id INT AUTO_INCREMENT PRIMARY KEY, client INT, conn BIGINT) ENGINE=InnoDB")
        .await;
    let baseline = pair.db.client_connections().await;
    let barrier = Arc::new(tokio::sync::Barrier::new(CLIENTS));

    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let pair = Arc::clone(&pair);
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(pair.sluice.root_opts().db_name(Some("app")))
                .await
                .map_err(|e| format!("client {client} connect: {e}"))?;
            let id: u64 = conn
                .query_first("SELECT CONNECTION_ID()")
                .await
                .map_err(|e| e.to_string())?
                .unwrap();
            // Everyone is connected at the same time past this point.
            barrier.wait().await;
            for _ in 0..INSERTS {
                conn.exec_drop(
                    "INSERT INTO hits (client, conn) VALUES (?, CONNECTION_ID())",
                    (client,),
                )
                .await
                .map_err(|e| format!("client {client} insert: {e}"))?;
            }
            let mine: i64 = conn
                .exec_first("SELECT COUNT(*) FROM hits WHERE client = ?", (client,))
                .await
                .map_err(|e| e.to_string())?
                .unwrap();
            if mine != INSERTS as i64 {
                return Err(format!("client {client} sees {mine} rows"));
            }
            conn.disconnect().await.map_err(|e| e.to_string())?;
            Ok::<u64, String>(id)
        }));
    }
    let mut ids = HashSet::new();
    let mut errors = Vec::new();
    for t in tasks {
        match tokio::time::timeout(Duration::from_secs(120), t).await {
            Ok(Ok(Ok(id))) => {
                ids.insert(id);
            }
            Ok(Ok(Err(e))) => errors.push(e),
            Ok(Err(e)) => errors.push(format!("task panicked: {e}")),
            Err(_) => errors.push("client timed out".to_string()),
        }
    }
    assert!(
        errors.is_empty(),
        "{} clients failed, e.g. {:?}\n{}",
        errors.len(),
        &errors[..errors.len().min(5)],
        pair.sluice.log_tail(30)
    );
    assert_eq!(
        ids.len(),
        CLIENTS,
        "each client had its own backend connection"
    );

    let mut direct = pair.direct().await;
    let (rows, clients, conns): (i64, i64, i64) = direct
        .query_first("SELECT COUNT(*), COUNT(DISTINCT client), COUNT(DISTINCT conn) FROM app.hits")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rows as usize, CLIENTS * INSERTS);
    assert_eq!(clients as usize, CLIENTS);
    assert_eq!(conns as usize, CLIENTS);
    drop(direct);
    assert_back_to_baseline(&pair, baseline).await;
}
