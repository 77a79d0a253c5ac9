//! Label children resolved once and cached, so the hot path does a read
//! lock and a hash lookup instead of `with_label_values` (which hashes the
//! values and takes the vector's own lock, and allocates on first use).

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use prometheus::{IntCounter, IntCounterVec};

/// Children of a one-label counter family whose label values are static
/// strings chosen by the code (command names, reasons): bounded by the
/// binary, so no cap is needed. A few dozen at most, so a list scanned by
/// address (the same literal each time) beats hashing the text.
pub(crate) struct StaticCounters {
    family: IntCounterVec,
    children: RwLock<Vec<(&'static str, IntCounter)>>,
}

fn find<'c>(children: &'c [(&'static str, IntCounter)], label: &str) -> Option<&'c IntCounter> {
    children
        .iter()
        .find(|(known, _)| std::ptr::eq(*known, label))
        .or_else(|| children.iter().find(|(known, _)| *known == label))
        .map(|(_, counter)| counter)
}

impl StaticCounters {
    pub(crate) fn new(family: IntCounterVec) -> Self {
        StaticCounters {
            family,
            children: RwLock::new(Vec::new()),
        }
    }

    /// Makes `label` appear (at 0) before it is first counted, so that
    /// `rate()` sees the first increment.
    pub(crate) fn preset(&self, label: &'static str) {
        self.child(label);
    }

    pub(crate) fn inc(&self, label: &'static str) {
        if let Some(counter) = find(
            &self.children.read().unwrap_or_else(PoisonError::into_inner),
            label,
        ) {
            counter.inc();
            return;
        }
        self.child(label).inc();
    }

    /// Every label counted at least once, with its count, sorted.
    pub(crate) fn counted(&self) -> Vec<(&'static str, u64)> {
        let mut out: Vec<(&'static str, u64)> = self
            .children
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(label, counter)| (*label, counter.get()))
            .filter(|(_, count)| *count > 0)
            .collect();
        out.sort();
        out
    }

    fn child(&self, label: &'static str) -> IntCounter {
        let mut children = self
            .children
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(counter) = find(&children, label) {
            return counter.clone();
        }
        let counter = self.family.with_label_values(&[label]);
        children.push((label, counter.clone()));
        counter
    }
}

/// The counters of one batch key's table.
#[derive(Clone)]
pub(crate) struct TableChildren {
    pub(crate) batches: IntCounter,
    pub(crate) rows: IntCounter,
}

/// Per-table children of `sluice_write_batches_total` and
/// `sluice_write_batched_total`, with at most `cap` distinct table values;
/// any further table is counted under `other`.
pub(crate) struct TableCounters {
    batches: IntCounterVec,
    rows: IntCounterVec,
    cap: usize,
    known: RwLock<HashMap<Box<str>, TableChildren>>,
    other: TableChildren,
}

impl TableCounters {
    pub(crate) fn new(
        batches: IntCounterVec,
        rows: IntCounterVec,
        cap: usize,
        other: &str,
    ) -> Self {
        let other = TableChildren {
            batches: batches.with_label_values(&[other]),
            rows: rows.with_label_values(&[other]),
        };
        TableCounters {
            batches,
            rows,
            cap,
            known: RwLock::new(HashMap::new()),
            other,
        }
    }

    /// The children that count `table`.
    pub(crate) fn children(&self, table: &str) -> TableChildren {
        {
            let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(children) = known.get(table) {
                return children.clone();
            }
            if known.len() >= self.cap {
                return self.other.clone();
            }
        }
        let mut known = self.known.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(children) = known.get(table) {
            return children.clone();
        }
        if known.len() >= self.cap {
            return self.other.clone();
        }
        let children = TableChildren {
            batches: self.batches.with_label_values(&[table]),
            rows: self.rows.with_label_values(&[table]),
        };
        known.insert(table.into(), children.clone());
        children
    }

    /// Counts one batch of `rows` rows for `table`, without cloning the
    /// children on the common path.
    pub(crate) fn record(&self, table: &str, rows: u64) {
        {
            let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
            let children = match known.get(table) {
                Some(children) => Some(children),
                None if known.len() >= self.cap => Some(&self.other),
                None => None,
            };
            if let Some(children) = children {
                children.batches.inc();
                children.rows.inc_by(rows);
                return;
            }
        }
        let children = self.children(table);
        children.batches.inc();
        children.rows.inc_by(rows);
    }

    /// Distinct table values tracked (not counting `other`).
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.known
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Opts;

    fn vec(name: &str) -> IntCounterVec {
        IntCounterVec::new(Opts::new(name, "test"), &["table"]).expect("valid family")
    }

    #[test]
    fn tables_beyond_the_cap_fold_into_other() {
        let counters = TableCounters::new(vec("b"), vec("r"), 3, "other");
        for i in 0..10 {
            counters.record(&format!("s.t{i}"), 2);
        }
        counters.record("s.t0", 5);
        assert_eq!(counters.tracked(), 3);
        assert_eq!(counters.batches.with_label_values(&["s.t0"]).get(), 2);
        assert_eq!(counters.rows.with_label_values(&["s.t0"]).get(), 7);
        assert_eq!(counters.batches.with_label_values(&["other"]).get(), 7);
        assert_eq!(counters.rows.with_label_values(&["other"]).get(), 14);
    }

    #[test]
    fn static_counters_count_per_label() {
        let family = vec("c");
        let counters = StaticCounters::new(family.clone());
        counters.preset("query");
        counters.inc("ping");
        counters.inc("ping");
        assert_eq!(family.with_label_values(&["query"]).get(), 0);
        assert_eq!(family.with_label_values(&["ping"]).get(), 2);
        // The same text from another place in the binary is the same label.
        let elsewhere: &'static str = Box::leak(String::from("ping").into_boxed_str());
        counters.inc(elsewhere);
        assert_eq!(family.with_label_values(&["ping"]).get(), 3);
        assert_eq!(counters.counted(), vec![("ping", 3)]);
    }
}
