//! The monitor's decisions as the proxy reads them: the current writer,
//! and a notice to the sessions of a backend that stopped being fit.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::mode::ClusterMode;

/// Shared view of the backends. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Topology {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    mode: ClusterMode,
    writer: watch::Sender<Option<usize>>,
    /// One per backend; bumped when its sessions must close.
    evictions: Vec<watch::Sender<u64>>,
}

impl Topology {
    /// `backends` backends (at least one) in `mode`. In `single` mode the
    /// one backend is the writer from the start and stays it; in the
    /// cluster modes there is no writer until the monitor's first round.
    pub fn new(mode: ClusterMode, backends: usize) -> Topology {
        let backends = backends.max(1);
        let first = (mode == ClusterMode::Single).then_some(0);
        let inner = Inner {
            mode,
            writer: watch::Sender::new(first),
            evictions: (0..backends).map(|_| watch::Sender::new(0)).collect(),
        };
        Topology {
            inner: Arc::new(inner),
        }
    }

    /// One backend, always the writer.
    pub fn single() -> Topology {
        Topology::new(ClusterMode::Single, 1)
    }

    /// The cluster mode.
    pub fn mode(&self) -> ClusterMode {
        self.inner.mode
    }

    /// The backend new sessions go to now, if any.
    pub fn writer(&self) -> Option<usize> {
        *self.inner.writer.borrow()
    }

    /// The writer, waiting up to `within` for one to be chosen (at start,
    /// or while every backend is unfit).
    pub async fn writer_within(&self, within: Duration) -> Option<usize> {
        let mut writer = self.inner.writer.subscribe();
        let chosen = tokio::time::timeout(within, writer.wait_for(Option::is_some)).await;
        match chosen {
            Ok(Ok(chosen)) => *chosen,
            _ => None,
        }
    }

    /// A notice that fires once the sessions of `backend` must close.
    /// Take it before connecting, so that an eviction during the login is
    /// not missed. In `single` mode nothing is ever given up, and the
    /// notice costs a session nothing to wait on.
    pub fn evictions(&self, backend: usize) -> EvictionNotice {
        if self.inner.mode == ClusterMode::Single {
            return EvictionNotice::never();
        }
        let receiver = self
            .inner
            .evictions
            .get(backend)
            .map(watch::Sender::subscribe);
        EvictionNotice { receiver }
    }

    /// Sets the writer; `true` when it changed.
    pub(crate) fn set_writer(&self, writer: Option<usize>) -> bool {
        self.inner.writer.send_if_modified(|current| {
            let changed = *current != writer;
            *current = writer;
            changed
        })
    }

    /// Tells the sessions of `backend` to close.
    pub(crate) fn evict(&self, backend: usize) {
        if let Some(sender) = self.inner.evictions.get(backend) {
            sender.send_modify(|count| *count = count.wrapping_add(1));
        }
    }
}

/// What a session holds to learn that its backend was given up.
#[derive(Debug)]
pub struct EvictionNotice {
    receiver: Option<watch::Receiver<u64>>,
}

impl EvictionNotice {
    /// A notice that never fires.
    pub fn never() -> EvictionNotice {
        EvictionNotice { receiver: None }
    }

    /// Resolves when the backend is given up after this notice was taken;
    /// never otherwise.
    pub async fn given_up(&mut self) {
        if let Some(receiver) = &mut self.receiver {
            if receiver.changed().await.is_ok() {
                return;
            }
        }
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn single_mode_has_its_writer_from_the_start() {
        let topology = Topology::single();
        assert_eq!(topology.writer(), Some(0));
        assert_eq!(topology.writer_within(Duration::ZERO).await, Some(0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_login_waits_for_a_writer_within_its_bound() {
        let topology = Topology::new(ClusterMode::Galera, 3);
        assert_eq!(topology.writer(), None);
        assert_eq!(topology.writer_within(Duration::from_secs(1)).await, None);
        let waiting = tokio::spawn({
            let topology = topology.clone();
            async move { topology.writer_within(Duration::from_secs(5)).await }
        });
        tokio::task::yield_now().await;
        assert!(topology.set_writer(Some(2)));
        assert!(!topology.set_writer(Some(2)), "unchanged");
        assert_eq!(waiting.await.ok().flatten(), Some(2));
    }

    #[tokio::test(start_paused = true)]
    async fn an_eviction_reaches_the_sessions_of_that_backend_only() {
        let topology = Topology::new(ClusterMode::Primary, 2);
        let mut on_first = topology.evictions(0);
        let mut on_second = topology.evictions(1);
        topology.evict(0);
        tokio::time::timeout(Duration::from_secs(1), on_first.given_up())
            .await
            .expect("the first backend's session is told");
        let second = tokio::time::timeout(Duration::from_secs(1), on_second.given_up()).await;
        assert!(second.is_err(), "the other backend's session is not");
        let mut late = topology.evictions(0);
        let late = tokio::time::timeout(Duration::from_secs(1), late.given_up()).await;
        assert!(
            late.is_err(),
            "a notice taken after the eviction does not fire"
        );
        let mut none = topology.evictions(7);
        let none = tokio::time::timeout(Duration::from_secs(1), none.given_up()).await;
        assert!(none.is_err());
    }
}
