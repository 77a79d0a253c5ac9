//! Parsers for single values. Each returns a message that says what was
//! wrong and what is accepted; the caller prefixes the key.

use std::net::SocketAddr;
use std::time::Duration;

/// Levels accepted by a tracing `EnvFilter` directive.
const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

/// A duration: `500ms`, `30s`, `5m`, `8h`, or a bare integer of seconds.
pub(crate) fn duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let bad = || {
        format!("{s:?} is not a duration (expected e.g. 500ms, 30s, 5m, 8h, or a whole number of seconds)")
    };
    if digits.is_empty() {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let per_unit_ms: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    n.checked_mul(per_unit_ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{s:?} is too large a duration"))
}

/// A whole number of milliseconds.
pub(crate) fn millis(s: &str) -> Result<Duration, String> {
    s.trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("{s:?} is not a whole number of milliseconds (expected e.g. 5)"))
}

/// A non-negative integer.
pub(crate) fn count(s: &str) -> Result<usize, String> {
    s.trim()
        .parse::<usize>()
        .map_err(|_| format!("{s:?} is not a non-negative integer"))
}

/// A finite, non-negative number.
pub(crate) fn rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a non-negative number (expected e.g. 1000 or 250.5)"
        )),
    }
}

/// `true`/`false` and the usual synonyms.
pub(crate) fn boolean(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!(
            "{s:?} is not a boolean (expected true or false; yes/no, on/off, 1/0 also work)"
        )),
    }
}

/// An IP address and port.
pub(crate) fn socket_addr(s: &str, example: &str) -> Result<SocketAddr, String> {
    s.trim().parse().map_err(|_| {
        format!(
            "{s:?} is not a socket address (expected host:port, e.g. {example}; \
             the host must be an IP address, IPv6 in brackets)"
        )
    })
}

/// `host:port` where host is a name, an IPv4 address or a bracketed IPv6
/// address. Names are not resolved here.
/// One or more backend addresses separated by commas, each checked by
/// [`backend_address`]; the same server twice is refused.
pub(crate) fn backend_addresses(s: &str) -> Result<Vec<String>, String> {
    let mut addresses: Vec<String> = Vec::new();
    for part in s.split(',') {
        if part.trim().is_empty() {
            return Err(format!(
                "{s:?} has an empty entry (expected servers separated by commas)"
            ));
        }
        let address = backend_address(part.trim())?;
        if addresses.contains(&address) {
            return Err(format!("{address} is listed twice"));
        }
        addresses.push(address);
    }
    Ok(addresses)
}

/// A backend address: `host:port`, or the absolute path of a Unix socket.
pub(crate) fn backend_address(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.starts_with('/') {
        if t.ends_with('/') || t.contains('\0') {
            return Err(format!("{s:?} is not a socket file path"));
        }
        return Ok(t.to_string());
    }
    host_port(s).map_err(|e| format!("{e}, or the absolute path of a Unix socket"))
}

pub(crate) fn host_port(s: &str) -> Result<String, String> {
    let t = s.trim();
    let expected = "expected host:port, e.g. 127.0.0.1:3306, db.internal:3306 or [::1]:3306";
    let Some((host, port)) = t.rsplit_once(':') else {
        return Err(format!("{s:?} has no port ({expected})"));
    };
    match port.parse::<u16>() {
        Ok(p) if p != 0 => {}
        _ => {
            return Err(format!(
                "{s:?} does not end in a port from 1 to 65535 ({expected})"
            ))
        }
    }
    if host.is_empty() {
        return Err(format!("{s:?} has no host ({expected})"));
    }
    if let Some(inner) = host.strip_prefix('[') {
        let ok = inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
        if !ok {
            return Err(format!(
                "{s:?} has a malformed bracketed IPv6 address ({expected})"
            ));
        }
    } else if host.contains(':') {
        return Err(format!(
            "{s:?}: an IPv6 address must be in brackets ({expected})"
        ));
    } else if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(format!("{s:?} has an invalid host name ({expected})"));
    }
    Ok(t.to_string())
}

/// A file path; empty means "not set".
pub(crate) fn optional_path(s: &str) -> Result<Option<std::path::PathBuf>, String> {
    let t = s.trim();
    Ok((!t.is_empty()).then(|| std::path::PathBuf::from(t)))
}

/// A MySQL account name; empty means "not set". The name travels
/// NUL-terminated in the login packet, so it cannot hold a NUL; control
/// characters are refused as the likely typo they are.
pub(crate) fn optional_user(s: &str) -> Result<Option<String>, String> {
    let t = s.trim();
    if t.chars().any(char::is_control) {
        return Err(format!(
            "{s:?} contains a control character (expected an account name such as sluice_monitor)"
        ));
    }
    Ok((!t.is_empty()).then(|| t.to_string()))
}

/// A tracing `EnvFilter` directive: comma-separated `[target=]level` parts.
pub(crate) fn log_level(s: &str) -> Result<String, String> {
    let t = s.trim();
    let expected = format!(
        "expected a level ({}) or comma-separated target=level parts, e.g. info,sluice_proxy=debug",
        LOG_LEVELS.join(", ")
    );
    if t.is_empty() {
        return Err(format!("the filter is empty ({expected})"));
    }
    for part in t.split(',') {
        let part = part.trim();
        let level = match part.rsplit_once('=') {
            Some((target, level)) => {
                if target.trim().is_empty() || target.contains(char::is_whitespace) {
                    return Err(format!(
                        "{part:?} has no valid target before '=' ({expected})"
                    ));
                }
                level
            }
            None => part,
        };
        if !LOG_LEVELS.contains(&level.trim().to_ascii_lowercase().as_str()) {
            return Err(format!("{part:?} does not name a level ({expected})"));
        }
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(duration("12"), Ok(Duration::from_secs(12)));
        assert_eq!(duration(" 7 s "), Ok(Duration::from_secs(7)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        for bad in [
            "",
            "s",
            "-1s",
            "1.5s",
            "10x",
            "ms10",
            "99999999999999999999h",
        ] {
            let err = duration(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        assert!(duration("abc").unwrap_err().contains("30s"));
    }

    #[test]
    fn millis_are_integers() {
        assert_eq!(millis("5"), Ok(Duration::from_millis(5)));
        assert!(millis("5ms").is_err());
        assert!(millis("-1").is_err());
    }

    #[test]
    fn booleans() {
        assert_eq!(boolean("TRUE"), Ok(true));
        assert_eq!(boolean("off"), Ok(false));
        assert!(boolean("maybe").unwrap_err().contains("true or false"));
    }

    #[test]
    fn rates() {
        assert_eq!(rate("1000"), Ok(1000.0));
        assert_eq!(rate("0.5"), Ok(0.5));
        assert!(rate("-1").is_err());
        assert!(rate("NaN").is_err());
        assert!(rate("inf").is_err());
    }

    #[test]
    fn host_ports() {
        for ok in [
            "127.0.0.1:3306",
            "db.internal:3306",
            "[::1]:3306",
            "maria_db-1:1",
        ] {
            assert_eq!(host_port(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "localhost",
            ":3306",
            "h:",
            "h:0",
            "h:70000",
            "::1:3306",
            "[::1:3306",
            "a b:1",
        ] {
            assert!(host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn log_levels() {
        for ok in [
            "info",
            "WARN",
            "info,sluice_proxy=debug",
            "sluice::batch=trace, error",
        ] {
            assert!(log_level(ok).is_ok(), "{ok}");
        }
        for bad in ["", " ", "verbose", "info,", "=debug", "sluice=loud"] {
            assert!(log_level(bad).is_err(), "{bad}");
        }
    }
}
