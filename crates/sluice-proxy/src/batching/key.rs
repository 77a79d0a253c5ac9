//! The batch key: everything that must be equal for rows to share one
//! statement. A session builds it once per settings and statement shape
//! (see `SessionBatching::last_key`), and its hash is computed then: the
//! batch manager's map hashes a key by that number alone.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use sluice_classifier::ShapeKey;

use super::recent::RecentBatches;

/// Rows batch together only under an equal key: same backend server,
/// same user, same database, same session settings (the fingerprint read from the
/// server), and the same statement shape (target, column list, text
/// outside the row).
#[derive(Debug, Clone)]
pub(crate) struct BatchKey {
    shared: Arc<Shared>,
    hash: u64,
}

/// One key's parts, and what its batches met lately (which is not part
/// of the key's identity).
#[derive(Debug)]
struct Shared {
    parts: KeyParts,
    recent: RecentBatches,
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct KeyParts {
    pub(crate) backend: usize,
    pub(crate) user: Arc<[u8]>,
    pub(crate) database: Option<Arc<[u8]>>,
    pub(crate) fingerprint: Arc<[u8]>,
    pub(crate) shape: ShapeKey,
}

/// The parts of every key in use, by hash: sessions that build equal keys
/// share one `Arc`, so the batch manager compares them by address for
/// every row instead of by content, and their batches share one record
/// of what they met.
#[derive(Default)]
struct Interned {
    by_hash: HashMap<u64, Vec<Weak<Shared>>>,
    /// Entries at the last sweep of dead ones, doubled: the next sweep.
    sweep_at: usize,
}

impl Interned {
    fn share(&mut self, hash: u64, parts: KeyParts) -> Arc<Shared> {
        let same_hash = self.by_hash.entry(hash).or_default();
        same_hash.retain(|weak| weak.strong_count() > 0);
        if let Some(live) = same_hash
            .iter()
            .filter_map(Weak::upgrade)
            .find(|live| live.parts == parts)
        {
            return live;
        }
        let shared = Arc::new(Shared {
            parts,
            recent: RecentBatches::default(),
        });
        same_hash.push(Arc::downgrade(&shared));
        if self.by_hash.len() > self.sweep_at {
            self.by_hash.retain(|_, same_hash| {
                same_hash.retain(|weak| weak.strong_count() > 0);
                !same_hash.is_empty()
            });
            self.sweep_at = (2 * self.by_hash.len()).max(64);
        }
        shared
    }
}

impl BatchKey {
    pub(crate) fn new(parts: KeyParts) -> BatchKey {
        // One process-wide seed, so equal keys from different sessions
        // hash alike.
        static SEED: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
        static INTERNED: OnceLock<Mutex<Interned>> = OnceLock::new();
        let hash = SEED.get_or_init(Default::default).hash_one(&parts);
        let shared = INTERNED
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .share(hash, parts);
        BatchKey { shared, hash }
    }

    /// Whether this key was built for `shape` (the rest of the key is the
    /// session's settings, which the caller knows to be unchanged).
    pub(crate) fn is_for(&self, shape: &ShapeKey) -> bool {
        self.shared.parts.shape == *shape
    }

    /// What the key's recent batches met, shared by every session that
    /// batches under it.
    pub(crate) fn recent(&self) -> &RecentBatches {
        &self.shared.recent
    }
}

impl PartialEq for BatchKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
            || (self.hash == other.hash && self.shared.parts == other.shared.parts)
    }
}

impl Eq for BatchKey {}

impl Hash for BatchKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(user: &str, sql: &str) -> KeyParts {
        let classifier = sluice_classifier::Classifier::default();
        let classification = classifier.classify(sql.as_bytes());
        KeyParts {
            backend: 0,
            user: user.as_bytes().into(),
            database: Some(b"db".as_slice().into()),
            fingerprint: b"settings".as_slice().into(),
            shape: classification.batchable().unwrap().shape_key().clone(),
        }
    }

    #[test]
    fn keys_built_apart_from_equal_parts_are_equal_and_hash_alike() {
        let plain = "INSERT INTO t (a) VALUES (1)";
        let (a, b) = (
            BatchKey::new(parts("u", plain)),
            BatchKey::new(parts("u", plain)),
        );
        assert_eq!(a, b);
        assert_eq!(a.hash, b.hash);
        assert!(
            Arc::ptr_eq(&a.shared, &b.shared),
            "equal keys share their parts, so they compare by address"
        );
        assert!(
            std::ptr::eq(a.recent(), b.recent()),
            "and one record of their batches"
        );
        let other_user = BatchKey::new(parts("v", plain));
        assert_ne!(a, other_user);
        let other_shape = BatchKey::new(parts("u", "INSERT INTO t (b) VALUES (1)"));
        assert_ne!(a, other_shape);
        let other_backend = BatchKey::new(KeyParts {
            backend: 1,
            ..parts("u", plain)
        });
        assert_ne!(
            a, other_backend,
            "rows for another server never share a batch"
        );
        assert!(a.is_for(&parts("u", plain).shape));
        assert!(!a.is_for(&other_shape.shared.parts.shape));
    }

    #[test]
    fn parts_no_session_holds_are_let_go() {
        let sql = "INSERT INTO interned_once (a) VALUES (1)";
        let weak = Arc::downgrade(&BatchKey::new(parts("gone", sql)).shared);
        assert_eq!(weak.strong_count(), 0);
        let again = BatchKey::new(parts("gone", sql));
        assert_eq!(Arc::strong_count(&again.shared), 1);
    }
}
