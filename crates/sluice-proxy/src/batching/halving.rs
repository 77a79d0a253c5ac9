//! Halving a batch that failed as a whole. Anything but skipped rows (a
//! value `IGNORE` would change, an error it does not turn into a warning,
//! a duplicate key on a server that cannot name the row) rolls a batch
//! back; running every member alone then costs one statement per member.
//! Instead each half runs as a batch of its own, and only the half that
//! fails is halved again: a bad row costs about 2·log2 N statements, and
//! the good rows still go in batched. A budget bounds the statements when
//! many rows are bad; what it leaves runs alone.

/// The two halves of a failed part, first half first (rows keep their
/// order, so ids stay in arrival order).
pub(super) fn halves<T>(mut part: Vec<T>) -> (Vec<T>, Vec<T>) {
    let second = part.split_off(part.len() / 2);
    (part, second)
}

/// How many batch statements a group of `rows` rows may use, its own
/// first try included: enough to find one bad row by halving (two per
/// level), and no more, so that many bad rows cost little more than
/// running everyone alone.
pub(super) fn batch_budget(rows: usize) -> usize {
    let levels = rows.next_power_of_two().trailing_zeros() as usize;
    1 + 2 * levels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_keep_the_order_and_split_in_the_middle() {
        assert_eq!(halves(vec![1, 2, 3, 4, 5]), (vec![1, 2], vec![3, 4, 5]));
        assert_eq!(halves(vec![1, 2]), (vec![1], vec![2]));
    }

    #[test]
    fn the_budget_finds_one_bad_row_and_little_more() {
        assert_eq!(batch_budget(1), 1);
        assert_eq!(batch_budget(2), 3);
        assert_eq!(batch_budget(32), 11);
        assert_eq!(batch_budget(33), 13);
        // One bad row among 32: the whole batch, then at each of five
        // levels the good half and the bad half (the last bad half is a
        // single row, run alone): within the budget.
        let mut used = 1;
        let mut bad_part = 32;
        while bad_part > 1 {
            bad_part /= 2;
            used += if bad_part > 1 { 2 } else { 1 };
        }
        assert!(used <= batch_budget(32), "{used}");
    }
}
