//! A bounded, thread-safe cache of shape verdicts, keyed by shape key.
//!
//! Sharded by key hash; each shard is a mutex over a map and a CLOCK ring
//! (second-chance eviction), so a hot shape is never evicted by a stream
//! of one-off shapes and the memory bound is exact (entries, not bytes:
//! each entry holds one key and one small frame).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex};

use crate::shape::{Frame, NotBatchable};

/// What the cache remembers about a shape.
pub(crate) type Verdict = Result<Arc<Frame>, NotBatchable>;

const SHARDS: usize = 16;

/// A fast non-cryptographic hasher (multiply-rotate over 8-byte words).
/// Shard maps are bounded, so even adversarial collisions cost at most a
/// scan of one shard.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// `BuildHasher` for [`FastHasher`].
pub(crate) type FastBuild = BuildHasherDefault<FastHasher>;

struct Entry {
    verdict: Verdict,
    referenced: bool,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Arc<[u8]>, Entry, FastBuild>,
    ring: VecDeque<Arc<[u8]>>,
}

/// The shape cache.
pub(crate) struct ShapeCache {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
}

impl ShapeCache {
    /// A cache of at most `capacity` entries (at least one per shard when
    /// `capacity` > 0; 0 disables caching).
    pub(crate) fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS);
        ShapeCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard,
        }
    }

    fn shard(&self, key: &[u8]) -> &Mutex<Shard> {
        let mut h = FastHasher::default();
        key.hash(&mut h);
        // high bits: the map itself uses the low ones
        &self.shards[((h.finish() >> 58) as usize) % SHARDS]
    }

    /// The verdict for `key`, if cached.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Verdict> {
        if self.per_shard == 0 {
            return None;
        }
        let mut shard = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        let e = shard.map.get_mut(key)?;
        e.referenced = true;
        Some(e.verdict.clone())
    }

    /// Remember `verdict` for `key`, evicting if the shard is full.
    pub(crate) fn insert(&self, key: Arc<[u8]>, verdict: Verdict) {
        if self.per_shard == 0 {
            return;
        }
        let mut guard = self.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
        let shard = &mut *guard;
        if let Some(e) = shard.map.get_mut(&key) {
            e.verdict = verdict;
            return;
        }
        // CLOCK: give referenced entries a second chance; each pass clears
        // a bit, so this ends within two turns of the ring.
        let mut budget = 2 * shard.ring.len() + 1;
        while shard.map.len() >= self.per_shard && budget > 0 {
            budget -= 1;
            let Some(victim) = shard.ring.pop_front() else {
                break;
            };
            match shard.map.get_mut(&victim) {
                Some(e) if e.referenced => {
                    e.referenced = false;
                    shard.ring.push_back(victim);
                }
                Some(_) => {
                    shard.map.remove(&victim);
                }
                None => {}
            }
        }
        shard.ring.push_back(key.clone());
        shard.map.insert(
            key,
            Entry {
                verdict,
                referenced: false,
            },
        );
    }

    /// Number of cached shapes.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).map.len())
            .sum()
    }

    /// Maximum number of cached shapes.
    pub(crate) fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_keeps_hot_entries() {
        let cache = ShapeCache::new(32);
        let hot: Arc<[u8]> = Arc::from(&b"hot"[..]);
        cache.insert(hot.clone(), Err(NotBatchable::Partition));
        for i in 0..10_000u32 {
            assert!(cache.get(&hot).is_some(), "hot entry evicted at {i}");
            cache.insert(
                Arc::from(&i.to_le_bytes()[..]),
                Err(NotBatchable::Partition),
            );
            assert!(cache.len() <= cache.capacity());
        }
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let cache = ShapeCache::new(0);
        cache.insert(Arc::from(&b"k"[..]), Err(NotBatchable::Partition));
        assert!(cache.get(b"k").is_none());
        assert_eq!(cache.len(), 0);
    }
}
