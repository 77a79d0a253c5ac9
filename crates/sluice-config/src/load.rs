//! Layering of defaults, INI file, environment and flags, and conversion
//! of the layered raw strings into a validated [`Config`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Environment, File, FileFormat, Source, ValueKind};
use serde::Deserialize;

use crate::error::{ConfigError, Origin};
use crate::keys::{key_doc, keys_of, SECTIONS};
use crate::parse;
use crate::types::{
    BackendConfig, BackendTlsMode, BatchMode, ClusterMode, Config, LogConfig, LogFormat,
    MetricsConfig, ProxyConfig, Secret, WriteBatchConfig,
};

/// Values from command-line flags; they beat every other source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--listen ADDR`, sets `proxy.listen`.
    pub listen: Option<String>,
    /// `--backend ADDR`, sets `backend.address`.
    pub backend: Option<String>,
}

const ENV_PREFIX: &str = "sluice_";

/// Load the configuration: defaults, then the INI file at `path` (if any),
/// then `SLUICE_<SECTION>__<KEY>` variables of the process environment,
/// then `overrides`.
pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
    // A non-Unicode value becomes U+FFFD, which every validator rejects
    // with a message naming the key.
    let env = std::env::vars_os().filter_map(|(k, v)| {
        let k = k.into_string().ok()?;
        Some((k, v.to_string_lossy().into_owned()))
    });
    load_from_env_iter(path, overrides, env)
}

/// [`load`] with the environment given as name/value pairs, so tests need
/// not touch the process environment.
pub fn load_from_env_iter<I, K, V>(
    path: Option<&Path>,
    overrides: &Overrides,
    env: I,
) -> Result<Config, ConfigError>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<String>,
{
    let mut origins = Origins {
        file: path.map(Path::to_path_buf),
        ..Origins::default()
    };
    let mut builder = config::Config::builder();

    if let Some(path) = path {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let syntax = |message: String| ConfigError::Syntax {
            path: path.to_path_buf(),
            message,
        };
        check_duplicates(&text).map_err(syntax)?;
        // Parse the file alone first so a syntax error names the file.
        let file = config::Config::builder()
            .add_source(File::from_str(&text, FileFormat::Ini))
            .build()
            .map_err(|e| syntax(e.to_string()))?;
        builder = builder.add_source(file);
    }

    let mut vars = config::Map::new();
    for (name, value) in env {
        let name: String = name.into();
        if let Some(key_path) = env_key_path(&name)? {
            origins.env.insert(key_path, name.clone());
            vars.insert(name, value.into());
        }
    }
    // The prefix is followed by one underscore, sections and keys are
    // separated by two: SLUICE_BACKEND__ADDRESS is backend.address. (With
    // only `separator("__")` the crate would expect SLUICE__BACKEND__...)
    // try_parsing stays off: every value arrives as a string and is parsed
    // below, so errors name the key.
    builder = builder.add_source(
        Environment::with_prefix("SLUICE")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(false)
            .source(Some(vars)),
    );

    for (key_path, flag, value) in [
        ("proxy.listen", "--listen", &overrides.listen),
        ("backend.address", "--backend", &overrides.backend),
    ] {
        if let Some(value) = value {
            builder = builder
                .set_override(key_path, value.as_str())
                .map_err(layering)?;
            origins.flags.insert(key_path, flag);
        }
    }

    let layered = builder.build().map_err(layering)?;
    check_known_keys(&layered, &origins)?;
    let raw: RawConfig = layered.try_deserialize().map_err(layering)?;
    Convert { origins: &origins }.config(raw)
}

fn layering(e: config::ConfigError) -> ConfigError {
    ConfigError::Layering(e.to_string())
}

/// Reject a repeated section or key: the INI parser would let the last
/// one win silently, or drop a whole earlier section.
fn check_duplicates(text: &str) -> Result<(), String> {
    let mut sections: Vec<&str> = Vec::new();
    let mut keys: Vec<&str> = Vec::new();
    let mut section = "";
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim();
            if sections.contains(&section) {
                return Err(format!("line {}: section [{section}] appears twice", n + 1));
            }
            sections.push(section);
            keys.clear();
        } else if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            if keys.contains(&key) {
                return Err(format!("line {}: key {section}.{key} appears twice", n + 1));
            }
            keys.push(key);
        }
    }
    Ok(())
}

/// The `section.key` a variable sets, `None` if it is not a config
/// variable (no `SLUICE_` prefix, or no `__`, like `SLUICE_CONFIG`).
fn env_key_path(name: &str) -> Result<Option<String>, ConfigError> {
    let lower = name.to_lowercase();
    let Some(rest) = lower.strip_prefix(ENV_PREFIX) else {
        return Ok(None);
    };
    if !rest.contains("__") {
        return Ok(None);
    }
    let parts: Vec<&str> = rest.split("__").collect();
    let well_formed = parts.len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('_')
                && !p.ends_with('_')
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if !well_formed {
        return Err(ConfigError::MalformedEnv(name.to_string()));
    }
    Ok(Some(parts.join(".")))
}

/// Where each layered value came from, for error messages.
#[derive(Debug, Default)]
struct Origins {
    file: Option<PathBuf>,
    /// `section.key` → variable name.
    env: HashMap<String, String>,
    /// `section.key` → flag.
    flags: HashMap<&'static str, &'static str>,
}

impl Origins {
    fn of(&self, key_path: &str) -> Origin {
        if let Some(flag) = self.flags.get(key_path) {
            Origin::Flag(flag)
        } else if let Some(var) = self.env.get(key_path) {
            Origin::Env(var.clone())
        } else if let Some(file) = &self.file {
            Origin::File(file.clone())
        } else {
            Origin::Default
        }
    }

    fn of_section(&self, section: &str) -> Origin {
        let prefix = format!("{section}.");
        match self.env.iter().find(|(k, _)| k.starts_with(&prefix)) {
            Some((_, var)) => Origin::Env(var.clone()),
            None => self.of(section),
        }
    }
}

/// Report unknown sections and keys with their origin and the accepted
/// names. `deny_unknown_fields` below is the backstop.
fn check_known_keys(layered: &config::Config, origins: &Origins) -> Result<(), ConfigError> {
    let mut top: Vec<_> = layered.collect().map_err(layering)?.into_iter().collect();
    top.sort_by(|a, b| a.0.cmp(&b.0));
    for (section, value) in top {
        let ValueKind::Table(table) = value.kind else {
            return Err(ConfigError::OutsideSection {
                key: section.clone(),
                origin: origins.of(&section),
            });
        };
        if !SECTIONS.contains(&section.as_str()) {
            return Err(ConfigError::UnknownSection {
                origin: origins.of_section(&section),
                section,
                expected: SECTIONS.join(", "),
            });
        }
        let mut keys: Vec<_> = table.into_iter().collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, value) in keys {
            let key_path = format!("{section}.{key}");
            if key_doc(&section, &key).is_none() {
                return Err(ConfigError::UnknownKey {
                    origin: origins.of(&key_path),
                    expected: keys_of(&section),
                    section,
                    key,
                });
            }
            if matches!(value.kind, ValueKind::Table(_) | ValueKind::Array(_)) {
                return Err(ConfigError::InvalidValue {
                    origin: origins.of(&key_path),
                    key: key_path,
                    message: "expected a single value, not a table or list".to_string(),
                });
            }
        }
    }
    Ok(())
}

/// The layered values before validation. Every value is text: the INI
/// format and the environment (with `try_parsing` off) give strings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    proxy: RawProxy,
    backend: RawBackend,
    log: RawLog,
    writebatch: RawWriteBatch,
    metrics: RawMetrics,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProxy {
    listen: Option<String>,
    reuse_port: Option<String>,
    max_connections: Option<String>,
    idle_timeout: Option<String>,
    handshake_timeout: Option<String>,
    shutdown_timeout: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    require_secure_transport: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackend {
    address: Option<String>,
    cluster: Option<String>,
    fail_back: Option<String>,
    connect_timeout: Option<String>,
    tls: Option<String>,
    tls_ca: Option<String>,
    tls_server_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<String>,
    format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWriteBatch {
    enabled: Option<String>,
    mode: Option<String>,
    initial_delay_ms: Option<String>,
    min_delay_ms: Option<String>,
    max_delay_ms: Option<String>,
    max_batch_size: Option<String>,
    max_statement_rows: Option<String>,
    max_batch_bytes: Option<String>,
    write_threshold: Option<String>,
    adaptive_step_ms: Option<String>,
    metrics_interval_ms: Option<String>,
    max_queued_rows: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<String>,
    probe_interval: Option<String>,
    unhealthy_after: Option<String>,
    monitor_user: Option<String>,
    monitor_password: Option<String>,
}

/// Raw → typed, one key at a time, then the checks across keys.
struct Convert<'a> {
    origins: &'a Origins,
}

impl Convert<'_> {
    /// Parse `raw` if set, else take `default`; errors name `key_path`.
    fn value<T>(
        &self,
        key_path: &str,
        raw: Option<String>,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match raw {
            None => Ok(default),
            Some(s) => parse(&s).map_err(|message| ConfigError::InvalidValue {
                key: key_path.to_string(),
                origin: self.origins.of(key_path),
                message,
            }),
        }
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        Ok(Config {
            proxy: self.proxy(raw.proxy)?,
            backend: self.backend(raw.backend)?,
            log: self.log(raw.log)?,
            writebatch: self.writebatch(raw.writebatch)?,
            metrics: self.metrics(raw.metrics)?,
        })
    }

    fn proxy(&self, raw: RawProxy) -> Result<ProxyConfig, ConfigError> {
        let d = ProxyConfig::default();
        let p = ProxyConfig {
            listen: self.value("proxy.listen", raw.listen, d.listen, |s| {
                parse::socket_addr(s, "127.0.0.1:3307")
            })?,
            reuse_port: self.value(
                "proxy.reuse_port",
                raw.reuse_port,
                d.reuse_port,
                parse::boolean,
            )?,
            max_connections: self.value(
                "proxy.max_connections",
                raw.max_connections,
                d.max_connections,
                |s| at_least(parse::count(s)?, 1),
            )?,
            idle_timeout: self.value(
                "proxy.idle_timeout",
                raw.idle_timeout,
                d.idle_timeout,
                |s| Ok(Some(parse::duration(s)?).filter(|d| !d.is_zero())),
            )?,
            handshake_timeout: self.value(
                "proxy.handshake_timeout",
                raw.handshake_timeout,
                d.handshake_timeout,
                |s| non_zero(parse::duration(s)?),
            )?,
            shutdown_timeout: self.value(
                "proxy.shutdown_timeout",
                raw.shutdown_timeout,
                d.shutdown_timeout,
                parse::duration,
            )?,
            tls_cert: self.value(
                "proxy.tls_cert",
                raw.tls_cert,
                d.tls_cert,
                parse::optional_path,
            )?,
            tls_key: self.value(
                "proxy.tls_key",
                raw.tls_key,
                d.tls_key,
                parse::optional_path,
            )?,
            require_secure_transport: self.value(
                "proxy.require_secure_transport",
                raw.require_secure_transport,
                d.require_secure_transport,
                parse::boolean,
            )?,
        };
        check_proxy_tls(&p)?;
        Ok(p)
    }

    fn backend(&self, raw: RawBackend) -> Result<BackendConfig, ConfigError> {
        let d = BackendConfig::default();
        let b = BackendConfig {
            addresses: self.value(
                "backend.address",
                raw.address,
                d.addresses,
                parse::backend_addresses,
            )?,
            cluster: self.value("backend.cluster", raw.cluster, d.cluster, |s| {
                match s.trim().to_ascii_lowercase().as_str() {
                    "single" => Ok(ClusterMode::Single),
                    "galera" => Ok(ClusterMode::Galera),
                    "primary" => Ok(ClusterMode::Primary),
                    _ => Err(format!(
                        "{s:?} is not a cluster mode (expected single, galera or primary)"
                    )),
                }
            })?,
            fail_back: self.value(
                "backend.fail_back",
                raw.fail_back,
                d.fail_back,
                parse::boolean,
            )?,
            connect_timeout: self.value(
                "backend.connect_timeout",
                raw.connect_timeout,
                d.connect_timeout,
                |s| non_zero(parse::duration(s)?),
            )?,
            tls: self.value("backend.tls", raw.tls, d.tls, |s| {
                match s.trim().to_ascii_lowercase().as_str() {
                    "off" => Ok(BackendTlsMode::Off),
                    "preferred" => Ok(BackendTlsMode::Preferred),
                    "required" => Ok(BackendTlsMode::Required),
                    "verify" => Ok(BackendTlsMode::Verify),
                    _ => Err(format!(
                        "{s:?} is not a TLS mode (expected off, preferred, required or verify)"
                    )),
                }
            })?,
            tls_ca: self.value("backend.tls_ca", raw.tls_ca, d.tls_ca, parse::optional_path)?,
            tls_server_name: self.value(
                "backend.tls_server_name",
                raw.tls_server_name,
                d.tls_server_name,
                |s| Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
            )?,
        };
        let socket = b
            .addresses
            .iter()
            .find(|a| BackendConfig::is_unix_socket(a));
        if let (Some(socket), BackendTlsMode::Required | BackendTlsMode::Verify) = (socket, b.tls) {
            return Err(ConfigError::Inconsistent(format!(
                "backend.tls = {} needs TCP in backend.address: a Unix socket ({socket}) \
                 carries no TLS (use tls = off or preferred)",
                if b.tls == BackendTlsMode::Verify {
                    "verify"
                } else {
                    "required"
                },
            )));
        }
        if b.cluster == ClusterMode::Single && b.addresses.len() > 1 {
            return Err(ConfigError::Inconsistent(format!(
                "backend.address lists {} servers but backend.cluster is single: set \
                 cluster = galera or primary to use several",
                b.addresses.len()
            )));
        }
        if b.tls == BackendTlsMode::Verify && b.tls_ca.is_none() {
            return Err(ConfigError::Inconsistent(
                "backend.tls = verify needs backend.tls_ca (the CA that signed the server's \
                 certificate)"
                    .to_string(),
            ));
        }
        Ok(b)
    }

    fn log(&self, raw: RawLog) -> Result<LogConfig, ConfigError> {
        let d = LogConfig::default();
        Ok(LogConfig {
            level: self.value("log.level", raw.level, d.level, parse::log_level)?,
            format: self.value("log.format", raw.format, d.format, |s| {
                match s.trim().to_ascii_lowercase().as_str() {
                    "text" => Ok(LogFormat::Text),
                    "json" => Ok(LogFormat::Json),
                    _ => Err(format!("{s:?} is not a log format (expected text or json)")),
                }
            })?,
        })
    }

    fn writebatch(&self, raw: RawWriteBatch) -> Result<WriteBatchConfig, ConfigError> {
        let d = WriteBatchConfig::default();
        let w = WriteBatchConfig {
            enabled: self.value("writebatch.enabled", raw.enabled, d.enabled, parse::boolean)?,
            mode: self.value("writebatch.mode", raw.mode, d.mode, |s| {
                match s.trim().to_ascii_lowercase().as_str() {
                    "auto" => Ok(BatchMode::Auto),
                    "hint" => Ok(BatchMode::Hint),
                    _ => Err(format!("{s:?} is not a batch mode (expected auto or hint)")),
                }
            })?,
            initial_delay: self.value(
                "writebatch.initial_delay_ms",
                raw.initial_delay_ms,
                d.initial_delay,
                parse::millis,
            )?,
            min_delay: self.value(
                "writebatch.min_delay_ms",
                raw.min_delay_ms,
                d.min_delay,
                parse::millis,
            )?,
            max_delay: self.value(
                "writebatch.max_delay_ms",
                raw.max_delay_ms,
                d.max_delay,
                parse::millis,
            )?,
            max_batch_size: self.value(
                "writebatch.max_batch_size",
                raw.max_batch_size,
                d.max_batch_size,
                |s| at_least(parse::count(s)?, 1),
            )?,
            max_batch_bytes: self.value(
                "writebatch.max_batch_bytes",
                raw.max_batch_bytes,
                d.max_batch_bytes,
                |s| at_least(parse::count(s)?, 1024),
            )?,
            max_statement_rows: self.value(
                "writebatch.max_statement_rows",
                raw.max_statement_rows,
                d.max_statement_rows,
                |s| at_least(parse::count(s)?, 1),
            )?,
            write_threshold: self.value(
                "writebatch.write_threshold",
                raw.write_threshold,
                d.write_threshold,
                parse::rate,
            )?,
            adaptive_step: self.value(
                "writebatch.adaptive_step_ms",
                raw.adaptive_step_ms,
                d.adaptive_step,
                |s| non_zero(parse::millis(s)?),
            )?,
            metrics_interval: self.value(
                "writebatch.metrics_interval_ms",
                raw.metrics_interval_ms,
                d.metrics_interval,
                |s| non_zero(parse::millis(s)?),
            )?,
            max_queued_rows: self.value(
                "writebatch.max_queued_rows",
                raw.max_queued_rows,
                d.max_queued_rows,
                |s| at_least(parse::count(s)?, 1),
            )?,
        };
        check_writebatch(&w)?;
        Ok(w)
    }

    fn metrics(&self, raw: RawMetrics) -> Result<MetricsConfig, ConfigError> {
        let d = MetricsConfig::default();
        let m = MetricsConfig {
            listen: self.value("metrics.listen", raw.listen, d.listen, |s| {
                let t = s.trim();
                if t.is_empty() || t.eq_ignore_ascii_case("off") {
                    return Ok(None);
                }
                parse::socket_addr(s, "127.0.0.1:9104")
                    .map(Some)
                    .map_err(|m| format!("{m}, or off/empty to disable"))
            })?,
            probe_interval: self.value(
                "metrics.probe_interval",
                raw.probe_interval,
                d.probe_interval,
                |s| at_least_duration(parse::duration(s)?, MIN_PROBE_INTERVAL),
            )?,
            unhealthy_after: self.value(
                "metrics.unhealthy_after",
                raw.unhealthy_after,
                d.unhealthy_after,
                parse::duration,
            )?,
            monitor_user: self.value(
                "metrics.monitor_user",
                raw.monitor_user,
                d.monitor_user,
                parse::optional_user,
            )?,
            // Taken verbatim: a password may begin or end with a space.
            monitor_password: raw.monitor_password.map_or(d.monitor_password, Secret::new),
        };
        if m.monitor_user.is_none() && !m.monitor_password.is_empty() {
            return Err(ConfigError::Inconsistent(
                "metrics.monitor_password is set but metrics.monitor_user is not: the probe \
                 logs in only with a monitor user"
                    .to_string(),
            ));
        }
        Ok(m)
    }
}

fn at_least(n: usize, min: usize) -> Result<usize, String> {
    if n >= min {
        Ok(n)
    } else {
        Err(format!("{n} is too small (must be at least {min})"))
    }
}

/// Shortest `metrics.probe_interval`: a probe costs the server a
/// connection and a log line or two, so a typo like `5ms` should not
/// turn it into a flood.
const MIN_PROBE_INTERVAL: Duration = Duration::from_millis(100);

fn at_least_duration(d: Duration, min: Duration) -> Result<Duration, String> {
    if d >= min {
        Ok(d)
    } else {
        Err(format!(
            "{}ms is too short (must be at least {}ms)",
            d.as_millis(),
            min.as_millis()
        ))
    }
}

fn non_zero(d: Duration) -> Result<Duration, String> {
    if d.is_zero() {
        Err("0 is not allowed (must be greater than 0)".to_string())
    } else {
        Ok(d)
    }
}

/// The checks across the `[proxy]` TLS keys.
fn check_proxy_tls(p: &ProxyConfig) -> Result<(), ConfigError> {
    match (&p.tls_cert, &p.tls_key) {
        (Some(_), None) => Err(ConfigError::Inconsistent(
            "proxy.tls_cert is set but proxy.tls_key is not: set both or neither".to_string(),
        )),
        (None, Some(_)) => Err(ConfigError::Inconsistent(
            "proxy.tls_key is set but proxy.tls_cert is not: set both or neither".to_string(),
        )),
        (None, None) if p.require_secure_transport => Err(ConfigError::Inconsistent(
            "proxy.require_secure_transport needs proxy.tls_cert and proxy.tls_key".to_string(),
        )),
        _ => Ok(()),
    }
}

/// The checks across `[writebatch]` keys.
fn check_writebatch(w: &WriteBatchConfig) -> Result<(), ConfigError> {
    let ms = |d: Duration| d.as_millis();
    if w.min_delay > w.max_delay {
        return Err(ConfigError::Inconsistent(format!(
            "writebatch.min_delay_ms ({}) must not exceed writebatch.max_delay_ms ({})",
            ms(w.min_delay),
            ms(w.max_delay)
        )));
    }
    if w.initial_delay < w.min_delay || w.initial_delay > w.max_delay {
        return Err(ConfigError::Inconsistent(format!(
            "writebatch.initial_delay_ms ({}) must lie between writebatch.min_delay_ms ({}) \
             and writebatch.max_delay_ms ({})",
            ms(w.initial_delay),
            ms(w.min_delay),
            ms(w.max_delay)
        )));
    }
    if w.max_queued_rows < w.max_batch_size {
        return Err(ConfigError::Inconsistent(format!(
            "writebatch.max_queued_rows ({}) must be at least writebatch.max_batch_size ({}) \
             so that a full batch fits in the queue",
            w.max_queued_rows, w.max_batch_size
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_structs_deny_unknown_fields() {
        // The backstop behind check_known_keys.
        let layered = config::Config::builder()
            .set_override("proxy.bogus", "1")
            .unwrap()
            .build()
            .unwrap();
        let err = layered.try_deserialize::<RawConfig>().unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn raw_structs_cover_every_key() {
        let mut builder = config::Config::builder();
        for k in crate::KEYS {
            builder = builder.set_override(k.path(), k.default).unwrap();
        }
        let raw: RawConfig = builder.build().unwrap().try_deserialize().unwrap();
        assert_eq!(raw.metrics.listen.as_deref(), Some("127.0.0.1:9104"));
    }
}
