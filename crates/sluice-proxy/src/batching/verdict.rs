//! What became of a batch, decided from the server's answers alone, and
//! what each member is told: pure functions, so every combination of
//! answers has a unit test. `leader.rs` does the I/O around them.

use super::member::{Isolation, MemberResult};
use super::skips::{ids_with_skips, report_committed, skipped_rows, RowFate};
use crate::internal::{QueryResult, TextRow};
use sluice_protocol::StatusFlags;

/// What the settling `IF`'s rollback branch raises: ER_SIGNAL_EXCEPTION
/// with SQLSTATE 45000.
pub(super) const ROLLED_BACK: (u16, &[u8; 5]) = (1644, b"45000");

/// Errors that say a statement was stopped from outside (`KILL QUERY`, a
/// killed connection, `max_statement_time`): query interrupted, connection
/// killed, statement timeout. The server may have run part of it first,
/// its `COMMIT` included, so such an error does not say the batch was not
/// committed.
pub(super) const INTERRUPTED: [u16; 3] = [1317, 1927, 1969];

/// Whether `result` is one of the [`INTERRUPTED`] errors.
pub(super) fn interrupted(result: &QueryResult) -> bool {
    matches!(result, QueryResult::Err(e) if INTERRUPTED.contains(&e.code))
}

/// The server's answers to the batch's three statements (`START
/// TRANSACTION`, the INSERT, the settling `IF`), in order. A read that
/// failed (the connection was lost) leaves its answer and every later one
/// `None`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Answers<'a> {
    pub(super) opened: Option<&'a QueryResult>,
    pub(super) insert: Option<&'a QueryResult>,
    pub(super) settled: Option<&'a QueryResult>,
}

/// What became of the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Committed: one insert id per row, the leader's first.
    Committed(Vec<u64>),
    /// The INSERT left conditions and its transaction is open: ask the
    /// server which rows they name, then decide with
    /// [`verdict_on_report`].
    Report,
    /// The INSERT skipped some rows (duplicate key, …) and put in the
    /// others; the transaction is open: commit it, then the skipped rows'
    /// members run alone.
    CommitSkipping(Vec<RowFate>),
    /// As [`Verdict::CommitSkipping`], but the report found every
    /// condition a skipped row and committed already.
    CommittedSkipping(Vec<RowFate>),
    /// Rolled back, or never applied: everyone runs alone.
    NotApplied(&'static str),
    /// The transaction is open and must not commit (the INSERT failed,
    /// or a condition is not a skipped row), or the settling statement
    /// failed some other way (a Galera certification conflict at COMMIT,
    /// say): roll back explicitly, then everyone runs alone.
    RollBack(&'static str),
    /// The answers stop, or make no sense, after the batch was sent: it
    /// may or may not have committed.
    Unknown(&'static str),
}

/// The INSERT's and the settling statement's answers once every answer
/// came and the transaction opened; otherwise the verdict already.
fn inside_transaction<'a>(
    answers: Answers<'a>,
    returning: bool,
    rows: usize,
) -> Result<(&'a QueryResult, &'a QueryResult), Verdict> {
    let Some(opened) = answers.opened else {
        return Err(Verdict::Unknown(
            "connection lost before the transaction opened",
        ));
    };
    let Some(insert) = answers.insert else {
        return Err(Verdict::Unknown("connection lost during the INSERT"));
    };
    let Some(settled) = answers.settled else {
        return Err(Verdict::Unknown("connection lost during the commit"));
    };
    if !matches!(opened, QueryResult::Ok { .. }) {
        // The INSERT ran in autocommit mode, so it stands as it is. This
        // cannot happen in an autocommit-idle session.
        return Err(match (insert, ids_of(insert, returning, rows)) {
            (QueryResult::Err(_), _) => Verdict::NotApplied("transaction did not open"),
            (_, Some(ids)) => Verdict::Committed(ids),
            (_, None) => Verdict::Unknown("the transaction did not open and the INSERT stood"),
        });
    }
    Ok((insert, settled))
}

/// Decides from the answers of a batch of `rows` rows, `returning` when
/// its INSERT has a `RETURNING` clause.
pub(super) fn verdict(answers: Answers<'_>, returning: bool, rows: usize) -> Verdict {
    let (insert, settled) = match inside_transaction(answers, returning, rows) {
        Ok(both) => both,
        Err(decided) => return decided,
    };
    let ids = ids_of(insert, returning, rows);
    match settled {
        QueryResult::Ok { status, .. } => {
            // The settling statement commits only a clean INSERT, so the
            // server's own status flag tells whether it did.
            let open = status.contains(StatusFlags::SERVER_STATUS_IN_TRANS);
            match (insert, open) {
                (QueryResult::Err(_), true) => Verdict::RollBack("the INSERT failed"),
                // The error ended the transaction itself (a deadlock, say),
                // and with it the INSERT that changed nothing.
                (QueryResult::Err(_), false) => Verdict::NotApplied("the INSERT failed"),
                (_, true) => Verdict::Report,
                (_, false) => match ids {
                    Some(ids) => Verdict::Committed(ids),
                    None => Verdict::Unknown("committed, but not one id per row"),
                },
            }
        }
        QueryResult::Rows { .. } => Verdict::Unknown("the settling statement returned rows"),
        QueryResult::Err(e) if (e.code, &e.sql_state) == (ROLLED_BACK.0, ROLLED_BACK.1) => {
            Verdict::NotApplied("error or warnings")
        }
        stopped if interrupted(stopped) => {
            Verdict::Unknown("the settling statement was interrupted")
        }
        QueryResult::Err(_) => Verdict::RollBack("commit failed"),
    }
}

/// Decides from the answers of a batch whose settling statement was the
/// report itself (sent at once, when the key's batches mostly leave
/// conditions): it committed a clean batch, and one whose every
/// condition is a skipped row when it could.
pub(super) fn verdict_reported(answers: Answers<'_>, returning: bool, rows: usize) -> Verdict {
    match inside_transaction(answers, returning, rows) {
        Err(decided) => decided,
        // A failed INSERT put nothing in, whatever the report did next; a
        // rollback is harmless where the error already ended the
        // transaction.
        Ok((QueryResult::Err(_), _)) => Verdict::RollBack("the INSERT failed"),
        Ok((insert, report)) => verdict_on_report(insert, report, returning, rows),
    }
}

/// Decides from the report of the conditions the INSERT of a batch of
/// `rows` rows left (asked for after [`Verdict::Report`]): the report
/// committed when every condition was a skipped row, else the
/// transaction is still open.
pub(super) fn verdict_on_report(
    insert: &QueryResult,
    report: &QueryResult,
    returning: bool,
    rows: usize,
) -> Verdict {
    if interrupted(report) {
        return Verdict::Unknown("the report was interrupted");
    }
    if !matches!(report, QueryResult::Rows { .. }) {
        // A report that failed otherwise did not commit: its row goes out
        // before its COMMIT, so a COMMIT that failed fails the whole.
        return Verdict::RollBack("no report of the INSERT's conditions");
    }
    let fates = skipped_rows(report, rows).and_then(|skipped| {
        ids_with_skips(insert, returning, &skipped).ok_or("skipped rows and returned rows disagree")
    });
    match (fates, report_committed(report)) {
        (Ok(fates), true) => Verdict::CommittedSkipping(fates),
        (Err(_), true) => Verdict::Unknown("committed, but not one fate per row"),
        (Ok(fates), false) => Verdict::CommitSkipping(fates),
        (Err(why), false) => Verdict::RollBack(why),
    }
}

/// `LAST_INSERT_ID()` as it was before the batch: the second `RETURNING`
/// column (the function reads the previous statement's value). An INSERT
/// that put any row in moved the leader connection's value, and a
/// rollback does not move it back.
pub(super) fn previous_last_insert_id(insert: Option<&QueryResult>) -> Option<u64> {
    let Some(QueryResult::Rows { rows, .. }) = insert else {
        return None;
    };
    rows.first()?.text(1)?.parse().ok()
}

/// The ids in the first column of an INSERT's `RETURNING` rows, or `None`
/// if one is not a number.
pub(super) fn returned_ids(rows: &[TextRow]) -> Option<Vec<u64>> {
    let mut ids = Vec::with_capacity(rows.len());
    for row in rows {
        let id = row.integer(0)?;
        // The OK packet carries a negative explicit id as its two's
        // complement, as MariaDB does.
        ids.push(id as u64);
    }
    Some(ids)
}

/// One insert id per row from a clean INSERT's result (0 for every row
/// of a table without AUTO_INCREMENT), or `None` if the result is not
/// what a batch of `rows` rows gives.
pub(super) fn ids_of(insert: &QueryResult, returning: bool, rows: usize) -> Option<Vec<u64>> {
    match insert {
        QueryResult::Rows {
            rows: got,
            warnings: 0,
            ..
        } if returning && got.len() == rows => returned_ids(got),
        QueryResult::Ok {
            affected_rows,
            warnings: 0,
            ..
        } if !returning && *affected_rows == rows as u64 => Some(vec![0; rows]),
        _ => None,
    }
}

/// How the batch ended for its members, once the leader acted on the
/// verdict (a rollback that itself failed leaves the rows not committed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ending {
    /// What became of each row (a skipped row's member runs alone);
    /// `LAST_INSERT_ID()` before the batch, when known.
    Committed {
        rows: Vec<RowFate>,
        previous_id: Option<u64>,
    },
    /// Nothing was written: everyone runs their own statement alone. The
    /// batch's INSERT may still have moved the leader connection's
    /// `LAST_INSERT_ID()`: this was its value before.
    NotApplied {
        previous_id: Option<u64>,
    },
    /// Nothing was written, but the leader's connection is unusable.
    NotCommitted,
    Unknown,
}

/// What a member whose rows were in a committed batch is told: its first
/// row's id and how many went in, or to run alone when the server
/// skipped its row. (A skipped row of a member of several rows never gets
/// here: see [`skip_splits_a_member`].)
pub(super) fn member_result(rows: &[RowFate]) -> MemberResult {
    if let Some(errno) = rows.iter().find_map(|row| match row {
        RowFate::Skipped(errno) => Some(*errno),
        RowFate::Inserted(_) => None,
    }) {
        return MemberResult::RunAlone(Isolation::Skipped(errno));
    }
    MemberResult::Inserted {
        insert_id: rows.first().and_then(|row| row.id()).unwrap_or(0),
        rows: rows.len(),
    }
}

/// Whether the server skipped a row of a member that sent several rows
/// (`weights`: each member's row count, in batch order) while putting in
/// others: such a batch must not commit, since that member's INSERT would
/// have failed (or skipped) as a whole alone.
pub(super) fn skip_splits_a_member(fates: &[RowFate], weights: &[usize]) -> bool {
    let mut start = 0;
    for &n in weights {
        let rows = fates.get(start..start + n).unwrap_or(&[]);
        start += n;
        if n > 1 && rows.iter().any(|row| row.id().is_none()) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::internal::ServerError;

    fn ok(affected_rows: u64, warnings: u16) -> QueryResult {
        QueryResult::Ok {
            affected_rows,
            last_insert_id: 0,
            status: StatusFlags::empty(),
            warnings,
        }
    }

    fn ids(values: &[&str], warnings: u16) -> QueryResult {
        QueryResult::Rows {
            rows: values
                .iter()
                .map(|v| TextRow::from(vec![Some(v.as_bytes().to_vec())]))
                .collect(),
            status: StatusFlags::empty(),
            warnings,
        }
    }

    fn err(code: u16, sql_state: &[u8; 5]) -> QueryResult {
        QueryResult::Err(ServerError {
            code,
            sql_state: *sql_state,
            message: String::new(),
        })
    }

    fn decide(
        opened: Option<&QueryResult>,
        insert: Option<&QueryResult>,
        settled: Option<&QueryResult>,
        returning: bool,
    ) -> Verdict {
        let answers = Answers {
            opened,
            insert,
            settled,
        };
        verdict(answers, returning, 3)
    }

    /// (opened, insert, settled, returning, verdict)
    type Case<'a> = (
        Option<&'a QueryResult>,
        Option<&'a QueryResult>,
        Option<&'a QueryResult>,
        bool,
        Verdict,
    );

    #[test]
    fn the_whole_outcome_matrix() {
        let opened = ok(0, 0);
        let not_opened = err(1792, b"25006");
        let returned = ids(&["7", "8", "-1"], 0);
        let returned_warning = ids(&["7", "8", "9"], 1);
        let returned_short = ids(&["7", "8"], 0);
        let plain = ok(3, 0);
        let duplicate = err(1062, b"23000");
        let committed = ok(0, 0);
        let left_open = QueryResult::Ok {
            affected_rows: 0,
            last_insert_id: 0,
            status: StatusFlags::SERVER_STATUS_IN_TRANS,
            warnings: 1,
        };
        let rolled_back = err(ROLLED_BACK.0, ROLLED_BACK.1);
        let conflict = err(1213, b"40001");
        let killed = err(1317, b"70100");
        let all = Verdict::Committed(vec![7, 8, u64::MAX]);
        let cases: Vec<Case<'_>> = vec![
            // opened, insert clean, settled
            (
                Some(&opened),
                Some(&returned),
                Some(&committed),
                true,
                all.clone(),
            ),
            (
                Some(&opened),
                Some(&plain),
                Some(&committed),
                false,
                Verdict::Committed(vec![0; 3]),
            ),
            // the server rolled back: error or warning
            (
                Some(&opened),
                Some(&duplicate),
                Some(&rolled_back),
                true,
                Verdict::NotApplied("error or warnings"),
            ),
            (
                Some(&opened),
                Some(&returned_warning),
                Some(&rolled_back),
                true,
                Verdict::NotApplied("error or warnings"),
            ),
            // an INSERT IGNORE batch with conditions, left open to ask
            (
                Some(&opened),
                Some(&returned_warning),
                Some(&left_open),
                true,
                Verdict::Report,
            ),
            // the INSERT failed: roll back what is open; an error that
            // ended the transaction itself left nothing to roll back
            (
                Some(&opened),
                Some(&duplicate),
                Some(&left_open),
                true,
                Verdict::RollBack("the INSERT failed"),
            ),
            (
                Some(&opened),
                Some(&conflict),
                Some(&committed),
                true,
                Verdict::NotApplied("the INSERT failed"),
            ),
            // no transaction open after an INSERT with conditions: only
            // a commit could have ended it, with rows nobody can place
            (
                Some(&opened),
                Some(&returned_warning),
                Some(&committed),
                true,
                Verdict::Unknown("committed, but not one id per row"),
            ),
            // the settling statement never returns rows
            (
                Some(&opened),
                Some(&returned),
                Some(&returned),
                true,
                Verdict::Unknown("the settling statement returned rows"),
            ),
            // committed although not one id per row: nobody can tell
            (
                Some(&opened),
                Some(&returned_short),
                Some(&committed),
                true,
                Verdict::Unknown("committed, but not one id per row"),
            ),
            (
                Some(&opened),
                Some(&plain),
                Some(&committed),
                true,
                Verdict::Unknown("committed, but not one id per row"),
            ),
            // the commit itself failed
            (
                Some(&opened),
                Some(&returned),
                Some(&conflict),
                true,
                Verdict::RollBack("commit failed"),
            ),
            // stopped from outside: it may have committed first
            (
                Some(&opened),
                Some(&returned),
                Some(&killed),
                true,
                Verdict::Unknown("the settling statement was interrupted"),
            ),
            // the transaction did not open: the INSERT stands as it is
            (
                Some(&not_opened),
                Some(&duplicate),
                Some(&committed),
                true,
                Verdict::NotApplied("transaction did not open"),
            ),
            (
                Some(&not_opened),
                Some(&returned),
                Some(&committed),
                true,
                all.clone(),
            ),
            (
                Some(&not_opened),
                Some(&returned_warning),
                Some(&rolled_back),
                true,
                Verdict::Unknown("the transaction did not open and the INSERT stood"),
            ),
            // lost at each point after the batch was sent
            (
                None,
                None,
                None,
                true,
                Verdict::Unknown("connection lost before the transaction opened"),
            ),
            (
                Some(&opened),
                None,
                None,
                true,
                Verdict::Unknown("connection lost during the INSERT"),
            ),
            (
                Some(&opened),
                Some(&returned),
                None,
                true,
                Verdict::Unknown("connection lost during the commit"),
            ),
        ];
        for (i, (opened, insert, settled, returning, want)) in cases.into_iter().enumerate() {
            assert_eq!(decide(opened, insert, settled, returning), want, "case {i}");
        }
    }

    #[test]
    fn a_member_of_several_rows_is_told_its_first_id_and_its_count() {
        let rows = [
            RowFate::Inserted(7),
            RowFate::Inserted(10),
            RowFate::Inserted(13),
        ];
        assert_eq!(
            member_result(&rows),
            MemberResult::Inserted {
                insert_id: 7,
                rows: 3
            }
        );
        let weights = [1, 3, 1];
        let clean = [RowFate::Inserted(1); 5];
        assert!(!skip_splits_a_member(&clean, &weights));
        let mut alone_skipped = clean;
        alone_skipped[0] = RowFate::Skipped(1062);
        alone_skipped[4] = RowFate::Skipped(1062);
        assert!(
            !skip_splits_a_member(&alone_skipped, &weights),
            "single-row members run alone"
        );
        let mut split = clean;
        split[2] = RowFate::Skipped(1062);
        assert!(skip_splits_a_member(&split, &weights));
    }

    #[test]
    fn members_are_told_their_own_ids_or_to_run_alone() {
        assert_eq!(
            member_result(&[RowFate::Inserted(11)]),
            MemberResult::Inserted {
                insert_id: 11,
                rows: 1
            }
        );
        assert_eq!(
            member_result(&[RowFate::Skipped(4025)]),
            MemberResult::RunAlone(Isolation::Skipped(4025))
        );
    }

    /// An INSERT of three rows that put in two (ids 7 and 8) with one
    /// warning, `LAST_INSERT_ID()` 41 before it.
    fn two_of_three_returned() -> QueryResult {
        QueryResult::Rows {
            rows: vec![
                vec![Some(b"7".to_vec()), Some(b"41".to_vec())].into(),
                vec![Some(b"8".to_vec()), Some(b"41".to_vec())].into(),
            ],
            status: StatusFlags::empty(),
            warnings: 1,
        }
    }

    /// The report of one condition kept out of one:
    /// the `errno:row` list, and the committed column when given.
    fn skip_report(list: &str, committed: Option<&[u8]>) -> QueryResult {
        let mut row = vec![
            Some(b"1".to_vec()),
            Some(b"1".to_vec()),
            Some(list.as_bytes().to_vec()),
        ];
        row.extend(committed.map(|c| Some(c.to_vec())));
        QueryResult::Rows {
            rows: vec![row.into()],
            status: StatusFlags::empty(),
            warnings: 1,
        }
    }

    #[test]
    fn a_report_of_skipped_rows_commits_the_rest_and_anything_else_rolls_back() {
        let two_of_three = two_of_three_returned();
        let report = |list: &str| skip_report(list, None);
        assert_eq!(
            verdict_on_report(&two_of_three, &report("1062:2 "), true, 3),
            Verdict::CommitSkipping(vec![
                RowFate::Inserted(7),
                RowFate::Skipped(1062),
                RowFate::Inserted(8)
            ])
        );
        assert_eq!(
            verdict_on_report(&two_of_three, &report("1265:2 "), true, 3),
            Verdict::RollBack("a condition other than a skipped row")
        );
        // The report names one skipped row, but only one row came back.
        let one = ids(&["7"], 1);
        assert_eq!(
            verdict_on_report(&one, &report("1062:2 "), true, 3),
            Verdict::RollBack("skipped rows and returned rows disagree")
        );
        // A report that failed, or came back without rows, committed
        // nothing.
        for failed in [err(1436, b"HY000"), ok(0, 1)] {
            assert_eq!(
                verdict_on_report(&two_of_three, &failed, true, 3),
                Verdict::RollBack("no report of the INSERT's conditions")
            );
        }
        // Without RETURNING the rows that went in are counted.
        assert_eq!(
            verdict_on_report(&ok(2, 1), &report("1062:1 "), false, 3),
            Verdict::CommitSkipping(vec![
                RowFate::Skipped(1062),
                RowFate::Inserted(0),
                RowFate::Inserted(0)
            ])
        );
    }

    #[test]
    fn a_report_that_committed_is_final_and_never_claims_a_row_it_cannot_place() {
        let two_of_three = two_of_three_returned();
        let committed = |list: &str| skip_report(list, Some(b"1"));
        assert_eq!(
            verdict_on_report(&two_of_three, &committed("1062:2 "), true, 3),
            Verdict::CommittedSkipping(vec![
                RowFate::Inserted(7),
                RowFate::Skipped(1062),
                RowFate::Inserted(8)
            ])
        );
        // Committed, but the rows that came back do not fit the report:
        // nobody may be told their row went in.
        let one = ids(&["7"], 1);
        assert_eq!(
            verdict_on_report(&one, &committed("1062:2 "), true, 3),
            Verdict::Unknown("committed, but not one fate per row")
        );
    }

    #[test]
    fn a_report_sent_in_the_settling_statements_place_decides_alone() {
        let opened = ok(0, 0);
        let two_of_three = two_of_three_returned();
        let committed = skip_report("1062:2 ", Some(b"1"));
        let decide = |insert: Option<&QueryResult>, report: Option<&QueryResult>| {
            let answers = Answers {
                opened: Some(&opened),
                insert,
                settled: report,
            };
            verdict_reported(answers, true, 3)
        };
        assert_eq!(
            decide(Some(&two_of_three), Some(&committed)),
            Verdict::CommittedSkipping(vec![
                RowFate::Inserted(7),
                RowFate::Skipped(1062),
                RowFate::Inserted(8)
            ])
        );
        // A clean batch: no conditions, committed by the report.
        let clean = ids(&["7", "8", "9"], 0);
        let clean_report = QueryResult::Rows {
            rows: vec![vec![
                Some(b"0".to_vec()),
                Some(b"0".to_vec()),
                Some(Vec::new()),
                Some(b"1".to_vec()),
            ]
            .into()],
            status: StatusFlags::empty(),
            warnings: 0,
        };
        assert_eq!(
            decide(Some(&clean), Some(&clean_report)),
            Verdict::CommittedSkipping([7, 8, 9].map(RowFate::Inserted).to_vec())
        );
        // A failed INSERT put nothing in, whatever its report says.
        assert_eq!(
            decide(Some(&err(1213, b"40001")), Some(&committed)),
            Verdict::RollBack("the INSERT failed")
        );
        // A report that failed (its COMMIT, say) committed nothing; one
        // stopped from outside may have committed before it stopped.
        assert_eq!(
            decide(Some(&two_of_three), Some(&err(1213, b"40001"))),
            Verdict::RollBack("no report of the INSERT's conditions")
        );
        for code in INTERRUPTED {
            assert_eq!(
                decide(Some(&two_of_three), Some(&err(code, b"70100"))),
                Verdict::Unknown("the report was interrupted"),
                "{code}"
            );
        }
        // Answers that stop leave the outcome unknown.
        assert_eq!(
            decide(Some(&two_of_three), None),
            Verdict::Unknown("connection lost during the commit")
        );
        assert_eq!(
            decide(None, None),
            Verdict::Unknown("connection lost during the INSERT")
        );
    }

    #[test]
    fn the_last_insert_id_before_the_batch_is_the_second_returned_column() {
        let two_columns = QueryResult::Rows {
            rows: vec![vec![Some(b"7".to_vec()), Some(b"41".to_vec())].into()],
            status: StatusFlags::empty(),
            warnings: 1,
        };
        assert_eq!(previous_last_insert_id(Some(&two_columns)), Some(41));
        assert_eq!(previous_last_insert_id(Some(&ids(&["7"], 0))), None);
        assert_eq!(previous_last_insert_id(Some(&ids(&[], 0))), None);
        assert_eq!(previous_last_insert_id(Some(&err(1062, b"23000"))), None);
        assert_eq!(previous_last_insert_id(None), None);
    }
}
