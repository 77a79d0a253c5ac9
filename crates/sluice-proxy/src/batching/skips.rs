//! Rows the server skipped. A batch runs as `INSERT IGNORE`, so a row that
//! meets a duplicate key, a missing foreign-key parent, a failed CHECK
//! constraint or no partition for its value is skipped with a warning
//! instead of failing the whole statement. When the INSERT left any
//! condition, the settling statement keeps the transaction open and
//! reports each condition with the row it names (`GET DIAGNOSTICS …
//! ROW_NUMBER`, MariaDB 10.7 and later). These pure functions read that
//! report: which rows were skipped, and which id each other row got. Any
//! condition that is not a skipped row (a truncated value, an error, a
//! statement-level warning) means the batch is rolled back.

use super::verdict::returned_ids;
use crate::internal::QueryResult;

/// The errors `IGNORE` turns into "row skipped": duplicate key, no
/// referenced row, CHECK constraint failed, no partition for the value.
pub(super) const SKIPPING_ERRORS: [u16; 4] = [1062, 1452, 4025, 1526];

/// What became of one row of a batch that commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RowFate {
    /// In, with this id (0 for a table without AUTO_INCREMENT).
    Inserted(u64),
    /// Skipped by the server with this error; its member runs alone.
    Skipped(u16),
}

impl RowFate {
    pub(super) fn id(self) -> Option<u64> {
        match self {
            RowFate::Inserted(id) => Some(id),
            RowFate::Skipped(_) => None,
        }
    }
}

/// For each of the batch's `rows` rows, the error the server skipped it
/// with (`None`: not skipped), from the report (one row:
/// `@@warning_count`, the conditions kept, and `errno:row …`), or why the
/// batch cannot be committed as it stands.
pub(super) fn skipped_rows(
    report: &QueryResult,
    rows: usize,
) -> Result<Vec<Option<u16>>, &'static str> {
    let QueryResult::Rows { rows: lines, .. } = report else {
        return Err("no report of the INSERT's conditions");
    };
    let [line] = lines.as_slice() else {
        return Err("report of the INSERT's conditions unreadable");
    };
    let field = |i: usize| line.text(i);
    let (Some(warnings), Some(kept), Some(list)) = (field(0), field(1), field(2)) else {
        return Err("report of the INSERT's conditions unreadable");
    };
    if warnings != kept {
        // More conditions than `max_error_count` keeps: some rows unnamed.
        return Err("more conditions than the server keeps");
    }
    let mut skipped = vec![None; rows];
    let mut conditions = 0usize;
    for condition in list.split_ascii_whitespace() {
        conditions += 1;
        let (errno, row) = condition
            .split_once(':')
            .ok_or("report of the INSERT's conditions unreadable")?;
        let errno: u16 = errno.parse().map_err(|_| "unreadable error number")?;
        let row: usize = row.parse().map_err(|_| "unreadable row number")?;
        if !SKIPPING_ERRORS.contains(&errno) {
            return Err("a condition other than a skipped row");
        }
        let slot = row
            .checked_sub(1)
            .and_then(|i| skipped.get_mut(i))
            .ok_or("a condition names no row of the batch")?;
        if slot.is_some() {
            return Err("two conditions name one row");
        }
        *slot = Some(errno);
    }
    if kept.parse::<usize>() != Ok(conditions) {
        return Err("report of the INSERT's conditions unreadable");
    }
    Ok(skipped)
}

/// Whether the report says the settling statement committed (its fourth
/// column is 1).
pub(super) fn report_committed(report: &QueryResult) -> bool {
    matches!(report, QueryResult::Rows { rows, .. }
        if rows.len() == 1 && rows[0].cell(3) == Some(Some(b"1".as_slice())))
}

/// Each row's fate: its insert id (0 for every row of a table without
/// AUTO_INCREMENT), or the error it was skipped with; `None` when the
/// INSERT's result does not match the rows that were not skipped.
pub(super) fn ids_with_skips(
    insert: &QueryResult,
    returning: bool,
    skipped: &[Option<u16>],
) -> Option<Vec<RowFate>> {
    let went_in = skipped.iter().filter(|s| s.is_none()).count();
    let ids: Vec<u64> = match insert {
        QueryResult::Rows { rows, .. } if returning && rows.len() == went_in => returned_ids(rows)?,
        QueryResult::Ok { affected_rows, .. } if !returning && *affected_rows == went_in as u64 => {
            vec![0; went_in]
        }
        _ => return None,
    };
    let mut ids = ids.into_iter();
    skipped
        .iter()
        .map(|&s| match s {
            Some(errno) => Some(RowFate::Skipped(errno)),
            None => ids.next().map(RowFate::Inserted),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocol::StatusFlags;

    fn report(warnings: &str, kept: &str, list: &str) -> QueryResult {
        QueryResult::Rows {
            rows: vec![vec![
                Some(warnings.as_bytes().to_vec()),
                Some(kept.as_bytes().to_vec()),
                Some(list.as_bytes().to_vec()),
            ]
            .into()],
            status: StatusFlags::empty(),
            warnings: 0,
        }
    }

    fn returned(rows: &[(&str, &str)]) -> QueryResult {
        QueryResult::Rows {
            rows: rows
                .iter()
                .map(|(id, previous)| {
                    vec![
                        Some(id.as_bytes().to_vec()),
                        Some(previous.as_bytes().to_vec()),
                    ]
                    .into()
                })
                .collect(),
            status: StatusFlags::empty(),
            warnings: 2,
        }
    }

    #[test]
    fn skipped_rows_are_read_from_the_report_and_anything_else_refuses() {
        // As MariaDB 10.11 reported a batch with a duplicate, a missing
        // parent, a failed CHECK and a duplicate of an earlier row.
        let seen = report("4", "4", "1062:2 1452:3 4025:4 1062:6 ");
        assert_eq!(
            skipped_rows(&seen, 6),
            Ok(vec![
                None,
                Some(1062),
                Some(1452),
                Some(4025),
                None,
                Some(1062)
            ])
        );
        assert_eq!(
            skipped_rows(&report("1", "1", "1526:1"), 1),
            Ok(vec![Some(1526)])
        );
        for (case, want) in [
            (
                report("2", "2", "1062:2 1265:3"),
                "a condition other than a skipped row",
            ),
            (
                report("1", "1", "1213:0"),
                "a condition other than a skipped row",
            ),
            (
                report("70", "64", "1062:1"),
                "more conditions than the server keeps",
            ),
            (
                report("1", "1", "1062:7"),
                "a condition names no row of the batch",
            ),
            (
                report("1", "1", "1062:0"),
                "a condition names no row of the batch",
            ),
            (
                report("2", "2", "1062:2 1452:2"),
                "two conditions name one row",
            ),
            (
                report("2", "2", "1062:2"),
                "report of the INSERT's conditions unreadable",
            ),
            (
                report("1", "1", "1062-2"),
                "report of the INSERT's conditions unreadable",
            ),
            (
                QueryResult::Rows {
                    rows: vec![],
                    status: StatusFlags::empty(),
                    warnings: 0,
                },
                "report of the INSERT's conditions unreadable",
            ),
        ] {
            assert_eq!(skipped_rows(&case, 6), Err(want), "{case:?}");
        }
        let not_a_report = QueryResult::Ok {
            affected_rows: 0,
            last_insert_id: 0,
            status: StatusFlags::empty(),
            warnings: 0,
        };
        assert!(skipped_rows(&not_a_report, 6).is_err());
    }

    #[test]
    fn ids_go_to_the_rows_that_went_in_in_order() {
        use RowFate::{Inserted, Skipped};
        let skipped = [None, Some(1062), None, Some(1452)];
        let insert = returned(&[("15", "777"), ("16", "777")]);
        assert_eq!(
            ids_with_skips(&insert, true, &skipped),
            Some(vec![
                Inserted(15),
                Skipped(1062),
                Inserted(16),
                Skipped(1452)
            ])
        );
        // Every row skipped: nothing returned.
        assert_eq!(
            ids_with_skips(&returned(&[]), true, &[Some(1062), Some(1062)]),
            Some(vec![Skipped(1062), Skipped(1062)])
        );
        // Rows and skips that disagree: the batch cannot be read.
        assert_eq!(ids_with_skips(&insert, true, &[None, Some(1062)]), None);
        let plain = QueryResult::Ok {
            affected_rows: 2,
            last_insert_id: 0,
            status: StatusFlags::empty(),
            warnings: 2,
        };
        assert_eq!(
            ids_with_skips(&plain, false, &skipped),
            Some(vec![Inserted(0), Skipped(1062), Inserted(0), Skipped(1452)])
        );
        assert_eq!(ids_with_skips(&plain, false, &[None; 4]), None);
        assert_eq!(ids_with_skips(&plain, true, &skipped), None);
    }
}
