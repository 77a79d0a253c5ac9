//! The batch key: everything that must be equal for rows to share one
//! statement.

use std::sync::Arc;

use sluice_classifier::ShapeKey;

/// Rows batch together only under an equal key: same user, same
/// database, same session settings (the fingerprint read from the
/// server), and the same statement shape (target, column list, text
/// outside the row).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct BatchKey {
    pub(crate) user: Arc<[u8]>,
    pub(crate) database: Option<Arc<[u8]>>,
    pub(crate) fingerprint: Arc<[u8]>,
    pub(crate) shape: ShapeKey,
}
