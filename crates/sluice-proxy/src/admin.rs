//! `SHOW SLUICE STATUS`: the figures that matter day to day, for an
//! operator who has only a MySQL client. Answered by Sluice itself; the
//! statement never reaches the backend.

use sluice_protocol::resultset::write_text_result;
use sluice_protocol::StatusFlags;

use crate::batching::BatchContext;
use crate::error::SessionError;
use crate::exchange::SessionIo;

/// Answers `SHOW SLUICE STATUS` with a result set made by Sluice, whose
/// status flags are the session's own (the statement never reaches the
/// backend, so nothing about the session changes).
pub(crate) async fn answer_status(
    io: &mut SessionIo<'_>,
    ctx: &BatchContext,
) -> Result<(), SessionError> {
    let rows = status_rows(ctx);
    let session_flags = StatusFlags::SERVER_STATUS_IN_TRANS
        | StatusFlags::SERVER_STATUS_AUTOCOMMIT
        | StatusFlags::SERVER_STATUS_IN_TRANS_READONLY
        | StatusFlags::SERVER_STATUS_NO_BACKSLASH_ESCAPES
        | StatusFlags::SERVER_STATUS_ANSI_QUOTES;
    let status = io
        .state
        .status()
        .unwrap_or(StatusFlags::SERVER_STATUS_AUTOCOMMIT)
        .intersection(session_flags);
    let mut out = Vec::new();
    write_text_result(
        &mut out,
        io.caps,
        status,
        &["Variable_name", "Value"],
        &rows,
    );
    io.client.write_all(&out).await
}

/// Rows of `Variable_name`, `Value`, from the same counters `/metrics`
/// shows.
pub(crate) fn status_rows(ctx: &BatchContext) -> Vec<Vec<String>> {
    let counted = ctx.stats().metrics().snapshot();
    let manager = ctx.manager_stats();
    let mut out = vec![
        ("batching_enabled", u64::from(ctx.enabled()).to_string()),
        ("queue_depth", manager.queued.to_string()),
        (
            "current_delay_ms",
            format!("{:.3}", manager.delay.as_secs_f64() * 1000.0),
        ),
        ("write_ops_per_second", format!("{:.1}", manager.rate)),
        ("batches", counted.batches.to_string()),
        ("rows_batched", counted.rows_batched.to_string()),
        (
            "average_batch_size",
            format!("{:.2}", counted.average_batch_size),
        ),
        ("batch_failures", counted.batch_failures.to_string()),
        ("isolated_rows", counted.isolated_rows.to_string()),
        ("outcome_unknown", counted.outcome_unknown.to_string()),
        ("delay_adjustments_up", counted.delay_up.to_string()),
        ("delay_adjustments_down", counted.delay_down.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| vec![k.to_string(), v])
    .collect::<Vec<_>>();
    for (reason, count) in counted.unbatched {
        out.push(vec![format!("unbatched_{reason}"), count.to_string()]);
    }
    out
}
