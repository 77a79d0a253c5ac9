//! Failure handling: unreachable backend, connection limits, clients and
//! backends that vanish, malformed packets, SIGTERM. Tests whose subject is
//! the daemon itself skip in direct mode; the others also hold for MariaDB
//! alone and run in both modes.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_e2e::raw;
use sluice_e2e::{direct_mode, MariaDb, Pair, Sluice};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn skip_in_direct_mode(test: &str) -> bool {
    if direct_mode() {
        eprintln!("{test}: needs the sluice daemon, skipped in direct mode");
        true
    } else {
        false
    }
}

/// Reads the first packet the server sends on a fresh TCP connection.
async fn first_packet(addr: std::net::SocketAddr) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut header = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(15), s.read_exact(&mut header))
        .await
        .expect("no hang: a packet within 15 s")
        .expect("a packet, not a closed connection");
    let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    let mut payload = vec![0; len];
    s.read_exact(&mut payload).await.unwrap();
    payload
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_backend_gives_error_packet_then_recovers() {
    if skip_in_direct_mode("unreachable_backend_gives_error_packet_then_recovers") {
        return;
    }
    let closed = sluice_e2e::ClosedPort::reserve();
    let closed_port = closed.port();
    let placeholder = MariaDb::start().await;
    let sluice = Sluice::builder(&placeholder)
        .backend_port(closed_port)
        .start()
        .await;

    // mysql_async gets a MySQL error packet (not a hang, not a bare close).
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(15), Conn::new(sluice.root_opts())).await;
    let r = r.expect("client must not hang when the backend is down");
    let message = match r {
        Err(mysql_async::Error::Server(e)) => {
            assert!(e.code > 0, "{e:?}");
            assert!(!e.message.is_empty());
            e.message
        }
        Err(e) => panic!(
            "expected a MySQL error packet, got {e:?}\n{}",
            sluice.log_tail(30)
        ),
        Ok(_) => panic!("login succeeded with no backend"),
    };
    assert!(started.elapsed() < Duration::from_secs(15));
    // Like MariaDB refusing a client (error 1040), Sluice greets and then
    // answers the handshake response with the error: client libraries
    // report an error in place of the greeting as a malformed packet.
    let p = first_packet(sluice.addr()).await;
    assert_eq!(p.first(), Some(&10), "a protocol-10 greeting first: {p:?}");
    assert!(message.contains("cannot reach"), "{message}");

    // The CLI reports an error (not a protocol failure) and exits non-zero.
    let cli = sluice_e2e::cli::Cli::new(sluice.port())
        .run("SELECT 1")
        .await;
    assert!(!cli.status.success());

    // Every refused connect to the backend is counted (mysql_async, the
    // greeting read, the CLI: at least the two that sent a login).
    let (code, body) = sluice_e2e::http::get(sluice.metrics_port(), "/metrics").await;
    assert_eq!(code, 200, "{body}");
    let connect_errors: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix("sluice_backend_connect_errors_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sluice_backend_connect_errors_total in\n{body}"));
    assert!(
        connect_errors >= 2.0,
        "{connect_errors} connect errors counted"
    );

    // The backend comes up on that port: the same Sluice now serves.
    drop(closed);
    let backend = MariaDb::builder().port(closed_port).start().await;
    let mut conn = Conn::new(sluice.root_opts())
        .await
        .unwrap_or_else(|e| panic!("after backend start: {e}\n{}", sluice.log_tail(30)));
    let v: i64 = conn.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(v, 1);
    drop(conn);
    sluice.assert_no_panic();
    drop(sluice);
    drop(backend);
    assert!(
        cli.stderr.starts_with("ERROR 1105 (HY000)") && !cli.stderr.contains("malformed packet"),
        "mariadb CLI shows: {}",
        cli.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_rejects_with_1040() {
    if skip_in_direct_mode("max_connections_rejects_with_1040") {
        return;
    }
    let db = MariaDb::start().await;
    let sluice = Sluice::builder(&db)
        .env("SLUICE_PROXY__MAX_CONNECTIONS", "3")
        .start()
        .await;
    // The harness's readiness probe (a TCP connect, closed at once) may
    // hold a slot for a few milliseconds: retry the first connects briefly.
    let mut held = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while held.len() < 3 {
        match Conn::new(sluice.root_opts()).await {
            Ok(c) => held.push(c),
            Err(e) => {
                assert!(Instant::now() < deadline, "connect {}: {e}", held.len() + 1);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let r = tokio::time::timeout(Duration::from_secs(10), Conn::new(sluice.root_opts()))
        .await
        .expect("4th client must not hang");
    // MariaDB itself answers its max_connections with 1040 / 08004.
    let state = match r {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!(e.code, 1040, "{e:?}");
            assert_eq!(e.message, "Too many connections");
            e.state
        }
        Err(e) => panic!("expected error 1040, got {e:?}"),
        Ok(_) => panic!("4th connection accepted despite max_connections = 3"),
    };
    // The three held connections still work.
    for c in held.iter_mut() {
        c.ping().await.unwrap();
    }
    // Freeing one slot admits a new client.
    let c = held.pop().unwrap();
    c.disconnect().await.unwrap();
    let mut admitted = None;
    for _ in 0..50 {
        if let Ok(c) = Conn::new(sluice.root_opts()).await {
            admitted = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut c = admitted.expect("a slot freed by a disconnect is reused");
    c.ping().await.unwrap();
    // The CLI shows the error as it shows MariaDB's own (MariaDB sends its
    // greeting, then answers the handshake response with ERR 1040 / 08004).
    let out = sluice_e2e::cli::Cli::new(sluice.port())
        .run("SELECT 1")
        .await;
    assert!(!out.status.success());
    sluice.assert_no_panic();
    assert_eq!(state, "08004", "SQLSTATE of 1040 as MariaDB sends it");
    assert!(
        out.stderr
            .contains("ERROR 1040 (08004): Too many connections"),
        "mariadb CLI shows: {}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_gone_mid_transaction_rolls_back() {
    let pair = Pair::start().await;
    pair.db
        .sql("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY) ENGINE=InnoDB")
        .await;
    let mut c = pair.raw().await;
    let id = c.connection_id();
    for sql in ["BEGIN", "INSERT INTO app.t VALUES (1)"] {
        let r = c.query(sql).await.unwrap();
        assert!(r.error().is_none(), "{sql}: {:?}", r.error());
    }
    // Abrupt close: no COM_QUIT, no ROLLBACK.
    drop(c);

    let mut direct = pair.direct().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = direct
            .query_first(format!(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {id}"
            ))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "backend connection {id} still open 10 s after its client left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let n: i64 = direct
        .query_first("SELECT COUNT(*) FROM app.t")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "the open transaction was rolled back");
    // No lock left behind: the row can be inserted now.
    direct
        .query_drop("SET innodb_lock_wait_timeout = 2")
        .await
        .unwrap();
    direct
        .query_drop("INSERT INTO app.t VALUES (1)")
        .await
        .unwrap();
    pair.sluice.assert_no_panic();
}

/// Expects the peer to answer with an ERR packet or to close the connection
/// within 20 s (MariaDB does so at once; a proxy may wait for its
/// handshake timeout when a bogus header announces a large packet).
async fn expect_error_or_close(s: &mut TcpStream, what: &str) {
    let mut buf = vec![0u8; 65536];
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => panic!("{what}: neither an error nor a close within 20 s"),
            Ok(Ok(0)) | Ok(Err(_)) => {
                eprintln!("{what}: closed after {:?}", started.elapsed());
                return;
            }
            Ok(Ok(n)) => {
                // An ERR packet is fine as an answer; keep reading until close
                // or, if the peer keeps the socket open after it, stop.
                if n >= 5 && buf[4] == 0xff {
                    return;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_client_packets_do_not_hurt_others() {
    let pair = Pair::start().await;
    let mut bystander = pair.conn().await;
    let addr = pair.sluice.addr();

    // 1. Garbage instead of a handshake response: a header announcing a
    //    16 MiB packet, a few bytes, then close.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _greeting = first_packet_on(&mut s).await;
    s.write_all(&[0xff, 0xff, 0xff, 0x01, 1, 2, 3])
        .await
        .unwrap();
    drop(s);

    // 2. Handshake response that is too short to parse.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _greeting = first_packet_on(&mut s).await;
    s.write_all(&[3, 0, 0, 1, 0x85, 0xa2, 0x0f]).await.unwrap();
    expect_error_or_close(&mut s, "short handshake response").await;

    // 3. Plain text (an HTTP request) instead of the protocol.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _greeting = first_packet_on(&mut s).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    expect_error_or_close(&mut s, "HTTP request").await;

    // 4. After login: a command packet with a wrong sequence id.
    let mut c = pair.raw().await;
    let mut packet = Vec::new();
    raw::write_packet_bytes(&mut packet, 7, b"\x03SELECT 1");
    c.write_raw(&packet).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), c.read()).await {
        Err(_) => panic!("wrong sequence id: no answer and no close within 10 s"),
        Ok(Err(_)) => eprintln!("wrong sequence id: connection closed"),
        Ok(Ok(p)) => eprintln!(
            "wrong sequence id: answered {:?}",
            raw::parse_err(&p.payload)
        ),
    }
    drop(c);

    // 5. After login: an empty packet (no command byte), then a truncated
    //    header and close.
    let mut c = pair.raw().await;
    c.write_raw(&[0, 0, 0, 0]).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), c.read()).await;
    drop(c);
    let mut c = pair.raw().await;
    c.write_raw(&[0x20, 0x00]).await.unwrap();
    drop(c);

    // 6. After login: COM_STMT_EXECUTE with a truncated parameter block.
    let mut c = pair.raw().await;
    let (id, _, _) = c.prepare("SELECT ?").await.unwrap();
    let mut payload = id.to_le_bytes().to_vec();
    payload.extend_from_slice(&[0, 1, 0, 0, 0, 0, 1, raw::types::VAR_STRING]);
    c.send(raw::cmd::STMT_EXECUTE, &payload).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), c.read()).await {
        Err(_) => panic!("truncated execute: no answer and no close within 10 s"),
        Ok(Err(_)) => {}
        Ok(Ok(p)) => assert!(p.is_err(), "truncated execute answered {p:?}"),
    }
    drop(c);

    // Everyone else is fine, and new clients are served.
    let v: i64 = bystander.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(v, 1);
    let mut fresh = pair.conn().await;
    fresh.ping().await.unwrap();
    if !pair.sluice.is_direct() {
        let mut sluice = pair.sluice;
        assert!(!sluice.has_exited(), "sluice exited");
        sluice.assert_no_panic();
    }
}

async fn first_packet_on(s: &mut TcpStream) -> Vec<u8> {
    let mut header = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut header))
        .await
        .expect("greeting within 10 s")
        .unwrap();
    let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    let mut payload = vec![0; len];
    s.read_exact(&mut payload).await.unwrap();
    payload
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_idle_exits_zero() {
    if skip_in_direct_mode("sigterm_while_idle_exits_zero") {
        return;
    }
    let db = MariaDb::start().await;
    let mut sluice = Sluice::start(&db).await;
    let mut c = sluice.root_conn().await;
    c.ping().await.unwrap();
    c.disconnect().await.unwrap();

    let started = Instant::now();
    sluice.send_signal(libc::SIGTERM);
    let status = sluice
        .wait_exit(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| {
            panic!(
                "sluice still running 10 s after SIGTERM\n{}",
                sluice.log_tail(30)
            )
        });
    assert_eq!(
        status.code(),
        Some(0),
        "{status:?}\n{}",
        sluice.log_tail(30)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    sluice.assert_no_panic();
    // It stopped listening.
    assert!(TcpStream::connect(sluice.addr()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_running_query_finish() {
    if skip_in_direct_mode("sigterm_lets_running_query_finish") {
        return;
    }
    let db = MariaDb::start().await;
    let mut sluice = Sluice::start(&db).await;
    let mut conn = sluice.root_conn().await;
    let id = conn.id();
    let query = tokio::spawn(async move {
        let r: Result<Option<i64>, _> = conn.query_first("SELECT SLEEP(2)").await;
        (r, conn)
    });
    // Wait until the backend runs it.
    let mut direct = db.root_conn().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = direct
            .query_first(format!(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {id} AND INFO LIKE 'SELECT SLEEP%'"
            ))
            .await
            .unwrap()
            .unwrap();
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "SLEEP never reached the backend");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    sluice.send_signal(libc::SIGTERM);
    let (r, conn) = tokio::time::timeout(Duration::from_secs(10), query)
        .await
        .expect("the running query is answered")
        .unwrap();
    assert_eq!(
        r.unwrap_or_else(|e| panic!("query cut off by SIGTERM: {e}\n{}", sluice.log_tail(30))),
        Some(0),
        "SLEEP(2) completed normally"
    );
    // The client leaves; Sluice may already have closed its side.
    let _ = conn.disconnect().await;
    let status = sluice
        .wait_exit(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| {
            panic!(
                "sluice still running after draining\n{}",
                sluice.log_tail(30)
            )
        });
    assert_eq!(
        status.code(),
        Some(0),
        "{status:?}\n{}",
        sluice.log_tail(30)
    );
    sluice.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_connection_killed_mid_session() {
    let pair = Pair::start().await;
    let mut victim = pair.conn().await;
    let mut other = pair.conn().await;
    let victim_id = victim.id();
    victim.query_drop("SET @x = 1").await.unwrap();

    let mut direct = pair.direct().await;
    direct
        .query_drop(format!("KILL {victim_id}"))
        .await
        .unwrap();

    let r = tokio::time::timeout(Duration::from_secs(10), victim.query_drop("SELECT 1"))
        .await
        .expect("the victim's next query must not hang");
    assert!(r.is_err(), "query on a killed backend connection succeeded");
    drop(victim);

    // The raw view: the victim's next command is answered with an error
    // packet or the connection is closed.
    let mut raw_victim = pair.raw().await;
    let raw_id = raw_victim.connection_id();
    direct.query_drop(format!("KILL {raw_id}")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    match raw_victim.query("SELECT 1").await {
        Err(_) => {}
        Ok(resp) => assert!(resp.error().is_some(), "{resp:?}"),
    }

    // Others are unaffected, and new clients are served.
    let v: i64 = other.query_first("SELECT 2").await.unwrap().unwrap();
    assert_eq!(v, 2);
    let mut fresh = pair.conn().await;
    fresh.ping().await.unwrap();
    pair.sluice.assert_no_panic();
}
