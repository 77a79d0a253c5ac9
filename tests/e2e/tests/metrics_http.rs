//! `/metrics`, `/health` and `/ready` after real traffic through Sluice.

use mysql_async::prelude::Queryable;
use sluice_e2e::http::get;
use sluice_e2e::{direct_mode, MariaDb, Sluice};

/// Sum of the samples of a family whose line starts with `prefix`.
fn sample(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_ready_follow_traffic() {
    if direct_mode() {
        eprintln!("skipped in direct mode: needs the daemon");
        return;
    }
    let db = MariaDb::start().await;
    db.sql("CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, n INT) ENGINE=InnoDB")
        .await;
    let sluice = Sluice::builder(&db)
        .env("SLUICE_WRITEBATCH__INITIAL_DELAY_MS", "20")
        .env("SLUICE_WRITEBATCH__MIN_DELAY_MS", "20")
        .env("SLUICE_WRITEBATCH__MAX_DELAY_MS", "50")
        // Any traffic is above the threshold: the delay grows once a
        // window of 50 ms has closed under load.
        .env("SLUICE_WRITEBATCH__WRITE_THRESHOLD", "1")
        .env("SLUICE_WRITEBATCH__METRICS_INTERVAL_MS", "50")
        .start()
        .await;
    let port = sluice.metrics_port();
    let (code, _) = get(port, "/ready").await;
    assert_eq!(code, 200);
    let (code, body) = get(port, "/health").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"status\":\"ok\""), "{body}");

    let (_, before) = get(port, "/metrics").await;
    assert_eq!(sample(&before, "sluice_write_batched_total"), 0.0);

    let mut first = mysql_async::Conn::new(sluice.root_opts().db_name(Some("app")))
        .await
        .unwrap();
    first
        .query_drop("INSERT INTO t (n) VALUES (0)")
        .await
        .unwrap();
    first
        .query_drop("INSERT INTO t (n) SELECT 1")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for c in 0..16 {
        let opts = sluice.root_opts().db_name(Some("app"));
        tasks.push(tokio::spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.unwrap();
            for i in 0..3 {
                conn.query_drop(format!("INSERT INTO t (n) VALUES ({})", c * 10 + i))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (code, after) = get(port, "/metrics").await;
    assert_eq!(code, 200);
    for family in [
        "sluice_write_batch_size",
        "sluice_write_batch_delay_seconds",
        "sluice_write_batch_latency_seconds",
        "sluice_write_ops_per_second",
        "sluice_write_current_delay_seconds",
        "sluice_write_queue_depth",
        "sluice_write_batch_failures_total",
        "sluice_write_isolated_rows_total",
        "sluice_write_outcome_unknown_total",
        "sluice_client_connections",
        "sluice_backend_up",
    ] {
        assert!(after.contains(family), "missing {family}");
    }
    assert!(
        sample(&after, "sluice_write_batched_total") >= 2.0,
        "{after}"
    );
    assert!(sample(&after, "sluice_write_batch_size_count") >= 1.0);
    assert!(
        sample(
            &after,
            "sluice_write_unbatched_total{reason=\"select_source\"}"
        ) >= 1.0
    );
    assert!(sample(&after, "sluice_commands_total{command=\"query\"}") >= 50.0);
    assert!(sample(&after, "sluice_client_connections_total") >= 17.0);
    assert!(sample(&after, "sluice_write_batch_latency_seconds_count") >= 2.0);
    // What the dashboard draws moved with the traffic, buckets included.
    let batches = sample(&after, "sluice_write_batches_total");
    assert!(batches >= 1.0, "{after}");
    assert_eq!(batches, sample(&after, "sluice_write_batch_size_count"));
    let one_row_batches = sample(&after, "sluice_write_batch_size_bucket{le=\"1\"}");
    assert!(one_row_batches < batches, "no batch had company: {after}");
    for histogram in [
        "sluice_write_batch_delay_seconds",
        "sluice_write_batch_latency_seconds",
    ] {
        let rows = sample(&after, &format!("{histogram}_count"));
        assert!(rows >= 2.0, "{histogram}: {after}");
        // Every row waited at most the 50 ms delay: it is in a finite
        // bucket under a second, not only in +Inf.
        let under_a_second = sample(&after, &format!("{histogram}_bucket{{le=\"1\"}}"));
        assert!(under_a_second >= 1.0, "{histogram}: {after}");
    }
    assert!(
        sample(
            &after,
            "sluice_write_delay_adjustments_total{direction=\"up\"}"
        ) >= 1.0,
        "{after}"
    );
    // The process collector reads this very process. Its CPU time counts
    // in clock ticks of 10 ms, which a short, fast run may not reach, so
    // the CPU line is only required to be there (its parsing has unit
    // tests); the resident memory is never zero.
    assert!(
        after
            .lines()
            .any(|l| l.starts_with("process_cpu_seconds_total ")),
        "{after}"
    );
    assert!(
        sample(&after, "process_resident_memory_bytes") > 0.0,
        "{after}"
    );
    let (code, _) = get(port, "/nope").await;
    assert_eq!(code, 404);
    sluice.assert_no_panic();
}
