//! The batching decisions as a pure state machine: every call takes the
//! current instant, so tests drive it with a fake clock.

use std::collections::HashMap;
use std::hash::Hash;
use std::mem;
use std::time::{Duration, Instant};

use crate::settings::BatchSettings;

/// A group of items that leaves together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch<K, T> {
    /// The batch key they share.
    pub key: K,
    /// The items, in arrival order.
    pub items: Vec<T>,
}

struct Queue<T> {
    items: Vec<T>,
    bytes: usize,
    deadline: Option<Instant>,
    /// Groups of this key dispatched and not yet complete.
    in_flight: usize,
    /// Of those, the ones still executing (not yet waiting for their
    /// commit): one, or more only when full groups overflowed.
    executing: usize,
    /// Rows of the groups waiting for their commit.
    committing_rows: usize,
    /// Size of the last group that left: a key whose last group had
    /// company is batching, and its next row waits the adaptive delay.
    last_size: usize,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            items: Vec::new(),
            bytes: 0,
            deadline: None,
            in_flight: 0,
            executing: 0,
            committing_rows: 0,
            last_size: 0,
        }
    }
}

/// Direction of a delay adjustment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adjustment {
    /// The delay grew (rate above the threshold).
    Up,
    /// The delay shrank (rate below the threshold).
    Down,
}

/// Per-key queues, the self-clocking rule and the adaptive delay.
pub struct BatchCore<K, T> {
    settings: BatchSettings,
    queues: HashMap<K, Queue<T>>,
    queued: usize,
    delay: Duration,
    window_start: Instant,
    window_count: u64,
    rate: f64,
    adjustments: Vec<Adjustment>,
    draining: bool,
}

impl<K: Hash + Eq + Clone, T> BatchCore<K, T> {
    /// A core with no queues; `now` starts the first rate window.
    pub fn new(settings: BatchSettings, now: Instant) -> Self {
        BatchCore {
            delay: settings.initial_delay,
            settings,
            queues: HashMap::new(),
            queued: 0,
            window_start: now,
            window_count: 0,
            rate: 0.0,
            adjustments: Vec::new(),
            draining: false,
        }
    }

    /// Replaces the settings (reload); the current delay is clamped into
    /// the new bounds.
    pub fn set_settings(&mut self, settings: BatchSettings) {
        self.delay = self.delay.clamp(settings.min_delay, settings.max_delay);
        self.settings = settings;
    }

    /// The current adaptive delay.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Submissions per second measured over the last full window.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Items waiting across all keys.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Delay adjustments made since the last call (for metrics).
    pub fn take_adjustments(&mut self) -> Vec<Adjustment> {
        mem::take(&mut self.adjustments)
    }

    /// Adds an item of `bytes` bytes under `key`. `max_wait` is the
    /// longest this item may wait (a per-statement hint). Returns the item
    /// back if the queues are full (the caller runs it unbatched), and the
    /// groups that are ready to leave now.
    #[allow(clippy::type_complexity)]
    pub fn submit(
        &mut self,
        now: Instant,
        key: K,
        item: T,
        bytes: usize,
        max_wait: Option<Duration>,
    ) -> (Result<(), T>, Vec<Dispatch<K, T>>) {
        self.roll_window(now);
        self.window_count += 1;
        if self.queued >= self.settings.max_queued_rows {
            return (Err(item), Vec::new());
        }
        let mut ready = Vec::new();
        let settings = &self.settings;
        let queue = self.queues.entry(key.clone()).or_default();
        if !queue.items.is_empty() && queue.bytes + bytes > settings.max_batch_bytes {
            ready.push(leave(&mut self.queued, key.clone(), queue));
        }
        queue.items.push(item);
        queue.bytes += bytes;
        self.queued += 1;
        // Behind an executing group a row waits for it (self-clocking), at
        // most `max_delay`. With nothing executing it waits the adaptive
        // delay only if its key has been batching (its last group had
        // company); a lone client's rows leave after `min_delay`, at once
        // by default, however fast it sends.
        let mut wait = if queue.executing > 0 || queue.committing_rows > 0 {
            settings.max_delay.max(self.delay)
        } else if queue.last_size > 1 {
            self.delay.max(settings.min_delay)
        } else {
            settings.min_delay
        };
        if let Some(limit) = max_wait {
            wait = wait.min(limit);
        }
        let deadline = now + wait;
        queue.deadline = Some(queue.deadline.map_or(deadline, |d| d.min(deadline)));
        // Rows behind an executing group leave when it has executed, not
        // before (unless they fill a batch): starting a second group early
        // splits the clients into smaller batches, which costs the server
        // more per row than the wait costs the clients. Groups waiting for
        // their commit hold them only while they are fewer: then the next
        // group executes while the commit reaches disk, and two groups of
        // about equal size alternate.
        let due = if queue.in_flight > 0 {
            queue.releasable()
        } else {
            queue.deadline.is_some_and(|d| d <= now)
        };
        if self.draining || due || queue.items.len() >= settings.max_batch_size {
            ready.push(leave(&mut self.queued, key, queue));
        }
        (Ok(()), ready)
    }

    /// A dispatched group of `key` has executed and now waits for its
    /// commit: items that queued behind it leave now.
    pub fn committing(&mut self, now: Instant, key: &K, rows: usize) -> Vec<Dispatch<K, T>> {
        self.roll_window(now);
        let Some(queue) = self.queues.get_mut(key) else {
            return Vec::new();
        };
        queue.executing = queue.executing.saturating_sub(1);
        queue.committing_rows += rows;
        let mut ready = Vec::new();
        if queue.releasable() {
            ready.push(leave(&mut self.queued, key.clone(), queue));
        }
        ready
    }

    /// A dispatched group of `rows` rows of `key` has finished;
    /// `committed_before` says whether [`Self::committing`] was called for
    /// it. Items that queued behind it leave now.
    pub fn complete(
        &mut self,
        now: Instant,
        key: &K,
        rows: usize,
        committed_before: bool,
    ) -> Vec<Dispatch<K, T>> {
        self.roll_window(now);
        let Some(queue) = self.queues.get_mut(key) else {
            return Vec::new();
        };
        queue.in_flight = queue.in_flight.saturating_sub(1);
        if committed_before {
            queue.committing_rows = queue.committing_rows.saturating_sub(rows);
        } else {
            queue.executing = queue.executing.saturating_sub(1);
        }
        // Nothing can still be executing or committing once no group is
        // in flight.
        queue.executing = queue.executing.min(queue.in_flight);
        if queue.in_flight == 0 {
            queue.committing_rows = 0;
        }
        let mut ready = Vec::new();
        if queue.items.is_empty() {
            if queue.in_flight == 0 {
                self.queues.remove(key);
            }
        } else if queue.releasable() {
            ready.push(leave(&mut self.queued, key.clone(), queue));
        }
        ready
    }

    /// Groups whose deadline has passed.
    pub fn poll(&mut self, now: Instant) -> Vec<Dispatch<K, T>> {
        self.roll_window(now);
        let mut ready = Vec::new();
        for (key, queue) in self.queues.iter_mut() {
            if !queue.items.is_empty() && queue.deadline.is_some_and(|d| d <= now) {
                ready.push(leave(&mut self.queued, key.clone(), queue));
            }
        }
        ready
    }

    /// The earliest deadline of any waiting group.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queues
            .values()
            .filter(|q| !q.items.is_empty())
            .filter_map(|q| q.deadline)
            .min()
    }

    /// Shutdown: every waiting group leaves now, and later submissions
    /// leave at once.
    pub fn drain(&mut self) -> Vec<Dispatch<K, T>> {
        self.draining = true;
        let mut ready = Vec::new();
        for (key, queue) in self.queues.iter_mut() {
            if !queue.items.is_empty() {
                ready.push(leave(&mut self.queued, key.clone(), queue));
            }
        }
        ready
    }

    /// Closes rate windows that have ended and adjusts the delay once per
    /// window: up while the rate is above the threshold, down otherwise.
    fn roll_window(&mut self, now: Instant) {
        let interval = self.settings.metrics_interval;
        let elapsed = now.saturating_duration_since(self.window_start);
        if interval.is_zero() || elapsed < interval {
            return;
        }
        self.rate = self.window_count as f64 / elapsed.as_secs_f64();
        let windows = (elapsed.as_nanos() / interval.as_nanos()).max(1);
        if self.rate > self.settings.write_threshold {
            self.step(Adjustment::Up, 1);
        } else {
            // Idle windows count too: after a quiet spell the delay is back
            // at its minimum, so the next lone row adds no latency.
            self.step(Adjustment::Down, windows);
        }
        self.window_start = now;
        self.window_count = 0;
    }

    fn step(&mut self, direction: Adjustment, times: u128) {
        let step = self.settings.adaptive_step;
        let before = self.delay;
        let times = u32::try_from(times).unwrap_or(u32::MAX);
        let amount = step.saturating_mul(times);
        self.delay = match direction {
            Adjustment::Up => self.delay.saturating_add(step),
            Adjustment::Down => self.delay.saturating_sub(amount),
        }
        .clamp(self.settings.min_delay, self.settings.max_delay);
        if self.delay != before {
            self.adjustments.push(direction);
        }
    }
}

impl<T> Queue<T> {
    /// Whether the waiting items may leave now that a group ahead of them
    /// executed or finished: nothing executing, and the groups waiting for
    /// their commit not larger than the queue.
    fn releasable(&self) -> bool {
        !self.items.is_empty() && self.executing == 0 && self.items.len() >= self.committing_rows
    }
}

/// The queue's items leave as one group: they are no longer counted as
/// queued, and the group is in flight (executing) until its caller says
/// otherwise.
fn leave<K, T>(queued: &mut usize, key: K, queue: &mut Queue<T>) -> Dispatch<K, T> {
    *queued -= queue.items.len();
    queue.last_size = queue.items.len();
    queue.bytes = 0;
    queue.deadline = None;
    queue.in_flight += 1;
    queue.executing += 1;
    // The next group of this key is likely about as large: room for it
    // now spares growing the list row by row.
    let next = Vec::with_capacity(queue.last_size);
    Dispatch {
        key,
        items: mem::replace(&mut queue.items, next),
    }
}

#[cfg(test)]
mod tests;
