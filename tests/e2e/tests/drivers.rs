//! Driver matrix: real third-party MySQL drivers (PyMySQL,
//! mysql-connector-python, Node's mysql2 at two versions, PHP's mysqli and
//! PDO, the `mariadb` command line client; plain and with the compressed
//! protocol) run one scenario straight against MariaDB and through a
//! batching Sluice, and must see the same outcome: login, session
//! compression, prepared statements, a duplicate-key error, and 32
//! concurrent single-row INSERTs that each get the id of their own row.
//!
//! The scenario scripts and their installer live in `tests/drivers/`;
//! `make test` runs the installer first (`make drivers`, as root on Debian).
//! Every case runs even when an earlier one fails; the test then fails with
//! the list of cases whose outcome differs, each with a diff. One documented
//! difference is accepted (see [`ACCEPT_SERVER_COMPRESSION_OFF`]): MariaDB's
//! `Compression` status variable reads OFF through Sluice, whose leg to the
//! server is uncompressed, while the driver's own connection is compressed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use sluice_e2e::differential::batching_sluice;
use sluice_e2e::{http, target_dir, workspace_dir, MariaDb, Sluice};

/// Longest one run of a scenario script may take (the scripts give up on
/// a single step after 10 s).
const RUN_TIMEOUT: Duration = Duration::from_secs(45);
/// Time for all cases together (they take about 10 s when nothing hangs):
/// cases not started by then are reported as failed, not run.
const CASES_BUDGET: Duration = Duration::from_secs(100);

const SETUP_HINT: &str = "run `bash tests/drivers/setup.sh` (as root) to install the drivers";

/// How a case runs its scenario.
#[derive(Debug, Clone, Copy)]
enum Runner {
    /// `tests/drivers/scenario.py` with this driver (`pymysql`, `connector`).
    Python(&'static str),
    /// `tests/drivers/scenario.js` with the mysql2 installed in this
    /// directory under `<target>/drivers/`.
    Node(&'static str),
    /// `tests/drivers/scenario.php` with this driver (`mysqli`, `pdo`).
    Php(&'static str),
    /// `tests/drivers/scenario_cli.py` with the `mariadb` client.
    Cli,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    /// Name in reports; also part of the table names (letters, digits, `_`).
    name: &'static str,
    runner: Runner,
    compress: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "pymysql",
        runner: Runner::Python("pymysql"),
        compress: false,
    },
    Case {
        name: "connector",
        runner: Runner::Python("connector"),
        compress: false,
    },
    Case {
        name: "connector_compress",
        runner: Runner::Python("connector"),
        compress: true,
    },
    Case {
        name: "mysql2_latest",
        runner: Runner::Node("mysql2-latest"),
        compress: false,
    },
    Case {
        name: "mysql2_latest_compress",
        runner: Runner::Node("mysql2-latest"),
        compress: true,
    },
    Case {
        name: "mysql2_3_23",
        runner: Runner::Node("mysql2-3.23"),
        compress: false,
    },
    Case {
        name: "php_mysqli",
        runner: Runner::Php("mysqli"),
        compress: false,
    },
    Case {
        name: "php_mysqli_compress",
        runner: Runner::Php("mysqli"),
        compress: true,
    },
    Case {
        name: "php_pdo",
        runner: Runner::Php("pdo"),
        compress: false,
    },
    Case {
        name: "php_pdo_compress",
        runner: Runner::Php("pdo"),
        compress: true,
    },
    Case {
        name: "mariadb_cli",
        runner: Runner::Cli,
        compress: false,
    },
    Case {
        name: "mariadb_cli_compress",
        runner: Runner::Cli,
        compress: true,
    },
];

/// Where setup.sh puts things, and the programs the cases run.
struct Tools {
    drivers_dir: PathBuf,
    scripts_dir: PathBuf,
    venv_python: PathBuf,
    mariadb_cli: String,
}

impl Tools {
    fn new() -> Tools {
        let drivers_dir = target_dir().join("drivers");
        Tools {
            venv_python: drivers_dir.join("venv").join("bin").join("python"),
            drivers_dir,
            scripts_dir: workspace_dir().join("tests").join("drivers"),
            mariadb_cli: std::env::var("SLUICE_E2E_MARIADB_CLI")
                .unwrap_or_else(|_| "mariadb".to_string()),
        }
    }

    /// Everything the cases need that is missing, as readable lines.
    async fn missing(&self) -> Vec<String> {
        let mut missing = Vec::new();
        let probe = |what: String, program: &Path, args: &[&str]| {
            let program = program.to_path_buf();
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            async move {
                let out = tokio::process::Command::new(&program)
                    .args(&args)
                    .stdin(Stdio::null())
                    .output()
                    .await;
                match out {
                    Ok(o) if o.status.success() => None,
                    Ok(o) => Some(format!(
                        "{what}: `{} {}` failed ({}): {}",
                        program.display(),
                        args.join(" "),
                        o.status,
                        String::from_utf8_lossy(&o.stderr).trim()
                    )),
                    Err(e) => Some(format!("{what}: cannot run {}: {e}", program.display())),
                }
            }
        };
        let checks = vec![
            probe(
                "Python venv with PyMySQL and mysql-connector-python".into(),
                &self.venv_python,
                &["-c", "import pymysql, mysql.connector"],
            ),
            probe(
                "PHP with mysqli and pdo_mysql".into(),
                Path::new("php"),
                &[
                    "-r",
                    "exit(extension_loaded('mysqli') && extension_loaded('pdo_mysql') ? 0 : 1);",
                ],
            ),
            probe("Node.js".into(), Path::new("node"), &["--version"]),
            probe(
                "the mariadb client".into(),
                Path::new(&self.mariadb_cli),
                &["--version"],
            ),
        ];
        for check in checks {
            if let Some(m) = check.await {
                missing.push(m);
            }
        }
        for dir in ["mysql2-latest", "mysql2-3.23"] {
            let pkg = self
                .drivers_dir
                .join(dir)
                .join("node_modules")
                .join("mysql2")
                .join("package.json");
            if !pkg.exists() {
                missing.push(format!("mysql2: {} does not exist", pkg.display()));
            }
        }
        missing
    }

    /// The command that runs `case` against 127.0.0.1:`port` with tables
    /// named `<prefix>_*`.
    fn command(&self, case: &Case, port: u16, prefix: &str) -> tokio::process::Command {
        let compress = if case.compress { "1" } else { "0" };
        let common = |cmd: &mut tokio::process::Command| {
            cmd.arg("127.0.0.1")
                .arg(port.to_string())
                .arg(prefix)
                .arg(compress);
        };
        let mut cmd;
        match case.runner {
            Runner::Python(driver) => {
                cmd = tokio::process::Command::new(&self.venv_python);
                cmd.arg(self.scripts_dir.join("scenario.py"));
                common(&mut cmd);
                cmd.arg(driver);
            }
            Runner::Node(dir) => {
                cmd = tokio::process::Command::new("node");
                cmd.arg(self.scripts_dir.join("scenario.js"));
                common(&mut cmd);
                cmd.arg(self.drivers_dir.join(dir));
            }
            Runner::Php(driver) => {
                cmd = tokio::process::Command::new("php");
                cmd.arg(self.scripts_dir.join("scenario.php"));
                common(&mut cmd);
                cmd.arg(driver);
            }
            Runner::Cli => {
                cmd = tokio::process::Command::new(&self.venv_python);
                cmd.arg(self.scripts_dir.join("scenario_cli.py"));
                common(&mut cmd);
                cmd.arg(&self.mariadb_cli);
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }
}

/// Runs one scenario; its stdout with the table prefix and the port
/// replaced by placeholders, or why the run itself failed.
async fn run_scenario(
    tools: &Tools,
    case: &Case,
    port: u16,
    prefix: &str,
    placeholder: &str,
) -> Result<String, String> {
    let mut cmd = tools.command(case, port, prefix);
    let output = match tokio::time::timeout(RUN_TIMEOUT, cmd.output()).await {
        Err(_) => return Err(format!("did not finish within {RUN_TIMEOUT:?}")),
        Ok(Err(e)) => return Err(format!("cannot run {cmd:?}: {e}")),
        Ok(Ok(output)) => output,
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() || !stdout.trim_start().starts_with('{') {
        return Err(format!(
            "the scenario script failed ({}):\nstdout:\n{}\nstderr:\n{}",
            output.status,
            tail(&stdout, 40),
            tail(&stderr, 40)
        ));
    }
    Ok(stdout
        .replace(prefix, placeholder)
        .replace(&port.to_string(), "<port>"))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// What the run straight against MariaDB must show, so that two equally
/// broken runs cannot pass: the batch worked, the duplicate key was
/// reported, and compression is on exactly when it was asked for, in the
/// server's view and in the driver's.
fn check_direct(case: &Case, out: &str) -> Result<(), String> {
    let (server, client) = if case.compress {
        (
            "\"server_compression_status\": \"ON\"",
            "\"client_compressed\": true",
        )
    } else {
        (
            "\"server_compression_status\": \"OFF\"",
            "\"client_compressed\": false",
        )
    };
    let want = [
        "\"ids_ok\": true",
        "\"ids_distinct\": true",
        "\"inserted\": 32",
        "\"rows\": 33",
        "1062",
        "Duplicate entry 'dup' for key 'uk'",
        server,
        client,
    ];
    let missing: Vec<&str> = want.iter().copied().filter(|w| !out.contains(w)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the run straight against MariaDB lacks {missing:?} (a problem of the scenario or the \
             driver, not of Sluice):\n{out}"
        ))
    }
}

/// Sluice speaks the compressed protocol with the client only: the leg to
/// MariaDB stays uncompressed, so MariaDB's `Compression` status variable
/// reads OFF through Sluice while the client's connection is compressed
/// (docs/operations.md, "Drivers and protocol features"). When true, that
/// one difference is accepted, and only where the driver itself reports a
/// compressed connection through Sluice; every case where it applies is
/// named in the summary. Set to false to hold Sluice to MariaDB's answer.
const ACCEPT_SERVER_COMPRESSION_OFF: bool = true;

const SERVER_COMPRESSION_ON: &str = "\"server_compression_status\": \"ON\"";
const SERVER_COMPRESSION_OFF: &str = "\"server_compression_status\": \"OFF\"";

/// Applies [`ACCEPT_SERVER_COMPRESSION_OFF`]: the outcome through Sluice
/// with the documented difference undone, and whether it was.
fn accept_documented(direct: &str, through: &str) -> (String, bool) {
    let applies = ACCEPT_SERVER_COMPRESSION_OFF
        && direct.contains(SERVER_COMPRESSION_ON)
        && through.contains(SERVER_COMPRESSION_OFF)
        && through.contains("\"client_compressed\": true");
    if applies {
        (
            through.replace(SERVER_COMPRESSION_OFF, SERVER_COMPRESSION_ON),
            true,
        )
    } else {
        (through.to_string(), false)
    }
}

/// A line diff of `a` (direct) and `b` (through Sluice): changed lines with
/// two lines of context, `-` for direct and `+` for Sluice.
fn diff(a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    // Longest common subsequence table, from the end.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    const CONTEXT: usize = 2;
    let near_change = |k: usize| {
        let lo = k.saturating_sub(CONTEXT);
        let hi = (k + CONTEXT + 1).min(ops.len());
        ops[lo..hi].iter().any(|(op, _)| *op != ' ')
    };
    // A long run of lines only one side has (everything after a failed
    // login, say) shows its first and last lines.
    const RUN_HEAD: usize = 6;
    const RUN_TAIL: usize = 3;
    let mut out = String::new();
    let mut skipped = false;
    let mut k = 0;
    while k < ops.len() {
        let (op, line) = ops[k];
        if op != ' ' {
            let run = ops[k..].iter().take_while(|(o, _)| *o == op).count();
            if skipped {
                out.push_str("   ...\n");
                skipped = false;
            }
            for (i, (_, line)) in ops[k..k + run].iter().enumerate() {
                if run <= RUN_HEAD + RUN_TAIL + 1 || i < RUN_HEAD || i >= run - RUN_TAIL {
                    let _ = writeln!(out, " {op} {line}");
                } else if i == RUN_HEAD {
                    let side = if op == '-' {
                        "straight against MariaDB"
                    } else {
                        "through Sluice"
                    };
                    let hidden = run - RUN_HEAD - RUN_TAIL;
                    let _ = writeln!(out, " {op}   ... {hidden} more lines only {side} ...");
                }
            }
            k += run;
            continue;
        }
        if near_change(k) {
            if skipped {
                out.push_str("   ...\n");
                skipped = false;
            }
            let _ = writeln!(out, "   {line}");
        } else {
            skipped = true;
        }
        k += 1;
    }
    out
}

/// The sum of the samples of a Prometheus metric, and its samples by label set.
fn metric(text: &str, name: &str) -> (f64, Vec<(String, f64)>) {
    let mut total = 0.0;
    let mut samples = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        let Some((labels, value)) = rest.rsplit_once(' ') else {
            continue;
        };
        if let Ok(v) = value.parse::<f64>() {
            total += v;
            samples.push((labels.trim().to_string(), v));
        }
    }
    (total, samples)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drivers_see_the_same_outcome_direct_and_through_sluice() {
    let tools = Tools::new();
    let missing = tools.missing().await;
    assert!(
        missing.is_empty(),
        "driver matrix: tools missing; {SETUP_HINT}:\n  {}",
        missing.join("\n  ")
    );

    let db = MariaDb::start().await;
    let sluice: Sluice = batching_sluice(&db).await;
    db.sql("CREATE DATABASE IF NOT EXISTS test").await;

    let started = Instant::now();
    // (case, how long it took, whether the documented compression status
    // difference was accepted, None or why it failed)
    let mut results: Vec<(&Case, Duration, bool, Option<String>)> = Vec::new();
    for case in CASES {
        let case_started = Instant::now();
        if started.elapsed() > CASES_BUDGET {
            let why = format!("not run: the cases before it used up {CASES_BUDGET:?}");
            results.push((case, Duration::ZERO, false, Some(why)));
            continue;
        }
        let placeholder = format!("dm_{}_<run>", case.name);
        let direct =
            run_scenario(&tools, case, db.port(), &direct_prefix(case), &placeholder).await;
        let log_before = sluice.log_contents().len();
        let through = run_scenario(
            &tools,
            case,
            sluice.port(),
            &sluice_prefix(case),
            &placeholder,
        )
        .await;
        // What Sluice logged above INFO while this case ran through it.
        let log = sluice.log_contents();
        let log_notes: Vec<&str> = log
            .get(log_before..)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .collect();
        let mut documented = false;
        let verdict = match (direct, through) {
            (Err(e), _) => Err(format!("run straight against MariaDB: {e}")),
            (Ok(direct), Err(e)) => Err(format!(
                "run through Sluice: {e}\n-- outcome straight against MariaDB --\n{direct}"
            )),
            (Ok(direct), Ok(through)) => check_direct(case, &direct).and_then(|()| {
                let (through, accepted) = accept_documented(&direct, &through);
                documented = accepted;
                if direct == through {
                    Ok(())
                } else {
                    Err(format!(
                        "outcomes differ (- straight against MariaDB, + through Sluice):\n{}",
                        diff(&direct, &through)
                    ))
                }
            }),
        };
        let failure = verdict.err().map(|why| {
            if log_notes.is_empty() {
                why
            } else {
                format!(
                    "{why}\n-- Sluice's warnings during the run through it --\n{}",
                    log_notes.join("\n")
                )
            }
        });
        results.push((case, case_started.elapsed(), documented, failure));
    }

    let mut failures: Vec<String> = Vec::new();
    // Rows of each case's batch table that Sluice sent in batches.
    let mut batched_by_case = vec![None; CASES.len()];
    if sluice.is_real("drivers_see_the_same_outcome_direct_and_through_sluice") {
        let (code, body) = http::get(sluice.metrics_port(), "/metrics").await;
        let (batched, by_table) = metric(&body, "sluice_write_batched_total");
        for (i, case) in CASES.iter().enumerate() {
            let label = format!("{{table=\"test.{}_batch\"}}", sluice_prefix(case));
            batched_by_case[i] = Some(
                by_table
                    .iter()
                    .find(|(l, _)| *l == label)
                    .map_or(0.0, |(_, v)| *v),
            );
        }
        if code != 200 || batched <= 0.0 {
            failures.push(format!(
                "== metrics ==\nno rows were batched through Sluice over all cases \
                 (GET /metrics: {code}, sluice_write_batched_total = {batched})"
            ));
        }
        if sluice.log_contents().contains("panicked") {
            failures.push(format!(
                "== sluice ==\nthe daemon panicked; log tail:\n{}",
                sluice.log_tail(60)
            ));
        }
    }

    let mut summary = String::new();
    let mut failed_cases = 0;
    for (i, (case, took, documented, failure)) in results.iter().enumerate() {
        let batched = match batched_by_case[i] {
            Some(rows) => format!("{rows:>2} rows batched"),
            None => String::new(),
        };
        let verdict = if failure.is_some() { "FAIL" } else { "PASS" };
        let first = match failure.as_deref() {
            Some(failure) => short_reason(failure),
            None if *documented => "(server's Compression status OFF through Sluice: \
                                    accepted, see ACCEPT_SERVER_COMPRESSION_OFF)"
                .to_string(),
            None => String::new(),
        };
        let _ = writeln!(
            summary,
            "  {verdict}  {:<24} {:>7.1?}  {batched}  {first}",
            case.name, took
        );
        if let Some(why) = failure {
            failed_cases += 1;
            failures.insert(failed_cases - 1, format!("== {} ==\n{why}", case.name));
        }
    }
    eprintln!(
        "driver matrix: {} of {} cases passed in {:.1?}\n{summary}",
        CASES.len() - failed_cases,
        CASES.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "driver matrix failed ({failed_cases} of {} cases):\n{summary}\n{}",
        CASES.len(),
        failures.join("\n\n")
    );
}

/// One line saying why a case failed: its first changed lines for a
/// difference, else the first line of the failure.
fn short_reason(failure: &str) -> String {
    let changed = |mark: &str| {
        failure
            .lines()
            .find_map(|l| l.strip_prefix(mark))
            .map(str::trim)
            .unwrap_or("(nothing)")
    };
    if failure.starts_with("outcomes differ") {
        format!(
            "differs: direct {} / through Sluice {}",
            changed(" - "),
            changed(" + ")
        )
    } else {
        failure.lines().next().unwrap_or_default().to_string()
    }
}

/// Table name prefix of a case's run straight against MariaDB.
fn direct_prefix(case: &Case) -> String {
    format!("dm_{}_direct", case.name)
}

/// Table name prefix of a case's run through Sluice.
fn sluice_prefix(case: &Case) -> String {
    format!("dm_{}_sluice", case.name)
}
