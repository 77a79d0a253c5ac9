//! The HTTP endpoints and the backend probe, over real TCP connections.

use std::net::SocketAddr;
use std::time::Duration;

use sluice_metrics::{
    probe_as, probe_once, serve_http, HttpState, Metrics, MonitorLogin, ProbeError, ProbeOutcome,
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

/// How the scripted server below behaves.
#[derive(Clone, Copy)]
struct Script {
    /// The monitor account's password.
    password: &'static str,
    /// Ask for a new mysql_native_password round with a second nonce.
    switch_plugin: Option<&'static str>,
    /// Answer the query with this error code instead of a row.
    query_error: Option<u16>,
}

type Events = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

fn frame(seq: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len().to_le_bytes();
    let mut packet = vec![len[0], len[1], len[2], seq];
    packet.extend_from_slice(payload);
    packet
}

async fn read_frame(stream: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await?;
    let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await?;
    Ok((header[3], payload))
}

fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    use sha1::Digest;
    let mut hasher = sha1::Sha1::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// The server's check of a mysql_native_password answer: it stores only
/// SHA1(SHA1(password)).
fn password_matches(password: &str, nonce: &[u8], answer: &[u8]) -> bool {
    if password.is_empty() {
        return answer.is_empty();
    }
    let stored = sha1(&[&sha1(&[password.as_bytes()])]);
    let key = sha1(&[nonce, &stored]);
    if answer.len() != 20 {
        return false;
    }
    let stage1: Vec<u8> = answer.iter().zip(key).map(|(a, b)| a ^ b).collect();
    sha1(&[&stage1]) == stored
}

const NONCE: &[u8; 20] = b"0123456789abcdefghij";
const SECOND_NONCE: &[u8; 20] = b"ABCDEFGHIJKLMNOPQRST";

fn monitor_greeting() -> Vec<u8> {
    // PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH and the usual rest.
    let caps: u32 = 0xF7FE | 0x0008_0000;
    let mut p = vec![10];
    p.extend_from_slice(b"11.4.2-MariaDB\0");
    p.extend_from_slice(&9u32.to_le_bytes());
    p.extend_from_slice(&NONCE[..8]);
    p.push(0);
    p.extend_from_slice(&caps.to_le_bytes()[..2]);
    p.push(45);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&caps.to_le_bytes()[2..]);
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(&NONCE[8..]);
    p.push(0);
    p.extend_from_slice(b"mysql_native_password\0");
    p
}

fn err_packet(code: u16, message: &str) -> Vec<u8> {
    let mut p = vec![0xFF];
    p.extend_from_slice(&code.to_le_bytes());
    p.extend_from_slice(b"#28000");
    p.extend_from_slice(message.as_bytes());
    p
}

/// One connection of the scripted server; records what the client did.
async fn serve_monitor(
    mut stream: TcpStream,
    script: Script,
    events: Events,
) -> std::io::Result<()> {
    let log = |e: String| events.lock().unwrap_or_else(|p| p.into_inner()).push(e);
    stream.write_all(&frame(0, &monitor_greeting())).await?;
    let (seq, login) = read_frame(&mut stream).await?;
    let user_end = 32 + login[32..].iter().position(|&b| b == 0).unwrap_or(0);
    let user = String::from_utf8_lossy(&login[32..user_end]).into_owned();
    let auth_len = usize::from(login[user_end + 1]);
    let mut answer = login[user_end + 2..user_end + 2 + auth_len].to_vec();
    let mut nonce: &[u8] = NONCE;
    let mut seq = seq;
    if let Some(plugin) = script.switch_plugin {
        let mut switch = vec![0xFE];
        switch.extend_from_slice(plugin.as_bytes());
        switch.push(0);
        switch.extend_from_slice(SECOND_NONCE);
        switch.push(0);
        stream.write_all(&frame(seq + 1, &switch)).await?;
        let (next, reply) = read_frame(&mut stream).await?;
        log(format!("switch reply of {} bytes", reply.len()));
        seq = next;
        answer = reply;
        nonce = SECOND_NONCE;
    }
    if !password_matches(script.password, nonce, &answer) {
        let message = format!("Access denied for user '{user}'@'127.0.0.1' (using password: YES)");
        stream
            .write_all(&frame(seq + 1, &err_packet(1045, &message)))
            .await?;
        log("refused".into());
        return Ok(());
    }
    stream
        .write_all(&frame(seq + 1, &[0, 0, 0, 2, 0, 0, 0]))
        .await?;
    log(format!("logged in as {user}"));
    let (_, query) = read_frame(&mut stream).await?;
    log(format!("query {}", String::from_utf8_lossy(&query[1..])));
    if let Some(code) = script.query_error {
        stream.write_all(&frame(1, &err_packet(code, "no"))).await?;
    } else {
        let mut column = Vec::new();
        for text in [&b"def"[..], b"", b"", b"", b"1", b""] {
            column.push(text.len() as u8);
            column.extend_from_slice(text);
        }
        column.extend_from_slice(&[0x0C, 63, 0, 1, 0, 0, 0, 8, 0x81, 0, 0, 0, 0]);
        let eof = [0xFE, 0, 0, 2, 0];
        let mut out = frame(1, &[1]);
        out.extend(frame(2, &column));
        out.extend(frame(3, &eof));
        out.extend(frame(4, &[1, b'1']));
        out.extend(frame(5, &eof));
        stream.write_all(&out).await?;
    }
    let (_, quit) = read_frame(&mut stream).await?;
    log(format!("command {:#04x}", quit[0]));
    Ok(())
}

async fn scripted_backend(script: Script) -> Result<(String, Events), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    let events = Events::default();
    let recorded = events.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = serve_monitor(stream, script, recorded.clone()).await;
        }
    });
    Ok((address, events))
}

fn events_of(events: &Events) -> Vec<String> {
    events.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

const GOOD: Script = Script {
    password: "s3cret",
    switch_plugin: None,
    query_error: None,
};

#[tokio::test]
async fn monitor_logs_in_runs_select_1_and_quits() -> TestResult {
    let (address, events) = scripted_backend(GOOD).await?;
    let monitor = MonitorLogin::new("mon", "s3cret");
    assert_eq!(
        probe_as(&address, WAIT, &monitor).await?,
        ProbeOutcome::Answered {
            server_version: "11.4.2-MariaDB".to_owned()
        }
    );
    eventually(|| events_of(&events).len() == 3).await?;
    assert_eq!(
        events_of(&events),
        ["logged in as mon", "query SELECT 1", "command 0x01"]
    );
    Ok(())
}

#[tokio::test]
async fn monitor_follows_a_switch_to_a_new_nonce() -> TestResult {
    let script = Script {
        switch_plugin: Some("mysql_native_password"),
        ..GOOD
    };
    let (address, events) = scripted_backend(script).await?;
    let outcome = probe_as(&address, WAIT, &MonitorLogin::new("mon", "s3cret")).await?;
    assert!(
        matches!(outcome, ProbeOutcome::Answered { .. }),
        "{outcome:?}"
    );
    eventually(|| events_of(&events).len() == 4).await?;
    assert_eq!(
        events_of(&events)[..2],
        ["switch reply of 20 bytes", "logged in as mon"]
    );
    Ok(())
}

#[tokio::test]
async fn monitor_failures_are_errors_with_the_servers_reason() -> TestResult {
    let (address, events) = scripted_backend(GOOD).await?;
    let error = probe_as(&address, WAIT, &MonitorLogin::new("mon", "wrong"))
        .await
        .err()
        .ok_or("a wrong password must fail")?;
    assert!(
        matches!(error, ProbeError::LoginRefused { code: 1045, .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "monitor login as 'mon' refused: error 1045: Access denied for user 'mon'@'127.0.0.1' \
         (using password: YES)"
    );
    assert!(!format!("{error:?}").contains("wrong"));
    assert_eq!(events_of(&events), ["refused"]);

    let script = Script {
        query_error: Some(1227),
        ..GOOD
    };
    let (address, events) = scripted_backend(script).await?;
    let error = probe_as(&address, WAIT, &MonitorLogin::new("mon", "s3cret"))
        .await
        .err()
        .ok_or("a failed query must fail")?;
    assert!(
        matches!(error, ProbeError::QueryFailed { code: 1227, .. }),
        "{error:?}"
    );
    // The connection is still ended with COM_QUIT.
    eventually(|| events_of(&events).len() == 3).await?;
    assert_eq!(events_of(&events)[2], "command 0x01");

    let script = Script {
        switch_plugin: Some("client_ed25519"),
        ..GOOD
    };
    let (address, events) = scripted_backend(script).await?;
    let error = probe_as(&address, WAIT, &MonitorLogin::new("mon", "s3cret"))
        .await
        .err()
        .ok_or("an unsupported plugin must fail")?;
    assert!(
        error
            .to_string()
            .contains("needs the auth plugin client_ed25519"),
        "{error}"
    );
    // Answered (empty) rather than hung up on, so the server refuses a
    // login instead of counting a handshake error.
    eventually(|| events_of(&events).len() == 2).await?;
    assert_eq!(events_of(&events), ["switch reply of 0 bytes", "refused"]);
    Ok(())
}
