//! The Sluice daemon: reads its configuration, starts logging, binds the
//! listener and runs the proxy until SIGTERM or SIGINT.

mod cli;
mod listen;
mod logging;
mod notify;
mod signals;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;

use crate::cli::Cli;

/// Every queued row allocates a few small buffers on one worker thread
/// and frees them on another; mimalloc's per-thread free lists make that
/// cheaper than glibc's arenas (docs/benchmarks-batch.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // Before any thread exists: it edits the environment.
    let activation = listen::Activation::take_from_env();
    let cli = Cli::parse();
    let config = sluice_config::load(cli.config.as_deref(), &cli.overrides())
        .context("invalid configuration")?;
    if cli.check_config {
        tls_settings(&config)?;
        println!("configuration is valid");
        return Ok(());
    }
    let log_reload = logging::init(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(cli, config, activation, log_reload))
}

async fn run(
    cli: Cli,
    config: sluice_config::Config,
    activation: listen::Activation,
    log_reload: logging::LevelHandle,
) -> anyhow::Result<()> {
    let (client_tls, backends) = tls_settings(&config)?;
    let listener = client_listener(&config.proxy, &activation)?;
    let listening_on = listener
        .local_addr()
        .map_or_else(|_| config.proxy.listen.to_string(), |a| a.to_string());
    let topology = sluice_cluster::Topology::new(
        cluster_mode(config.backend.cluster),
        config.backend.addresses.len(),
    );
    let settings = sluice_proxy::ProxySettings {
        backends,
        topology: topology.clone(),
        connect_timeout: config.backend.connect_timeout,
        handshake_timeout: config.proxy.handshake_timeout,
        idle_timeout: config.proxy.idle_timeout,
        max_connections: config.proxy.max_connections,
        shutdown_timeout: config.proxy.shutdown_timeout,
        client_tls,
        require_secure_transport: config.proxy.require_secure_transport,
    };
    let metrics = sluice_metrics::Metrics::new().context("cannot create the metrics registry")?;
    // The context exists even with batching off, so a reload can turn it on.
    let batching =
        sluice_proxy::BatchContext::start(batching_settings(&config.writebatch), metrics.clone());
    let http = sluice_metrics::HttpState::new(metrics.clone(), config.writebatch.max_queued_rows)
        .with_unhealthy_after(config.metrics.unhealthy_after);
    let (http_stop_tx, http_stop_rx) = tokio::sync::watch::channel(false);
    if let Some(address) = config.metrics.listen {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen for metrics on {address}"))?;
        tracing::info!(%address, "metrics, health and readiness over HTTP");
        tokio::spawn(sluice_metrics::serve_http(
            listener,
            http.clone(),
            http_stop_rx.clone(),
        ));
    }
    let monitor = config.metrics.monitor_user.as_ref().map(|user| {
        sluice_metrics::MonitorLogin::new(user, config.metrics.monitor_password.expose())
    });
    match (&monitor, topology.mode()) {
        (Some(monitor), sluice_cluster::ClusterMode::Single) => tracing::info!(
            user = monitor.user(),
            "backend probe logs in as the monitor user and runs SELECT 1"
        ),
        (Some(monitor), mode) => tracing::info!(
            user = monitor.user(),
            cluster = mode.as_str(),
            "backend probe logs in as the monitor user and reads each server's role"
        ),
        (None, sluice_cluster::ClusterMode::Single) => {}
        (None, mode) => tracing::warn!(
            cluster = mode.as_str(),
            "no [metrics] monitor_user: servers are judged by reachability only, so a \
             read-only or unsynced server may be chosen to take writes"
        ),
    }
    let probe = sluice_cluster::MonitorSettings {
        addresses: config.backend.addresses.clone(),
        interval: config.metrics.probe_interval,
        // The whole probe (connect, login, query) gets what a client's
        // backend connection gets to open.
        timeout: config.backend.connect_timeout,
        monitor,
        fail_back: config.backend.fail_back,
    };
    tokio::spawn(sluice_cluster::watch_backends(
        probe,
        topology,
        http.clone(),
        http_stop_rx,
    ));
    tokio::spawn(publish_batching_gauges(batching.clone(), metrics.clone()));
    tokio::spawn(reload_on_hangup(
        cli,
        config.clone(),
        batching.clone(),
        log_reload,
    ));
    tracing::info!(
        listen = %listening_on,
        backend = %config.backend.addresses.join(", "),
        cluster = cluster_mode(config.backend.cluster).as_str(),
        version = env!("CARGO_PKG_VERSION"),
        "sluice started"
    );
    notify::notify("READY=1");
    http.set_ready(true);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let draining = http.clone();
    tokio::spawn(async move {
        let signal = signals::wait_for_stop().await;
        draining.set_ready(false);
        tracing::info!(
            signal,
            "stopping: no new connections, finishing running commands"
        );
        notify::notify("STOPPING=1");
        let _ = stop_tx.send(true);
    });
    let report = sluice_proxy::serve(listener, settings, Some(batching), metrics, stop_rx).await;
    let _ = http_stop_tx.send(true);
    tracing::info!(
        accepted = report.accepted,
        abandoned = report.abandoned,
        "sluice stopped"
    );
    Ok(())
}

/// The socket systemd passed, or else `[proxy] listen` bound here.
fn client_listener(
    proxy: &sluice_config::ProxyConfig,
    activation: &listen::Activation,
) -> anyhow::Result<TcpListener> {
    if let Some(passed) = listen::activated_listener(activation)? {
        let listener =
            TcpListener::from_std(passed).context("cannot use the socket passed by systemd")?;
        tracing::info!(
            "accepting clients on the socket passed by systemd; [proxy] listen is not used"
        );
        return Ok(listener);
    }
    listen::bind(proxy.listen, proxy.reuse_port)
        .with_context(|| format!("cannot listen on {}", proxy.listen))
}

/// Copies the batch manager's current figures into the gauges once a
/// second.
async fn publish_batching_gauges(
    batching: std::sync::Arc<sluice_proxy::BatchContext>,
    metrics: sluice_metrics::Metrics,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        let stats = batching.manager_stats();
        metrics.set_queue_depth(stats.queued);
        metrics.set_current_delay(stats.delay);
        metrics.set_ops_per_second(stats.rate);
    }
}

fn batching_settings(config: &sluice_config::WriteBatchConfig) -> sluice_proxy::BatchingSettings {
    sluice_proxy::BatchingSettings {
        enabled: config.enabled,
        mode: match config.mode {
            sluice_config::BatchMode::Auto => sluice_proxy::BatchMode::Auto,
            sluice_config::BatchMode::Hint => sluice_proxy::BatchMode::Hint,
        },
        batch: sluice_batch::BatchSettings {
            initial_delay: config.initial_delay,
            min_delay: config.min_delay,
            max_delay: config.max_delay,
            max_batch_size: config.max_batch_size,
            max_batch_bytes: config.max_batch_bytes,
            write_threshold: config.write_threshold,
            adaptive_step: config.adaptive_step,
            metrics_interval: config.metrics_interval,
            max_queued_rows: config.max_queued_rows,
        },
        max_statement_rows: config.max_statement_rows,
    }
}

fn cluster_mode(mode: sluice_config::ClusterMode) -> sluice_cluster::ClusterMode {
    match mode {
        sluice_config::ClusterMode::Single => sluice_cluster::ClusterMode::Single,
        sluice_config::ClusterMode::Galera => sluice_cluster::ClusterMode::Galera,
        sluice_config::ClusterMode::Primary => sluice_cluster::ClusterMode::Primary,
    }
}

/// Loads the certificates and keys the configuration names, so that a
/// bad file stops the start with its name rather than failing each login.
/// Returns the client-side TLS and each backend with its own TLS.
fn tls_settings(
    config: &sluice_config::Config,
) -> anyhow::Result<(
    Option<sluice_proxy::ClientTls>,
    Vec<sluice_proxy::BackendTarget>,
)> {
    let client = match (&config.proxy.tls_cert, &config.proxy.tls_key) {
        (Some(cert), Some(key)) => Some(
            sluice_proxy::ClientTls::from_pem_files(cert, key)
                .context("cannot set up TLS for clients ([proxy] tls_cert, tls_key)")?,
        ),
        _ => None,
    };
    let mut backends = Vec::with_capacity(config.backend.addresses.len());
    for address in &config.backend.addresses {
        let mode = match config.backend.tls {
            // A Unix socket carries no TLS (required and verify are
            // refused with such an address when the configuration loads).
            _ if sluice_config::BackendConfig::is_unix_socket(address) => {
                sluice_proxy::BackendTlsMode::Off
            }
            sluice_config::BackendTlsMode::Off => sluice_proxy::BackendTlsMode::Off,
            sluice_config::BackendTlsMode::Preferred => sluice_proxy::BackendTlsMode::Preferred,
            sluice_config::BackendTlsMode::Required => sluice_proxy::BackendTlsMode::Required,
            sluice_config::BackendTlsMode::Verify => sluice_proxy::BackendTlsMode::Verify,
        };
        let tls = sluice_proxy::BackendTls::new(
            mode,
            config.backend.tls_ca.as_deref(),
            &config.backend.tls_name(address),
        )
        .with_context(|| {
            format!(
                "cannot set up TLS to the backend {address} ([backend] tls, tls_ca, \
                 tls_server_name)"
            )
        })?;
        backends.push(sluice_proxy::BackendTarget {
            address: address.clone(),
            tls,
        });
    }
    Ok((client, backends))
}

/// SIGHUP: read the configuration again; apply `[writebatch]` and `[log]`
/// at once, name the changed keys that need a restart, and keep the
/// running configuration if the new one is invalid.
async fn reload_on_hangup(
    cli: Cli,
    mut current: sluice_config::Config,
    batching: std::sync::Arc<sluice_proxy::BatchContext>,
    log_reload: logging::LevelHandle,
) {
    loop {
        if !signals::wait_for_hangup().await {
            return;
        }
        let new = match sluice_config::load(cli.config.as_deref(), &cli.overrides()) {
            Ok(new) => new,
            Err(e) => {
                tracing::error!(error = %e, "reload refused; keeping the running configuration");
                notify::notify("READY=1");
                continue;
            }
        };
        notify::notify("RELOADING=1");
        if let Err(e) = log_reload.set(&new.log.level) {
            tracing::error!(error = %e, "reload: log level not applied");
        }
        batching.set_settings(batching_settings(&new.writebatch));
        for key in current.restart_required(&new) {
            tracing::warn!(
                section = key,
                "reload: this section changed but needs a restart"
            );
        }
        tracing::info!("configuration reloaded");
        notify::notify("READY=1");
        current = new;
    }
}
