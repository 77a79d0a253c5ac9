//! What a driver sees of the protocol through Sluice, compared with
//! MariaDB directly: capability bits the server did not offer are ignored
//! as MariaDB ignores them, a login Sluice cannot complete ends with an
//! error packet the client can read, and a server that closes an idle
//! session closes the client's connection at once.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use sluice_e2e::raw::{self, caps, RawConn, RawOpts};
use sluice_e2e::{MariaDb, Pair, Sluice};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// What a raw client logged in with `force` sees of one query.
async fn log_in_and_query(addr: std::net::SocketAddr, force: u64) -> Result<Vec<u8>, String> {
    let opts = RawOpts {
        force_capabilities: force,
        ..Default::default()
    };
    let mut conn = RawConn::connect_with(addr, opts)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let response = conn
        .query("SELECT 1 + 1 AS two, @@session.sql_mode AS mode")
        .await
        .map_err(|e| format!("{e:#}"))?;
    conn.quit().await.map_err(|e| format!("{e:#}"))?;
    Ok(response.bytes())
}

/// Capability bits of MariaDB's greeting, read by a raw client.
async fn offered_by(addr: std::net::SocketAddr) -> u64 {
    let conn = RawConn::connect(addr).await.unwrap();
    conn.greeting.capabilities
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_unoffered_capability_bit_logs_in_as_directly() {
    let pair = Pair::start().await;
    let offered = offered_by(pair.db.addr()).await;
    // Every standard bit MariaDB did not offer (bit 0 included: it is
    // CLIENT_MYSQL to MariaDB), each alone and all of them at once, and
    // the MariaDB extensions it did not offer.
    let unoffered: Vec<u64> = (0..32)
        .map(|bit| 1u64 << bit)
        .filter(|bit| offered & bit == 0)
        .collect();
    assert!(
        unoffered.contains(&(1 << 27)),
        "CLIENT_QUERY_ATTRIBUTES is offered by this server: the test needs one that does not"
    );
    let mut cases: Vec<u64> = unoffered.clone();
    cases.push(unoffered.iter().fold(0, |all, bit| all | bit));
    cases.extend(
        (32..64)
            .map(|bit| 1u64 << bit)
            .filter(|bit| offered & bit == 0),
    );
    let mut failures = Vec::new();
    for force in cases {
        let direct = log_in_and_query(pair.db.addr(), force).await;
        let via = log_in_and_query(pair.sluice.addr(), force).await;
        if direct.is_err() || direct != via {
            failures.push(format!(
                "bits {force:#x}: directly {direct:?}, through Sluice {via:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\nsluice log:\n{}",
        failures.join("\n"),
        pair.sluice.log_tail(20)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_sluice_holds_back_are_masked_for_the_server_too() {
    let pair = Pair::start().await;
    if !pair
        .sluice
        .is_real("capabilities_sluice_holds_back_are_masked_for_the_server_too")
    {
        return;
    }
    // MariaDB offers metadata caching, Sluice does not. A client that
    // sets it anyway must get full result set metadata from the server,
    // which holds only if the server never saw the bit.
    const MARIADB_CACHE_METADATA: u64 = 1 << 36;
    let opts = RawOpts {
        capabilities: caps::DEFAULT & !caps::LONG_PASSWORD,
        force_capabilities: MARIADB_CACHE_METADATA,
        ..Default::default()
    };
    let mut conn = RawConn::connect_with(pair.sluice.addr(), opts)
        .await
        .expect("a client setting an unoffered MariaDB extension logs in");
    let (stmt, columns, _) = conn.prepare("SELECT ? + 1 AS n").await.unwrap();
    assert_eq!(columns, 1);
    const MYSQL_TYPE_STRING: u8 = 0xfe;
    let param = [(MYSQL_TYPE_STRING, Some(raw::lenenc_param(b"41")))];
    for round in 0..2 {
        let payload = raw::stmt_execute_payload(stmt, 0, &param, &[]);
        let response = conn
            .command(raw::cmd::STMT_EXECUTE, &payload)
            .await
            .unwrap();
        let sets = conn.result_sets(&response).unwrap();
        assert_eq!(sets.len(), 1, "round {round}: {:?}", response.error());
        assert_eq!(
            sets[0].columns.len(),
            1,
            "round {round}: metadata sent in full"
        );
    }
}

/// Reads one packet within 15 s: its sequence id and payload, or `None`
/// for a closed connection.
async fn read_packet(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    tokio::time::timeout(Duration::from_secs(15), raw::read_packet(stream))
        .await
        .expect("an answer within 15 s, not a hang")
        .ok()
        .map(|p| (p.seq, p.payload))
}

fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    raw::write_packet_bytes(&mut out, seq, payload);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_sluice_cannot_complete_end_with_an_error_packet() {
    let db = MariaDb::start().await;
    let sluice = Sluice::builder(&db)
        .env("SLUICE_PROXY__HANDSHAKE_TIMEOUT", "2s")
        .start()
        .await;
    if !sluice.is_real("logins_sluice_cannot_complete_end_with_an_error_packet") {
        return;
    }
    let protocol_41 = (caps::PROTOCOL_41 | caps::SECURE_CONNECTION) as u32;
    let ssl_request = protocol_41 | caps::SSL as u32;
    let mut short_ssl = ssl_request.to_le_bytes().to_vec();
    short_ssl.extend_from_slice(&[0u8; 28]);
    let mut pre_41 = (caps::SECURE_CONNECTION as u32).to_le_bytes().to_vec();
    pre_41.extend_from_slice(&[0u8; 28]);
    pre_41.extend_from_slice(b"root\0\0");
    let cases: [(&str, Option<Vec<u8>>, u16); 4] = [
        (
            "an SSL request where TLS was not offered",
            Some(short_ssl),
            1043,
        ),
        ("a pre-4.1 handshake response", Some(pre_41), 1043),
        ("a response with a wrong sequence id", None, 1043),
        (
            "no response within the handshake timeout",
            Some(Vec::new()),
            1105,
        ),
    ];
    for (what, response, code) in cases {
        let mut stream = TcpStream::connect(sluice.addr()).await.unwrap();
        let (seq, _greeting) = read_packet(&mut stream).await.expect("a greeting");
        match &response {
            Some(bytes) if bytes.is_empty() => {}
            Some(bytes) => stream.write_all(&packet(seq + 1, bytes)).await.unwrap(),
            None => stream
                .write_all(&packet(seq + 7, &[0u8; 40]))
                .await
                .unwrap(),
        }
        let started = Instant::now();
        let (_, answer) = read_packet(&mut stream)
            .await
            .unwrap_or_else(|| panic!("{what}: an error packet, not a bare close"));
        assert_eq!(answer.first(), Some(&0xff), "{what}: {answer:?}");
        let err = raw::parse_err(&answer);
        assert_eq!(err.code, code, "{what}: {err:?}");
        if code == 1105 {
            assert!(started.elapsed() < Duration::from_secs(10), "{what}");
            assert!(err.message.contains("login did not complete"), "{err:?}");
        }
    }
    // And the daemon is unharmed.
    let mut conn = sluice.root_conn().await;
    let one: Option<u32> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

/// A raw connection that is idle, and the connection id that ends it.
async fn idle_client(addr: std::net::SocketAddr) -> (RawConn, u32) {
    let conn = RawConn::connect(addr).await.unwrap();
    let id = conn.connection_id();
    (conn, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_idle_session_closes_the_client_at_once() {
    let pair = Pair::start().await;
    let mut admin = pair.direct().await;
    let mut seen = Vec::new();
    for addr in [pair.db.addr(), pair.sluice.addr()] {
        let (mut conn, id) = idle_client(addr).await;
        admin
            .query_drop(format!("KILL CONNECTION {id}"))
            .await
            .unwrap();
        let bytes = conn
            .read_until_closed(Duration::from_secs(1))
            .await
            .unwrap_or_else(|| panic!("{addr}: no close within a second of the KILL"));
        seen.push(bytes);
    }
    assert_eq!(
        seen[0], seen[1],
        "the bytes before the close, directly and through Sluice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_wait_timeout_closes_the_client_at_once() {
    let pair = Pair::start().await;
    let mut seen = Vec::new();
    for addr in [pair.db.addr(), pair.sluice.addr()] {
        let (mut conn, _) = idle_client(addr).await;
        let r = conn.query("SET SESSION wait_timeout = 1").await.unwrap();
        assert!(r.error().is_none());
        // One second of timeout, then the close within another second.
        let bytes = conn
            .read_until_closed(Duration::from_secs(2))
            .await
            .unwrap_or_else(|| panic!("{addr}: no close within a second of wait_timeout"));
        seen.push(bytes);
    }
    assert_eq!(
        seen[0], seen[1],
        "the bytes before the close, directly and through Sluice"
    );
    // The pool's other connections are untouched.
    let mut conn = pair.conn().await;
    let one: Option<u32> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

/// `[proxy] idle_timeout`: a client silent that long is disconnected (and
/// its server connection closed); a client that keeps sending commands
/// more often is not, however long it stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_are_disconnected_and_busy_ones_are_not() {
    let db = MariaDb::start().await;
    let sluice = Sluice::builder(&db)
        .env("SLUICE_PROXY__IDLE_TIMEOUT", "1s")
        .start()
        .await;
    if !sluice.is_real("idle_clients_are_disconnected_and_busy_ones_are_not") {
        return;
    }
    let mut busy = sluice.root_conn().await;
    let mut idle = sluice.root_conn().await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        busy.query_drop("SELECT 1")
            .await
            .expect("a busy client stays connected");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let closed = idle.query_drop("SELECT 1").await;
    assert!(closed.is_err(), "the idle client was disconnected");
    // Its server connection went with it: only the busy one is left.
    let db_ref = &db;
    assert!(
        sluice_e2e::wait_until(Duration::from_secs(5), || async move {
            db_ref.client_connections().await == 1
        })
        .await,
        "server connections: {}",
        db.client_connections().await
    );
    busy.query_drop("SELECT 1").await.expect("still connected");
    sluice.assert_no_panic();
}
