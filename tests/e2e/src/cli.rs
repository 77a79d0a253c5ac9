//! The `mariadb` command line client.

use std::io::Write;
use std::process::{Command, Stdio};

/// Output of one `mariadb` run.
#[derive(Debug, Clone)]
pub struct CliOutput {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// Panics with both streams unless the client exited 0.
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.status.success(),
            "mariadb CLI failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A `mariadb` invocation: `mariadb --no-defaults -h127.0.0.1 -P<port> -u<user>`.
#[derive(Debug, Clone)]
pub struct Cli {
    port: u16,
    user: String,
    password: Option<String>,
    database: Option<String>,
    extra: Vec<String>,
    stdin: Option<Vec<u8>>,
}

impl Cli {
    /// Root (empty password) to 127.0.0.1:`port`.
    pub fn new(port: u16) -> Cli {
        Cli {
            port,
            user: "root".to_string(),
            password: None,
            database: None,
            extra: Vec::new(),
            stdin: None,
        }
    }

    pub fn user(mut self, user: &str, password: Option<&str>) -> Cli {
        self.user = user.to_string();
        self.password = password.map(str::to_string);
        self
    }

    pub fn database(mut self, db: &str) -> Cli {
        self.database = Some(db.to_string());
        self
    }

    /// Any extra option, e.g. `--local-infile=1`, `--batch`, `-N`.
    pub fn arg(mut self, arg: &str) -> Cli {
        self.extra.push(arg.to_string());
        self
    }

    /// Feeds SQL on standard input instead of `-e`.
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Cli {
        self.stdin = Some(input.into());
        self
    }

    /// Runs `-e <sql>` (or stdin input if set and `sql` is empty) with
    /// `--batch` output, blocking on a helper thread.
    pub async fn run(self, sql: &str) -> CliOutput {
        let sql = sql.to_string();
        tokio::task::spawn_blocking(move || self.run_blocking(&sql))
            .await
            .expect("mariadb CLI thread")
    }

    fn run_blocking(&self, sql: &str) -> CliOutput {
        let mut cmd = Command::new(
            std::env::var("SLUICE_E2E_MARIADB_CLI").unwrap_or_else(|_| "mariadb".into()),
        );
        cmd.arg("--no-defaults")
            .arg("--protocol=TCP")
            .arg("-h127.0.0.1")
            .arg(format!("-P{}", self.port))
            .arg(format!("-u{}", self.user))
            .arg("--batch")
            .arg("--connect-timeout=10");
        if let Some(p) = &self.password {
            cmd.arg(format!("-p{p}"));
        }
        cmd.args(&self.extra);
        if !sql.is_empty() {
            cmd.arg("-e").arg(sql);
        }
        if let Some(db) = &self.database {
            cmd.arg(db);
        }
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn mariadb CLI");
        if let Some(input) = &self.stdin {
            let mut stdin = child.stdin.take().expect("piped stdin");
            stdin.write_all(input).expect("write CLI stdin");
        }
        let out = child.wait_with_output().expect("wait for mariadb CLI");
        CliOutput {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
