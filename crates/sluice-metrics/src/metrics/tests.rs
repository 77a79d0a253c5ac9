use super::*;

const FAMILIES: &[&str] = &[
    "sluice_write_batch_size",
    "sluice_write_batch_delay_seconds",
    "sluice_write_batch_latency_seconds",
    "sluice_write_ops_per_second",
    "sluice_write_current_delay_seconds",
    "sluice_write_queue_depth",
    "sluice_write_batched_total",
    "sluice_write_batches_total",
    "sluice_write_unbatched_total",
    "sluice_write_delay_adjustments_total",
    "sluice_write_batch_failures_total",
    "sluice_write_isolated_rows_total",
    "sluice_write_outcome_unknown_total",
    "sluice_client_connections",
    "sluice_client_connections_total",
    "sluice_compressed_sessions_total",
    "sluice_commands_total",
    "sluice_backend_connect_errors_total",
    "sluice_backend_up",
    "sluice_backend_candidate",
    "sluice_backend_writer",
    "sluice_backend_wsrep_local_state",
    "sluice_backend_failovers_total",
];

fn record_one_of_each(m: &Metrics) -> ClientGuard {
    m.batch_executed(16, "shop.orders");
    m.row_waited(Duration::from_millis(2));
    m.row_answered(Duration::from_millis(7));
    m.unbatched("not_insert");
    m.delay_adjusted(true);
    m.delay_adjusted(false);
    m.set_queue_depth(12);
    m.set_current_delay(Duration::from_millis(3));
    m.set_ops_per_second(1500.0);
    m.batch_failed();
    m.row_isolated("duplicate_key");
    m.outcome_unknown();
    m.command("query");
    m.compressed_session();
    m.backend_connect_error();
    m.set_backend_health(
        "db1:3306",
        BackendGauges {
            up: true,
            candidate: true,
            writer: true,
            wsrep_local_state: Some(4),
        },
    );
    m.backend_failover();
    m.client_connected()
}

fn value_of(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn render_has_every_family() -> Result<(), MetricsError> {
    let m = Metrics::new()?;
    let _guard = record_one_of_each(&m);
    let text = m.render();
    for family in FAMILIES {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing from:\n{text}"
        );
    }
    if cfg!(target_os = "linux") {
        for family in [
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
            "process_open_fds",
        ] {
            assert!(text.contains(&format!("# TYPE {family} ")), "{family}");
        }
    }
    assert_eq!(
        value_of(&text, "sluice_write_batched_total{table=\"shop.orders\"}"),
        Some(16.0)
    );
    assert_eq!(
        value_of(&text, "sluice_write_unbatched_total{reason=\"not_insert\"}"),
        Some(1.0)
    );
    assert_eq!(
        value_of(
            &text,
            "sluice_write_delay_adjustments_total{direction=\"up\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value_of(&text, "sluice_commands_total{command=\"stmt_execute\"}"),
        Some(0.0),
        "preset commands start at 0"
    );
    assert_eq!(value_of(&text, "sluice_write_queue_depth"), Some(12.0));
    assert_eq!(
        value_of(&text, "sluice_write_current_delay_seconds"),
        Some(0.003)
    );
    assert_eq!(value_of(&text, "sluice_client_connections"), Some(1.0));
    Ok(())
}

#[test]
fn table_label_cardinality_is_capped() -> Result<(), MetricsError> {
    let m = Metrics::new()?;
    for i in 0..(TABLE_LABEL_CAP + 50) {
        m.batch_executed(2, &format!("db.t{i}"));
    }
    let text = m.render();
    let series = text
        .lines()
        .filter(|l| l.starts_with("sluice_write_batches_total{"))
        .count();
    assert_eq!(series, TABLE_LABEL_CAP + 1, "100 tables plus other");
    assert_eq!(
        value_of(&text, "sluice_write_batches_total{table=\"other\"}"),
        Some(50.0)
    );
    assert_eq!(
        value_of(&text, "sluice_write_batched_total{table=\"other\"}"),
        Some(100.0)
    );
    assert_eq!(
        value_of(&text, "sluice_write_batches_total{table=\"db.t0\"}"),
        Some(1.0)
    );
    Ok(())
}

#[test]
fn client_guard_decrements_on_drop() -> Result<(), MetricsError> {
    let m = Metrics::new()?;
    let a = m.client_connected();
    let b = m.clone().client_connected();
    assert_eq!(m.snapshot().client_connections, 2);
    drop(a);
    assert_eq!(m.snapshot().client_connections, 1);
    drop(b);
    assert_eq!(m.snapshot().client_connections, 0);
    assert_eq!(
        value_of(&m.render(), "sluice_client_connections_total"),
        Some(2.0)
    );
    Ok(())
}

#[test]
fn snapshot_summarises() -> Result<(), MetricsError> {
    let m = Metrics::new()?;
    assert_eq!(m.snapshot().average_batch_size, 0.0);
    let _guard = record_one_of_each(&m);
    m.batch_executed(4, "shop.items");
    let s = m.snapshot();
    assert_eq!(s.queue_depth, 12);
    assert_eq!(s.current_delay, Duration::from_millis(3));
    assert_eq!(s.batches, 2);
    assert_eq!(s.rows_batched, 20);
    assert_eq!(s.average_batch_size, 10.0);
    assert_eq!(s.isolated_rows, 1);
    assert_eq!(s.outcome_unknown, 1);
    assert_eq!(s.batch_failures, 1);
    assert_eq!((s.delay_up, s.delay_down), (1, 1));
    assert_eq!(s.unbatched, vec![("not_insert", 1)]);
    m.unbatched("queue_full");
    m.unbatched("queue_full");
    assert_eq!(
        m.snapshot().unbatched,
        vec![("not_insert", 1), ("queue_full", 2)]
    );
    assert_eq!(s.client_connections, 1);
    Ok(())
}

#[test]
fn registries_are_independent() -> Result<(), MetricsError> {
    let a = Metrics::new()?;
    let b = Metrics::new()?;
    a.batch_failed();
    assert_eq!(a.snapshot().batch_failures, 1);
    assert_eq!(b.snapshot().batch_failures, 0);
    Ok(())
}

#[test]
fn backend_gauges_are_per_backend() -> Result<(), MetricsError> {
    let m = Metrics::new()?;
    let writer = BackendGauges {
        up: true,
        candidate: true,
        writer: true,
        wsrep_local_state: Some(4),
    };
    m.set_backend_health("a:3306", writer);
    m.set_backend_health(
        "b:3306",
        BackendGauges {
            up: true,
            ..BackendGauges::default()
        },
    );
    let text = m.render();
    let of = |series: &str| value_of(&text, series);
    assert_eq!(of("sluice_backend_up{backend=\"a:3306\"}"), Some(1.0));
    assert_eq!(of("sluice_backend_writer{backend=\"a:3306\"}"), Some(1.0));
    assert_eq!(of("sluice_backend_up{backend=\"b:3306\"}"), Some(1.0));
    assert_eq!(
        of("sluice_backend_candidate{backend=\"b:3306\"}"),
        Some(0.0)
    );
    assert_eq!(of("sluice_backend_writer{backend=\"b:3306\"}"), Some(0.0));
    assert_eq!(
        of("sluice_backend_wsrep_local_state{backend=\"a:3306\"}"),
        Some(4.0)
    );
    assert_eq!(
        of("sluice_backend_wsrep_local_state{backend=\"b:3306\"}"),
        None
    );
    m.set_backend_health("a:3306", BackendGauges::default());
    let text = m.render();
    assert_eq!(
        value_of(&text, "sluice_backend_up{backend=\"a:3306\"}"),
        Some(0.0)
    );
    assert_eq!(
        value_of(
            &text,
            "sluice_backend_wsrep_local_state{backend=\"a:3306\"}"
        ),
        Some(4.0),
        "the last state read stays until read again"
    );
    Ok(())
}

#[test]
fn isolated_rows_count_by_reason_and_in_total() -> Result<(), MetricsError> {
    let m = Metrics::new()?;
    m.preset_isolation_reasons(&["duplicate_key", "batch_failed"]);
    let text = m.render();
    assert_eq!(
        value_of(
            &text,
            "sluice_write_isolated_rows_total{reason=\"batch_failed\"}"
        ),
        Some(0.0),
        "preset reasons start at 0"
    );
    m.row_isolated("duplicate_key");
    m.row_isolated("duplicate_key");
    m.row_isolated("batch_failed");
    let text = m.render();
    assert_eq!(
        value_of(
            &text,
            "sluice_write_isolated_rows_total{reason=\"duplicate_key\"}"
        ),
        Some(2.0)
    );
    assert_eq!(m.snapshot().isolated_rows, 3);
    Ok(())
}
