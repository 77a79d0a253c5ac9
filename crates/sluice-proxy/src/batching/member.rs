//! A row waiting in a batch, what its session is told, and how a ready
//! group is handed to its leader.

use tokio::sync::oneshot;

use sluice_batch::Dispatcher;

use super::key::BatchKey;

/// One client's row in a batch.
pub(crate) struct Member {
    /// Sluice's id of the member's client connection (`conn_id` in logs).
    pub(crate) conn_id: u64,
    /// The row tuple, `( … )`, as it goes into `VALUES`.
    pub(crate) row: bytes::Bytes,
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
    /// explicit id (0 for a table without AUTO_INCREMENT).
    Inserted { insert_id: u64 },
    /// The batch did not apply; run the statement alone on your own
    /// connection to get its own result.
    RunAlone,
    /// The leader lost its connection while committing: nobody knows
    /// whether the rows were written.
    Unknown,
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
