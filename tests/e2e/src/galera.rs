//! A private Galera cluster on this host: each node its own dir (under
//! the system temp dir), client port, group-communication port, IST port
//! and SST port, all on 127.0.0.1. Node 1 bootstraps the cluster; the
//! others join by rsync state transfer. Dropping the cluster stops every
//! node and removes its files.
//!
//! Traps this avoids (see shared/DESIGN.md "Several backends"): each node
//! has its own `tmpdir` (a starting server deletes every `#sql*` file in
//! its tmpdir); the nodes run as the OS user `mysql` with their dirs
//! chowned to it, because the rsync daemon of a state transfer drops to
//! `nobody` when started as root; failure detection is shortened so that
//! a killed node is noticed in about two seconds instead of six.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};

use crate::mariadb::{client_opts, copy_dir, mariadbd_path, template_dir, BASE_ARGS};
use crate::{free_port, process_alive, tail_file, unique_name};

/// Where Debian's galera-4 puts the provider.
const PROVIDER: &str = "/usr/lib/galera/libgalera_smm.so";

/// Galera's `wsrep_local_state` of a node that serves writes.
const SYNCED: &str = "4";

/// Bound on one node's start, state transfer included.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// True when the cluster tests should run: `make test-cluster` sets
/// `SLUICE_TEST_CLUSTER=1`.
pub fn cluster_tests_enabled() -> bool {
    matches!(
        std::env::var("SLUICE_TEST_CLUSTER").as_deref(),
        Ok("1") | Ok("true") | Ok("yes") | Ok("on")
    )
}

/// One node's fixed identity: its dir and ports, kept across restarts.
#[derive(Debug)]
pub struct GaleraNode {
    name: String,
    dir: PathBuf,
    port: u16,
    gcomm_port: u16,
    ist_port: u16,
    sst_port: u16,
    child: Option<Child>,
}

impl GaleraNode {
    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`, as Sluice's `[backend] address` lists it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Root over TCP.
    pub fn root_opts(&self) -> OptsBuilder {
        client_opts(self.port, "root", None)
    }

    /// A root connection.
    pub async fn root_conn(&self) -> Conn {
        Conn::new(self.root_opts())
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.name))
    }

    /// Runs SQL (possibly several statements) as root.
    pub async fn sql(&self, sql: &str) {
        let mut conn = self.root_conn().await;
        conn.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{} failed: {sql}: {e}", self.name));
        let _ = conn.disconnect().await;
    }

    /// Whether the node is running (not killed or exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    fn error_log(&self) -> PathBuf {
        self.dir.join("error.log")
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn spawn(&mut self, cluster: &str, peers: &str, bootstrap: bool) {
        use std::os::unix::process::CommandExt;
        let out =
            std::fs::File::create(self.dir.join("mariadbd.out")).expect("create mariadbd.out");
        let err = out.try_clone().expect("clone file handle");
        let provider_options = format!(
            "base_port={gcomm};gmcast.listen_addr=tcp://127.0.0.1:{gcomm};\
             ist.recv_addr=127.0.0.1:{ist};evs.keepalive_period=PT0.5S;\
             evs.suspect_timeout=PT2S;evs.inactive_timeout=PT3S;\
             evs.inactive_check_period=PT0.5S;gcache.size=32M",
            gcomm = self.gcomm_port,
            ist = self.ist_port,
        );
        let mut cmd = Command::new(mariadbd_path());
        cmd.arg("--no-defaults")
            .arg("--user=mysql")
            .arg(format!("--datadir={}", self.data().display()))
            .arg(format!("--port={}", self.port))
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .arg(format!(
                "--pid-file={}",
                self.dir.join("mariadbd.pid").display()
            ))
            .arg(format!("--log-error={}", self.error_log().display()))
            .arg(format!("--tmpdir={}", self.dir.join("tmp").display()))
            .args(BASE_ARGS)
            .arg("--binlog-format=ROW")
            .arg("--innodb-autoinc-lock-mode=2")
            .arg("--wsrep-on=ON")
            .arg(format!("--wsrep-provider={PROVIDER}"))
            .arg(format!("--wsrep-cluster-name={cluster}"))
            .arg(format!("--wsrep-cluster-address=gcomm://{peers}"))
            .arg(format!("--wsrep-node-name={}", self.name))
            .arg(format!(
                "--wsrep-node-address=127.0.0.1:{}",
                self.gcomm_port
            ))
            .arg(format!(
                "--wsrep-node-incoming-address=127.0.0.1:{}",
                self.port
            ))
            .arg("--wsrep-sst-method=rsync")
            .arg(format!(
                "--wsrep-sst-receive-address=127.0.0.1:{}",
                self.sst_port
            ))
            .arg(format!("--wsrep-provider-options={provider_options}"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        if bootstrap {
            cmd.arg("--wsrep-new-cluster");
        }
        // SAFETY: the closure only calls prctl, which is async-signal-safe.
        unsafe {
            cmd.pre_exec(crate::set_parent_death_signal);
        }
        self.child = Some(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.name)),
        );
    }

    /// Waits until the node answers and reports Synced in a cluster of
    /// `size` nodes.
    async fn wait_synced(&mut self, size: usize) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "{} exited during start-up ({status}); error log tail:\n{}",
                    self.name,
                    tail_file(&self.error_log(), 40)
                );
            }
            let opts = self.root_opts();
            let probe = tokio::time::timeout(Duration::from_secs(5), async move {
                let mut conn = Conn::new(opts).await?;
                let rows: Vec<(String, String)> = conn
                    .query(
                        "SHOW GLOBAL STATUS WHERE Variable_name IN \
                         ('wsrep_local_state', 'wsrep_cluster_size', 'wsrep_ready')",
                    )
                    .await?;
                let _ = conn.disconnect().await;
                Ok::<_, mysql_async::Error>(rows)
            })
            .await;
            let last = if let Ok(Ok(rows)) = &probe {
                let get = |name: &str| {
                    rows.iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                if get("wsrep_local_state") == SYNCED
                    && get("wsrep_ready") == "ON"
                    && get("wsrep_cluster_size") == size.to_string()
                {
                    return;
                }
                format!("{rows:?}")
            } else {
                format!("{probe:?}")
            };
            if Instant::now() >= deadline {
                panic!(
                    "{} not Synced in a cluster of {size} within {START_TIMEOUT:?} (last: {last}); \
                     error log tail:\n{}",
                    self.name,
                    tail_file(&self.error_log(), 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn stop(&mut self, signal: i32) {
        if let Some(mut child) = self.child.take() {
            let _ = crate::send_signal_to(child.id(), signal);
            crate::wait_child_or_kill(&mut child, Duration::from_secs(30));
        }
    }
}

/// A running Galera cluster of private nodes.
#[derive(Debug)]
pub struct GaleraCluster {
    name: String,
    nodes: Vec<GaleraNode>,
}

impl GaleraCluster {
    /// Starts `size` nodes, one after the other (node 1 bootstraps; each
    /// joiner takes a full state transfer), and waits until all are
    /// Synced.
    pub async fn start(size: usize) -> GaleraCluster {
        remove_stale_nodes();
        let template = template_dir();
        let name = unique_name("galera");
        let mut nodes = Vec::with_capacity(size);
        for i in 1..=size {
            let dir = nodes_dir().join(unique_name("node"));
            std::fs::create_dir_all(dir.join("tmp")).expect("create node dirs");
            let node = GaleraNode {
                name: format!("node{i}"),
                port: free_port(),
                gcomm_port: free_port(),
                ist_port: free_port(),
                sst_port: free_port(),
                child: None,
                dir,
            };
            if i == 1 {
                copy_dir(&template, &node.data()).expect("copy template data dir");
            } else {
                // A joiner gets its data by state transfer.
                std::fs::create_dir_all(node.data()).expect("create data dir");
            }
            give_to_mysql(&node.dir);
            nodes.push(node);
        }
        let mut cluster = GaleraCluster { name, nodes };
        for i in 0..size {
            cluster.start_node(i, i == 0).await;
            cluster.nodes[i].wait_synced(i + 1).await;
        }
        cluster
    }

    /// The nodes, in start order.
    pub fn nodes(&self) -> &[GaleraNode] {
        &self.nodes
    }

    /// Node `i` (0-based).
    pub fn node(&self, i: usize) -> &GaleraNode {
        &self.nodes[i]
    }

    /// Every node's address, comma-separated, for `[backend] address`.
    pub fn addresses(&self) -> String {
        let all: Vec<String> = self.nodes.iter().map(GaleraNode::address).collect();
        all.join(", ")
    }

    /// Kills node `i` with SIGKILL, as a crash would.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].stop(libc::SIGKILL);
    }

    /// Starts node `i` again after a crash; it rejoins by state transfer.
    /// Returns once every running node reports Synced in a cluster of
    /// all of them.
    pub async fn restart(&mut self, i: usize) {
        self.start_node(i, false).await;
        let size = self.nodes.len();
        self.nodes[i].wait_synced(size).await;
    }

    async fn start_node(&mut self, i: usize, bootstrap: bool) {
        let peers: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.gcomm_port))
            .collect();
        let peers = peers.join(",");
        let cluster = self.name.clone();
        let node = &mut self.nodes[i];
        give_to_mysql(&node.dir);
        node.spawn(&cluster, &peers, bootstrap);
    }
}

impl Drop for GaleraCluster {
    fn drop(&mut self) {
        for node in self.nodes.iter_mut().rev() {
            node.stop(libc::SIGTERM);
            let _ = std::fs::remove_dir_all(&node.dir);
        }
    }
}

/// Where node dirs live: under the system's temp dir rather than the
/// build's target dir, because the nodes run as `mysql`, which must be
/// able to reach them whoever owns the checkout.
fn nodes_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("sluice-galera");
    std::fs::create_dir_all(&dir).expect("create the galera nodes dir");
    dir
}

/// Removes the dirs of nodes whose test process is gone (killed before
/// its cluster was dropped).
fn remove_stale_nodes() {
    let Ok(entries) = std::fs::read_dir(nodes_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.split('-').nth(1).and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|pid| pid != std::process::id() as i32 && !process_alive(pid)) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Hands a node's dir to the OS user `mysql`, which the node runs as.
fn give_to_mysql(dir: &Path) {
    let status = Command::new("chown")
        .arg("-R")
        .arg("mysql:mysql")
        .arg(dir)
        .status()
        .expect("run chown");
    assert!(status.success(), "chown -R mysql:mysql {}", dir.display());
}
