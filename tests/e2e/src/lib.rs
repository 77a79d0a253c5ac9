//! End-to-end test harness for Sluice.
//!
//! * [`MariaDb`] starts a private MariaDB server (own data dir under
//!   `<target>/e2e/`, free port on 127.0.0.1) and removes it on drop.
//! * [`Sluice`] starts the `sluice` daemon in front of a [`MariaDb`], or — with
//!   `SLUICE_E2E_DIRECT=1` — hands out MariaDB's own address so the same tests
//!   can be validated against the server directly.
//! * [`raw::RawConn`] is a tiny MySQL protocol client returning the exact bytes
//!   of each response, for commands `mysql_async` cannot send and for byte
//!   comparisons between Sluice and MariaDB.
//! * [`cli`] runs the `mariadb` command line client.
//! * [`http`] reads the daemon's `/metrics`, `/health` and `/ready`.
//! * [`certs`] makes a CA and a server certificate for TLS tests.

pub mod certs;
pub mod cli;
pub mod differential;
pub mod galera;
pub mod http;
pub mod mariadb;
pub mod raw;
pub mod sluice;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use mariadb::{MariaDb, MariaDbBuilder};
pub use sluice::{Sluice, SluiceBuilder};

/// Root of the cargo workspace (two levels above this crate).
pub fn workspace_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .expect("tests/e2e sits two levels below the workspace root")
        .to_path_buf()
}

/// The cargo target directory (`CARGO_TARGET_DIR` if set, else `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_dir().join(dir)
            }
        }
        _ => workspace_dir().join("target"),
    }
}

/// Directory holding everything the e2e harness creates: `<target>/e2e`.
pub fn e2e_dir() -> PathBuf {
    let dir = target_dir().join("e2e");
    std::fs::create_dir_all(&dir).expect("create target/e2e");
    dir
}

/// True when `SLUICE_E2E_DIRECT` is set to a true value: tests talk to
/// MariaDB directly and [`Sluice::start`] starts no process.
pub fn direct_mode() -> bool {
    matches!(
        std::env::var("SLUICE_E2E_DIRECT").as_deref(),
        Ok("1") | Ok("true") | Ok("yes") | Ok("on")
    )
}

/// A name unique within this machine for the lifetime of this process:
/// `<prefix>-<pid>-<counter>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0).
/// Callers retry on collision.
/// A port on 127.0.0.1 where nothing listens and nothing else can start
/// listening while this value lives: a socket is bound to it without
/// `SO_REUSEADDR` and never listens, so connecting is refused at once.
/// (A port merely found free may be taken by another test's server a
/// moment later.) Not inherited by child processes, so it is free again
/// once dropped.
#[derive(Debug)]
pub struct ClosedPort {
    fd: libc::c_int,
    port: u16,
}

impl ClosedPort {
    pub fn reserve() -> ClosedPort {
        // SAFETY: plain socket calls on a descriptor this value owns; the
        // address structure is fully initialised before use.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            addr.sin_port = 0;
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let bound = libc::bind(fd, &addr as *const _ as *const libc::sockaddr, len);
            assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
            let mut out: libc::sockaddr_in = std::mem::zeroed();
            let mut out_len = len;
            let named =
                libc::getsockname(fd, &mut out as *mut _ as *mut libc::sockaddr, &mut out_len);
            assert_eq!(named, 0, "getsockname: {}", std::io::Error::last_os_error());
            ClosedPort {
                fd,
                port: u16::from_be(out.sin_port),
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for ClosedPort {
    fn drop(&mut self) {
        // SAFETY: the descriptor is owned by this value and closed once.
        unsafe {
            libc::close(self.fd);
        }
    }
}

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// The last `max_lines` lines of a file, or a note saying it could not be read.
pub fn tail_file(path: &Path, max_lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(max_lines);
            lines[start..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// Polls `check` every 50 ms until it returns true or `timeout` elapses.
/// Returns whether the condition became true.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Removes data directories and logs left behind by test processes that no
/// longer run (killed before their `Drop` could clean up). Names carry the
/// creating process id as their second dash-separated field.
pub(crate) fn remove_stale_instances() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = std::fs::read_dir(e2e_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let mut parts = name.split('-');
            let kind = parts.next().unwrap_or_default();
            if !matches!(kind, "db" | "sluice" | "tmp") {
                continue;
            }
            let Some(pid) = parts.next().and_then(|p| p.parse::<i32>().ok()) else {
                continue;
            };
            if pid == std::process::id() as i32 || process_alive(pid) {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                let _ = std::fs::remove_dir_all(&path);
            } else {
                let _ = std::fs::remove_file(&path);
            }
        }
    });
}

/// Whether a process with this id exists.
pub fn process_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Makes a child process receive SIGKILL when the thread that spawned it
/// dies, so that servers do not outlive a test process that was killed.
/// Must be called from `pre_exec`.
pub(crate) fn set_parent_death_signal() -> std::io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and only affects
    // the calling (child) process.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Puts `fd` at descriptor 3 of a child, open across its exec, where
/// systemd puts the first socket it passes. Must be called from
/// `pre_exec`.
pub(crate) fn pass_as_fd_3(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    const PASSED: std::os::fd::RawFd = 3;
    // SAFETY: dup2 and fcntl are async-signal-safe and act on this (child)
    // process's descriptor table only.
    let rc = unsafe {
        if fd == PASSED {
            libc::fcntl(PASSED, libc::F_SETFD, 0)
        } else {
            // dup2 leaves the new descriptor open across exec.
            libc::dup2(fd, PASSED)
        }
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Waits for a child with a timeout; SIGKILLs it if the timeout passes.
/// Returns the exit status, if it could be collected.
pub(crate) fn wait_child_or_kill(
    child: &mut std::process::Child,
    timeout: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(_) => return None,
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            return child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends a signal to a process.
pub fn send_signal_to(pid: u32, signal: i32) -> std::io::Result<()> {
    // SAFETY: plain kill(2) on a pid we started.
    let rc = unsafe { libc::kill(pid as i32, signal) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Convenience: a text query result as rows of optional strings, for
/// comparing results through Sluice and directly.
pub async fn query_strings(
    conn: &mut mysql_async::Conn,
    sql: &str,
) -> anyhow::Result<Vec<Vec<Option<String>>>> {
    use mysql_async::prelude::Queryable;
    let rows: Vec<mysql_async::Row> = conn.query(sql).await?;
    Ok(rows.into_iter().map(row_strings).collect())
}

/// `SHOW SLUICE STATUS` as a map of name to value.
pub async fn sluice_status(
    conn: &mut mysql_async::Conn,
) -> std::collections::HashMap<String, String> {
    use mysql_async::prelude::Queryable;
    conn.query::<(String, String), _>("SHOW SLUICE STATUS")
        .await
        .expect("SHOW SLUICE STATUS")
        .into_iter()
        .collect()
}

/// A row's values rendered as strings (bytes lossily as UTF-8), NULL as None.
pub fn row_strings(row: mysql_async::Row) -> Vec<Option<String>> {
    row.unwrap()
        .into_iter()
        .map(|v| match v {
            mysql_async::Value::NULL => None,
            mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            other => Some(other.as_sql(true)),
        })
        .collect()
}

/// Logs in as an ed25519 account, retrying a refusal twice. mysql_async's
/// ed25519 client fails about one login in 300 with MariaDB's 1045 for
/// the right password, directly against MariaDB as well as through Sluice
/// (measured: 1 of 800 direct, 2 of 800 through Sluice), so a test that
/// logs in many times would fail now and then for a reason not its own.
/// A wrong password fails all three attempts.
pub async fn connect_ed25519(
    opts: mysql_async::OptsBuilder,
) -> Result<mysql_async::Conn, mysql_async::Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match mysql_async::Conn::new(opts.clone()).await {
            Err(mysql_async::Error::Server(e)) if e.code == 1045 && attempt < 3 => continue,
            other => return other,
        }
    }
}

/// A private MariaDB with Sluice in front of it. Sluice is dropped first.
#[derive(Debug)]
pub struct Pair {
    pub sluice: Sluice,
    pub db: MariaDb,
}

impl Pair {
    /// Starts a default MariaDB and a default Sluice in front of it.
    pub async fn start() -> Pair {
        let db = MariaDb::start().await;
        let sluice = Sluice::start(&db).await;
        Pair { sluice, db }
    }

    /// A root connection through Sluice.
    pub async fn conn(&self) -> mysql_async::Conn {
        self.sluice.root_conn().await
    }

    /// A root connection straight to MariaDB.
    pub async fn direct(&self) -> mysql_async::Conn {
        self.db.root_conn().await
    }

    /// A raw-protocol root connection through Sluice.
    pub async fn raw(&self) -> raw::RawConn {
        raw::RawConn::connect(self.sluice.addr())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "raw connection through sluice: {e:#}\nsluice log tail:\n{}",
                    self.sluice.log_tail(40)
                )
            })
    }

    /// A raw-protocol root connection straight to MariaDB.
    pub async fn raw_direct(&self) -> raw::RawConn {
        raw::RawConn::connect(self.db.addr())
            .await
            .expect("raw connection to MariaDB")
    }

    /// The `mariadb` CLI pointed at Sluice.
    pub fn cli(&self) -> cli::Cli {
        cli::Cli::new(self.sluice.port())
    }
}
