use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// [`settings`] with room for 100-row groups, so only the self-clocking
/// rule decides when rows leave.
fn roomy_settings() -> BatchSettings {
    BatchSettings {
        max_batch_size: 100,
        max_batch_bytes: 1 << 20,
        max_queued_rows: 1000,
        ..settings()
    }
}

fn settings() -> BatchSettings {
    BatchSettings {
        initial_delay: ms(0),
        min_delay: ms(0),
        max_delay: ms(5),
        max_batch_size: 3,
        max_batch_bytes: 100,
        write_threshold: 100.0,
        adaptive_step: ms(1),
        metrics_interval: ms(100),
        max_queued_rows: 5,
    }
}

/// Asserts the item was accepted and returns the ready groups.
fn accept<K, T: std::fmt::Debug>(
    (ok, ready): (Result<(), T>, Vec<Dispatch<K, T>>),
) -> Vec<Dispatch<K, T>> {
    ok.expect("accepted");
    ready
}

fn items<K, T: Clone>(ready: &[Dispatch<K, T>]) -> Vec<Vec<T>> {
    ready.iter().map(|d| d.items.clone()).collect()
}

#[test]
fn idle_row_leaves_at_once() {
    let t0 = Instant::now();
    let mut core = BatchCore::new(settings(), t0);
    let (ok, ready) = core.submit(t0, "k", 1, 10, None);
    assert!(ok.is_ok());
    assert_eq!(items(&ready), vec![vec![1]]);
    assert_eq!(core.queued(), 0);
}

#[test]
fn rows_behind_an_in_flight_batch_leave_together_when_it_returns() {
    let t0 = Instant::now();
    let mut core = BatchCore::new(settings(), t0);
    accept(core.submit(t0, "k", 1, 10, None));
    assert!(core.submit(t0, "k", 2, 10, None).1.is_empty());
    assert!(core.submit(t0 + ms(1), "k", 3, 10, None).1.is_empty());
    assert_eq!(core.queued(), 2);
    let ready = core.complete(t0 + ms(2), &"k", 1, false);
    assert_eq!(items(&ready), vec![vec![2, 3]]);
    // Another key is independent.
    assert_eq!(
        items(&core.submit(t0 + ms(2), "other", 9, 10, None).1),
        vec![vec![9]]
    );
}

#[test]
fn rows_behind_a_group_in_flight_wait_for_it_however_many_until_full() {
    let t0 = Instant::now();
    let mut core = BatchCore::new(roomy_settings(), t0);
    accept(core.submit(t0, "k", 0, 1, None));
    for i in 1..100 {
        assert!(
            accept(core.submit(t0, "k", i, 1, None)).is_empty(),
            "row {i}"
        );
    }
    // The hundredth fills a batch, which leaves although one is in flight.
    let full: Vec<u32> = (1..=100).collect();
    assert_eq!(
        items(&accept(core.submit(t0, "k", 100, 1, None))),
        vec![full]
    );
    assert!(accept(core.submit(t0, "k", 101, 1, None)).is_empty());
    // It waits for both groups ahead of it.
    assert!(core.complete(t0, &"k", 1, false).is_empty());
    assert_eq!(items(&core.complete(t0, &"k", 100, false)), vec![vec![101]]);
}

#[test]
fn a_group_waiting_for_its_commit_lets_the_next_one_execute() {
    let t0 = Instant::now();
    let mut core = BatchCore::new(settings(), t0);
    assert_eq!(
        items(&accept(core.submit(t0, "k", 1, 10, None))),
        vec![vec![1]]
    );
    assert!(accept(core.submit(t0, "k", 2, 10, None)).is_empty());
    assert!(accept(core.submit(t0, "k", 3, 10, None)).is_empty());
    // The first group executed; while it commits, the queue executes.
    assert_eq!(items(&core.committing(t0, &"k", 1)), vec![vec![2, 3]]);
    // Rows behind the second (executing) group wait for it, not for the
    // first group's commit.
    assert!(accept(core.submit(t0, "k", 4, 10, None)).is_empty());
    assert!(accept(core.submit(t0, "k", 5, 10, None)).is_empty());
    assert!(core.complete(t0, &"k", 1, true).is_empty());
    assert_eq!(items(&core.committing(t0, &"k", 2)), vec![vec![4, 5]]);
    assert!(core.complete(t0, &"k", 2, true).is_empty());
    // A group that ends without committing (a lone row, a rollback)
    // releases the rows behind it too.
    assert!(accept(core.submit(t0, "k", 6, 10, None)).is_empty());
    assert_eq!(items(&core.complete(t0, &"k", 2, false)), vec![vec![6]]);
    assert!(core.complete(t0, &"k", 1, false).is_empty());
    assert_eq!(core.queued(), 0);
}

#[test]
fn a_small_queue_waits_for_a_larger_group_commit() {
    let t0 = Instant::now();
    let mut core = BatchCore::new(roomy_settings(), t0);
    accept(core.submit(t0, "k", 0, 10, None));
    // A group of 10 executes and then waits for its commit.
    assert!(core.committing(t0, &"k", 10).is_empty());
    // Nine rows are too few to start the next group: they wait.
    for i in 1..=9 {
        let ready = accept(core.submit(t0, "k", i, 10, None));
        assert!(ready.is_empty(), "row {i}");
    }
    // The tenth makes the queue as large as the committing group.
    let group: Vec<u32> = (1..=10).collect();
    assert_eq!(
        items(&accept(core.submit(t0, "k", 10, 10, None))),
        vec![group]
    );
    // Rows behind that executing group wait for it again.
    assert!(accept(core.submit(t0, "k", 11, 10, None)).is_empty());
    assert!(core.complete(t0, &"k", 10, true).is_empty());
    assert_eq!(items(&core.complete(t0, &"k", 10, false)), vec![vec![11]]);
    assert!(core.complete(t0, &"k", 1, false).is_empty());
    assert_eq!(core.queued(), 0);
}

#[test]
fn waiting_behind_a_slow_batch_is_bounded_by_max_delay() {
    let t0 = Instant::now();
    let mut s = settings();
    s.initial_delay = ms(5);
    let mut core = BatchCore::new(s, t0);
    accept(core.submit(t0, "k", 1, 10, None));
    accept(core.submit(t0 + ms(1), "k", 2, 10, None));
    assert_eq!(core.next_deadline(), Some(t0 + ms(6)));
    assert!(core.poll(t0 + ms(5)).is_empty());
    assert_eq!(items(&core.poll(t0 + ms(6))), vec![vec![2]]);
}

#[test]
fn hint_shortens_the_wait() {
    let t0 = Instant::now();
    let mut s = settings();
    s.initial_delay = ms(5);
    let mut core = BatchCore::new(s, t0);
    accept(core.submit(t0, "k", 1, 10, None));
    accept(core.submit(t0, "k", 2, 10, Some(ms(1))));
    assert_eq!(core.next_deadline(), Some(t0 + ms(1)));
}

#[test]
fn full_batches_leave_even_while_one_is_in_flight() {
    let t0 = Instant::now();
    let mut core = BatchCore::new(settings(), t0);
    accept(core.submit(t0, "k", 0, 10, None));
    accept(core.submit(t0, "k", 1, 10, None));
    accept(core.submit(t0, "k", 2, 10, None));
    let (_, ready) = core.submit(t0, "k", 3, 10, None);
    assert_eq!(items(&ready), vec![vec![1, 2, 3]]);
}

#[test]
fn byte_limit_splits_groups() {
    let t0 = Instant::now();
    let mut core = BatchCore::new(settings(), t0);
    accept(core.submit(t0, "k", 0, 10, None));
    accept(core.submit(t0, "k", 1, 60, None));
    let (_, ready) = core.submit(t0, "k", 2, 60, None);
    assert_eq!(items(&ready), vec![vec![1]]);
    assert_eq!(core.queued(), 1);
}

#[test]
fn full_queues_refuse_and_hand_the_item_back() {
    let t0 = Instant::now();
    let mut s = settings();
    s.max_batch_size = 100;
    let mut core = BatchCore::new(s, t0);
    accept(core.submit(t0, "k", 0, 1, None));
    for i in 1..=5 {
        assert!(core.submit(t0, "k", i, 1, None).0.is_ok());
    }
    assert_eq!(core.submit(t0, "k", 6, 1, None).0, Err(6));
}

#[test]
fn adaptive_delay_grows_under_load_and_shrinks_when_idle() {
    let t0 = Instant::now();
    let mut core = BatchCore::new(settings(), t0);
    // 50 rows in 100 ms = 500/s, above the 100/s threshold.
    for window in 0..3 {
        for i in 0..50 {
            let now = t0 + ms(100 * window + i * 2);
            let _ = core.submit(now, "k", i, 1, None);
            core.complete(now, &"k", 1, false);
        }
    }
    let _ = core.poll(t0 + ms(300));
    assert_eq!(core.delay(), ms(3));
    assert!(core.rate() > 100.0);
    assert_eq!(core.take_adjustments(), vec![Adjustment::Up; 3]);
    // Never above max_delay.
    for window in 4..20 {
        for i in 0..50 {
            let _ = core.submit(t0 + ms(100 * window + i), "k", i, 1, None);
            core.complete(t0 + ms(100 * window + i), &"k", 1, false);
        }
    }
    assert_eq!(core.delay(), ms(5));
    // A quiet second brings it back to the minimum in one go.
    let _ = core.poll(t0 + ms(3000));
    assert_eq!(core.delay(), ms(0));
}

#[test]
fn min_delay_makes_an_idle_row_wait_for_company() {
    let t0 = Instant::now();
    let mut s = settings();
    s.initial_delay = ms(2);
    s.min_delay = ms(2);
    let mut core = BatchCore::new(s, t0);
    assert!(core.submit(t0, "k", 1, 1, None).1.is_empty());
    assert!(core.submit(t0 + ms(1), "k", 2, 1, None).1.is_empty());
    assert_eq!(items(&core.poll(t0 + ms(2))), vec![vec![1, 2]]);
}

#[test]
fn a_grown_delay_never_holds_back_a_row_with_nothing_in_flight() {
    // One fast client: a high rate grows the delay, but with nothing in
    // flight its rows still leave at once.
    let t0 = Instant::now();
    let mut core = BatchCore::new(settings(), t0);
    for i in 0..500u64 {
        let now = t0 + Duration::from_micros(i * 400);
        assert_eq!(
            items(&accept(core.submit(now, "k", i, 1, None))),
            vec![vec![i]]
        );
        core.complete(now, &"k", 1, false);
    }
    assert!(core.delay() > ms(0));
}

#[test]
fn drain_flushes_everything() {
    let t0 = Instant::now();
    let mut core = BatchCore::new(settings(), t0);
    accept(core.submit(t0, "a", 1, 1, None));
    accept(core.submit(t0, "a", 2, 1, None));
    accept(core.submit(t0, "b", 3, 1, None));
    accept(core.submit(t0, "b", 4, 1, None));
    let mut ready = items(&core.drain());
    ready.sort();
    assert_eq!(ready, vec![vec![2], vec![4]]);
    assert_eq!(items(&core.submit(t0, "a", 5, 1, None).1), vec![vec![5]]);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Submit(u8, u16),
        Committing(u8, u8),
        Complete(u8, u8, bool),
        Advance(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..3, 1u16..60).prop_map(|(k, b)| Op::Submit(k, b)),
            (0u8..3, 1u8..8).prop_map(|(k, n)| Op::Committing(k, n)),
            (0u8..3, 1u8..8, proptest::bool::ANY).prop_map(|(k, n, c)| Op::Complete(k, n, c)),
            (0u8..10).prop_map(Op::Advance),
        ]
    }

    proptest! {
        /// Every accepted item is dispatched exactly once, within the size
        /// and byte limits, and nothing is lost at drain.
        #[test]
        fn nothing_lost_or_duplicated(ops in proptest::collection::vec(op(), 0..200)) {
            let t0 = Instant::now();
            let s = settings();
            let mut core = BatchCore::new(s.clone(), t0);
            let mut now = t0;
            let mut accepted = Vec::new();
            let mut dispatched = Vec::new();
            let mut next = 0u32;
            let record = |ready: Vec<Dispatch<u8, (u32, u16)>>, out: &mut Vec<u32>| {
                for d in ready {
                    assert!(d.items.len() <= s.max_batch_size);
                    let bytes: usize = d.items.iter().map(|(_, b)| usize::from(*b)).sum();
                    assert!(d.items.len() == 1 || bytes <= s.max_batch_bytes);
                    out.extend(d.items.iter().map(|(id, _)| *id));
                }
            };
            for op in ops {
                match op {
                    Op::Submit(k, b) => {
                        let (ok, ready) = core.submit(now, k, (next, b), usize::from(b), None);
                        if ok.is_ok() { accepted.push(next); }
                        next += 1;
                        record(ready, &mut dispatched);
                    }
                    Op::Committing(k, n) => {
                        record(core.committing(now, &k, usize::from(n)), &mut dispatched)
                    }
                    Op::Complete(k, n, c) => {
                        record(core.complete(now, &k, usize::from(n), c), &mut dispatched)
                    }
                    Op::Advance(n) => {
                        now += ms(u64::from(n));
                        record(core.poll(now), &mut dispatched);
                    }
                }
            }
            record(core.drain(), &mut dispatched);
            prop_assert_eq!(core.queued(), 0);
            dispatched.sort();
            prop_assert_eq!(dispatched, accepted);
        }
    }
}
