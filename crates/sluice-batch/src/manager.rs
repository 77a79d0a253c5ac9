//! [`BatchCore`] on tokio: a mutex around the core, and a timer task that
//! dispatches groups whose delay expired.

use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::core::{Adjustment, BatchCore, Dispatch};
use crate::settings::BatchSettings;

/// Receives the groups that are ready to run. Called without any lock
/// held; it must not block (hand the group to a task).
pub trait Dispatcher<K, T>: Send + Sync + 'static {
    /// Runs (or hands off) one group.
    fn dispatch(&self, key: K, items: Vec<T>);
}

/// A snapshot of the manager's figures, for metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ManagerStats {
    /// Current adaptive delay.
    pub delay: Duration,
    /// Measured submissions per second.
    pub rate: f64,
    /// Items waiting.
    pub queued: usize,
}

struct Shared<K, T, D> {
    state: Mutex<Locked<K, T>>,
    dispatcher: D,
    timer: Arc<Notify>,
    on_adjust: Box<dyn Fn(Adjustment) + Send + Sync>,
}

/// What the manager's mutex guards.
struct Locked<K, T> {
    core: BatchCore<K, T>,
    /// When the timer task wakes next, if it sleeps: a submission wakes
    /// it only when its queue's deadline comes sooner. Rows that queue
    /// behind a batch already waiting do not, which saves a task wake-up
    /// per row.
    timer_until: Option<std::time::Instant>,
}

impl<K: Hash + Eq + Clone, T> Locked<K, T> {
    /// Whether the timer must wake to see a deadline sooner than the one
    /// it sleeps until.
    fn timer_too_late(&self) -> bool {
        match (self.core.next_deadline(), self.timer_until) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(deadline), Some(until)) => deadline < until,
        }
    }
}

/// The batch manager, shared by every session (cheap to clone).
pub struct BatchManager<K, T, D> {
    shared: Arc<Shared<K, T, D>>,
}

impl<K, T, D> Clone for BatchManager<K, T, D> {
    fn clone(&self) -> Self {
        BatchManager {
            shared: self.shared.clone(),
        }
    }
}

impl<K, T, D> BatchManager<K, T, D>
where
    K: Hash + Eq + Clone + Send + 'static,
    T: Send + 'static,
    D: Dispatcher<K, T>,
{
    /// Starts a manager and its timer task (needs a tokio runtime).
    /// `on_adjust` is told of every delay adjustment (for metrics).
    pub fn start(
        settings: BatchSettings,
        dispatcher: D,
        on_adjust: impl Fn(Adjustment) + Send + Sync + 'static,
    ) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(Locked {
                core: BatchCore::new(settings, now()),
                timer_until: None,
            }),
            dispatcher,
            timer: Arc::new(Notify::new()),
            on_adjust: Box::new(on_adjust),
        });
        tokio::spawn(run_timer(Arc::downgrade(&shared), shared.timer.clone()));
        BatchManager { shared }
    }

    /// Queues an item; see [`BatchCore::submit`]. Gives the item back if
    /// the queues are full.
    pub fn submit(
        &self,
        key: K,
        item: T,
        bytes: usize,
        max_wait: Option<Duration>,
    ) -> Result<(), T> {
        self.submit_at(now(), key, item, bytes, max_wait)
    }

    /// [`Self::submit`] with the time the caller already read for it.
    pub fn submit_at(
        &self,
        at: std::time::Instant,
        key: K,
        item: T,
        bytes: usize,
        max_wait: Option<Duration>,
    ) -> Result<(), T> {
        let (accepted, ready, adjustments, wake_timer) = {
            let mut state = self.shared.lock();
            let (accepted, ready) = state.core.submit(at, key, item, bytes, max_wait);
            let adjustments = state.core.take_adjustments();
            (accepted, ready, adjustments, state.timer_too_late())
        };
        self.shared.report(adjustments);
        self.shared.dispatch_all(ready);
        if wake_timer {
            self.shared.timer.notify_one();
        }
        accepted
    }

    /// A dispatched group of `key` has executed and waits for its commit;
    /// see [`BatchCore::committing`].
    pub fn committing(&self, key: &K, rows: usize) {
        let ready = self.shared.lock().core.committing(now(), key, rows);
        self.shared.dispatch_all(ready);
    }

    /// A dispatched group of `key` has finished; see
    /// [`BatchCore::complete`].
    pub fn complete(&self, key: &K, rows: usize, committed_before: bool) {
        let ready = self
            .shared
            .lock()
            .core
            .complete(now(), key, rows, committed_before);
        self.shared.dispatch_all(ready);
    }

    /// Shutdown: dispatches every waiting group; later submissions leave
    /// at once.
    pub fn drain(&self) {
        let ready = self.shared.lock().core.drain();
        self.shared.dispatch_all(ready);
    }

    /// Applies new settings (reload).
    pub fn set_settings(&self, settings: BatchSettings) {
        self.shared.lock().core.set_settings(settings);
        self.shared.timer.notify_one();
    }

    /// Current figures.
    pub fn stats(&self) -> ManagerStats {
        let core = &self.shared.lock().core;
        ManagerStats {
            delay: core.delay(),
            rate: core.rate(),
            queued: core.queued(),
        }
    }
}

impl<K, T, D> Shared<K, T, D>
where
    K: Hash + Eq + Clone,
    D: Dispatcher<K, T>,
{
    fn lock(&self) -> MutexGuard<'_, Locked<K, T>> {
        // A panic while holding the lock leaves the core consistent enough
        // (each method finishes its bookkeeping before returning), so a
        // poisoned lock is used as is rather than taking every session down.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn dispatch_all(&self, ready: Vec<Dispatch<K, T>>) {
        for group in ready {
            self.dispatcher.dispatch(group.key, group.items);
        }
    }

    fn report(&self, adjustments: Vec<Adjustment>) {
        for a in adjustments {
            (self.on_adjust)(a);
        }
    }
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

async fn run_timer<K, T, D>(shared: Weak<Shared<K, T, D>>, timer: Arc<Notify>)
where
    K: Hash + Eq + Clone,
    D: Dispatcher<K, T>,
{
    // Also wake once per second to roll the rate window when idle.
    const IDLE_TICK: Duration = Duration::from_secs(1);
    loop {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let (ready, adjustments, wake_at) = {
            let mut state = strong.lock();
            let now = now();
            let ready = state.core.poll(now);
            let wake_at = state.core.next_deadline().unwrap_or(now + IDLE_TICK);
            state.timer_until = Some(wake_at);
            (
                ready,
                state.core.take_adjustments(),
                Instant::from_std(wake_at),
            )
        };
        strong.report(adjustments);
        strong.dispatch_all(ready);
        let notified = timer.notified();
        drop(strong);
        tokio::select! {
            _ = tokio::time::sleep_until(wake_at) => {}
            _ = notified => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    type Groups = Vec<(u8, Vec<u32>)>;

    #[derive(Default, Clone)]
    struct Collect(Arc<StdMutex<Groups>>);

    impl Dispatcher<u8, u32> for Collect {
        fn dispatch(&self, key: u8, items: Vec<u32>) {
            self.0.lock().unwrap().push((key, items));
        }
    }

    /// A manager whose rows wait `delay` (no adaptation below it), and
    /// the groups it dispatches.
    fn delaying(delay: Duration) -> (Collect, BatchManager<u8, u32, Collect>) {
        let collect = Collect::default();
        let settings = BatchSettings {
            initial_delay: delay,
            min_delay: delay,
            ..BatchSettings::default()
        };
        let manager = BatchManager::start(settings, collect.clone(), |_| {});
        (collect, manager)
    }

    #[tokio::test(start_paused = true)]
    async fn timer_dispatches_expired_groups() {
        let (collect, manager) = delaying(Duration::from_millis(3));
        manager.submit(1, 10, 1, None).unwrap();
        manager.submit(1, 11, 1, None).unwrap();
        tokio::task::yield_now().await;
        assert!(collect.0.lock().unwrap().is_empty());
        tokio::time::sleep(Duration::from_millis(4)).await;
        assert_eq!(collect.0.lock().unwrap().as_slice(), &[(1, vec![10, 11])]);
        manager.complete(&1, 2, false);
        assert_eq!(manager.stats().queued, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sooner_deadline_wakes_the_sleeping_timer() {
        let (collect, manager) = delaying(Duration::from_millis(50));
        manager.submit(1, 10, 1, None).unwrap();
        // The timer now sleeps until key 1's deadline, 50 ms away.
        tokio::task::yield_now().await;
        manager.submit(1, 11, 1, None).unwrap();
        manager
            .submit(2, 20, 1, Some(Duration::from_millis(2)))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
        assert_eq!(collect.0.lock().unwrap().as_slice(), &[(2, vec![20])]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            collect.0.lock().unwrap().as_slice(),
            &[(2, vec![20]), (1, vec![10, 11])]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn drain_dispatches_waiting_rows() {
        let collect = Collect::default();
        let manager = BatchManager::start(BatchSettings::default(), collect.clone(), |_| {});
        manager.submit(1, 1, 1, None).unwrap();
        manager.submit(1, 2, 1, None).unwrap();
        manager.drain();
        assert_eq!(collect.0.lock().unwrap().len(), 2);
    }
}
