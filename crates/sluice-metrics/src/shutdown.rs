//! The shared stop condition of the long-running tasks.

use tokio::sync::watch;

/// Resolves once shutdown is requested: the channel holds `true`, or its
/// sender is gone (nobody is left to ask for a clean stop).
pub(crate) async fn requested(shutdown: &mut watch::Receiver<bool>) {
    // An Err means the sender was dropped: treat it as a stop request too.
    let _ = shutdown.wait_for(|stop| *stop).await;
}
