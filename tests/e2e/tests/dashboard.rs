//! The Grafana dashboard `docker/grafana/sluice.json`: a well-formed
//! dashboard whose PromQL queries name only metrics Sluice really exposes
//! (checked against a scrape taken after real traffic), provisioned by
//! the compose file. No Docker engine or Grafana runs here, so the files
//! are checked rather than loaded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use serde_json::Value;
use sluice_e2e::http::get;
use sluice_e2e::{direct_mode, workspace_dir, MariaDb, Sluice};

const DASHBOARD: &str = "docker/grafana/sluice.json";

/// Grafana's grid is 24 columns wide.
const GRID_WIDTH: u64 = 24;

/// PromQL aggregation operators and keywords, which look like metric names
/// but are not.
const KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "limitk",
    "limit_ratio",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "atan2",
    "inf",
    "nan",
];

/// Keywords followed by a parenthesised list of label names.
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Aggregation operators: after one, only the labels of its `by` list
/// survive.
const AGGREGATIONS: &[&str] = &[
    "sum", "min", "max", "avg", "count", "group", "topk", "bottomk",
];

/// Variables Grafana defines itself.
const GRAFANA_BUILTINS: &[&str] = &[
    "__rate_interval",
    "__interval",
    "__interval_ms",
    "__range",
    "__range_s",
    "__range_ms",
];

fn path(relative: &str) -> PathBuf {
    workspace_dir().join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(path(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD)).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"))
}

fn panels(dashboard: &Value) -> &Vec<Value> {
    dashboard["panels"]
        .as_array()
        .expect("the dashboard has a panels array")
}

fn text<'v>(value: &'v Value, key: &str, what: &str) -> &'v str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no string {key:?}"))
}

fn number(value: &Value, key: &str, what: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: no non-negative integer {key:?}"))
}

/// One PromQL expression of the dashboard and where it is.
struct Query {
    place: String,
    expr: String,
    legend: String,
}

/// Every target expression, and the metric selector of every
/// `label_values(selector, label)` template query.
fn queries(dashboard: &Value) -> Vec<Query> {
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        let title = panel["title"].as_str().unwrap_or("?");
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push(Query {
                place: format!("panel {title:?} target {}", target["refId"]),
                expr: target["expr"].as_str().unwrap_or_default().to_string(),
                legend: target["legendFormat"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            });
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if variable["type"] != "query" {
            continue;
        }
        let query = match &variable["query"] {
            Value::String(q) => q.clone(),
            other => other["query"].as_str().unwrap_or_default().to_string(),
        };
        let name = variable["name"].as_str().unwrap_or("?");
        let selector = query
            .strip_prefix("label_values(")
            .and_then(|rest| rest.rsplit_once(','))
            .map(|(selector, _label)| selector.trim().to_string())
            .unwrap_or_else(|| {
                panic!("variable {name}: not label_values(selector, label): {query}")
            });
        out.push(Query {
            place: format!("variable {name}"),
            expr: selector,
            legend: String::new(),
        });
    }
    out
}

/// `expr` with string literals removed and the insides of label matchers
/// `{…}` and range selectors `[…]` emptied (the brackets stay), so that
/// what remains are names, functions, keywords, numbers and operators.
fn blank_out(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut chars = expr.chars();
    // The bracket being skipped to, if inside one.
    let mut closing: Option<char> = None;
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                let mut escaped = false;
                for d in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' && c != '`' {
                        escaped = true;
                    } else if d == c {
                        break;
                    }
                }
            }
            '{' | '[' if closing.is_none() => {
                out.push(c);
                closing = Some(if c == '{' { '}' } else { ']' });
            }
            _ if Some(c) == closing => {
                out.push(c);
                closing = None;
            }
            _ if closing.is_some() => {}
            _ => out.push(c),
        }
    }
    out
}

/// A metric name in an expression, and whether a range selector follows
/// it (as `rate()` and `increase()` need).
#[derive(Debug, PartialEq)]
struct MetricUse {
    name: String,
    ranged: bool,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Index of the first non-whitespace character at or after `i`.
fn skip_space(chars: &[char], mut i: usize) -> usize {
    while chars.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    i
}

/// Index just after the bracket closing the one at `open`.
fn after_closing(chars: &[char], open: usize) -> usize {
    let (left, right) = match chars[open] {
        '(' => ('(', ')'),
        '{' => ('{', '}'),
        _ => ('[', ']'),
    };
    let mut depth = 0;
    for (i, &c) in chars.iter().enumerate().skip(open) {
        if c == left {
            depth += 1;
        } else if c == right {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
    }
    chars.len()
}

/// The words of `expr` as PromQL reads them, each with the index (in
/// `blank_out(expr)`) of the next non-space character after it; numbers,
/// Grafana variables and the label lists of `by (…)` and the like are
/// skipped.
fn words(expr: &str) -> Vec<(String, usize)> {
    let chars: Vec<char> = blank_out(expr).chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() || c == '.' || c == '$' {
            // A number (0.99, 1e3) or a Grafana variable ($instance).
            i += 1;
            while chars.get(i).is_some_and(|&d| is_name_char(d) || d == '.') {
                i += 1;
            }
        } else if is_name_start(c) {
            let start = i;
            while chars.get(i).is_some_and(|&d| is_name_char(d)) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = skip_space(&chars, i);
            if GROUPING.contains(&word.as_str()) && chars.get(next) == Some(&'(') {
                out.push((word, next));
                i = after_closing(&chars, next);
            } else {
                out.push((word, next));
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The metric names `expr` selects.
fn metric_uses(expr: &str) -> Vec<MetricUse> {
    let chars: Vec<char> = blank_out(expr).chars().collect();
    let mut uses = Vec::new();
    for (word, next) in words(expr) {
        let keyword = KEYWORDS.contains(&word.to_ascii_lowercase().as_str());
        let call = chars.get(next) == Some(&'(');
        if keyword || call {
            continue;
        }
        let mut after = next;
        if chars.get(after) == Some(&'{') {
            after = skip_space(&chars, after_closing(&chars, after));
        }
        uses.push(MetricUse {
            name: word,
            ranged: chars.get(after) == Some(&'['),
        });
    }
    uses
}

/// The labels the result of `expr` keeps, when it aggregates: the union
/// of its `by (…)` lists. None when nothing is aggregated.
fn kept_labels(expr: &str) -> Option<BTreeSet<String>> {
    let chars: Vec<char> = blank_out(expr).chars().collect();
    let mut aggregated = false;
    let mut kept = BTreeSet::new();
    for (word, next) in words(expr) {
        if AGGREGATIONS.contains(&word.as_str()) {
            aggregated = true;
        }
        if word == "by" && chars.get(next) == Some(&'(') {
            let end = after_closing(&chars, next);
            let list: String = chars[next + 1..end - 1].iter().collect();
            kept.extend(
                list.split(',')
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from),
            );
        }
    }
    aggregated.then_some(kept)
}

/// The `{{label}}` references of a legend format.
fn legend_labels(legend: &str) -> Vec<String> {
    legend
        .split("{{")
        .skip(1)
        .filter_map(|part| part.split_once("}}"))
        .map(|(label, _)| label.trim().to_string())
        .collect()
}

/// The Grafana variables (`$name`, `${name}`, `[[name]]` not used) an
/// expression refers to.
fn variables(expr: &str) -> Vec<String> {
    expr.split('$')
        .skip(1)
        .map(|rest| {
            rest.trim_start_matches('{')
                .chars()
                .take_while(|&c| c.is_ascii_alphanumeric() || c == '_')
                .collect()
        })
        .collect()
}

/// A Prometheus text exposition: the type of each family (`# TYPE`) and
/// the name of each sample line.
#[derive(Debug, Default)]
struct Scrape {
    types: BTreeMap<String, String>,
    samples: BTreeMap<String, f64>,
}

fn parse_scrape(body: &str) -> Scrape {
    let mut scrape = Scrape::default();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                scrape.types.insert(name.to_string(), kind.to_string());
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            let value = line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN);
            *scrape.samples.entry(line[..end].to_string()).or_default() += value;
        }
    }
    scrape
}

impl Scrape {
    /// The type of the family `name` belongs to: its own `# TYPE`, or for
    /// `_bucket`, `_sum` and `_count` series the histogram's (or summary's).
    fn family_type(&self, name: &str) -> Option<&str> {
        if let Some(kind) = self.types.get(name) {
            return Some(kind);
        }
        for suffix in ["_bucket", "_sum", "_count"] {
            let Some(base) = name.strip_suffix(suffix) else {
                continue;
            };
            match self.types.get(base).map(String::as_str) {
                Some("histogram") => return Some("histogram"),
                Some("summary") if suffix != "_bucket" => return Some("summary"),
                _ => {}
            }
        }
        None
    }

    /// Why `name` is not usable in a query, if it is not.
    fn problem(&self, name: &str) -> Option<String> {
        match self.family_type(name) {
            None => Some(format!("{name}: no such family in the scrape")),
            Some(_) if !self.samples.contains_key(name) => {
                Some(format!("{name}: family typed but no sample named so"))
            }
            Some(_) => None,
        }
    }

    fn sample(&self, name: &str) -> f64 {
        self.samples.get(name).copied().unwrap_or(0.0)
    }
}

#[test]
fn promql_metric_names_are_extracted() {
    let uses = metric_uses(
        "histogram_quantile(0.99, sum by (le) (rate(a_bucket{instance=~\"$instance\", \
         x=\"}[\"}[$__rate_interval])))",
    );
    assert_eq!(
        uses,
        vec![MetricUse {
            name: "a_bucket".into(),
            ranged: true
        }]
    );
    let names = |expr: &str| -> Vec<(String, bool)> {
        metric_uses(expr)
            .into_iter()
            .map(|u| (u.name, u.ranged))
            .collect()
    };
    assert_eq!(
        names("sum(rate(b_total [5m])) / sum(c) * 1e3"),
        vec![("b_total".into(), true), ("c".into(), false)]
    );
    assert_eq!(
        names("sum without (instance) (d) and on(job) group_left(le) e offset 5m > bool 0.5"),
        vec![("d".into(), false), ("e".into(), false)]
    );
    assert_eq!(
        names("label_replace(f:rate5m, \"dst\", \"$1\", \"src\", \"(.*)\") unless g{le=\"1\"}"),
        vec![("f:rate5m".into(), false), ("g".into(), false)]
    );
    assert_eq!(
        names("sum by(reason)(increase(h{reason='queue_full'}[$__range]))"),
        vec![("h".into(), true)]
    );
    assert_eq!(kept_labels("x{a=\"1\"}"), None);
    assert_eq!(
        kept_labels("sum by (reason, table) (rate(x[1m])) / ignoring(le) max(y)"),
        Some(["reason".to_string(), "table".to_string()].into())
    );
    assert_eq!(
        legend_labels("{{instance}} up {{ le }}"),
        ["instance", "le"]
    );
    assert_eq!(
        variables("rate(x{i=~\"$instance\"}[${__rate_interval}])"),
        ["instance", "__rate_interval"]
    );
    let scrape = parse_scrape(
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_sum 3\nh_count 2\n\
         # TYPE c counter\nc{reason=\"a\"} 1\nc{reason=\"b\"} 2\n# TYPE v counter\n",
    );
    assert_eq!(scrape.problem("h_bucket"), None);
    assert_eq!(scrape.problem("h_count"), None);
    assert_eq!(scrape.sample("c"), 3.0);
    assert!(
        scrape.problem("h").is_some(),
        "a histogram has no bare samples"
    );
    assert!(scrape.problem("c_bucket").is_some());
    assert!(scrape.problem("v").is_some(), "typed but never sampled");
    assert!(scrape.problem("nope").is_some());
}

#[test]
fn dashboard_is_a_well_formed_grafana_dashboard() {
    let dashboard = dashboard();
    assert!(!text(&dashboard, "title", "dashboard").is_empty());
    let uid = text(&dashboard, "uid", "dashboard");
    assert!(
        !uid.is_empty()
            && uid.len() <= 40
            && uid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "Grafana uids are at most 40 characters of [A-Za-z0-9_-]: {uid:?}"
    );
    let schema = number(&dashboard, "schemaVersion", "dashboard");
    assert!(
        (36..=41).contains(&schema),
        "schemaVersion {schema}: Grafana 10/11"
    );

    let templating = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list");
    let defined: BTreeSet<&str> = templating
        .iter()
        .map(|v| text(v, "name", "template variable"))
        .collect();
    let datasource_variable = templating
        .iter()
        .find(|v| v["type"] == "datasource")
        .expect("a data source variable, so the dashboard can be imported anywhere");
    assert_eq!(datasource_variable["query"], "prometheus");
    let datasource_ref = format!("${{{}}}", text(datasource_variable, "name", "variable"));

    let panels = panels(&dashboard);
    assert!(panels.len() >= 10, "only {} panels", panels.len());
    let mut ids = BTreeSet::new();
    let mut boxes: Vec<(String, [u64; 4])> = Vec::new();
    for panel in panels {
        let title = text(panel, "title", "panel");
        assert!(!title.is_empty(), "panel without a title: {panel}");
        let id = number(panel, "id", title);
        assert!(ids.insert(id), "panel id {id} used twice ({title})");
        let kind = text(panel, "type", title);
        assert!(
            [
                "row",
                "timeseries",
                "stat",
                "gauge",
                "bargauge",
                "table",
                "state-timeline",
                "heatmap",
            ]
            .contains(&kind),
            "{title}: unexpected panel type {kind}"
        );
        let grid = &panel["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| number(grid, k, title));
        assert!(w >= 1 && h >= 1, "{title}: empty gridPos");
        assert!(x + w <= GRID_WIDTH, "{title}: wider than the grid");
        if kind == "row" {
            assert_eq!(
                (x, w, h),
                (0, GRID_WIDTH, 1),
                "{title}: a row spans the grid"
            );
            assert!(
                panel.get("targets").is_none(),
                "{title}: a row queries nothing"
            );
        } else {
            assert_eq!(
                text(&panel["datasource"], "uid", title),
                datasource_ref,
                "{title}: queries the data source variable"
            );
            let targets = panel["targets"]
                .as_array()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| panic!("{title}: no targets"));
            let mut ref_ids = BTreeSet::new();
            for target in targets {
                let ref_id = text(target, "refId", title);
                assert!(ref_ids.insert(ref_id), "{title}: refId {ref_id} twice");
                let expr = text(target, "expr", title);
                assert!(!expr.trim().is_empty(), "{title} {ref_id}: empty expr");
                assert!(
                    !metric_uses(expr).is_empty(),
                    "{title} {ref_id}: selects no metric: {expr}"
                );
            }
        }
        for (other, [ox, oy, ow, oh]) in &boxes {
            let apart = x + w <= *ox || ox + ow <= x || y + h <= *oy || oy + oh <= y;
            assert!(apart, "panels {title:?} and {other:?} overlap");
        }
        boxes.push((title.to_string(), [x, y, w, h]));
    }

    for query in queries(&dashboard) {
        for variable in variables(&query.expr) {
            assert!(
                defined.contains(variable.as_str())
                    || GRAFANA_BUILTINS.contains(&variable.as_str()),
                "{}: undefined variable ${variable} in {}",
                query.place,
                query.expr
            );
        }
        if let Some(kept) = kept_labels(&query.expr) {
            for label in legend_labels(&query.legend) {
                assert!(
                    kept.contains(&label),
                    "{}: legend {{{{{label}}}}} names a label the aggregation drops: {}",
                    query.place,
                    query.expr
                );
            }
        }
    }
}

/// The families the issue asks the dashboard to show.
#[test]
fn dashboard_shows_every_family_asked_for() {
    let used: BTreeSet<String> = queries(&dashboard())
        .iter()
        .flat_map(|q| metric_uses(&q.expr))
        .map(|u| u.name)
        .collect();
    for name in [
        "sluice_write_batched_total",
        "sluice_write_unbatched_total",
        "sluice_write_batches_total",
        "sluice_write_batch_size_bucket",
        "sluice_write_batch_delay_seconds_bucket",
        "sluice_write_batch_latency_seconds_bucket",
        "sluice_write_current_delay_seconds",
        "sluice_write_queue_depth",
        "sluice_write_batch_failures_total",
        "sluice_write_isolated_rows_total",
        "sluice_write_outcome_unknown_total",
        "sluice_client_connections",
        "sluice_backend_up",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ] {
        assert!(used.contains(name), "no panel queries {name}");
    }
}

/// Lines of the top-level compose service `name`, without the header.
fn compose_service<'c>(compose: &'c str, name: &str) -> Vec<&'c str> {
    let header = format!("  {name}:");
    let mut lines = compose.lines().skip_while(|l| *l != header);
    assert!(lines.next().is_some(), "compose has no service {name}");
    lines
        .take_while(|l| l.trim().is_empty() || l.starts_with("    "))
        .collect()
}

/// The value of the first `key: value` line among `lines`, unquoted.
fn yaml_value<'t>(lines: impl IntoIterator<Item = &'t str>, key: &str) -> Option<String> {
    let prefix = format!("{key}:");
    lines.into_iter().find_map(|l| {
        let rest = l.trim().trim_start_matches("- ").strip_prefix(&prefix)?;
        Some(rest.trim().trim_matches('"').to_string())
    })
}

#[test]
fn compose_provisions_grafana_with_the_dashboard() {
    let compose = read("docker/compose.yaml");
    let grafana = compose_service(&compose, "grafana");
    // (host path relative to docker/, container path) of each bind mount.
    let mounts: Vec<(String, String)> = grafana
        .iter()
        .filter_map(|l| l.trim().strip_prefix("- ./"))
        .filter_map(|m| {
            let mut parts = m.split(':');
            Some((parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect();
    for (host, _) in &mounts {
        assert!(
            path(&format!("docker/{host}")).exists(),
            "compose mounts docker/{host}, which does not exist"
        );
    }
    let target_of = |host: &str| {
        mounts
            .iter()
            .find(|(h, _)| h == host)
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| panic!("grafana does not mount ./{host}: {mounts:?}"))
    };
    let dashboard_in_container = target_of("grafana/sluice.json");
    assert_eq!(
        target_of("grafana/provisioning"),
        "/etc/grafana/provisioning"
    );
    assert_eq!(
        yaml_value(
            grafana.iter().copied(),
            "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"
        ),
        Some(dashboard_in_container.clone()),
        "the home dashboard is the mounted one"
    );

    let provider = read("docker/grafana/provisioning/dashboards/sluice.yaml");
    assert_eq!(
        yaml_value(provider.lines(), "type").as_deref(),
        Some("file")
    );
    let folder = yaml_value(provider.lines(), "path").expect("provider path");
    assert_eq!(
        dashboard_in_container,
        format!("{folder}/sluice.json"),
        "the provider reads the folder the dashboard is mounted in"
    );

    let datasource = read("docker/grafana/provisioning/datasources/prometheus.yaml");
    assert_eq!(
        yaml_value(datasource.lines(), "type").as_deref(),
        Some("prometheus")
    );
    let url = yaml_value(datasource.lines(), "url").expect("data source url");
    let (host, port) = url
        .strip_prefix("http://")
        .and_then(|h| h.split_once(':'))
        .unwrap_or_else(|| panic!("url {url}"));
    let prometheus = compose_service(&compose, host);
    assert!(
        prometheus
            .iter()
            .any(|l| l.contains(&format!("\"{port}:{port}\""))),
        "the {host} service listens on {port}"
    );
    assert!(
        grafana
            .iter()
            .skip_while(|l| !l.contains("depends_on:"))
            .any(|l| l.trim() == format!("- {host}")),
        "grafana starts after {host}"
    );
    // $__rate_interval needs the scrape interval.
    assert_eq!(
        yaml_value(datasource.lines(), "timeInterval"),
        yaml_value(read("docker/prometheus.yml").lines(), "scrape_interval"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_names_metrics_sluice_exposes() {
    if direct_mode() {
        eprintln!("skipped in direct mode: needs the daemon");
        return;
    }
    const CLIENTS: usize = 8;
    const ROUNDS: usize = 5;
    let db = MariaDb::start().await;
    db.sql(
        "CREATE DATABASE app; \
         CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, k INT UNIQUE, \
           v VARCHAR(3)) ENGINE=InnoDB; \
         INSERT INTO app.t (k) VALUES (0)",
    )
    .await;
    // Rows of one round wait for each other, so they share batches.
    let sluice = Sluice::builder(&db)
        .env("SLUICE_WRITEBATCH__INITIAL_DELAY_MS", "20")
        .env("SLUICE_WRITEBATCH__MIN_DELAY_MS", "20")
        .env("SLUICE_WRITEBATCH__MAX_DELAY_MS", "50")
        .start()
        .await;

    // Each round, CLIENTS clients insert at once. In odd rounds client 0's
    // row repeats k = 0: its batch commits without it and it runs alone
    // (an isolated row). In round 3 client 1's value is too long for v
    // as well, which fails the whole batch: everyone runs alone. Even
    // rounds batch cleanly; round 0 lets Sluice learn the table first.
    let barrier = Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let opts = sluice.root_opts().db_name(Some("app"));
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.unwrap();
            for round in 0..ROUNDS {
                barrier.wait().await;
                let duplicate = c == 0 && round % 2 == 1;
                let too_long = c == 1 && round == 3;
                let k = if duplicate { 0 } else { round * 100 + c + 1 };
                let v = if too_long { "long" } else { "ok" };
                let result = conn
                    .query_drop(format!("INSERT INTO t (k, v) VALUES ({k}, '{v}')"))
                    .await;
                if !duplicate && !too_long {
                    result.unwrap();
                    continue;
                }
                let want = if duplicate { 1062 } else { 1406 };
                match result {
                    Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, want),
                    other => panic!("the bad row was not refused: {other:?}"),
                }
                // An error packet carries no status flags: Sluice batches
                // this session's rows again once a statement reports them.
                conn.query_drop("DO 0").await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut conn = mysql_async::Conn::new(sluice.root_opts().db_name(Some("app")))
        .await
        .unwrap();
    // Not batched (reason "select_source").
    conn.query_drop("INSERT INTO t (k) SELECT 9000")
        .await
        .unwrap();
    let rows: i64 = conn
        .query_first("SELECT COUNT(*) FROM t")
        .await
        .unwrap()
        .unwrap();
    // The first row, every round's rows but the duplicates and the
    // over-long one, and the INSERT … SELECT.
    assert_eq!(rows, (1 + CLIENTS * ROUNDS - ROUNDS / 2 - 1 + 1) as i64);
    drop(conn);

    let (code, body) = get(sluice.metrics_port(), "/metrics").await;
    assert_eq!(code, 200, "{body}");
    let scrape = parse_scrape(&body);
    // The traffic reached the families the dashboard is about.
    assert!(scrape.sample("sluice_write_batched_total") >= 2.0, "{body}");
    assert!(
        scrape.sample("sluice_write_batch_size_count") >= 1.0,
        "{body}"
    );
    assert!(
        scrape.sample("sluice_write_unbatched_total") >= 1.0,
        "{body}"
    );
    assert!(
        scrape.sample("sluice_write_batch_failures_total") >= 1.0,
        "{body}"
    );
    assert!(
        scrape.sample("sluice_write_isolated_rows_total") >= 1.0,
        "{body}"
    );

    let mut problems = Vec::new();
    let mut checked = BTreeSet::new();
    for query in queries(&dashboard()) {
        for used in metric_uses(&query.expr) {
            if let Some(problem) = scrape.problem(&used.name) {
                problems.push(format!("{}: {problem}", query.place));
                continue;
            }
            let kind = scrape.family_type(&used.name).unwrap_or_default();
            if matches!(kind, "counter" | "histogram" | "summary") && !used.ranged {
                problems.push(format!(
                    "{}: {} is a {kind} series but has no range selector (rate/increase): {}",
                    query.place, used.name, query.expr
                ));
            }
            checked.insert(used.name);
        }
    }
    assert!(
        problems.is_empty(),
        "dashboard queries that do not match Sluice's metrics:\n{}\n\nscrape:\n{body}",
        problems.join("\n")
    );
    assert!(checked.len() >= 15, "checked only {checked:?}");
    sluice.assert_no_panic();
}
