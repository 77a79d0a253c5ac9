//! The shipped deployment files agree with each other and with the
//! daemon (no Docker engine runs here, so their content is checked).

use std::path::PathBuf;

fn read(path: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The port after the last ':' of the first line containing `needle`.
fn port_on_line(text: &str, needle: &str) -> u16 {
    let line = text
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}"));
    let digits: String = line
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no port in {line:?}"))
}

#[test]
fn prometheus_scrapes_the_metrics_port_sluice_listens_on() {
    let compose = read("docker/compose.yaml");
    let prometheus = read("docker/prometheus.yml");
    let ini = read("config/sluice.ini");
    let metrics_port = port_on_line(&compose, "SLUICE_METRICS__LISTEN");
    assert_eq!(port_on_line(&prometheus, "targets"), metrics_port);
    assert!(prometheus.contains("sluice:"), "scrapes the sluice service");
    assert!(compose.contains(&format!("\"{metrics_port}:{metrics_port}\"")));
    // The ini's [metrics] listen uses the same port by default.
    let metrics_section = ini.split("[metrics]").nth(1).expect("[metrics] section");
    assert_eq!(port_on_line(metrics_section, "listen ="), metrics_port);
    assert!(prometheus.contains("metrics_path: /metrics"));
}

#[test]
fn image_and_unit_run_the_daemon_with_the_shipped_config() {
    let dockerfile = read("docker/Dockerfile");
    assert!(dockerfile.contains("cargo build --release --locked --bin sluice"));
    assert!(dockerfile.contains("USER sluice"), "runs as non-root");
    assert!(dockerfile.contains("COPY config/sluice.ini"));
    let unit = read("config/sluice.service");
    for needle in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "EnvironmentFile=",
    ] {
        assert!(unit.contains(needle), "unit lacks {needle}");
    }
}

#[test]
fn the_socket_unit_listens_where_sluice_would() {
    let socket = read("config/sluice.socket");
    let ini = read("config/sluice.ini");
    let proxy_section = ini
        .split("[proxy]")
        .nth(1)
        .and_then(|s| s.split("\n[").next())
        .expect("[proxy] section");
    let listen = proxy_section
        .lines()
        .find_map(|l| l.strip_prefix("listen = "))
        .expect("[proxy] listen");
    assert!(
        socket
            .lines()
            .any(|l| l == format!("ListenStream={listen}")),
        "sluice.socket must listen on [proxy] listen ({listen})"
    );
    // One stream socket, passed to one service instance.
    let streams = socket
        .lines()
        .filter(|l| l.starts_with("ListenStream="))
        .count();
    assert_eq!(streams, 1);
    assert!(socket.contains("Accept=no"));
}
