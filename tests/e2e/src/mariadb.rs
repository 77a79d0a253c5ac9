//! A private MariaDB server for one test: own data dir, own port, removed on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};

use crate::{e2e_dir, free_port, tail_file, unique_name};

/// Server options every instance gets. Extra builder args come after them
/// and so override them.
pub(crate) const BASE_ARGS: &[&str] = &[
    "--bind-address=127.0.0.1",
    "--skip-name-resolve",
    "--skip-log-bin",
    "--innodb-buffer-pool-size=64M",
    "--innodb-log-file-size=16M",
    "--innodb-flush-log-at-trx-commit=2",
    "--max-allowed-packet=64M",
    "--max-connections=500",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
    "--performance-schema=OFF",
    "--local-infile=1",
];

/// Options for `mariadb-install-db` (the template is made once per version).
const INSTALL_ARGS: &[&str] = &[
    "--auth-root-authentication-method=normal",
    "--skip-test-db",
    "--innodb-log-file-size=16M",
    "--innodb-buffer-pool-size=64M",
];

/// Bumped whenever `INSTALL_ARGS` change, so old templates are not reused.
const TEMPLATE_REVISION: u32 = 1;

/// Builder for [`MariaDb`] with extra `mariadbd` arguments.
#[derive(Debug, Default, Clone)]
pub struct MariaDbBuilder {
    args: Vec<String>,
    port: Option<u16>,
}

impl MariaDbBuilder {
    /// Adds one `mariadbd` option, e.g. `--innodb-autoinc-lock-mode=2`.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds several `mariadbd` options.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Listens on this port instead of a free one (no retry if it is taken).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Copies the template data dir, starts `mariadbd` on a free port and
    /// waits until it answers `SELECT 1`. Panics with the error log tail if
    /// it does not come up.
    pub async fn start(self) -> MariaDb {
        crate::remove_stale_instances();
        let template = template_dir();
        let mut last_failure = String::new();
        for _attempt in 0..5 {
            let dir = e2e_dir().join(unique_name("db"));
            let data = dir.join("data");
            std::fs::create_dir_all(&dir).expect("create instance dir");
            copy_dir(&template, &data).expect("copy template data dir");
            let port = self.port.unwrap_or_else(free_port);
            let child = spawn_server(&dir, &data, port, &self.args);
            let mut db = MariaDb {
                child: Some(child),
                dir,
                port,
            };
            match db.wait_ready(Duration::from_secs(60)).await {
                Ok(()) => return db,
                Err(StartError::PortTaken(msg)) if self.port.is_none() => {
                    last_failure = msg;
                    drop(db);
                    continue;
                }
                Err(StartError::PortTaken(msg)) | Err(StartError::Failed(msg)) => {
                    drop(db);
                    panic!("{msg}");
                }
            }
        }
        panic!("MariaDB could not get a free port after 5 attempts: {last_failure}");
    }
}

enum StartError {
    PortTaken(String),
    Failed(String),
}

/// A running private MariaDB server. Dropping it shuts the server down and
/// removes its data dir.
#[derive(Debug)]
pub struct MariaDb {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl MariaDb {
    /// Starts a server with the default options.
    pub async fn start() -> MariaDb {
        MariaDbBuilder::default().start().await
    }

    /// A builder for extra server options.
    pub fn builder() -> MariaDbBuilder {
        MariaDbBuilder::default()
    }

    /// TCP port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's Unix socket.
    pub fn socket_path(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Process id of `mariadbd`.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Instance directory (data dir is `dir()/data`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the server's error log.
    pub fn error_log(&self) -> PathBuf {
        self.dir.join("error.log")
    }

    /// Client options for root (empty password) over TCP to this server.
    pub fn root_opts(&self) -> OptsBuilder {
        client_opts(self.port, "root", None)
    }

    /// `mysql://root@127.0.0.1:<port>/?prefer_socket=false`.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/?prefer_socket=false", self.port)
    }

    /// A fresh root connection straight to MariaDB.
    pub async fn root_conn(&self) -> Conn {
        Conn::new(self.root_opts())
            .await
            .unwrap_or_else(|e| panic!("root connection to MariaDB on {}: {e}", self.port))
    }

    /// Runs SQL (may be several statements) on a fresh root connection.
    pub async fn sql(&self, sql: &str) {
        let mut conn = self.root_conn().await;
        conn.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("direct SQL failed: {sql}: {e}"));
        let _ = conn.disconnect().await;
    }

    /// Number of client threads currently connected to the server (rows
    /// of `information_schema.PROCESSLIST` with command other than "Daemon"
    /// and user other than "system user"), excluding the querying one.
    pub async fn client_connections(&self) -> u64 {
        let mut conn = self.root_conn().await;
        let n: Option<u64> = conn
            .query_first(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE ID <> CONNECTION_ID() AND COMMAND <> 'Daemon' \
                 AND USER <> 'system user'",
            )
            .await
            .expect("count processlist");
        let _ = conn.disconnect().await;
        n.unwrap_or(0)
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<(), StartError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = tail_file(&self.error_log(), 30);
                    let msg = format!(
                        "mariadbd exited during start-up ({status}) on port {}; error log tail:\n{log}",
                        self.port
                    );
                    if log.contains("Bind on TCP/IP port") || log.contains("Address already in use")
                    {
                        return Err(StartError::PortTaken(msg));
                    }
                    return Err(StartError::Failed(msg));
                }
            }
            let opts = self.root_opts();
            let probe = tokio::time::timeout(Duration::from_secs(5), async move {
                let mut conn = Conn::new(opts).await?;
                let one: Option<i64> = conn.query_first("SELECT 1").await?;
                let _ = conn.disconnect().await;
                Ok::<_, mysql_async::Error>(one)
            })
            .await;
            if let Ok(Ok(Some(1))) = probe {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StartError::Failed(format!(
                    "MariaDB on port {} did not answer SELECT 1 within {timeout:?} (last probe: {probe:?}); error log tail:\n{}",
                    self.port,
                    tail_file(&self.error_log(), 30)
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = crate::send_signal_to(child.id(), libc::SIGTERM);
            crate::wait_child_or_kill(&mut child, Duration::from_secs(20));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// mysql_async options for `user` over TCP to 127.0.0.1:`port`. Never
/// switches to the unix socket (that would bypass Sluice).
pub fn client_opts(port: u16, user: &str, pass: Option<&str>) -> OptsBuilder {
    OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(pass)
        .prefer_socket(false)
}

/// Converts builder options into `Opts` (handy for `Conn::new`).
pub fn opts(builder: OptsBuilder) -> Opts {
    Opts::from(builder)
}

fn spawn_server(dir: &Path, data: &Path, port: u16, extra: &[String]) -> Child {
    use std::os::unix::process::CommandExt;
    let out = std::fs::File::create(dir.join("mariadbd.out")).expect("create mariadbd.out");
    let err = out.try_clone().expect("clone file handle");
    let mut cmd = Command::new(mariadbd_path());
    cmd.arg("--no-defaults")
        .arg("--user=root")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--port={port}"))
        .arg(format!("--socket={}", dir.join("sock").display()))
        .arg(format!("--pid-file={}", dir.join("mariadbd.pid").display()))
        .arg(format!("--log-error={}", dir.join("error.log").display()))
        .arg(format!("--tmpdir={}", dir.display()))
        .args(BASE_ARGS)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    // SAFETY: the closure only calls prctl, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(crate::set_parent_death_signal);
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot start mariadbd ({}): {e}", mariadbd_path()))
}

pub(crate) fn mariadbd_path() -> String {
    std::env::var("SLUICE_E2E_MARIADBD").unwrap_or_else(|_| "mariadbd".to_string())
}

fn install_db_path() -> String {
    std::env::var("SLUICE_E2E_INSTALL_DB").unwrap_or_else(|_| "mariadb-install-db".to_string())
}

/// The version line of `mariadbd --version`, reduced to a file-name-safe key.
fn server_version_key() -> String {
    let out = Command::new(mariadbd_path())
        .arg("--no-defaults")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} --version: {e}", mariadbd_path()));
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .split_whitespace()
        .skip_while(|w| *w != "Ver")
        .nth(1)
        .unwrap_or("unknown");
    version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A freshly initialised data dir, made once per server version with
/// `mariadb-install-db` and then only copied. Parallel test processes
/// each build into a private temp dir and publish it with an atomic
/// rename; the loser of a race just uses the winner's.
pub(crate) fn template_dir() -> PathBuf {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let name = format!("template-{}-r{TEMPLATE_REVISION}", server_version_key());
            let final_dir = e2e_dir().join(name);
            if final_dir.join(".complete").exists() {
                return final_dir;
            }
            let tmp = e2e_dir().join(unique_name("tmp"));
            let data = tmp.join("data");
            std::fs::create_dir_all(&tmp).expect("create template temp dir");
            let out = Command::new(install_db_path())
                .arg("--no-defaults")
                .arg("--user=root")
                .arg(format!("--datadir={}", data.display()))
                .args(INSTALL_ARGS)
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", install_db_path()));
            if !out.status.success() {
                panic!(
                    "mariadb-install-db failed ({}):\n{}\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::fs::write(data.join(".complete"), b"ok").expect("mark template complete");
            match std::fs::rename(&data, &final_dir) {
                Ok(()) => {}
                Err(_) if final_dir.join(".complete").exists() => {}
                Err(e) => {
                    // A stale, incomplete template is in the way: replace it.
                    let _ = std::fs::remove_dir_all(&final_dir);
                    std::fs::rename(&data, &final_dir).unwrap_or_else(|e2| {
                        panic!("cannot publish MariaDB template ({e}; then {e2})")
                    });
                }
            }
            let _ = std::fs::remove_dir_all(&tmp);
            final_dir
        })
        .clone()
}

pub(crate) fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".complete" {
            continue;
        }
        let src = entry.path();
        let dst = to.join(&name);
        if entry.file_type()?.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}
