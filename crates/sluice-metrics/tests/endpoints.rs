//! The HTTP endpoints and the backend probe, over real TCP connections.

use std::net::SocketAddr;
use std::time::Duration;

use sluice_metrics::{
    probe_backend, probe_once, serve_http, HttpState, Metrics, ProbeError, ProbeOutcome,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);

struct Server {
    address: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

async fn start(state: HttpState) -> Result<Server, Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(serve_http(listener, state, shutdown));
    Ok(Server {
        address,
        stop,
        task,
    })
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

async fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
) -> Result<Reply, Box<dyn std::error::Error>> {
    let mut stream = TcpStream::connect(address).await?;
    let request = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw)).await??;
    let raw = String::from_utf8(raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("no end of headers")?;
    let status = head.split(' ').nth(1).ok_or("no status")?.parse::<u16>()?;
    Ok(Reply {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    })
}

async fn get(address: SocketAddr, path: &str) -> Result<Reply, Box<dyn std::error::Error>> {
    request(address, "GET", path).await
}

#[tokio::test]
async fn metrics_are_served_as_prometheus_text() -> TestResult {
    let metrics = Metrics::new()?;
    metrics.batch_executed(8, "app.events");
    let server = start(HttpState::new(metrics, 1000)).await?;
    let reply = get(server.address, "/metrics").await?;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .head
            .contains("content-type: text/plain; version=0.0.4"),
        "{}",
        reply.head
    );
    assert!(reply
        .body
        .contains("# TYPE sluice_write_batch_size histogram"));
    assert!(reply
        .body
        .contains("sluice_write_batched_total{table=\"app.events\"} 8"));
    let _ = server.stop.send(true);
    Ok(())
}

#[tokio::test]
async fn health_turns_unhealthy_when_the_backend_stays_unreachable() -> TestResult {
    let state = HttpState::new(Metrics::new()?, 1000).with_unhealthy_after(Duration::ZERO);
    let server = start(state.clone()).await?;

    let reply = get(server.address, "/health").await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.head.contains("content-type: application/json"));
    assert!(
        reply.body.starts_with(
            "{\"status\":\"ok\",\"backend_reachable\":true,\"queue_depth\":0,\"uptime_seconds\":"
        ),
        "{}",
        reply.body
    );
    assert!(reply.body.contains("\"version\":\""), "{}", reply.body);

    state.backend_probe_result(false);
    let reply = get(server.address, "/health").await?;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(
        reply
            .body
            .starts_with("{\"status\":\"unhealthy\",\"reason\":\"backend unreachable for 0s\",\"backend_reachable\":false,"),
        "{}",
        reply.body
    );

    state.backend_probe_result(true);
    assert_eq!(get(server.address, "/health").await?.status, 200);

    state.metrics().set_queue_depth(950);
    let reply = get(server.address, "/health").await?;
    assert_eq!(reply.status, 503);
    assert!(reply.body.contains("queue depth 950"), "{}", reply.body);
    let _ = server.stop.send(true);
    Ok(())
}

#[tokio::test]
async fn ready_follows_the_daemon_lifecycle() -> TestResult {
    let state = HttpState::new(Metrics::new()?, 1000);
    let server = start(state.clone()).await?;
    let reply = get(server.address, "/ready").await?;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (503, "{\"status\":\"starting\"}\n")
    );
    state.set_ready(true);
    let reply = get(server.address, "/ready").await?;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "{\"status\":\"ready\"}\n")
    );
    state.set_ready(false);
    let reply = get(server.address, "/ready").await?;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (503, "{\"status\":\"draining\"}\n")
    );
    let _ = server.stop.send(true);
    Ok(())
}

#[tokio::test]
async fn unknown_paths_and_methods_are_refused() -> TestResult {
    let server = start(HttpState::new(Metrics::new()?, 1000)).await?;
    assert_eq!(get(server.address, "/").await?.status, 404);
    assert_eq!(get(server.address, "/metrics/extra").await?.status, 404);
    let reply = request(server.address, "POST", "/metrics").await?;
    assert_eq!(reply.status, 405);
    assert!(reply.head.contains("allow: get, head"), "{}", reply.head);
    assert_eq!(get(server.address, "/metrics?x=1").await?.status, 200);
    let _ = server.stop.send(true);
    Ok(())
}

#[tokio::test]
async fn shutdown_stops_the_server() -> TestResult {
    let server = start(HttpState::new(Metrics::new()?, 1000)).await?;
    // A keep-alive connection that stays open must not hold up shutdown.
    let mut idle = TcpStream::connect(server.address).await?;
    idle.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await?;
    assert_eq!(&first, b"HTTP/1.1 503");
    server.stop.send(true)?;
    tokio::time::timeout(WAIT, server.task).await??;
    assert!(TcpStream::connect(server.address).await.is_err());
    Ok(())
}

/// A fake backend that sends `first_packet` (payload) to each connection.
async fn fake_backend(payload: Vec<u8>) -> Result<SocketAddr, Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let len = u32::try_from(payload.len())?.to_le_bytes();
    let mut packet = vec![len[0], len[1], len[2], 0];
    packet.extend_from_slice(&payload);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(&packet).await;
            // Refuse the prober's login as MariaDB refuses an unknown user.
            let mut header = [0u8; 4];
            if stream.read_exact(&mut header).await.is_ok() {
                let len = usize::from(header[0]) | usize::from(header[1]) << 8;
                let mut login = vec![0u8; len];
                let _ = stream.read_exact(&mut login).await;
                let mut err = vec![0xFF, 0x15, 0x04];
                err.extend_from_slice(b"#28000Access denied");
                let mut reply = vec![err.len() as u8, 0, 0, header[3].wrapping_add(1)];
                reply.extend_from_slice(&err);
                let _ = stream.write_all(&reply).await;
            }
            // Hold the connection until the prober closes it.
            let mut sink = Vec::new();
            let _ = stream.read_to_end(&mut sink).await;
        }
    });
    Ok(address)
}

fn greeting() -> Vec<u8> {
    let mut payload = vec![10];
    payload.extend_from_slice(b"11.4.2-MariaDB-log\0");
    payload.extend_from_slice(&[7, 0, 0, 0]);
    payload.extend_from_slice(b"12345678\0");
    payload
}

async fn closed_port() -> Result<SocketAddr, Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    drop(listener);
    Ok(address)
}

#[tokio::test]
async fn probe_once_tells_reachable_from_not() -> TestResult {
    let timeout = Duration::from_secs(2);
    let address = fake_backend(greeting()).await?.to_string();
    assert_eq!(
        probe_once(&address, timeout).await?,
        ProbeOutcome::Greeting {
            server_version: "11.4.2-MariaDB-log".to_owned()
        }
    );

    let mut refusal = vec![0xff, 0x69, 0x04];
    refusal.extend_from_slice(b"Host '127.0.0.1' is blocked because of many connection errors");
    let address = fake_backend(refusal).await?.to_string();
    assert!(matches!(
        probe_once(&address, timeout).await?,
        ProbeOutcome::Refused { code: 1129, .. }
    ));

    let address = fake_backend(b"SSH-2.0-OpenSSH_9.6\r\n".to_vec())
        .await?
        .to_string();
    assert!(matches!(
        probe_once(&address, timeout).await,
        Err(ProbeError::NotMySql { .. })
    ));

    let address = closed_port().await?.to_string();
    assert!(matches!(
        probe_once(&address, timeout).await,
        Err(ProbeError::Connect { .. })
    ));

    // Accepts but never speaks.
    let silent = TcpListener::bind("127.0.0.1:0").await?;
    let address = silent.local_addr()?.to_string();
    assert!(matches!(
        probe_once(&address, Duration::from_millis(200)).await,
        Err(ProbeError::Timeout { .. })
    ));
    drop(silent);
    Ok(())
}

/// Polls until `done` holds, at most [`WAIT`].
async fn eventually(mut done: impl FnMut() -> bool) -> TestResult {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        if tokio::time::Instant::now() > deadline {
            return Err("condition not reached in time".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

#[tokio::test]
async fn probe_task_sets_backend_up() -> TestResult {
    let metrics = Metrics::new()?;
    let state = HttpState::new(metrics.clone(), 1000).with_unhealthy_after(Duration::ZERO);
    let (stop, shutdown) = watch::channel(false);

    let up = fake_backend(greeting()).await?.to_string();
    let task = tokio::spawn(probe_backend(
        up,
        Duration::from_millis(20),
        Duration::from_secs(2),
        state.clone(),
        shutdown.clone(),
    ));
    eventually(|| state.backend_last_success().is_some()).await?;
    assert!(metrics.render().contains("\nsluice_backend_up 1\n"));
    assert!(state.backend_failing_since().is_none());
    stop.send(true)?;
    tokio::time::timeout(WAIT, task).await??;

    let (stop, shutdown) = watch::channel(false);
    let down = closed_port().await?.to_string();
    let task = tokio::spawn(probe_backend(
        down,
        Duration::from_millis(20),
        Duration::from_secs(2),
        state.clone(),
        shutdown,
    ));
    eventually(|| state.backend_failing_since().is_some()).await?;
    assert!(metrics.render().contains("\nsluice_backend_up 0\n"));
    stop.send(true)?;
    tokio::time::timeout(WAIT, task).await??;
    Ok(())
}
