//! The differential oracle for write batching.
//!
//! A [`Scenario`] is a schema plus one script of statements per client. It
//! runs twice on the same private MariaDB, each time on a freshly created
//! schema:
//!
//! 1. **alone**: client after client, statement after statement, straight
//!    against MariaDB, so no statement ever runs next to another;
//! 2. **concurrently through Sluice**: every client on its own connection,
//!    all of them released together by a barrier before each step, so the
//!    INSERTs of one step arrive at the same moment and can be batched.
//!
//! Both runs must give every client the same outcome for every statement
//! (affected rows, insert id, warning count, status flags, info text,
//! result rows, or MariaDB's own error code, SQLSTATE and message) and must
//! leave the same table contents. AUTO_INCREMENT values are compared by
//! meaning: concurrency legitimately changes which id a row gets, so every
//! id a client is told is replaced by the label of the row that carries it
//! (from [`Scenario::ids`]); an id that names another client's row, or no
//! row at all, then shows up as a difference.
//!
//! Evidence of batching comes from MariaDB's own statement counters
//! (`Com_insert`, `Com_begin`, …), measured around each run.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};
use tokio::sync::Barrier;

use crate::mariadb::client_opts;
use crate::{row_strings, MariaDb, Sluice};

/// Longest a single statement may take before the client gives up on it.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a whole concurrent run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(150);

/// What a step sends.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// COM_QUERY with these bytes (not necessarily UTF-8: a client may
    /// have said `SET NAMES latin1`).
    Text(Vec<u8>),
    /// COM_STMT_PREPARE + COM_STMT_EXECUTE with these parameters.
    Prepared(String, Vec<Value>),
    /// COM_RESET_CONNECTION.
    Reset,
}

/// One statement of a client's script.
#[derive(Debug, Clone)]
pub struct Step {
    pub kind: StepKind,
    /// Result columns that hold AUTO_INCREMENT values (compared by meaning).
    pub id_columns: Vec<usize>,
    /// The result rows are `(id, label)` pairs that name rows the ids
    /// query cannot see (rolled back, in a temporary table, deleted).
    pub labels: bool,
}

impl Step {
    /// A text-protocol statement.
    pub fn text(sql: impl Into<String>) -> Step {
        Step {
            kind: StepKind::Text(sql.into().into_bytes()),
            id_columns: Vec::new(),
            labels: false,
        }
    }

    /// A query returning `(id, label)` rows that join the id map (see
    /// [`Step::labels`]); its own result is compared by meaning too.
    pub fn labels(sql: impl Into<String>) -> Step {
        Step {
            labels: true,
            ..Step::text(sql).ids(&[0])
        }
    }

    /// A text-protocol statement given as raw bytes.
    pub fn bytes(sql: impl Into<Vec<u8>>) -> Step {
        Step {
            kind: StepKind::Text(sql.into()),
            id_columns: Vec::new(),
            labels: false,
        }
    }

    /// A prepared statement executed once with `params`.
    pub fn prepared(sql: impl Into<String>, params: Vec<Value>) -> Step {
        Step {
            kind: StepKind::Prepared(sql.into(), params),
            id_columns: Vec::new(),
            labels: false,
        }
    }

    /// COM_RESET_CONNECTION.
    pub fn reset() -> Step {
        Step {
            kind: StepKind::Reset,
            id_columns: Vec::new(),
            labels: false,
        }
    }

    /// Marks result columns holding AUTO_INCREMENT values.
    pub fn ids(mut self, columns: &[usize]) -> Step {
        self.id_columns = columns.to_vec();
        self
    }

    /// Whether the step is an INSERT statement (for counting).
    pub fn is_insert(&self) -> bool {
        let sql: &[u8] = match &self.kind {
            StepKind::Text(sql) => sql,
            StepKind::Prepared(sql, _) => sql.as_bytes(),
            StepKind::Reset => return false,
        };
        let text = String::from_utf8_lossy(sql);
        text.trim_start().to_ascii_uppercase().starts_with("INSERT")
    }
}

/// One client: whom it logs in as, where, and its script.
#[derive(Debug, Clone)]
pub struct Client {
    pub user: String,
    pub password: Option<String>,
    pub database: Option<String>,
    pub steps: Vec<Step>,
}

impl Client {
    /// Root (empty password) with `database` as the default database.
    pub fn root(database: &str) -> Client {
        Client {
            user: "root".to_string(),
            password: None,
            database: Some(database.to_string()),
            steps: Vec::new(),
        }
    }

    /// Logs in as another user.
    pub fn user(mut self, user: &str, password: &str) -> Client {
        self.user = user.to_string();
        self.password = Some(password.to_string());
        self
    }

    /// Appends a step.
    pub fn step(mut self, step: Step) -> Client {
        self.steps.push(step);
        self
    }

    /// Appends a text-protocol statement.
    pub fn sql(self, sql: impl Into<String>) -> Client {
        self.step(Step::text(sql))
    }
}

/// A schema, clients and what to compare afterwards.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    /// Databases dropped before each run (the setup recreates them).
    pub databases: Vec<String>,
    /// SQL run straight on MariaDB before each run (several statements
    /// allowed).
    pub setup: String,
    pub clients: Vec<Client>,
    /// Statements run in order on one direct root connection after each
    /// run; their results must be equal. They must not show AUTO_INCREMENT
    /// values and must order their rows.
    pub contents: Vec<String>,
    /// A query returning `(id, label)` for every row whose id a client may
    /// be told; labels are unique within a run and the same in both runs.
    pub ids: Option<String>,
    /// Scripts run one after another through Sluice just before the
    /// concurrent run (on a schema that is then recreated), so that Sluice
    /// has read each table's facts once per user instead of once per
    /// waiting session. Outcomes are not compared.
    pub warmup: Vec<Client>,
}

impl Scenario {
    /// Number of INSERT statements in all scripts.
    pub fn insert_statements(&self) -> u64 {
        self.clients
            .iter()
            .flat_map(|c| &c.steps)
            .filter(|s| s.is_insert())
            .count() as u64
    }
}

/// An AUTO_INCREMENT value as a client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdValue {
    /// A number no row carries (0 included).
    Raw(u64),
    /// The id of the row with this label.
    Row(String),
}

/// What one statement gave its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Success: the OK packet's fields and any result rows.
    Done {
        affected_rows: u64,
        insert_id: IdValue,
        warnings: u16,
        status: u16,
        info: String,
        rows: Vec<Vec<Option<String>>>,
    },
    /// MariaDB's error packet.
    Error {
        code: u16,
        state: String,
        message: String,
    },
    /// Anything else (I/O error, timeout, client-side error).
    Failed(String),
}

impl Outcome {
    /// True for [`Outcome::Done`].
    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done { .. })
    }

    /// The error code of an [`Outcome::Error`].
    pub fn error_code(&self) -> Option<u16> {
        match self {
            Outcome::Error { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Everything one run produced.
#[derive(Debug, Clone, Default)]
pub struct RunOutput {
    /// Per client, per step (ids already replaced by row labels).
    pub outcomes: Vec<Vec<Outcome>>,
    /// Results of [`Scenario::contents`], in order.
    pub contents: Vec<Vec<Vec<Option<String>>>>,
    /// Growth of MariaDB's `Com_%` counters during the clients' work.
    pub counters: BTreeMap<String, u64>,
    /// Wall time of the clients' work.
    pub elapsed: Duration,
}

impl RunOutput {
    /// Growth of one `Com_…` counter (0 if it did not move).
    pub fn com(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// The two runs of a scenario.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub alone: RunOutput,
    pub batched: RunOutput,
    /// The second run went straight to MariaDB (`SLUICE_E2E_DIRECT=1`).
    pub direct_mode: bool,
}

impl Comparison {
    /// Asserts that Sluice really batched: fewer INSERT statements reached
    /// MariaDB than clients sent, and at most `max_fraction` of them.
    /// No-op in direct mode.
    pub fn assert_batched(&self, max_fraction: f64) {
        if self.direct_mode {
            return;
        }
        let alone = self.alone.com("Com_insert");
        let batched = self.batched.com("Com_insert");
        assert!(
            (batched as f64) <= alone as f64 * max_fraction && batched < alone,
            "expected batching: {alone} INSERT statements alone, {batched} reached MariaDB \
             through Sluice (allowed: {:.0}); counters through Sluice: {:?}",
            alone as f64 * max_fraction,
            self.batched.counters
        );
        assert!(
            self.batched.com("Com_begin") > 0,
            "a batch runs inside START TRANSACTION … COMMIT; counters: {:?}",
            self.batched.counters
        );
    }

    /// Asserts that at least `min` multi-row batches were committed
    /// (a batch of one row runs as the plain statement, without a
    /// transaction). No-op in direct mode.
    pub fn assert_batches_committed(&self, min: u64) {
        if self.direct_mode {
            return;
        }
        assert!(
            self.batched.com("Com_commit") >= min,
            "expected at least {min} committed batches; counters through Sluice: {:?}",
            self.batched.counters
        );
        assert!(
            self.batched.com("Com_insert") < self.alone.com("Com_insert"),
            "batching saved no INSERT statements: alone {:?}, through Sluice {:?}",
            self.alone.counters,
            self.batched.counters
        );
    }

    /// Asserts that nothing was batched: MariaDB executed exactly the
    /// statements it executed when each ran alone, and no batch
    /// transaction was opened.
    pub fn assert_not_batched(&self) {
        for name in [
            "Com_insert",
            "Com_insert_select",
            "Com_replace",
            "Com_replace_select",
            "Com_begin",
            "Com_commit",
            "Com_rollback",
        ] {
            assert_eq!(
                self.batched.com(name),
                self.alone.com(name),
                "{name}: through Sluice differs from alone, so Sluice rewrote statements; \
                 alone {:?}, through Sluice {:?}",
                self.alone.counters,
                self.batched.counters
            );
        }
    }
}

/// Runs `scenario` alone on `db`, then concurrently through `sluice`, and
/// asserts equal per-client outcomes and contents.
pub async fn differential(db: &MariaDb, sluice: &Sluice, scenario: &Scenario) -> Comparison {
    let alone = run_alone(db, scenario).await;
    let broken: Vec<String> = alone
        .outcomes
        .iter()
        .flatten()
        .filter_map(|o| match o {
            Outcome::Failed(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    assert!(
        broken.is_empty(),
        "the scenario itself fails straight against MariaDB: {broken:?}"
    );
    let batched = run_concurrent(db, sluice.port(), scenario).await;
    let report = differences(scenario, &alone, &batched);
    if !report.is_empty() {
        panic!(
            "alone vs through Sluice differ:\n{report}\nsluice log tail:\n{}",
            sluice.log_tail(30)
        );
    }
    eprintln!(
        "differential: {} clients; alone: Com_insert {} in {:?}; through Sluice: Com_insert {}, \
         Com_begin {}, Com_rollback {} in {:?}",
        scenario.clients.len(),
        alone.com("Com_insert"),
        alone.elapsed,
        batched.com("Com_insert"),
        batched.com("Com_begin"),
        batched.com("Com_rollback"),
        batched.elapsed
    );
    Comparison {
        alone,
        batched,
        direct_mode: sluice.is_direct(),
    }
}

/// Runs every client's script one statement at a time, client after
/// client, straight against MariaDB.
pub async fn run_alone(db: &MariaDb, scenario: &Scenario) -> RunOutput {
    prepare(db, scenario).await;
    let baseline = db.client_connections().await;
    let before = com_counters(db).await;
    let started = std::time::Instant::now();
    let mut outcomes = Vec::with_capacity(scenario.clients.len());
    for client in &scenario.clients {
        let mut conn = connect(db.port(), client).await;
        let mut results = Vec::with_capacity(client.steps.len());
        for step in &client.steps {
            results.push(run_step(&mut conn, step).await);
        }
        if let Ok(conn) = conn {
            let _ = conn.disconnect().await;
        }
        outcomes.push(results);
    }
    let elapsed = started.elapsed();
    settle(db, baseline).await;
    let after = com_counters(db).await;
    finish(db, scenario, outcomes, &before, &after, elapsed).await
}

/// Runs every client on its own connection to `port`, all released
/// together before each step.
pub async fn run_concurrent(db: &MariaDb, port: u16, scenario: &Scenario) -> RunOutput {
    if !scenario.warmup.is_empty() {
        prepare(db, scenario).await;
        for client in &scenario.warmup {
            let mut conn = connect(port, client).await;
            for step in &client.steps {
                run_step(&mut conn, step).await;
            }
            if let Ok(conn) = conn {
                let _ = conn.disconnect().await;
            }
        }
    }
    prepare(db, scenario).await;
    let baseline = db.client_connections().await;
    let barrier = Arc::new(Barrier::new(scenario.clients.len()));
    // Every client waits at the barrier once per round, scripts of
    // different lengths included.
    let rounds = scenario
        .clients
        .iter()
        .map(|c| c.steps.len())
        .max()
        .unwrap_or(0);
    let before = com_counters(db).await;
    let started = std::time::Instant::now();
    let mut tasks = Vec::with_capacity(scenario.clients.len());
    for client in scenario.clients.iter().cloned() {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = connect(port, &client).await;
            let mut results = Vec::with_capacity(client.steps.len());
            for round in 0..rounds {
                barrier.wait().await;
                if let Some(step) = client.steps.get(round) {
                    results.push(run_step(&mut conn, step).await);
                }
            }
            // Stay connected until everyone is done: a leaving client
            // would drop its temporary tables and locks early.
            barrier.wait().await;
            if let Ok(conn) = conn {
                let _ = conn.disconnect().await;
            }
            results
        }));
    }
    let joined = tokio::time::timeout(RUN_TIMEOUT, async {
        let mut all = Vec::with_capacity(tasks.len());
        for task in tasks {
            all.push(task.await.expect("client task panicked"));
        }
        all
    })
    .await
    .expect("the concurrent run did not finish in time");
    let elapsed = started.elapsed();
    settle(db, baseline).await;
    let after = com_counters(db).await;
    finish(db, scenario, joined, &before, &after, elapsed).await
}

/// Human-readable differences between two runs; empty if none.
pub fn differences(scenario: &Scenario, alone: &RunOutput, batched: &RunOutput) -> String {
    let mut report = String::new();
    let mut shown = 0;
    for (c, (a, b)) in alone.outcomes.iter().zip(&batched.outcomes).enumerate() {
        for (s, (x, y)) in a.iter().zip(b).enumerate() {
            if x == y {
                continue;
            }
            shown += 1;
            if shown <= 12 {
                let step = &scenario.clients[c].steps[s];
                let _ = writeln!(
                    report,
                    "client {c} step {s} {}:\n  alone:   {x:?}\n  batched: {y:?}",
                    describe(step)
                );
            }
        }
    }
    if shown > 12 {
        let _ = writeln!(report, "… and {} more differing outcomes", shown - 12);
    }
    for (i, (a, b)) in alone.contents.iter().zip(&batched.contents).enumerate() {
        if a != b {
            let _ = writeln!(
                report,
                "contents {:?} differ: {} rows alone, {} through Sluice",
                scenario.contents[i],
                a.len(),
                b.len()
            );
            let mut listed = 0;
            for (x, y) in a.iter().zip(b) {
                if x != y && listed < 5 {
                    let _ = writeln!(report, "  alone {x:?}\n  sluice {y:?}");
                    listed += 1;
                }
            }
            if a.len() != b.len() {
                let extra = if a.len() > b.len() {
                    &a[b.len()..]
                } else {
                    &b[a.len()..]
                };
                let _ = writeln!(
                    report,
                    "  first unmatched rows: {:?}",
                    &extra[..extra.len().min(5)]
                );
            }
        }
    }
    report
}

fn describe(step: &Step) -> String {
    match &step.kind {
        StepKind::Text(sql) => format!("{:?}", String::from_utf8_lossy(sql)),
        StepKind::Prepared(sql, params) => format!("prepared {sql:?} {params:?}"),
        StepKind::Reset => "COM_RESET_CONNECTION".to_string(),
    }
}

async fn prepare(db: &MariaDb, scenario: &Scenario) {
    let mut conn = db.root_conn().await;
    for name in &scenario.databases {
        conn.query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
            .await
            .unwrap_or_else(|e| panic!("drop database {name}: {e}"));
    }
    if !scenario.setup.trim().is_empty() {
        conn.query_drop(&scenario.setup)
            .await
            .unwrap_or_else(|e| panic!("scenario setup failed: {e}\n{}", scenario.setup));
    }
    let _ = conn.disconnect().await;
}

async fn finish(
    db: &MariaDb,
    scenario: &Scenario,
    mut outcomes: Vec<Vec<Outcome>>,
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    elapsed: Duration,
) -> RunOutput {
    let mut conn = db.root_conn().await;
    let mut ids = match &scenario.ids {
        Some(sql) => id_labels(&mut conn, sql).await,
        None => HashMap::new(),
    };
    for (client, results) in scenario.clients.iter().zip(&outcomes) {
        for (step, outcome) in client.steps.iter().zip(results) {
            let (true, Outcome::Done { rows, .. }) = (step.labels, outcome) else {
                continue;
            };
            for row in rows {
                if let (Some(Some(id)), Some(Some(label))) = (row.first(), row.get(1)) {
                    if let Ok(id) = id.parse::<i64>() {
                        add_label(&mut ids, id, label.clone());
                    }
                }
            }
        }
    }
    for (client, results) in scenario.clients.iter().zip(outcomes.iter_mut()) {
        for (step, outcome) in client.steps.iter().zip(results.iter_mut()) {
            normalize(outcome, step, &ids);
        }
    }
    let mut contents = Vec::with_capacity(scenario.contents.len());
    for sql in &scenario.contents {
        let rows: Vec<Row> = conn
            .query(sql)
            .await
            .unwrap_or_else(|e| panic!("contents query {sql:?}: {e}"));
        contents.push(rows.into_iter().map(row_strings).collect());
    }
    let _ = conn.disconnect().await;
    let counters = counter_delta(before, after);
    RunOutput {
        outcomes,
        contents,
        counters,
        elapsed,
    }
}

async fn id_labels(conn: &mut Conn, sql: &str) -> HashMap<i64, String> {
    let rows: Vec<(i64, String)> = conn
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("id query {sql:?}: {e}"));
    let mut map: HashMap<i64, String> = HashMap::with_capacity(rows.len());
    for (id, label) in rows {
        add_label(&mut map, id, label);
    }
    map
}

fn add_label(map: &mut HashMap<i64, String>, id: i64, label: String) {
    map.entry(id)
        .and_modify(|l| {
            if *l != label {
                *l = format!("ambiguous({l}|{label})");
            }
        })
        .or_insert(label);
}

fn normalize(outcome: &mut Outcome, step: &Step, ids: &HashMap<i64, String>) {
    let Outcome::Done {
        insert_id, rows, ..
    } = outcome
    else {
        return;
    };
    if let IdValue::Raw(n) = insert_id {
        // A negative explicit id arrives as its two's complement.
        if let Some(label) = ids.get(&(*n as i64)) {
            *insert_id = IdValue::Row(label.clone());
        }
    }
    for row in rows {
        for &col in &step.id_columns {
            let Some(Some(cell)) = row.get_mut(col) else {
                continue;
            };
            if let Some(label) = cell.parse::<i64>().ok().and_then(|n| ids.get(&n)) {
                *cell = format!("row({label})");
            }
        }
    }
}

async fn connect(port: u16, client: &Client) -> Result<Conn, String> {
    let opts = client_opts(port, &client.user, client.password.as_deref())
        .db_name(client.database.clone());
    match tokio::time::timeout(STEP_TIMEOUT, Conn::new(opts)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(format!("connect: {e}")),
        Err(_) => Err("connect: timeout".to_string()),
    }
}

/// Runs one step on `conn` (or records why it could not). A connection
/// that timed out is dropped, so later steps fail fast.
async fn run_step(conn: &mut Result<Conn, String>, step: &Step) -> Outcome {
    let c = match conn {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e.clone()),
    };
    match tokio::time::timeout(STEP_TIMEOUT, execute(c, step)).await {
        Ok(outcome) => outcome,
        Err(_) => {
            *conn = Err("an earlier statement timed out".to_string());
            Outcome::Failed(format!("timeout after {STEP_TIMEOUT:?}"))
        }
    }
}

async fn execute(conn: &mut Conn, step: &Step) -> Outcome {
    let result: Result<Vec<Row>, mysql_async::Error> = match &step.kind {
        StepKind::Text(sql) => match conn.query_iter(sql.as_slice()).await {
            Ok(result) => result.collect_and_drop().await,
            Err(e) => Err(e),
        },
        StepKind::Prepared(sql, params) => {
            match conn.exec_iter(sql.as_str(), params.clone()).await {
                Ok(result) => result.collect_and_drop().await,
                Err(e) => Err(e),
            }
        }
        StepKind::Reset => conn.reset().await.map(|_| Vec::new()),
    };
    match result {
        Ok(rows) => {
            let ok = conn.last_ok_packet();
            Outcome::Done {
                affected_rows: conn.affected_rows(),
                insert_id: IdValue::Raw(conn.last_insert_id().unwrap_or(0)),
                warnings: conn.get_warnings(),
                status: ok.map(|p| p.status_flags().bits()).unwrap_or(0),
                info: conn.info().into_owned(),
                rows: rows.into_iter().map(row_strings).collect(),
            }
        }
        Err(mysql_async::Error::Server(e)) => Outcome::Error {
            code: e.code,
            state: e.state,
            message: e.message,
        },
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// Waits until the clients' server threads are gone: a thread adds its
/// statement counters to the global ones while it ends, so counters read
/// earlier may miss or double a departing client's statements.
async fn settle(db: &MariaDb, baseline: u64) {
    let gone = crate::wait_until(Duration::from_secs(20), || async {
        db.client_connections().await <= baseline
    })
    .await;
    assert!(gone, "client connections did not end within 20 s");
}

/// MariaDB's `Com_%` counters (global), read on a fresh direct connection.
pub async fn com_counters(db: &MariaDb) -> BTreeMap<String, u64> {
    let mut conn = db.root_conn().await;
    let rows: Vec<(String, String)> = conn
        .query("SHOW GLOBAL STATUS LIKE 'Com\\_%'")
        .await
        .expect("SHOW GLOBAL STATUS");
    let _ = conn.disconnect().await;
    rows.into_iter()
        .filter_map(|(k, v)| v.parse().ok().map(|v| (k, v)))
        .collect()
}

/// Growth of each counter between two readings (only those that grew).
pub fn counter_delta(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.saturating_sub(before.get(k).copied().unwrap_or(0)),
            )
        })
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// The settings that make Sluice hold rows briefly so that concurrent
/// INSERTs meet in one batch.
pub const SMALL_DELAY: &[(&str, &str)] = &[
    ("SLUICE_WRITEBATCH__MIN_DELAY_MS", "2"),
    ("SLUICE_WRITEBATCH__INITIAL_DELAY_MS", "2"),
    ("SLUICE_WRITEBATCH__MAX_DELAY_MS", "5"),
];

/// Sluice in front of `db` with [`SMALL_DELAY`].
pub async fn batching_sluice(db: &MariaDb) -> Sluice {
    let mut builder = Sluice::builder(db);
    for (k, v) in SMALL_DELAY {
        builder = builder.env(*k, *v);
    }
    builder.start().await
}

/// `sessions` connections through `sluice` to the database `app`, each
/// warmed with its own statement `warm(i)` (so that its settings and the
/// table's facts are read before), then all sending `sql` at the same
/// moment, so that their rows meet in one batch. Returns each result with
/// its connection, for the caller to read affected rows and warnings.
pub async fn warm_then_all_at_once(
    sluice: &Sluice,
    sessions: usize,
    warm: impl Fn(usize) -> String,
    sql: &str,
) -> Vec<(Result<(), mysql_async::Error>, Conn)> {
    warm_then_each_at_once(sluice, sessions, warm, |_| sql.to_string()).await
}

/// [`warm_then_all_at_once`] with each session's own statement, `sql(i)`.
pub async fn warm_then_each_at_once(
    sluice: &Sluice,
    sessions: usize,
    warm: impl Fn(usize) -> String,
    sql: impl Fn(usize) -> String,
) -> Vec<(Result<(), mysql_async::Error>, Conn)> {
    let mut conns = Vec::new();
    for i in 0..sessions {
        let mut conn = sluice.root_conn().await;
        conn.query_drop("USE app").await.unwrap();
        conn.query_drop(warm(i)).await.unwrap();
        conns.push((conn, sql(i)));
    }
    let barrier = Arc::new(Barrier::new(sessions));
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|(mut conn, sql)| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let result = conn.query_drop(sql).await;
                (result, conn)
            })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.expect("a session task"));
    }
    out
}
