//! What a batch key's recent `INSERT IGNORE` batches met: whether each
//! left conditions (a skipped row, a warning). A key whose batches mostly
//! do sends the report of its conditions in the batch's first write
//! instead of asking after the settling statement, which spares those
//! batches a round trip; a key whose batches are mostly clean keeps the
//! bare settling statement, which spares the server the report (about
//! 75–90 µs of its CPU per batch on 10.11, docs/benchmarks-batch.md).
//!
//! Shared by every session that batches under the key, without a lock:
//! one bit per batch, newest lowest, in one atomic word. A lost update
//! between two leaders only shifts one batch's bit, which the next
//! batches outweigh.

use std::sync::atomic::{AtomicU32, Ordering};

/// Batches remembered.
const WINDOW: u32 = 16;

/// Of the last [`WINDOW`] batches, how many must have left conditions
/// for the next to send its report at once. Below half, the bare
/// settling statement costs the server less overall than a report in
/// every batch; above, the report would be asked for anyway.
const PIPELINE_FROM: u32 = WINDOW / 2 + 1;

/// The key's recent batches, one bit each (1: it left conditions).
#[derive(Debug, Default)]
pub(crate) struct RecentBatches {
    bits: AtomicU32,
}

impl RecentBatches {
    /// A batch of the key settled; `conditions`: its INSERT left any.
    pub(crate) fn record(&self, conditions: bool) {
        let bits = self.bits.load(Ordering::Relaxed);
        self.bits
            .store(shifted_in(bits, conditions), Ordering::Relaxed);
    }

    /// Whether the next batch should send its report in its first write.
    pub(crate) fn expect_conditions(&self) -> bool {
        mostly_conditions(self.bits.load(Ordering::Relaxed))
    }
}

fn shifted_in(bits: u32, conditions: bool) -> u32 {
    let mask = (1u32 << WINDOW) - 1;
    ((bits << 1) | u32::from(conditions)) & mask
}

fn mostly_conditions(bits: u32) -> bool {
    bits.count_ones() >= PIPELINE_FROM
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_and_a_clean_key_send_the_bare_settling_statement() {
        let recent = RecentBatches::default();
        assert!(!recent.expect_conditions());
        for _ in 0..100 {
            recent.record(false);
        }
        assert!(!recent.expect_conditions());
    }

    #[test]
    fn a_key_whose_batches_mostly_meet_conditions_reports_at_once() {
        let recent = RecentBatches::default();
        // One in four, as 1 % repeats in batches of about 28 rows.
        for i in 0..64 {
            recent.record(i % 4 == 0);
            assert!(!recent.expect_conditions(), "batch {i}");
        }
        // Three in four, as 5 % repeats.
        let mut reported = 0;
        for i in 0..64 {
            recent.record(i % 4 != 0);
            reported += usize::from(recent.expect_conditions());
        }
        assert!(reported > 50, "{reported} of 64");
    }

    #[test]
    fn the_choice_follows_the_last_sixteen_batches_only() {
        let recent = RecentBatches::default();
        for _ in 0..WINDOW {
            recent.record(true);
        }
        assert!(recent.expect_conditions());
        for clean in 1..=WINDOW {
            recent.record(false);
            let dirty_left = WINDOW - clean;
            assert_eq!(
                recent.expect_conditions(),
                dirty_left >= PIPELINE_FROM,
                "after {clean} clean batches"
            );
        }
        assert_eq!(
            recent.bits.load(Ordering::Relaxed),
            0,
            "older bits drop out"
        );
    }
}
