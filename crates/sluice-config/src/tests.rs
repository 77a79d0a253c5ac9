//! Tests of loading: precedence, errors, the shipped file.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::*;

const NO_ENV: [(&str, &str); 0] = [];

/// A temporary INI file, removed on drop.
struct TempIni(PathBuf);

impl TempIni {
    fn new(text: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "sluice-config-test-{}-{}.ini",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        TempIni(path)
    }
}

impl Drop for TempIni {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn load_ini(text: &str) -> Result<Config, ConfigError> {
    let ini = TempIni::new(text);
    load_from_env_iter(Some(&ini.0), &Overrides::default(), NO_ENV)
}

fn load_env(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    load_from_env_iter(None, &Overrides::default(), env.iter().copied())
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn shipped_ini() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/sluice.ini")
}

#[test]
fn defaults() {
    let c = load_env(&[]).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.proxy.listen, addr("127.0.0.1:3307"));
    assert_eq!(c.proxy.max_connections, 1024);
    assert_eq!(c.proxy.idle_timeout, Some(Duration::from_secs(8 * 3600)));
    assert_eq!(c.proxy.handshake_timeout, Duration::from_secs(10));
    assert_eq!(c.proxy.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(c.backend.addresses, ["127.0.0.1:3306"]);
    assert_eq!(c.backend.connect_timeout, Duration::from_secs(5));
    assert_eq!(c.log.level, "info");
    assert_eq!(c.log.format, LogFormat::Text);
    let w = &c.writebatch;
    assert!(w.enabled);
    assert_eq!(w.mode, BatchMode::Auto);
    assert_eq!(w.initial_delay, Duration::ZERO);
    assert_eq!(w.min_delay, Duration::ZERO);
    assert_eq!(w.max_delay, Duration::from_millis(5));
    assert_eq!(w.max_batch_size, 1000);
    assert_eq!(w.max_batch_bytes, 4_194_304);
    assert_eq!(w.write_threshold, 1000.0);
    assert_eq!(w.adaptive_step, Duration::from_millis(1));
    assert_eq!(w.metrics_interval, Duration::from_millis(1000));
    assert_eq!(w.max_queued_rows, 10_000);
    assert_eq!(c.metrics.listen, Some(addr("127.0.0.1:9104")));
    assert_eq!(c.metrics.probe_interval, Duration::from_secs(5));
    assert_eq!(c.metrics.unhealthy_after, Duration::from_secs(10));
    assert_eq!(c.metrics.monitor_user, None);
    assert!(c.metrics.monitor_password.is_empty());
}

#[test]
fn shipped_ini_loads_and_equals_defaults() {
    let c = load_from_env_iter(Some(&shipped_ini()), &Overrides::default(), NO_ENV).unwrap();
    assert_eq!(c, Config::default());
}

#[test]
fn every_documented_default_is_the_real_default() {
    // Set each key alone to its documented default, through the
    // environment: the result must equal the built-in default.
    for k in KEYS {
        let c = load_env(&[(k.env, k.default)]).unwrap_or_else(|e| panic!("{}: {e}", k.path()));
        assert_eq!(c, Config::default(), "{}", k.path());
    }
}

#[test]
fn file_overrides_defaults() {
    let c = load_ini(
        "[proxy]\nlisten = 0.0.0.0:4000\nidle_timeout = 90\n\
         [backend]\naddress = db.internal:3306\n\
         [log]\nlevel = info,sluice_proxy=debug\nformat = json\n\
         [writebatch]\nenabled = false\nmode = hint\nmax_delay_ms = 20\nwrite_threshold = 250.5\n",
    )
    .unwrap();
    assert_eq!(c.proxy.listen, addr("0.0.0.0:4000"));
    assert_eq!(c.proxy.idle_timeout, Some(Duration::from_secs(90)));
    assert_eq!(c.proxy.max_connections, 1024);
    assert_eq!(c.backend.addresses, ["db.internal:3306"]);
    assert_eq!(c.log.level, "info,sluice_proxy=debug");
    assert_eq!(c.log.format, LogFormat::Json);
    assert!(!c.writebatch.enabled);
    assert_eq!(c.writebatch.mode, BatchMode::Hint);
    assert_eq!(c.writebatch.max_delay, Duration::from_millis(20));
    assert_eq!(c.writebatch.write_threshold, 250.5);
}

#[test]
fn env_overrides_file() {
    let ini = TempIni::new("[backend]\naddress = file:3306\n[writebatch]\nmax_delay_ms = 7\n");
    let env = [
        ("SLUICE_BACKEND__ADDRESS", "10.0.0.5:3306"),
        ("SLUICE_WRITEBATCH__MAX_DELAY_MS", "10"),
        ("SLUICE_WRITEBATCH__ENABLED", "false"),
        ("PATH", "/usr/bin"),
    ];
    let c = load_from_env_iter(Some(&ini.0), &Overrides::default(), env).unwrap();
    assert_eq!(c.backend.addresses, ["10.0.0.5:3306"]);
    assert_eq!(c.writebatch.max_delay, Duration::from_millis(10));
    assert!(!c.writebatch.enabled);
}

#[test]
fn env_names_are_case_insensitive() {
    let c = load_env(&[
        ("sluice_Backend__Address", "h:1"),
        ("SLUICE_LOG__FORMAT", "JSON"),
    ])
    .unwrap();
    assert_eq!(c.backend.addresses, ["h:1"]);
    assert_eq!(c.log.format, LogFormat::Json);
}

#[test]
fn env_without_double_underscore_is_ignored() {
    // e.g. a daemon flag's env fallback, or single-underscore typos of other tools
    let c = load_env(&[("SLUICE_CONFIG", "/etc/sluice.ini"), ("SLUICE_LISTEN", "x")]).unwrap();
    assert_eq!(c, Config::default());
}

#[test]
fn malformed_env_is_an_error() {
    for name in [
        "SLUICE_PROXY__",
        "SLUICE___PROXY__LISTEN",
        "SLUICE_PROXY__LISTEN__X",
    ] {
        let err = load_env(&[(name, "1")]).unwrap_err().to_string();
        assert!(
            err.contains(name) && err.contains("SLUICE_<SECTION>__<KEY>"),
            "{err}"
        );
    }
}

#[test]
fn overrides_beat_env_and_file() {
    let ini = TempIni::new("[proxy]\nlisten = 127.0.0.1:1\n[backend]\naddress = file:1\n");
    let env = [
        ("SLUICE_PROXY__LISTEN", "127.0.0.1:2"),
        ("SLUICE_BACKEND__ADDRESS", "env:2"),
    ];
    let overrides = Overrides {
        listen: Some("127.0.0.1:3".into()),
        backend: Some("flag:3".into()),
    };
    let c = load_from_env_iter(Some(&ini.0), &overrides, env).unwrap();
    assert_eq!(c.proxy.listen, addr("127.0.0.1:3"));
    assert_eq!(c.backend.addresses, ["flag:3"]);
}

#[test]
fn bad_override_names_key_and_flag() {
    let overrides = Overrides {
        listen: Some("nope".into()),
        backend: None,
    };
    let err = load_from_env_iter(None, &overrides, NO_ENV)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("invalid value for proxy.listen (from command-line flag --listen)"),
        "{err}"
    );
}

#[test]
fn unknown_key_is_named() {
    let err = load_ini("[proxy]\nlisten = 127.0.0.1:3307\nlisten_port = 3307\n").unwrap_err();
    assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("unknown key proxy.listen_port (in "),
        "{msg}"
    );
    assert!(
        msg.contains("max_connections"),
        "lists the accepted keys: {msg}"
    );

    let msg = load_env(&[("SLUICE_WRITEBATCH__MAX_DELAY", "5")])
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg.split(" (keys of").next().unwrap(),
        "unknown key writebatch.max_delay (from environment variable SLUICE_WRITEBATCH__MAX_DELAY)"
    );
}

#[test]
fn unknown_section_is_named() {
    let msg = load_ini("[batching]\nmax_delay_ms = 5\n")
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("unknown section [batching]"), "{msg}");
    assert!(msg.contains("writebatch"), "{msg}");
    let msg = load_env(&[("SLUICE_PROXYY__LISTEN", "x")])
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with(
            "unknown section [proxyy] (from environment variable SLUICE_PROXYY__LISTEN)"
        ),
        "{msg}"
    );
}

#[test]
fn key_outside_section_is_an_error() {
    let msg = load_ini("listen = 127.0.0.1:1\n").unwrap_err().to_string();
    assert!(msg.starts_with("key listen"), "{msg}");
    assert!(msg.contains("outside any section"), "{msg}");
}

#[test]
fn bad_socket_address_names_key() {
    let err = load_ini("[proxy]\nlisten = abc\n").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("invalid value for proxy.listen (in "),
        "{msg}"
    );
    assert!(
        msg.contains(r#": "abc" is not a socket address (expected host:port, e.g. 127.0.0.1:3307"#),
        "{msg}"
    );
    let msg = load_env(&[("SLUICE_PROXY__LISTEN", "abc")])
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with(
            r#"invalid value for proxy.listen (from environment variable SLUICE_PROXY__LISTEN): "abc" is not a socket address"#
        ),
        "{msg}"
    );
}

#[test]
fn bad_backend_address_names_key() {
    let msg = load_env(&[("SLUICE_BACKEND__ADDRESS", "db.internal")])
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("invalid value for backend.address"),
        "{msg}"
    );
    assert!(msg.contains("has no port"), "{msg}");
}

#[test]
fn durations_in_timeouts() {
    let c = load_env(&[
        ("SLUICE_PROXY__HANDSHAKE_TIMEOUT", "500ms"),
        ("SLUICE_PROXY__SHUTDOWN_TIMEOUT", "5m"),
        ("SLUICE_PROXY__IDLE_TIMEOUT", "8h"),
        ("SLUICE_BACKEND__CONNECT_TIMEOUT", "3"),
    ])
    .unwrap();
    assert_eq!(c.proxy.handshake_timeout, Duration::from_millis(500));
    assert_eq!(c.proxy.shutdown_timeout, Duration::from_secs(300));
    assert_eq!(c.proxy.idle_timeout, Some(Duration::from_secs(8 * 3600)));
    assert_eq!(c.backend.connect_timeout, Duration::from_secs(3));

    let msg = load_env(&[("SLUICE_BACKEND__CONNECT_TIMEOUT", "5 sec")])
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("invalid value for backend.connect_timeout"),
        "{msg}"
    );
    assert!(
        msg.contains("is not a duration (expected e.g. 500ms, 30s, 5m, 8h"),
        "{msg}"
    );
    let msg = load_env(&[("SLUICE_BACKEND__CONNECT_TIMEOUT", "0")])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("must be greater than 0"), "{msg}");
}

#[test]
fn ms_keys_are_integers() {
    let msg = load_env(&[("SLUICE_WRITEBATCH__MAX_DELAY_MS", "5ms")])
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("invalid value for writebatch.max_delay_ms"),
        "{msg}"
    );
    assert!(msg.contains("whole number of milliseconds"), "{msg}");
}

#[test]
fn idle_timeout_zero_disables() {
    for zero in ["0", "0s", "0ms"] {
        let c = load_ini(&format!("[proxy]\nidle_timeout = {zero}\n")).unwrap();
        assert_eq!(c.proxy.idle_timeout, None, "{zero}");
    }
}

#[test]
fn metrics_listen_off_disables() {
    for off in ["off", "OFF", ""] {
        let c = load_env(&[("SLUICE_METRICS__LISTEN", off)]).unwrap();
        assert_eq!(c.metrics.listen, None, "{off:?}");
    }
    let c = load_ini("[metrics]\nlisten =\n").unwrap();
    assert_eq!(c.metrics.listen, None);
    let c = load_ini("[metrics]\nlisten = 0.0.0.0:9999\n").unwrap();
    assert_eq!(c.metrics.listen, Some(addr("0.0.0.0:9999")));
    let msg = load_ini("[metrics]\nlisten = yes\n")
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("invalid value for metrics.listen"), "{msg}");
}

#[test]
fn min_delay_must_not_exceed_max_delay() {
    let msg = load_ini("[writebatch]\nmin_delay_ms = 10\ninitial_delay_ms = 10\n")
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "writebatch.min_delay_ms (10) must not exceed writebatch.max_delay_ms (5)"
    );
    let msg = load_env(&[("SLUICE_WRITEBATCH__INITIAL_DELAY_MS", "6")])
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("writebatch.initial_delay_ms (6) must lie between"),
        "{msg}"
    );
    let c = load_env(&[
        ("SLUICE_WRITEBATCH__MIN_DELAY_MS", "2"),
        ("SLUICE_WRITEBATCH__INITIAL_DELAY_MS", "3"),
        ("SLUICE_WRITEBATCH__MAX_DELAY_MS", "4"),
    ])
    .unwrap();
    assert_eq!(c.writebatch.initial_delay, Duration::from_millis(3));
}

#[test]
fn ranges_are_checked() {
    for (var, value, expect) in [
        ("SLUICE_PROXY__MAX_CONNECTIONS", "0", "at least 1"),
        ("SLUICE_WRITEBATCH__MAX_BATCH_SIZE", "0", "at least 1"),
        (
            "SLUICE_WRITEBATCH__MAX_BATCH_BYTES",
            "1023",
            "at least 1024",
        ),
        (
            "SLUICE_WRITEBATCH__WRITE_THRESHOLD",
            "-1",
            "non-negative number",
        ),
        ("SLUICE_WRITEBATCH__ADAPTIVE_STEP_MS", "0", "greater than 0"),
        (
            "SLUICE_WRITEBATCH__METRICS_INTERVAL_MS",
            "0",
            "greater than 0",
        ),
        (
            "SLUICE_WRITEBATCH__MAX_QUEUED_ROWS",
            "999",
            "writebatch.max_batch_size (1000)",
        ),
        ("SLUICE_WRITEBATCH__MODE", "always", "expected auto or hint"),
        (
            "SLUICE_WRITEBATCH__ENABLED",
            "maybe",
            "expected true or false",
        ),
        ("SLUICE_LOG__FORMAT", "xml", "expected text or json"),
        ("SLUICE_LOG__LEVEL", "", "empty"),
        ("SLUICE_LOG__LEVEL", "loud", "does not name a level"),
        (
            "SLUICE_PROXY__MAX_CONNECTIONS",
            "many",
            "not a non-negative integer",
        ),
    ] {
        let msg = load_env(&[(var, value)]).unwrap_err().to_string();
        let key = var
            .strip_prefix("SLUICE_")
            .unwrap()
            .replace("__", ".")
            .to_lowercase();
        assert!(msg.contains(&key), "{var}={value}: {msg}");
        assert!(msg.contains(expect), "{var}={value}: {msg}");
    }
}

#[test]
fn missing_file_names_path() {
    let path = std::env::temp_dir().join("sluice-config-test-does-not-exist.ini");
    let err = load_from_env_iter(Some(&path), &Overrides::default(), NO_ENV).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("cannot read config file ") && msg.contains(&*path.to_string_lossy()),
        "{msg}"
    );
}

#[test]
fn ini_syntax_error_names_path() {
    let ini = TempIni::new("[proxy\nlisten = 1\n");
    let err = load_from_env_iter(Some(&ini.0), &Overrides::default(), NO_ENV).unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
    assert!(err.to_string().contains(&*ini.0.to_string_lossy()), "{err}");
}

#[test]
fn restart_required_lists_non_reloadable_sections() {
    let old = Config::default();
    let mut new = old.clone();
    new.writebatch.max_delay = Duration::from_millis(9);
    new.log.format = LogFormat::Json;
    assert!(old.restart_required(&new).is_empty());
    new.backend.addresses = vec!["other:3306".into()];
    new.metrics.listen = None;
    assert_eq!(old.restart_required(&new), vec!["backend", "metrics"]);
    // The sections that need a restart are those KEYS marks non-reloadable.
    let mut fixed: Vec<_> = KEYS
        .iter()
        .filter(|k| !k.reloadable)
        .map(|k| k.section)
        .collect();
    fixed.dedup();
    assert_eq!(fixed, vec!["proxy", "backend", "metrics"]);
}

#[test]
fn ini_dialect() {
    let c = load_ini("# hash comment\n[proxy]\nlisten = \"127.0.0.1:1\"\n").unwrap();
    assert_eq!(c.proxy.listen, addr("127.0.0.1:1"));
    // No inline comments: the text after the value is part of it.
    let msg = load_ini("[proxy]\nlisten = 127.0.0.1:1 ; c\n")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("\"127.0.0.1:1 ; c\""), "{msg}");
    // Names in the file are lowercase.
    let msg = load_ini("[Proxy]\nlisten = 127.0.0.1:1\n")
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("unknown section [Proxy]"), "{msg}");
}

#[test]
fn duplicates_in_file_are_errors() {
    // The INI parser would silently let the second [proxy] replace the first.
    let msg = load_ini("[proxy]\nlisten = 127.0.0.1:1\n\n[proxy]\nmax_connections = 5\n")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("line 4: section [proxy] appears twice"),
        "{msg}"
    );
    let msg = load_ini("[proxy]\nlisten = 127.0.0.1:1\nlisten = 127.0.0.1:2\n")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("line 3: key proxy.listen appears twice"),
        "{msg}"
    );
}

#[test]
fn probe_keys_take_durations() {
    let c = load_ini("[metrics]\nprobe_interval = 200ms\nunhealthy_after = 1s\n").unwrap();
    assert_eq!(c.metrics.probe_interval, Duration::from_millis(200));
    assert_eq!(c.metrics.unhealthy_after, Duration::from_secs(1));
    let c = load_env(&[
        ("SLUICE_METRICS__PROBE_INTERVAL", "100ms"),
        ("SLUICE_METRICS__UNHEALTHY_AFTER", "0"),
    ])
    .unwrap();
    assert_eq!(c.metrics.probe_interval, Duration::from_millis(100));
    assert_eq!(c.metrics.unhealthy_after, Duration::ZERO);
}

#[test]
fn probe_keys_reject_bad_values_naming_the_key() {
    for (var, value, key, expect) in [
        (
            "SLUICE_METRICS__PROBE_INTERVAL",
            "99ms",
            "metrics.probe_interval",
            "99ms is too short (must be at least 100ms)",
        ),
        (
            "SLUICE_METRICS__PROBE_INTERVAL",
            "0",
            "metrics.probe_interval",
            "at least 100ms",
        ),
        (
            "SLUICE_METRICS__PROBE_INTERVAL",
            "often",
            "metrics.probe_interval",
            "is not a duration",
        ),
        (
            "SLUICE_METRICS__UNHEALTHY_AFTER",
            "-1s",
            "metrics.unhealthy_after",
            "is not a duration",
        ),
        (
            "SLUICE_METRICS__MONITOR_USER",
            "mon\u{0}itor",
            "metrics.monitor_user",
            "control character",
        ),
    ] {
        let msg = load_env(&[(var, value)]).unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!(
                "invalid value for {key} (from environment variable {var})"
            )),
            "{var}={value}: {msg}"
        );
        assert!(msg.contains(expect), "{var}={value}: {msg}");
    }
    let msg = load_ini("[metrics]\nprobe_interval = 50ms\n")
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("invalid value for metrics.probe_interval (in "),
        "{msg}"
    );
}

#[test]
fn monitor_credentials_from_file_and_env() {
    let ini =
        TempIni::new("[metrics]\nmonitor_user = sluice_monitor\nmonitor_password = from-file\n");
    let c = load_from_env_iter(Some(&ini.0), &Overrides::default(), NO_ENV).unwrap();
    assert_eq!(c.metrics.monitor_user.as_deref(), Some("sluice_monitor"));
    assert_eq!(c.metrics.monitor_password.expose(), "from-file");
    // The environment beats the file, and the password is kept verbatim.
    let env = [("SLUICE_METRICS__MONITOR_PASSWORD", " s3cret ")];
    let c = load_from_env_iter(Some(&ini.0), &Overrides::default(), env).unwrap();
    assert_eq!(c.metrics.monitor_password.expose(), " s3cret ");
    // A user without a password is valid (an account with an empty one).
    let c = load_env(&[("SLUICE_METRICS__MONITOR_USER", "mon")]).unwrap();
    assert_eq!(c.metrics.monitor_user.as_deref(), Some("mon"));
    assert!(c.metrics.monitor_password.is_empty());
    // An empty user means none.
    let c = load_env(&[("SLUICE_METRICS__MONITOR_USER", " ")]).unwrap();
    assert_eq!(c.metrics.monitor_user, None);
}

#[test]
fn monitor_password_needs_a_user() {
    let msg = load_env(&[("SLUICE_METRICS__MONITOR_PASSWORD", "s3cret")])
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("metrics.monitor_password is set but metrics.monitor_user is not"),
        "{msg}"
    );
    assert!(!msg.contains("s3cret"), "{msg}");
}

#[test]
fn the_password_is_not_printed() {
    let c = load_env(&[
        ("SLUICE_METRICS__MONITOR_USER", "mon"),
        ("SLUICE_METRICS__MONITOR_PASSWORD", "hunter2"),
    ])
    .unwrap();
    let printed = format!("{c:?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("Secret(hidden)"), "{printed}");
    assert_eq!(format!("{:?}", Secret::default()), "Secret(empty)");
}

#[test]
fn probe_keys_need_a_restart() {
    let old = Config::default();
    let mut new = old.clone();
    new.metrics.unhealthy_after = Duration::from_secs(1);
    assert_eq!(old.restart_required(&new), vec!["metrics"]);
    for key in [
        "probe_interval",
        "unhealthy_after",
        "monitor_user",
        "monitor_password",
    ] {
        let doc = key_doc("metrics", key).unwrap();
        assert!(!doc.reloadable, "{key}");
    }
}

#[test]
fn a_backend_may_be_a_unix_socket_without_tls() {
    let c = load_ini("[backend]\naddress = /run/mysqld/mysqld.sock\ntls = off\n").unwrap();
    assert_eq!(c.backend.addresses, ["/run/mysqld/mysqld.sock"]);
    assert!(BackendConfig::is_unix_socket(&c.backend.addresses[0]));
    let default = load_env(&[]).unwrap().backend;
    assert!(!BackendConfig::is_unix_socket(&default.addresses[0]));
    // preferred (the default) is allowed: a socket just offers no TLS.
    assert!(load_ini("[backend]\naddress = /tmp/m.sock\n").is_ok());
    for mode in ["required", "verify"] {
        let e = load_ini(&format!(
            "[backend]\naddress = /tmp/m.sock\ntls = {mode}\ntls_ca = /etc/ca.pem\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("Unix socket"), "{e}");
    }
    for bad in ["/run/mysqld/", "mysqld.sock", "./mysqld.sock"] {
        let e = load_ini(&format!("[backend]\naddress = {bad}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("backend.address"), "{e}");
    }
}

#[test]
fn several_backends_need_a_cluster_mode() {
    let c = load_ini(
        "[backend]\naddress = db1:3306, db2:3306 ,/run/mysqld/mysqld.sock\ncluster = galera\n",
    )
    .unwrap();
    assert_eq!(
        c.backend.addresses,
        ["db1:3306", "db2:3306", "/run/mysqld/mysqld.sock"]
    );
    assert_eq!(c.backend.cluster, ClusterMode::Galera);
    assert!(!c.backend.fail_back);
    let c = load_env(&[
        ("SLUICE_BACKEND__ADDRESS", "a:1,b:2"),
        ("SLUICE_BACKEND__CLUSTER", "Primary"),
        ("SLUICE_BACKEND__FAIL_BACK", "true"),
    ])
    .unwrap();
    assert_eq!(c.backend.cluster, ClusterMode::Primary);
    assert!(c.backend.fail_back);
    // One server in a cluster mode is allowed (a cluster shrunk to one).
    assert!(load_ini("[backend]\naddress = a:1\ncluster = galera\n").is_ok());

    let e = load_ini("[backend]\naddress = a:1, b:2\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("lists 2 servers but backend.cluster is single"),
        "{e}"
    );
    let e = load_ini("[backend]\naddress = a:1, a:1\ncluster = primary\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("backend.address") && e.contains("listed twice"),
        "{e}"
    );
    let e = load_ini("[backend]\naddress = a:1,,b:2\ncluster = primary\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty entry"), "{e}");
    let e = load_ini("[backend]\naddress = a:1, b\ncluster = primary\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"b\" has no port"), "{e}");
    let e = load_ini("[backend]\ncluster = ring\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("backend.cluster") && e.contains("not a cluster mode"),
        "{e}"
    );
    let e = load_ini("[backend]\naddress = a:1, /tmp/m.sock\ncluster = galera\ntls = required\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("Unix socket (/tmp/m.sock)"), "{e}");
}

#[test]
fn each_backend_is_checked_against_its_own_host_name() {
    let mut c = load_ini("[backend]\naddress = db1.x:3306, [::1]:3306\ncluster = galera\n")
        .unwrap()
        .backend;
    assert_eq!(c.tls_name("db1.x:3306"), "db1.x");
    assert_eq!(c.tls_name("[::1]:3306"), "::1");
    c.tls_server_name = Some("cluster.x".into());
    assert_eq!(c.tls_name("db1.x:3306"), "cluster.x");
}
