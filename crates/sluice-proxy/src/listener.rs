//! The accept loop: one task per client, a bound on how many run at once,
//! and a drain with a time limit at shutdown.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::batching::BatchContext;
use crate::error::{Peer, SessionError};
use crate::login::{login, refuse, LoginOutcome};
use crate::session::{Session, SessionEnd};
use crate::settings::ProxySettings;

/// MariaDB's "Too many connections".
const ER_CON_COUNT_ERROR: u16 = 1040;

/// What happened over the life of [`serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeReport {
    /// Clients accepted.
    pub accepted: u64,
    /// Sessions still running when the drain timed out (then dropped).
    pub abandoned: usize,
}

/// Accepts clients until `shutdown` turns true, then stops accepting, lets
/// every session finish the command it is running (up to the shutdown
/// timeout) and returns.
pub async fn serve(
    listener: TcpListener,
    settings: ProxySettings,
    batching: Option<Arc<BatchContext>>,
    metrics: sluice_metrics::Metrics,
    mut shutdown: watch::Receiver<bool>,
) -> ServeReport {
    let settings = Arc::new(settings);
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let next_id = AtomicU64::new(1);
    let mut sessions = JoinSet::new();
    let session_shutdown = shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    // Every line of the session carries these; the server's
                    // own id of its connection is added once logged in.
                    let span = tracing::info_span!(
                        "session",
                        conn_id = id,
                        client = %peer,
                        backend_conn_id = tracing::field::Empty,
                    );
                    let Ok(permit) = slots.clone().try_acquire_owned() else {
                        span.in_scope(|| {
                            sluice_metrics::warn_throttled!(
                                max = settings.max_connections,
                                "too many connections"
                            )
                        });
                        let settings = settings.clone();
                        sessions.spawn(async move {
                            let tls = settings.client_tls.as_ref();
                            refuse(stream, tls, ER_CON_COUNT_ERROR, b"08004", "Too many connections").await;
                        });
                        continue;
                    };
                    let settings = settings.clone();
                    let shutdown = session_shutdown.clone();
                    let batching = batching.clone();
                    let metrics = metrics.clone();
                    sessions.spawn(
                        async move {
                            let _connected = metrics.client_connected();
                            run_client(id, stream, &settings, batching, &metrics, shutdown).await;
                            drop(permit);
                        }
                        .instrument(span),
                    );
                }
                Err(e) => {
                    // Out of file descriptors or similar: back off rather
                    // than spin.
                    sluice_metrics::warn_throttled!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    drop(listener);
    if let Some(batching) = &batching {
        // Queued rows leave now; their sessions answer and then close.
        batching.drain();
    }
    let accepted = next_id.load(Ordering::Relaxed) - 1;
    tracing::info!(sessions = sessions.len(), "draining");
    let drained = tokio::time::timeout(settings.shutdown_timeout, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    let abandoned = if drained.is_err() {
        let left = sessions.len();
        tracing::warn!(left, "drain timed out; closing remaining sessions");
        sessions.abort_all();
        left
    } else {
        0
    };
    ServeReport {
        accepted,
        abandoned,
    }
}

async fn run_client(
    conn_id: u64,
    stream: TcpStream,
    settings: &ProxySettings,
    batching: Option<Arc<BatchContext>>,
    metrics: &sluice_metrics::Metrics,
    mut shutdown: watch::Receiver<bool>,
) {
    let logged_in = match login(stream, settings).await {
        Err(e @ SessionError::HandshakeTimeout(_)) => {
            tracing::info!(error = %e, "login timed out");
            return;
        }
        Err(e) if e.is_disconnect() && e.peer() == Some(Peer::Client) => {
            tracing::debug!(error = %e, "client left during login");
            return;
        }
        Err(e) => {
            if matches!(e, SessionError::BackendConnect { .. }) {
                metrics.backend_connect_error();
            }
            sluice_metrics::warn_throttled!(error = %e, "login failed");
            return;
        }
        Ok(LoginOutcome::Refused) => {
            tracing::debug!("backend refused the login");
            return;
        }
        Ok(LoginOutcome::LoggedIn(logged_in)) => logged_in,
    };
    let backend_id = logged_in.greeting.connection_id;
    tracing::Span::current().record("backend_conn_id", backend_id);
    if logged_in.caps.compressed() {
        metrics.compressed_session();
    }
    tracing::debug!(user = %String::from_utf8_lossy(&logged_in.hello.user), "logged in");
    match Session::new(*logged_in, conn_id, batching, metrics.clone())
        .run(settings, &mut shutdown)
        .await
    {
        Ok(SessionEnd::ClientLeft) => tracing::debug!("client left"),
        Ok(end) => tracing::info!(?end, "session closed"),
        Err(e) if e.is_disconnect() => tracing::info!(error = %e, "peer disconnected"),
        Err(e) => sluice_metrics::warn_throttled!(error = %e, "session closed"),
    }
}
