//! What makes a backend fit to take the writes of new sessions, per
//! cluster mode.

use sluice_metrics::NodeRole;

/// How the configured backends relate to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClusterMode {
    /// One server; sessions always go to it, up or not.
    #[default]
    Single,
    /// Galera nodes: one writer at a time among the Synced, ready,
    /// writable nodes.
    Galera,
    /// A primary with replicas: the first reachable server that is not
    /// read-only.
    Primary,
}

impl ClusterMode {
    /// The name the configuration uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterMode::Single => "single",
            ClusterMode::Galera => "galera",
            ClusterMode::Primary => "primary",
        }
    }
}

/// What the last probe of a backend found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probed {
    /// Unreachable, or the monitor login or its query failed; why.
    Down(String),
    /// Reachable; with a monitor user, its role as read.
    Up(Option<NodeRole>),
}

/// Galera's `wsrep_local_state` of a node that may serve writes.
const SYNCED: u8 = 4;

/// Whether a backend may take the writes of new sessions, and if not,
/// why not. Without a monitor user only reachability is known, so a
/// reachable backend is fit.
pub fn fitness(mode: ClusterMode, probed: &Probed) -> Result<(), String> {
    let role = match probed {
        Probed::Down(why) => return Err(why.clone()),
        Probed::Up(None) => return Ok(()),
        Probed::Up(Some(role)) => role,
    };
    match mode {
        ClusterMode::Single => Ok(()),
        ClusterMode::Primary if role.read_only => Err("read-only".to_string()),
        ClusterMode::Primary => Ok(()),
        ClusterMode::Galera => galera_fitness(role),
    }
}

fn galera_fitness(role: &NodeRole) -> Result<(), String> {
    match role.wsrep_local_state {
        None => Err("not a Galera node (no wsrep_local_state)".to_string()),
        Some(state) if state != SYNCED => Err(format!(
            "wsrep_local_state is {state} ({}), not 4 (Synced)",
            galera_state_name(state)
        )),
        Some(_) if !role.wsrep_ready => Err("wsrep_ready is OFF".to_string()),
        Some(_) if role.read_only => Err("read-only".to_string()),
        Some(_) => Ok(()),
    }
}

/// Galera's names of `wsrep_local_state` values.
fn galera_state_name(state: u8) -> &'static str {
    match state {
        1 => "Joining",
        2 => "Donor/Desynced",
        3 => "Joined",
        4 => "Synced",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(read_only: bool, state: Option<u8>, ready: bool) -> Probed {
        Probed::Up(Some(NodeRole {
            read_only,
            wsrep_local_state: state,
            wsrep_ready: ready,
        }))
    }

    #[test]
    fn a_down_backend_is_never_fit() {
        for mode in [
            ClusterMode::Single,
            ClusterMode::Galera,
            ClusterMode::Primary,
        ] {
            assert_eq!(
                fitness(mode, &Probed::Down("refused".into())),
                Err("refused".into())
            );
        }
    }

    #[test]
    fn without_a_monitor_user_reachable_is_fit() {
        for mode in [
            ClusterMode::Single,
            ClusterMode::Galera,
            ClusterMode::Primary,
        ] {
            assert_eq!(fitness(mode, &Probed::Up(None)), Ok(()));
        }
    }

    #[test]
    fn primary_mode_wants_a_writable_server() {
        let primary = ClusterMode::Primary;
        assert_eq!(fitness(primary, &role(false, None, false)), Ok(()));
        assert_eq!(
            fitness(primary, &role(true, None, false)),
            Err("read-only".into())
        );
    }

    #[test]
    fn galera_mode_wants_synced_ready_and_writable() {
        let galera = ClusterMode::Galera;
        assert_eq!(fitness(galera, &role(false, Some(4), true)), Ok(()));
        assert_eq!(
            fitness(galera, &role(false, Some(2), true)),
            Err("wsrep_local_state is 2 (Donor/Desynced), not 4 (Synced)".into())
        );
        assert_eq!(
            fitness(galera, &role(false, Some(4), false)),
            Err("wsrep_ready is OFF".into())
        );
        assert_eq!(
            fitness(galera, &role(true, Some(4), true)),
            Err("read-only".into())
        );
        assert!(fitness(galera, &role(false, None, false)).is_err());
    }

    #[test]
    fn single_mode_takes_whatever_answers() {
        assert_eq!(
            fitness(ClusterMode::Single, &role(true, None, false)),
            Ok(())
        );
    }
}
