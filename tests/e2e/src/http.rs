//! The daemon's HTTP endpoints (`/metrics`, `/health`, `/ready`), read
//! with a bare HTTP/1.1 request so tests need no HTTP client library.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GET `path` on 127.0.0.1:`port`: (status code, body); (0, "") if the
/// port does not answer, so pollers can wait for it.
pub async fn get(port: u16, path: &str) -> (u16, String) {
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return (0, String::new());
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n\r\n");
    let _ = s.write_all(request.as_bytes()).await;
    let mut response = String::new();
    let _ = s.read_to_string(&mut response).await;
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (code, body)
}

/// The value of one sample line of a `/metrics` page: `series` is the
/// family name with its labels exactly as Sluice writes them
/// (`name{label="value"}`), or the bare name of an unlabelled family.
pub fn series_value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The sum of every sample of `family` in a `/metrics` page, whatever its
/// labels (0 when it has none).
pub fn family_sum(metrics: &str, family: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| {
            line.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The series of a per-backend family for the backend at `address`, as
/// [`series_value`] takes it: `sluice_backend_writer{backend="…"}`.
pub fn backend_series(family: &str, address: impl std::fmt::Display) -> String {
    format!("{family}{{backend=\"{address}\"}}")
}

/// Polls `/health` until it answers `want`; panics with the last answer
/// after `within`. Returns the body and how long it took.
pub async fn wait_for_health(port: u16, want: u16, within: Duration) -> (String, Duration) {
    let start = Instant::now();
    loop {
        let (code, body) = get(port, "/health").await;
        if code == want {
            return (body, start.elapsed());
        }
        assert!(
            start.elapsed() < within,
            "/health stayed {code} for {within:?}, wanted {want}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
