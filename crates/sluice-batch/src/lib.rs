//! The batch manager: it collects items (rows) under a batch key and
//! decides when a group leaves as one batch. It does not know what a row
//! or a batch is: the caller hands it items and receives groups through a
//! [`Dispatcher`], and says when a dispatched group has finished.
//!
//! When a group leaves:
//! - when nothing is in flight for its key: after the adaptive delay if
//!   the key's last group had company, else after `min_delay` (zero by
//!   default: at once), so an idle system or a lone client adds no
//!   latency;
//! - while a group of the same key is executing, newcomers wait for it
//!   and leave together when it completes, or as soon as it has executed
//!   and only waits for its commit (the caller says so with
//!   `committing`) if they are at least as many as the rows waiting for
//!   commits (self-clocking), but never longer than `max_delay`;
//! - when the group is full (`max_batch_size` items or `max_batch_bytes`);
//! - the adaptive delay moves between `min_delay` and `max_delay` with
//!   the measured rate of submissions;
//! - at shutdown, everything at once.
//!
//! The decision logic is [`core::BatchCore`], a pure state machine driven
//! by explicit instants (tested with a fake clock); [`BatchManager`] runs
//! it on tokio with a timer task.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use sluice_batch::core::{BatchCore, Dispatch};
//! use sluice_batch::BatchSettings;
//!
//! let mut core = BatchCore::new(BatchSettings::default(), Instant::now());
//! let t0 = Instant::now();
//! // Nothing in flight: the first row leaves at once.
//! let (accepted, ready) = core.submit(t0, "t", 1, 10, None);
//! assert!(accepted.is_ok());
//! assert_eq!(ready, vec![Dispatch { key: "t", items: vec![1] }]);
//! // While it is in flight, the next rows wait for it...
//! assert!(core.submit(t0, "t", 2, 10, None).1.is_empty());
//! assert!(core.submit(t0, "t", 3, 10, None).1.is_empty());
//! // ...and leave together when it completes.
//! let ready = core.complete(t0 + Duration::from_millis(1), &"t", 1, false);
//! assert_eq!(ready[0].items, vec![2, 3]);
//! ```
#![deny(missing_docs)]

pub mod core;
mod manager;
mod settings;

pub use manager::{BatchManager, Dispatcher, ManagerStats};
pub use settings::BatchSettings;
