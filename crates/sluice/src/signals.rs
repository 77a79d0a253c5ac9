use tokio::signal::unix::{signal, SignalKind};

/// Resolves with the name of the first stop signal received.
pub async fn wait_for_stop() -> &'static str {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; only a kill stops sluice");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Resolves with `true` at each SIGHUP; `false` if the handler cannot be
/// installed.
pub async fn wait_for_hangup() -> bool {
    use std::sync::OnceLock;
    use tokio::sync::Mutex;
    static HANGUP: OnceLock<Option<Mutex<tokio::signal::unix::Signal>>> = OnceLock::new();
    let Some(stream) = HANGUP.get_or_init(|| signal(SignalKind::hangup()).ok().map(Mutex::new))
    else {
        tracing::error!("cannot install the SIGHUP handler; reload is unavailable");
        return false;
    };
    stream.lock().await.recv().await.is_some()
}
