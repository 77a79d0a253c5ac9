//! A row waiting in a batch, what its session is told, and how a ready
//! group is handed to its leader.

use tokio::sync::oneshot;

use sluice_batch::Dispatcher;

use super::key::BatchKey;

/// One client's row in a batch.
pub(crate) struct Member {
    /// Sluice's id of the member's client connection (`conn_id` in logs).
    pub(crate) conn_id: u64,
    /// The row tuples, `( … )` or `( … ), ( … )`, as they go into
    /// `VALUES`.
    pub(crate) row: bytes::Bytes,
    /// How many tuples `row` holds.
    pub(crate) rows: usize,
    /// Whether the row lets the server generate the AUTO_INCREMENT id.
    pub(crate) generates_id: bool,
    /// Where the member's session waits for its assignment.
    pub(crate) reply: oneshot::Sender<Assignment>,
}

/// What a waiting session is told.
pub(crate) enum Assignment {
    /// Run the batch on your connection: these are the other members.
    Lead(Vec<Member>),
    /// Your row's fate.
    Done(MemberResult),
}

/// The outcome of one member's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberResult {
    /// Inserted as part of a batch; the id the server assigned or the
    /// explicit id (0 for a table without AUTO_INCREMENT). For a member of
    /// several rows, its first row's, and `rows` of them went in.
    Inserted { insert_id: u64, rows: usize },
    /// Your row is not in the batch; run the statement alone on your own
    /// connection to get its own result.
    RunAlone(Isolation),
    /// The leader lost its connection while committing: nobody knows
    /// whether the rows were written.
    Unknown,
}

/// Why a row ran its own statement alone after its batch: the `reason`
/// label of `sluice_write_isolated_rows_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isolation {
    /// The batch skipped the row, with this error (`skips.rs`).
    Skipped(u16),
    /// Its batch failed as a whole, and halving left the row alone.
    BatchFailed,
    /// The leader's connection failed before its batch was sent.
    NotSent,
}

impl Isolation {
    /// Every label, to show each at 0 from the start.
    pub(crate) const LABELS: &'static [&'static str] = &[
        "duplicate_key",
        "foreign_key",
        "check_constraint",
        "no_partition",
        "batch_failed",
        "not_sent",
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Isolation::Skipped(1062) => "duplicate_key",
            Isolation::Skipped(1452) => "foreign_key",
            Isolation::Skipped(4025) => "check_constraint",
            Isolation::Skipped(1526) => "no_partition",
            // skips.rs commits no other skipped row.
            Isolation::Skipped(_) | Isolation::BatchFailed => "batch_failed",
            Isolation::NotSent => "not_sent",
        }
    }
}

/// Hands each ready group to one of its members, preferring one whose row
/// generates an id (so the leader's own `LAST_INSERT_ID()` can be set
/// right afterwards).
pub(crate) struct LeaderPicker;

impl Dispatcher<BatchKey, Member> for LeaderPicker {
    fn dispatch(&self, _key: BatchKey, mut members: Vec<Member>) {
        loop {
            let Some(index) = members
                .iter()
                .position(|m| m.generates_id)
                .or(if members.is_empty() { None } else { Some(0) })
            else {
                return;
            };
            let leader = members.remove(index);
            match leader.reply.send(Assignment::Lead(members)) {
                Ok(()) => return,
                // That session is gone (aborted at the end of a drain):
                // give the group to the next one.
                Err(Assignment::Lead(rest)) => members = rest,
                Err(Assignment::Done(_)) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_isolation_has_a_listed_label() {
        for isolation in [
            Isolation::Skipped(1062),
            Isolation::Skipped(1452),
            Isolation::Skipped(4025),
            Isolation::Skipped(1526),
            Isolation::BatchFailed,
            Isolation::NotSent,
        ] {
            assert!(
                Isolation::LABELS.contains(&isolation.label()),
                "{isolation:?}"
            );
        }
        for errno in super::super::skips::SKIPPING_ERRORS {
            assert_ne!(Isolation::Skipped(errno).label(), "batch_failed", "{errno}");
        }
    }
}
