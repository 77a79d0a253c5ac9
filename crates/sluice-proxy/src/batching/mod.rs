//! Write batching inside a session. The session loop hands a statement to
//! [`SessionBatching::offer`], the batch handler: admission decides
//! whether it may join a batch, and the statement then either leads its
//! batch on this session's own backend connection or is answered with the
//! result its leader sent. For statements it does not take, batching keeps
//! its view of the session true ([`SessionBatching::after_relay`]) and
//! settles what batched rows left owed before a statement could observe it
//! ([`SessionBatching::reconcile_before`]).
//!
//! One concept per module: [`context`] (what all sessions share),
//! `admission` (may this statement join, and as what), `handler` (queue,
//! wait, answer), `leader` (run a batch), `verdict` (what the server's
//! answers mean, pure), `upkeep` (what a relayed statement changed),
//! `skips` (rows the server skipped, pure), `recent` (what a key's
//! batches met lately), `halving` (a failed batch
//! split in two, pure), `owed` (effects a batched
//! member still has to see), `fingerprint` and
//! `facts` (what is read from the server), `key`, `member`, `prepared`,
//! `decline`, `stats`.

mod admission;
mod context;
mod decline;
mod facts;
mod fingerprint;
mod halving;
mod handler;
mod key;
mod leader;
mod member;
mod owed;
mod prepared;
mod recent;
mod skips;
mod stats;
mod upkeep;
mod verdict;

pub use self::context::{BatchContext, BatchMode, BatchingSettings};
pub use self::decline::Decline;
pub(crate) use self::handler::{Offer, SessionBatching};
pub use self::stats::BatchStats;
