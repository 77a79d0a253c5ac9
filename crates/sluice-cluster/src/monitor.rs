//! The monitor task: probe every backend each interval, judge which may
//! take writes, keep the writer, and report it all (logs, metrics,
//! `/health`, the [`Topology`]).

use std::time::Duration;

use sluice_metrics::{
    probe_as, probe_once, probe_role_as, BackendGauges, BackendStatus, HttpState, MonitorLogin,
    NodeRole, ProbeError, ProbeOutcome,
};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::mode::{fitness, ClusterMode, Probed};
use crate::topology::Topology;
use crate::writer::choose_writer;

/// Shortest interval the monitor accepts.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// How the monitor runs.
#[derive(Debug, Clone)]
pub struct MonitorSettings {
    /// The backends in configuration order: `host:port` (names resolved
    /// at each probe) or a Unix socket path.
    pub addresses: Vec<String>,
    /// Time between the starts of two rounds of probes.
    pub interval: Duration,
    /// Bound on one whole probe, connect included.
    pub timeout: Duration,
    /// Log in with this account: `SELECT 1` in `single` mode, the node's
    /// role in the cluster modes. `None`: reachability only.
    pub monitor: Option<MonitorLogin>,
    /// Move the writer back to a backend listed earlier once it is fit
    /// again.
    pub fail_back: bool,
}

type ProbeResult = Result<(ProbeOutcome, Option<NodeRole>), ProbeError>;

/// Probes every backend each `settings.interval` until shutdown and
/// publishes the outcome: the writer and evictions in `topology`, each
/// backend and the overall verdict in `state` (and so `/health`), the
/// `sluice_backend_*` metrics, and a log line at each change.
pub async fn watch_backends(
    settings: MonitorSettings,
    topology: Topology,
    state: HttpState,
    mut shutdown: watch::Receiver<bool>,
) {
    let mode = topology.mode();
    let mut ticker = tokio::time::interval(settings.interval.max(MIN_INTERVAL));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut tracks: Vec<Track> = settings
        .addresses
        .iter()
        .map(|_| Track::default())
        .collect();
    // The last backend that was the writer, across rounds without one.
    let mut last_writer = topology.writer();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = ticker.tick() => {}
        }
        let results = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            results = probe_all(&settings, mode) => results,
        };
        let round = Round::judge(mode, &results);
        for (i, (track, result)) in tracks.iter_mut().zip(&results).enumerate() {
            let address = settings.addresses[i].as_str();
            track.log_reachability(address, result);
            track.log_fitness(address, mode, &round.fit[i]);
            if mode != ClusterMode::Single && track.fit && round.fit[i].is_err() {
                tracing::warn!(
                    backend = address,
                    "closing the sessions on this backend: it can no longer take writes"
                );
                topology.evict(i);
            }
            track.fit = round.fit[i].is_ok();
        }
        let writer = publish_writer(&settings, &topology, &round, &state, last_writer);
        last_writer = writer.or(last_writer);
        report(mode, &settings, &state, &round, &results, writer);
    }
}

/// What one backend's last round looked like, to log changes only.
#[derive(Debug, Default)]
struct Track {
    reachability: Option<Summary>,
    unfit_because: Option<Option<String>>,
    fit: bool,
}

impl Track {
    fn log_reachability(&mut self, address: &str, result: &ProbeResult) {
        let summary = Summary::of(result);
        if self.reachability != Some(summary) {
            log_change(address, result, self.reachability.is_none());
            self.reachability = Some(summary);
        }
    }

    /// Logs why a reachable backend cannot take writes, when that changes.
    fn log_fitness(&mut self, address: &str, mode: ClusterMode, fit: &Result<(), String>) {
        if mode == ClusterMode::Single {
            return;
        }
        let why = fit.as_ref().err().cloned();
        if self.unfit_because.as_ref() == Some(&why) {
            return;
        }
        match &why {
            Some(why) => {
                tracing::warn!(backend = address, reason = %why, "backend cannot take writes")
            }
            None => tracing::info!(backend = address, "backend can take writes"),
        }
        self.unfit_because = Some(why);
    }
}

/// One round's verdicts.
struct Round {
    fit: Vec<Result<(), String>>,
}

impl Round {
    fn judge(mode: ClusterMode, results: &[ProbeResult]) -> Round {
        let fit = results
            .iter()
            .map(|result| fitness(mode, &probed(mode, result)))
            .collect();
        Round { fit }
    }

    fn fit_flags(&self) -> Vec<bool> {
        self.fit.iter().map(Result::is_ok).collect()
    }
}

/// A probe result as [`fitness`] reads it. In the cluster modes a server
/// that answers with an error packet instead of a greeting (too many
/// connections, host blocked) cannot take new sessions, so it counts as
/// down; in `single` mode it counts as reachable, as it always has.
fn probed(mode: ClusterMode, result: &ProbeResult) -> Probed {
    match result {
        Ok((ProbeOutcome::Refused { code, message }, _)) if mode != ClusterMode::Single => {
            Probed::Down(format!("refuses connections: error {code}: {message}"))
        }
        Ok((_, role)) => Probed::Up(*role),
        Err(error) => Probed::Down(error.to_string()),
    }
}

/// Probes every backend at once.
async fn probe_all(settings: &MonitorSettings, mode: ClusterMode) -> Vec<ProbeResult> {
    let probes: Vec<_> = settings
        .addresses
        .iter()
        .map(|address| {
            let address = address.clone();
            let monitor = settings.monitor.clone();
            let timeout = settings.timeout;
            tokio::spawn(async move { probe(&address, timeout, monitor.as_ref(), mode).await })
        })
        .collect();
    let mut results = Vec::with_capacity(probes.len());
    for (probe, address) in probes.into_iter().zip(&settings.addresses) {
        // A probe task only ends early if it panicked; count that as a
        // timeout rather than losing the backend's slot.
        results.push(probe.await.unwrap_or_else(|_| {
            Err(ProbeError::Timeout {
                address: address.clone(),
                timeout: settings.timeout,
            })
        }));
    }
    results
}

async fn probe(
    address: &str,
    timeout: Duration,
    monitor: Option<&MonitorLogin>,
    mode: ClusterMode,
) -> ProbeResult {
    match (monitor, mode) {
        (None, _) => probe_once(address, timeout).await.map(|o| (o, None)),
        (Some(monitor), ClusterMode::Single) => {
            probe_as(address, timeout, monitor).await.map(|o| (o, None))
        }
        (Some(monitor), ClusterMode::Galera | ClusterMode::Primary) => {
            let (outcome, role) = probe_role_as(address, timeout, monitor).await?;
            Ok((outcome, Some(role)))
        }
    }
}

/// Chooses the writer for this round, sets it in `topology` and logs and
/// counts a change: a failover is a writer other than `last_writer`, the
/// one before (even with rounds without a writer in between). `single`
/// mode keeps its one backend.
fn publish_writer(
    settings: &MonitorSettings,
    topology: &Topology,
    round: &Round,
    state: &HttpState,
    last_writer: Option<usize>,
) -> Option<usize> {
    if topology.mode() == ClusterMode::Single {
        return topology.writer();
    }
    let writer = choose_writer(&round.fit_flags(), topology.writer(), settings.fail_back);
    if !topology.set_writer(writer) {
        return writer;
    }
    let name = |i: usize| settings.addresses[i].as_str();
    match (last_writer, writer) {
        (Some(from), Some(to)) if from == to => {
            tracing::info!(writer = name(to), "new sessions go to this backend again");
        }
        (Some(from), Some(to)) => {
            state.metrics().backend_failover();
            tracing::warn!(
                from = name(from),
                to = name(to),
                "new sessions now go to another backend"
            );
        }
        (None, Some(to)) => tracing::info!(writer = name(to), "new sessions go to this backend"),
        (_, None) => tracing::error!(
            "no backend can take writes: new sessions wait up to the connect timeout for one, \
             then get an error"
        ),
    }
    writer
}

/// Sets the per-backend metrics and `/health` list, and the overall
/// verdict: in `single` mode whether the backend answered, in the
/// cluster modes whether there is a writer.
fn report(
    mode: ClusterMode,
    settings: &MonitorSettings,
    state: &HttpState,
    round: &Round,
    results: &[ProbeResult],
    writer: Option<usize>,
) {
    let mut statuses = Vec::with_capacity(results.len());
    for (i, result) in results.iter().enumerate() {
        let address = &settings.addresses[i];
        let role = result.as_ref().ok().and_then(|(_, role)| *role);
        let gauges = BackendGauges {
            up: result.is_ok(),
            candidate: round.fit[i].is_ok(),
            writer: writer == Some(i),
            wsrep_local_state: role.and_then(|r| r.wsrep_local_state),
        };
        state.metrics().set_backend_health(address, gauges);
        statuses.push(BackendStatus {
            address: address.clone(),
            up: gauges.up,
            candidate: gauges.candidate,
            writer: gauges.writer,
            read_only: role.map(|r| r.read_only),
            wsrep_local_state: gauges.wsrep_local_state,
            problem: round.fit[i].clone().err(),
        });
    }
    state.set_backends(statuses);
    match (mode, writer, results.first()) {
        (ClusterMode::Single, _, Some(Err(error))) => state.backend_probe_failed(error.to_string()),
        (ClusterMode::Single, _, _) | (_, Some(_), _) => state.backend_probe_result(true),
        (_, None, _) => {
            let why: Vec<String> = round
                .fit
                .iter()
                .zip(&settings.addresses)
                .filter_map(|(fit, address)| {
                    fit.as_ref().err().map(|why| format!("{address}: {why}"))
                })
                .collect();
            state.backend_probe_failed(format!("no backend can take writes ({})", why.join("; ")));
        }
    }
}

/// A probe result without its details, to log only changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Summary {
    Up,
    Refused(u16),
    Down(std::mem::Discriminant<ProbeError>, Option<u16>),
}

impl Summary {
    fn of(result: &ProbeResult) -> Self {
        match result {
            Ok((ProbeOutcome::Greeting { .. } | ProbeOutcome::Answered { .. }, _)) => Summary::Up,
            Ok((ProbeOutcome::Refused { code, .. }, _)) => Summary::Refused(*code),
            Err(error) => Summary::Down(std::mem::discriminant(error), error.code()),
        }
    }
}

fn log_change(address: &str, result: &ProbeResult, first: bool) {
    let again = if first { "" } else { " again" };
    match result {
        Ok((ProbeOutcome::Greeting { server_version }, _)) => {
            tracing::info!(
                backend = address,
                server_version,
                "backend reachable{again}"
            );
        }
        Ok((ProbeOutcome::Answered { server_version }, _)) => {
            tracing::info!(
                backend = address,
                server_version,
                "backend reachable{again}: monitor login and its query succeed"
            );
        }
        Ok((ProbeOutcome::Refused { code, message }, _)) => {
            tracing::warn!(
                backend = address,
                code,
                message,
                "backend answers but refuses connections from this host"
            );
        }
        Err(error) => {
            tracing::warn!(backend = address, code = error.code(), %error, "backend down");
        }
    }
}
