//! The `sluice` daemon under test, or MariaDB itself in direct mode.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mysql_async::{Conn, OptsBuilder};

use crate::mariadb::{client_opts, MariaDb};
use crate::{direct_mode, e2e_dir, free_port, tail_file, unique_name};

/// Builder for [`Sluice`]: backend, extra env vars and flags.
#[derive(Debug, Clone)]
pub struct SluiceBuilder {
    backend_port: u16,
    env: Vec<(String, String)>,
    args: Vec<String>,
    wait_listening: bool,
    /// `--backend` as given here (a Unix socket path, say) instead of
    /// `127.0.0.1:<backend port>`.
    backend_address: Option<String>,
    /// A listening socket passed as systemd's socket activation passes it
    /// (fd 3, `LISTEN_FDS=1`, `LISTEN_PID`), and its port.
    activation: Option<(RawFd, u16)>,
}

impl SluiceBuilder {
    /// Points `--backend` at another port (e.g. a closed one).
    pub fn backend_port(mut self, port: u16) -> Self {
        self.backend_port = port;
        self
    }

    /// Points `--backend` at `address` (e.g. the server's Unix socket).
    pub fn backend_address(mut self, address: impl Into<String>) -> Self {
        self.backend_address = Some(address.into());
        self
    }

    /// Sets an environment variable for the daemon, e.g.
    /// `("SLUICE_PROXY__MAX_CONNECTIONS", "3")`.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Adds a command line flag.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Hands the daemon `listener` the way systemd's socket activation
    /// does; the caller keeps its own copy open, as systemd does, so it
    /// outlives the daemon.
    pub fn activated_by(mut self, listener: &std::net::TcpListener) -> Self {
        let port = listener.local_addr().expect("listener address").port();
        self.activation = Some((listener.as_raw_fd(), port));
        self
    }

    /// Starts the daemon and waits until its port accepts TCP (up to 30 s).
    /// In direct mode returns a handle whose address is the backend's.
    pub async fn start(self) -> Sluice {
        if direct_mode() {
            return Sluice {
                child: None,
                port: self.backend_port,
                metrics_port: 0,
                log_path: None,
                exit_status: None,
            };
        }
        crate::remove_stale_instances();
        let bin = sluice_binary();
        let mut last_failure = String::new();
        for _attempt in 0..5 {
            let port = match self.activation {
                Some((_, port)) => port,
                None => free_port(),
            };
            let metrics_port = free_port();
            let log_path = e2e_dir().join(format!("{}.log", unique_name("sluice")));
            let child = self.spawn(&bin, port, metrics_port, &log_path);
            let mut sluice = Sluice {
                child: Some(child),
                port,
                metrics_port,
                log_path: Some(log_path),
                exit_status: None,
            };
            if !self.wait_listening {
                return sluice;
            }
            match sluice.wait_listening(Duration::from_secs(30)).await {
                Ok(()) => return sluice,
                Err(msg) if msg.contains("in use") => {
                    last_failure = msg;
                    continue;
                }
                Err(msg) => panic!("{msg}"),
            }
        }
        panic!("sluice could not get a free port after 5 attempts: {last_failure}");
    }

    /// Starts the daemon without waiting for its port (for tests of
    /// start-up failures). Panics in direct mode.
    pub async fn spawn_only(mut self) -> Sluice {
        assert!(!direct_mode(), "spawn_only needs the real daemon");
        self.wait_listening = false;
        self.start().await
    }

    fn spawn(&self, bin: &Path, port: u16, metrics_port: u16, log_path: &Path) -> Child {
        use std::os::unix::process::CommandExt;
        let log = std::fs::File::create(log_path).expect("create sluice log");
        let log2 = log.try_clone().expect("clone log handle");
        let mut cmd = match self.activation {
            // LISTEN_PID must be the daemon's own pid: a shell that sets it
            // and then becomes the daemon.
            Some(_) => {
                let mut shell = Command::new("sh");
                shell
                    .arg("-c")
                    .arg("export LISTEN_PID=$$; exec \"$0\" \"$@\"")
                    .arg(bin)
                    .env("LISTEN_FDS", "1");
                shell
            }
            None => Command::new(bin),
        };
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--backend")
            .arg(
                self.backend_address
                    .clone()
                    .unwrap_or_else(|| format!("127.0.0.1:{}", self.backend_port)),
            )
            .args(&self.args)
            .env("RUST_BACKTRACE", "1")
            // Parallel tests each run a daemon: each needs its own port.
            .env(
                "SLUICE_METRICS__LISTEN",
                format!("127.0.0.1:{metrics_port}"),
            )
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let passed_fd = self.activation.map(|(fd, _)| fd);
        // SAFETY: the closure only calls prctl, dup2 and fcntl, which are
        // async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                crate::set_parent_death_signal()?;
                if let Some(fd) = passed_fd {
                    crate::pass_as_fd_3(fd)?;
                }
                Ok(())
            });
        }
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()))
    }
}

/// A running `sluice` daemon (killed on drop), or in direct mode a
/// stand-in whose address is MariaDB's.
#[derive(Debug)]
pub struct Sluice {
    child: Option<Child>,
    port: u16,
    metrics_port: u16,
    log_path: Option<PathBuf>,
    exit_status: Option<ExitStatus>,
}

impl Sluice {
    /// Port of the daemon's HTTP endpoints (`/metrics`, `/health`,
    /// `/ready`); 0 in direct mode.
    pub fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    /// Starts Sluice in front of `db` with default settings.
    pub async fn start(db: &MariaDb) -> Sluice {
        Sluice::builder(db).start().await
    }

    /// A builder for Sluice in front of `db`.
    pub fn builder(db: &MariaDb) -> SluiceBuilder {
        SluiceBuilder {
            backend_port: db.port(),
            env: Vec::new(),
            args: Vec::new(),
            wait_listening: true,
            backend_address: None,
            activation: None,
        }
    }

    /// A builder for Sluice in front of `addresses`, passed to
    /// `--backend` as given (several servers separated by commas).
    pub fn builder_for(addresses: impl Into<String>) -> SluiceBuilder {
        SluiceBuilder {
            backend_port: 0,
            env: Vec::new(),
            args: Vec::new(),
            wait_listening: true,
            backend_address: Some(addresses.into()),
            activation: None,
        }
    }

    /// True when this handle is MariaDB itself (`SLUICE_E2E_DIRECT=1`).
    pub fn is_direct(&self) -> bool {
        self.child.is_none() && self.exit_status.is_none()
    }

    /// For tests that only make sense with the daemon: returns false (and
    /// says so on stderr) in direct mode, so the test can return early.
    pub fn is_real(&self, test: &str) -> bool {
        if self.is_direct() {
            eprintln!("{test}: Sluice-specific assertions skipped in direct mode");
            false
        } else {
            true
        }
    }

    /// Panics if the daemon log shows a Rust panic (no-op in direct mode).
    pub fn assert_no_panic(&self) {
        let log = self.log_contents();
        assert!(
            !log.contains("panicked"),
            "sluice panicked; log tail:\n{}",
            self.log_tail(60)
        );
    }

    /// Port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Process id of the daemon (None in direct mode).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Client options for root (empty password) through Sluice.
    pub fn root_opts(&self) -> OptsBuilder {
        client_opts(self.port, "root", None)
    }

    /// Client options for any user through Sluice.
    pub fn opts_for(&self, user: &str, pass: Option<&str>) -> OptsBuilder {
        client_opts(self.port, user, pass)
    }

    /// A root connection through Sluice.
    pub async fn root_conn(&self) -> Conn {
        Conn::new(self.root_opts()).await.unwrap_or_else(|e| {
            panic!(
                "root connection through sluice on {}: {e}\nsluice log tail:\n{}",
                self.port,
                self.log_tail(40)
            )
        })
    }

    /// The whole daemon log (stdout and stderr); empty in direct mode.
    pub fn log_contents(&self) -> String {
        match &self.log_path {
            Some(p) => String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned(),
            None => String::new(),
        }
    }

    /// The last lines of the daemon log.
    pub fn log_tail(&self, lines: usize) -> String {
        match &self.log_path {
            Some(p) => tail_file(p, lines),
            None => "<direct mode: no sluice log>".to_string(),
        }
    }

    /// Path of the daemon log.
    pub fn log_path(&self) -> Option<&Path> {
        self.log_path.as_deref()
    }

    /// Sends a signal (e.g. `libc::SIGTERM`) to the daemon. Panics in direct mode.
    pub fn send_signal(&self, signal: i32) {
        let pid = self.pid().expect("send_signal needs the real daemon");
        crate::send_signal_to(pid, signal).expect("kill(2) on sluice");
    }

    /// Whether the daemon process has exited (false in direct mode).
    pub fn has_exited(&mut self) -> bool {
        if self.exit_status.is_some() {
            return true;
        }
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                self.exit_status = Some(status);
                self.child = None;
                return true;
            }
        }
        false
    }

    /// Waits for the daemon to exit; None if it is still running after
    /// `timeout` (it is left running). Panics in direct mode.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        assert!(
            !self.is_direct(),
            "wait_exit needs the real daemon (direct mode)"
        );
        let deadline = Instant::now() + timeout;
        loop {
            if self.has_exited() {
                return self.exit_status;
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_listening(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.has_exited() {
                // The bind error sits above the backtrace that RUST_BACKTRACE
                // adds, so look for it in the whole log, not only the tail:
                // the caller retries on another port when a port was taken.
                let port_taken = if self.log_contents().contains("in use") {
                    " (a port was in use)"
                } else {
                    ""
                };
                return Err(format!(
                    "sluice exited during start-up{port_taken} ({:?}); log tail:\n{}",
                    self.exit_status,
                    self.log_tail(40)
                ));
            }
            if tokio::net::TcpStream::connect(self.addr()).await.is_ok() {
                // Someone else may have taken the port between free_port()
                // and our bind: make sure our daemon is still alive.
                tokio::time::sleep(Duration::from_millis(50)).await;
                if !self.has_exited() {
                    return Ok(());
                }
                continue;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "sluice did not listen on {} within {timeout:?}; log tail:\n{}",
                    self.addr(),
                    self.log_tail(40)
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(path) = &self.log_path {
            if std::thread::panicking() {
                eprintln!(
                    "---- sluice log ({}) tail ----\n{}\n---- end of sluice log ----",
                    path.display(),
                    tail_file(path, 60)
                );
            } else {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// The daemon binary: `SLUICE_BIN` if set, else `<target>/debug/sluice`,
/// rebuilt once per test process with `cargo build -p sluice --bin sluice`
/// (skipped with `SLUICE_E2E_NO_BUILD=1`). If that build would wait for
/// the cargo lock held by a running `cargo test`, the existing binary is
/// used as is (build it first, e.g. `make e2e` or `cargo build -p sluice`).
pub fn sluice_binary() -> PathBuf {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(locate_binary)
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn locate_binary() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("SLUICE_BIN").filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        return if bin.exists() {
            Ok(bin)
        } else {
            Err(format!("SLUICE_BIN={} does not exist", bin.display()))
        };
    }
    let bin = crate::target_dir().join("debug").join("sluice");
    let skip_build = matches!(
        std::env::var("SLUICE_E2E_NO_BUILD").as_deref(),
        Ok("1") | Ok("true")
    );
    if !skip_build {
        let started = Instant::now();
        match build_binary() {
            Ok(()) => eprintln!(
                "sluice-e2e: cargo build -p sluice took {:?}",
                started.elapsed()
            ),
            Err(BuildError::Blocked(e)) => {
                eprintln!("sluice-e2e: {e}; using the existing {}", bin.display());
            }
            Err(BuildError::Failed(e)) => return Err(e),
        }
    }
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "sluice binary {} is missing: build it first with `cargo build -p sluice --bin sluice` \
             (or set SLUICE_BIN, or SLUICE_E2E_DIRECT=1 to test MariaDB directly)",
            bin.display()
        ))
    }
}

/// Runs `cargo build -p sluice --bin sluice`. Gives up (Err) if cargo
/// reports it is blocked on a file lock, which happens when the build
/// directory is locked by the `cargo test` that runs us.
enum BuildError {
    /// Cargo waits for a lock we may be holding ourselves: use the binary as is.
    Blocked(String),
    /// The build failed: never test a stale binary.
    Failed(String),
}

fn build_binary() -> Result<(), BuildError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut child = Command::new(&cargo)
        .args(["build", "-p", "sluice", "--bin", "sluice"])
        .current_dir(crate::workspace_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| BuildError::Failed(format!("cannot run {cargo}: {e}")))?;
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20 * 60);
    let mut output = Vec::new();
    loop {
        while let Ok(line) = rx.try_recv() {
            if line.contains("Blocking waiting for file lock") {
                let _ = child.kill();
                let _ = child.wait();
                return Err(BuildError::Blocked(
                    "cargo build of sluice is blocked by a cargo lock".to_string(),
                ));
            }
            output.push(line);
        }
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                    output.push(line);
                }
                let start = output.len().saturating_sub(30);
                return Err(BuildError::Failed(format!(
                    "cargo build -p sluice failed ({status}):\n{}",
                    output[start..].join("\n")
                )));
            }
            Ok(None) => {}
            Err(e) => return Err(BuildError::Failed(format!("waiting for cargo: {e}"))),
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BuildError::Failed(
                "cargo build -p sluice timed out".to_string(),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
