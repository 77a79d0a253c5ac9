//! Every configuration key, documented once. `docs/configuration.md` and
//! `config/sluice.ini` are rendered from this table.

/// Documentation of one configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyDoc {
    /// INI section, e.g. `proxy`.
    pub section: &'static str,
    /// Key within the section, e.g. `listen`.
    pub key: &'static str,
    /// The built-in default as it would be written in the INI file.
    pub default: &'static str,
    /// The environment variable that overrides it.
    pub env: &'static str,
    /// Whether SIGHUP applies a new value without a restart.
    pub reloadable: bool,
    /// What the key means and which values it accepts.
    pub description: &'static str,
}

impl KeyDoc {
    /// `section.key`, the name used in error messages.
    pub fn path(&self) -> String {
        format!("{}.{}", self.section, self.key)
    }
}

/// The sections, in file order.
pub const SECTIONS: &[&str] = &["proxy", "backend", "log", "writebatch", "metrics"];

const fn key(
    section: &'static str,
    key: &'static str,
    default: &'static str,
    env: &'static str,
    reloadable: bool,
    description: &'static str,
) -> KeyDoc {
    KeyDoc {
        section,
        key,
        default,
        env,
        reloadable,
        description,
    }
}

/// Every key Sluice reads, in file order.
pub const KEYS: &[KeyDoc] = &[
    // [proxy]
    key(
        "proxy",
        "listen",
        "127.0.0.1:3307",
        "SLUICE_PROXY__LISTEN",
        false,
        "Address on which Sluice accepts MySQL client connections: an IP address \
         and port, e.g. 0.0.0.0:3307 for all IPv4 interfaces or [::]:3307 for IPv6. \
         The --listen flag overrides it.",
    ),
    key(
        "proxy",
        "reuse_port",
        "false",
        "SLUICE_PROXY__REUSE_PORT",
        false,
        "Bind listen with SO_REUSEPORT, so that a new Sluice can bind the same \
         address while the old one drains: an upgrade without systemd that \
         refuses no connection (docs/operations.md, Restarts). true or false. \
         Not used when systemd passes the socket (sluice.socket).",
    ),
    key(
        "proxy",
        "max_connections",
        "1024",
        "SLUICE_PROXY__MAX_CONNECTIONS",
        false,
        "Maximum number of concurrent client connections; further clients are \
         refused. An integer, at least 1. Each client also holds one backend \
         connection, so keep it below the server's max_connections.",
    ),
    key(
        "proxy",
        "idle_timeout",
        "8h",
        "SLUICE_PROXY__IDLE_TIMEOUT",
        false,
        "Close a client connection that sends nothing for this long, like \
         MariaDB's wait_timeout. A duration (500ms, 30s, 5m, 8h; a bare integer \
         is seconds); 0 disables the timeout.",
    ),
    key(
        "proxy",
        "handshake_timeout",
        "10s",
        "SLUICE_PROXY__HANDSHAKE_TIMEOUT",
        false,
        "Time a new client has to complete the login exchange before it is \
         disconnected. A duration greater than 0.",
    ),
    key(
        "proxy",
        "shutdown_timeout",
        "30s",
        "SLUICE_PROXY__SHUTDOWN_TIMEOUT",
        false,
        "On SIGTERM, Sluice stops accepting, flushes queued batches and answers \
         every client; after this long it exits anyway. A duration; 0 exits \
         without waiting.",
    ),
    key(
        "proxy",
        "tls_cert",
        "",
        "SLUICE_PROXY__TLS_CERT",
        false,
        "PEM file with the certificate chain Sluice presents to clients that ask \
         for TLS (server certificate first). With tls_key set too, Sluice offers \
         TLS to clients; empty offers none. Sluice ends the client's TLS session \
         itself: the backend leg is configured separately ([backend] tls).",
    ),
    key(
        "proxy",
        "tls_key",
        "",
        "SLUICE_PROXY__TLS_KEY",
        false,
        "PEM file with the private key of tls_cert (PKCS#8, PKCS#1 or SEC1). Set \
         together with tls_cert or not at all.",
    ),
    key(
        "proxy",
        "require_secure_transport",
        "false",
        "SLUICE_PROXY__REQUIRE_SECURE_TRANSPORT",
        false,
        "Refuse clients that do not switch to TLS, with the error MariaDB's own \
         require_secure_transport gives them (1045, access denied). true or \
         false; true needs tls_cert and tls_key.",
    ),
    // [backend]
    key(
        "backend",
        "address",
        "127.0.0.1:3306",
        "SLUICE_BACKEND__ADDRESS",
        false,
        "The MariaDB/MySQL server to forward to, as host:port, or the absolute \
         path of its Unix socket (/run/mysqld/mysqld.sock) where Sluice runs on \
         the database host. The host is a name, an IPv4 address or a bracketed \
         IPv6 address ([::1]:3306); names are resolved at each connect. With \
         cluster = galera or primary, several servers separated by commas, in \
         priority order: the first one that can take writes gets new sessions. \
         A Unix socket carries no TLS: tls = preferred then means off, and \
         required or verify are refused. The --backend flag overrides it.",
    ),
    key(
        "backend",
        "cluster",
        "single",
        "SLUICE_BACKEND__CLUSTER",
        false,
        "How the servers in address relate: single (one server; sessions always \
         go to it), galera (Galera nodes; new sessions go to one writer, a node \
         that is reachable and, with metrics.monitor_user set, Synced, \
         wsrep_ready and not read-only) or primary (a primary with replicas; new \
         sessions go to the first reachable server that, with monitor_user set, \
         is not read-only). The writer stays until it stops qualifying; then \
         the sessions on it are closed and new ones go to the next server that \
         qualifies. Without monitor_user only reachability is checked.",
    ),
    key(
        "backend",
        "fail_back",
        "false",
        "SLUICE_BACKEND__FAIL_BACK",
        false,
        "With cluster = galera or primary: move new sessions back to a server \
         listed earlier in address as soon as it qualifies again. Off by \
         default, so a server that comes back only rejoins as a candidate; \
         sessions already running stay where they are either way.",
    ),
    key(
        "backend",
        "connect_timeout",
        "5s",
        "SLUICE_BACKEND__CONNECT_TIMEOUT",
        false,
        "Time allowed to open a backend connection for a new client. A duration \
         greater than 0.",
    ),
    key(
        "backend",
        "tls",
        "preferred",
        "SLUICE_BACKEND__TLS",
        false,
        "TLS on Sluice's connections to the server: off (never), preferred (when \
         the server offers it, certificate not checked, like MariaDB's own \
         clients before 11.4), required (always, certificate not checked; a \
         server without TLS is an error for every client) or verify (always, \
         and the certificate must chain to tls_ca and carry tls_server_name). \
         Independent of whether the client used TLS to reach Sluice. Not used \
         over a Unix socket (address).",
    ),
    key(
        "backend",
        "tls_ca",
        "",
        "SLUICE_BACKEND__TLS_CA",
        false,
        "PEM file with the CA certificate(s) the server's certificate must chain \
         to. Needed by tls = verify, unused otherwise.",
    ),
    key(
        "backend",
        "tls_server_name",
        "",
        "SLUICE_BACKEND__TLS_SERVER_NAME",
        false,
        "Host name or IP address the server's certificate must name under \
         tls = verify; empty uses the host part of each server in address.",
    ),
    // [log]
    key(
        "log",
        "level",
        "info",
        "SLUICE_LOG__LEVEL",
        true,
        "Log filter in tracing EnvFilter syntax: a level (trace, debug, info, warn, \
         error, off) or comma-separated target=level parts, e.g. \
         info,sluice_proxy=debug. A bare debug or trace applies to Sluice's own \
         modules; libraries stay at info. SQL literals and auth data are logged \
         only at debug and below. The JSON format's fields are listed in \
         docs/operations.md (Logs).",
    ),
    key(
        "log",
        "format",
        "text",
        "SLUICE_LOG__FORMAT",
        true,
        "Log line format: text (human-readable) or json (one object per line).",
    ),
    // [writebatch]
    key(
        "writebatch",
        "enabled",
        "true",
        "SLUICE_WRITEBATCH__ENABLED",
        true,
        "Coalesce concurrent single-row autocommit INSERTs into multi-row INSERTs. \
         false makes Sluice a plain relay. true or false.",
    ),
    key(
        "writebatch",
        "mode",
        "auto",
        "SLUICE_WRITEBATCH__MODE",
        true,
        "auto batches every batchable INSERT (results are exact, so there is \
         nothing to opt into); hint batches only statements carrying a \
         /* batch:N */ comment.",
    ),
    key(
        "writebatch",
        "initial_delay_ms",
        "0",
        "SLUICE_WRITEBATCH__INITIAL_DELAY_MS",
        true,
        "Adaptive delay, in whole milliseconds, at start: how long a row of a key \
         that has been batching waits for company when nothing of its key is in \
         flight. Must lie between min_delay_ms and max_delay_ms.",
    ),
    key(
        "writebatch",
        "min_delay_ms",
        "0",
        "SLUICE_WRITEBATCH__MIN_DELAY_MS",
        true,
        "Lower bound, in whole milliseconds, of the adaptive delay, and how long a \
         row of an idle key waits for others to join it. 0 means an idle key \
         sends a row at once.",
    ),
    key(
        "writebatch",
        "max_delay_ms",
        "5",
        "SLUICE_WRITEBATCH__MAX_DELAY_MS",
        true,
        "Upper bound, in whole milliseconds, of the adaptive delay, and the longest \
         a row waits behind an in-flight batch of its key: the most latency \
         batching adds to an INSERT while it waits in a queue.",
    ),
    key(
        "writebatch",
        "max_batch_size",
        "1000",
        "SLUICE_WRITEBATCH__MAX_BATCH_SIZE",
        true,
        "Most rows in one batch statement; a full batch leaves at once. An \
         integer, at least 1.",
    ),
    key(
        "writebatch",
        "max_batch_bytes",
        "4194304",
        "SLUICE_WRITEBATCH__MAX_BATCH_BYTES",
        true,
        "Most bytes of SQL in one batch statement (also kept below the backend's \
         max_allowed_packet). An integer, at least 1024.",
    ),
    key(
        "writebatch",
        "max_statement_rows",
        "100",
        "SLUICE_WRITEBATCH__MAX_STATEMENT_ROWS",
        true,
        "Most rows a client's own INSERT … VALUES (…), (…) may have to join a \
         batch with other clients' rows; longer ones run as sent. 1 batches \
         single-row INSERTs only. Each such INSERT counts as one toward \
         max_batch_size. An integer, at least 1.",
    ),
    key(
        "writebatch",
        "write_threshold",
        "1000",
        "SLUICE_WRITEBATCH__WRITE_THRESHOLD",
        true,
        "Throughput in INSERTs per second per batch key above which the delay \
         grows by adaptive_step_ms, and below which it shrinks. A number >= 0.",
    ),
    key(
        "writebatch",
        "adaptive_step_ms",
        "1",
        "SLUICE_WRITEBATCH__ADAPTIVE_STEP_MS",
        true,
        "Amount, in whole milliseconds, by which the adaptive delay grows or \
         shrinks at each evaluation. At least 1.",
    ),
    key(
        "writebatch",
        "metrics_interval_ms",
        "1000",
        "SLUICE_WRITEBATCH__METRICS_INTERVAL_MS",
        true,
        "How often, in whole milliseconds, throughput is measured and the delay \
         re-evaluated. At least 1.",
    ),
    key(
        "writebatch",
        "max_queued_rows",
        "10000",
        "SLUICE_WRITEBATCH__MAX_QUEUED_ROWS",
        true,
        "Most rows waiting in one batch key's queue; when it is full, a statement \
         runs directly on its own connection instead of being dropped. At least \
         max_batch_size.",
    ),
    // [metrics]
    key(
        "metrics",
        "listen",
        "127.0.0.1:9104",
        "SLUICE_METRICS__LISTEN",
        false,
        "Address of the HTTP endpoint serving Prometheus metrics on /metrics and \
         health on /health: an IP address and port. Empty or off disables it.",
    ),
    key(
        "metrics",
        "probe_interval",
        "5s",
        "SLUICE_METRICS__PROBE_INTERVAL",
        false,
        "How often Sluice checks the backend for /health and sluice_backend_up: \
         it connects, reads the greeting and ends the login (see monitor_user). \
         A duration, at least 100ms. The probe runs even with the endpoint \
         disabled.",
    ),
    key(
        "metrics",
        "unhealthy_after",
        "10s",
        "SLUICE_METRICS__UNHEALTHY_AFTER",
        false,
        "How long the backend must have failed every probe before /health \
         answers 503; shorter failures show only as backend_reachable false. \
         A duration; 0 turns /health unhealthy at the first failed probe.",
    ),
    key(
        "metrics",
        "monitor_user",
        "",
        "SLUICE_METRICS__MONITOR_USER",
        false,
        "Account the probe logs in with (mysql_native_password, without TLS) \
         to run SELECT 1; a refused login or a failed query then counts as the \
         backend being down. It needs no privileges (GRANT USAGE). Empty: the \
         probe only reads the greeting and ends with a refused login for the \
         account sluice_probe, needing no credentials.",
    ),
    key(
        "metrics",
        "monitor_password",
        "",
        "SLUICE_METRICS__MONITOR_PASSWORD",
        false,
        "Password of monitor_user (empty: none). Prefer the environment variable \
         to the file, e.g. in the systemd unit's EnvironmentFile. Never logged. \
         Needs monitor_user.",
    ),
];

/// Look up a key by section and name.
pub fn key_doc(section: &str, key: &str) -> Option<&'static KeyDoc> {
    KEYS.iter().find(|k| k.section == section && k.key == key)
}

/// The keys SIGHUP applies without a restart.
pub fn reloadable_keys() -> impl Iterator<Item = &'static KeyDoc> {
    KEYS.iter().filter(|k| k.reloadable)
}

/// The keys of one section, comma-separated, for error messages.
pub(crate) fn keys_of(section: &str) -> String {
    KEYS.iter()
        .filter(|k| k.section == section)
        .map(|k| k.key)
        .collect::<Vec<_>>()
        .join(", ")
}

const MARKDOWN_HEAD: &str = "\
# Configuration

<!-- Generated from crates/sluice-config/src/keys.rs by
     `SLUICE_UPDATE_DOCS=1 cargo test -p sluice-config`. Do not edit by hand. -->

Sluice reads an INI file with the sections `[proxy]`, `[backend]`, `[log]`,
`[writebatch]` and `[metrics]`. Every key is optional; the shipped
[`config/sluice.ini`](../config/sluice.ini) lists each one with its default.
An unknown section or key, or an invalid value, stops start-up with a
message naming the key as `section.key`.

## Precedence

From lowest to highest:

1. Built-in defaults (the *Default* column below).
2. The INI file given with `-c`/`--config FILE`. Without the flag no file is
   read and the defaults apply.
3. Environment variables `SLUICE_<SECTION>__<KEY>` (one underscore after
   `SLUICE`, two between section and key; case-insensitive), e.g.
   `SLUICE_BACKEND__ADDRESS=10.0.0.5:3306` or
   `SLUICE_WRITEBATCH__MAX_DELAY_MS=10`. Variables that start with `SLUICE_`
   but have no `__` are not configuration keys and are ignored; a variable
   naming an unknown section or key is an error. An empty value counts as
   set (an empty `SLUICE_METRICS__LISTEN` disables metrics).
4. Command-line flags `--listen ADDR` (sets `proxy.listen`) and
   `--backend ADDR` (sets `backend.address`).

## Command-line flags

| Flag | Meaning |
|------|---------|
| `-c FILE`, `--config FILE` | Read this INI file. |
| `--listen ADDR` | Override `proxy.listen`. |
| `--backend ADDR` | Override `backend.address`. |
| `--check-config` | Load and validate the configuration (file, environment and flags), report the first error or that it is valid, and exit with status 0 if valid, non-zero otherwise. |

## Value syntax

- Durations (`*_timeout` keys, `probe_interval`, `unhealthy_after`): a whole
  number followed by `ms`, `s`, `m` or `h`, e.g. `500ms`, `30s`, `5m`, `8h`;
  a bare integer means seconds.
- `*_ms` keys: a whole number of milliseconds, without a unit.
- Booleans: `true` or `false` (`yes`/`no`, `on`/`off`, `1`/`0` also work).
- Addresses: `host:port`; listen addresses need an IP address (IPv6 in
  brackets, e.g. `[::1]:3307`).

## Reloading

On SIGHUP Sluice re-reads the same sources. Keys marked *yes* under
*Reload* (all of `[log]` and `[writebatch]`) take effect at once; a changed
key marked *no* is reported in the log and takes effect at the next
restart. An invalid configuration on reload is logged and the running
configuration is kept.
";

/// Render `docs/configuration.md` from [`KEYS`].
pub fn render_markdown() -> String {
    let mut out = String::from(MARKDOWN_HEAD);
    for section in SECTIONS {
        out.push_str(&format!(
            "\n## `[{section}]`\n\n\
             | Key | Default | Environment variable | Reload | Description |\n\
             |-----|---------|----------------------|--------|-------------|\n"
        ));
        for k in KEYS.iter().filter(|k| k.section == *section) {
            let default = if k.default.is_empty() {
                "(empty)".to_string()
            } else {
                format!("`{}`", k.default)
            };
            out.push_str(&format!(
                "| `{}` | {} | `{}` | {} | {} |\n",
                k.key,
                default,
                k.env,
                if k.reloadable { "yes" } else { "no" },
                k.description.replace('|', "\\|"),
            ));
        }
    }
    out
}

const INI_HEAD: &str = "\
; Sluice configuration.
;
; Generated from crates/sluice-config/src/keys.rs; every value below is the
; built-in default, so a key can be deleted to keep its default.
; Precedence, lowest first: defaults, this file, environment variables
; SLUICE_<SECTION>__<KEY> (e.g. SLUICE_BACKEND__ADDRESS), then the flags
; --listen and --backend. See docs/configuration.md.
;
; Durations (*_timeout, probe_interval, unhealthy_after): 500ms, 30s, 5m, 8h,
; or a bare integer of seconds.
; *_ms keys: whole milliseconds. Comments must be on their own line.
";

/// Render `config/sluice.ini` from [`KEYS`]: every key with its default
/// and its description as a comment.
pub fn render_ini() -> String {
    let mut out = String::from(INI_HEAD);
    for section in SECTIONS {
        out.push_str(&format!("\n[{section}]\n"));
        for k in KEYS.iter().filter(|k| k.section == *section) {
            out.push('\n');
            for line in wrap(k.description, 74) {
                out.push_str(&format!("; {line}\n"));
            }
            out.push_str(&format!(
                "; Environment: {}. {}\n",
                k.env,
                if k.reloadable {
                    "Reloaded on SIGHUP."
                } else {
                    "Needs a restart."
                }
            ));
            out.push_str(&format!("{} = {}\n", k.key, k.default));
        }
    }
    out
}

/// Greedy word wrap.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn repo_file(rel: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(rel)
    }

    /// Compare a shipped file with its rendering; with SLUICE_UPDATE_DOCS=1
    /// rewrite it instead.
    fn check_generated(rel: &str, expected: &str) {
        let path = repo_file(rel);
        if std::env::var_os("SLUICE_UPDATE_DOCS").is_some() {
            std::fs::write(&path, expected).unwrap();
            return;
        }
        let actual = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        assert!(
            actual == expected,
            "{rel} is out of date; run `SLUICE_UPDATE_DOCS=1 cargo test -p sluice-config`"
        );
    }

    #[test]
    fn env_names_follow_the_scheme() {
        for k in KEYS {
            let expected = format!("SLUICE_{}__{}", k.section, k.key).to_uppercase();
            assert_eq!(k.env, expected);
            assert!(SECTIONS.contains(&k.section), "{}", k.path());
        }
    }

    #[test]
    fn keys_are_unique() {
        for (i, a) in KEYS.iter().enumerate() {
            assert!(
                KEYS[i + 1..].iter().all(|b| a.path() != b.path()),
                "{} listed twice",
                a.path()
            );
        }
    }

    #[test]
    fn only_log_and_writebatch_reload() {
        for k in KEYS {
            let expected = matches!(k.section, "log" | "writebatch");
            assert_eq!(k.reloadable, expected, "{}", k.path());
        }
    }

    #[test]
    fn docs_and_ini_mention_every_key() {
        if std::env::var_os("SLUICE_UPDATE_DOCS").is_some() {
            return; // the files are being rewritten concurrently
        }
        let docs = std::fs::read_to_string(repo_file("docs/configuration.md")).unwrap();
        let ini = std::fs::read_to_string(repo_file("config/sluice.ini")).unwrap();
        for k in KEYS {
            assert!(
                docs.contains(&format!("`{}`", k.key)),
                "docs lack {}",
                k.path()
            );
            assert!(docs.contains(k.env), "docs lack {}", k.env);
            assert!(
                ini.contains(&format!("\n{} = {}\n", k.key, k.default)),
                "sluice.ini lacks {} = {}",
                k.path(),
                k.default
            );
        }
    }

    #[test]
    fn shipped_docs_are_generated() {
        check_generated("docs/configuration.md", &render_markdown());
    }

    #[test]
    fn shipped_ini_is_generated() {
        check_generated("config/sluice.ini", &render_ini());
    }

    #[test]
    fn wrap_respects_width() {
        let lines = wrap("aaa bbb ccc ddd", 7);
        assert_eq!(lines, vec!["aaa bbb", "ccc ddd"]);
    }
}
