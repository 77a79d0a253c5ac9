//! Errors, warnings, KILL QUERY, transaction status flags and byte-exact
//! responses: what a client sees through Sluice equals what MariaDB sends.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use sluice_e2e::raw::{self, cmd, status, RawConn};
use sluice_e2e::Pair;

const SETUP: &str = "CREATE DATABASE app; \
    CREATE TABLE app.t (id INT PRIMARY KEY, name VARCHAR(20)) ENGINE=InnoDB; \
    CREATE TABLE app.w (c VARCHAR(3), n TINYINT) ENGINE=InnoDB; \
    INSERT INTO app.t VALUES (1, 'one'), (2, 'two')";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_in_second_statement_of_multi_statement() {
    let pair = Pair::start().await;
    pair.db.sql(SETUP).await;
    let sql = "SELECT id FROM app.t ORDER BY id; SELECT * FROM app.missing; SELECT 3";

    let mut conn = pair.conn().await;
    let mut result = conn.query_iter(sql).await.unwrap();
    let first: Vec<(i64,)> = result.collect().await.unwrap();
    assert_eq!(first, vec![(1,), (2,)]);
    let err = result.collect::<Row>().await.unwrap_err();
    match err {
        mysql_async::Error::Server(e) => {
            assert_eq!(e.code, 1146);
            assert_eq!(e.state, "42S02");
            assert_eq!(e.message, "Table 'app.missing' doesn't exist");
        }
        other => panic!("expected a server error, got {other:?}"),
    }
    drop(result);
    // The third statement never ran; the connection is in sync.
    let v: i64 = conn.query_first("SELECT 4").await.unwrap().unwrap();
    assert_eq!(v, 4);

    // Byte for byte the same as straight from MariaDB.
    let mut via = pair.raw().await;
    let mut direct = pair.raw_direct().await;
    let a = via.query(sql).await.unwrap();
    let b = direct.query(sql).await.unwrap();
    assert_eq!(a.packets.len(), 7, "{a:?}");
    assert!(a.last().unwrap().is_err());
    assert_eq!(a.bytes(), b.bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_after_truncating_insert_equal_direct() {
    let pair = Pair::start().await;
    pair.db.sql(SETUP).await;
    let insert = "INSERT INTO app.w VALUES ('abcdef', 1000), ('xyzxyz', -1000), ('ok', 1)";

    let mut outcomes = Vec::new();
    for mut conn in [pair.conn().await, pair.direct().await] {
        conn.query_drop("SET SESSION sql_mode = ''").await.unwrap();
        conn.query_drop(insert).await.unwrap();
        let warnings = conn.get_warnings();
        let affected = conn.affected_rows();
        let info = conn.info().into_owned();
        let shown: Vec<(String, u32, String)> = conn.query("SHOW WARNINGS").await.unwrap();
        let count: u64 = conn
            .query_first("SELECT @@warning_count")
            .await
            .unwrap()
            .unwrap();
        outcomes.push((warnings, affected, info, shown, count));
    }
    assert_eq!(outcomes[0].0, 4, "{:?}", outcomes[0]);
    assert_eq!(outcomes[0].1, 3);
    assert_eq!(outcomes[0].2, "Records: 3  Duplicates: 0  Warnings: 4");
    assert_eq!(outcomes[0].3.len(), 4);
    assert_eq!(outcomes[0], outcomes[1], "through Sluice = direct");

    // Raw OK packets identical, warnings field included.
    let mut via = pair.raw().await;
    let mut direct = pair.raw_direct().await;
    for c in [&mut via, &mut direct] {
        c.query("SET SESSION sql_mode = ''").await.unwrap();
    }
    let a = via.query(insert).await.unwrap();
    let b = direct.query(insert).await.unwrap();
    assert_eq!(raw::parse_ok(&a.packets[0].payload).unwrap().warnings, 4);
    assert_eq!(a.bytes(), b.bytes());
    let a = via.query("SHOW WARNINGS").await.unwrap();
    let b = direct.query("SHOW WARNINGS").await.unwrap();
    assert_eq!(a.bytes(), b.bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_query_interrupts_long_sleep() {
    let pair = Pair::start().await;
    let mut sleeper = pair.conn().await;
    let id: u64 = sleeper
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();

    let task = tokio::spawn(async move {
        let started = Instant::now();
        let r: Result<Option<i64>, _> = sleeper.query_first("SELECT SLEEP(30)").await;
        (r, started.elapsed(), sleeper)
    });

    // The id seen through Sluice is the backend's thread id: the direct
    // processlist shows the sleep under it.
    let mut direct = pair.direct().await;
    let sql = format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {id} AND INFO LIKE 'SELECT SLEEP%'");
    let mut seen = false;
    for _ in 0..100 {
        let n: i64 = direct.query_first(&sql).await.unwrap().unwrap();
        if n == 1 {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        seen,
        "SLEEP of connection {id} not in the backend's processlist"
    );

    let mut killer = pair.conn().await;
    killer.query_drop(format!("KILL QUERY {id}")).await.unwrap();

    let (r, elapsed, mut sleeper) = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("sleeping query returned")
        .unwrap();
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    match r {
        Ok(v) => assert_eq!(v, Some(1), "interrupted SLEEP returns 1"),
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1317, "{e:?}"),
        Err(e) => panic!("unexpected error {e:?}"),
    }
    // The session survives KILL QUERY.
    let v: u64 = sleeper
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v, id);
}

/// Status flags of the last packet of each statement's response.
async fn status_trace(c: &mut RawConn, statements: &[&str]) -> Vec<u16> {
    let mut out = Vec::new();
    for sql in statements {
        let resp = c.query(sql).await.unwrap();
        assert!(resp.error().is_none(), "{sql}: {:?}", resp.error());
        let sets = c.result_sets(&resp).unwrap();
        out.push(sets.last().unwrap().status);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_status_flags_equal_direct() {
    let pair = Pair::start().await;
    pair.db.sql(SETUP).await;
    let statements = [
        "SELECT 1",
        "BEGIN",
        "INSERT INTO app.t VALUES (10, 'ten')",
        "SELECT * FROM app.t",
        "COMMIT",
        "START TRANSACTION READ ONLY",
        "SELECT COUNT(*) FROM app.t",
        "ROLLBACK",
        "SET autocommit = 0",
        "SELECT 1",
        "INSERT INTO app.t VALUES (11, 'eleven')",
        "SELECT * FROM app.t",
        "ROLLBACK",
        "DELETE FROM app.t WHERE id = 10",
        "COMMIT",
        "SET autocommit = 1",
    ];
    let mut via = pair.raw().await;
    let through = status_trace(&mut via, &statements).await;
    let mut direct = pair.raw_direct().await;
    let straight = status_trace(&mut direct, &statements).await;
    assert_eq!(through, straight, "status flags through Sluice = direct");

    let in_trans = |s: u16| s & status::IN_TRANS != 0;
    let autocommit = |s: u16| s & status::AUTOCOMMIT != 0;
    assert!(!in_trans(through[0]) && autocommit(through[0]));
    assert!(in_trans(through[1]) && autocommit(through[1]), "BEGIN");
    assert!(in_trans(through[2]));
    assert!(!in_trans(through[4]), "COMMIT");
    assert!(
        in_trans(through[5]) && through[5] & 0x2000 != 0,
        "READ ONLY"
    );
    assert!(!in_trans(through[7]));
    assert!(!autocommit(through[8]), "autocommit = 0");
    assert!(in_trans(through[10]), "implicit transaction");
    assert!(!in_trans(through[12]) && !autocommit(through[12]));
    assert!(autocommit(through[15]));

    // mysql_async sees the same flags in its OK packets.
    let mut conn = pair.conn().await;
    conn.query_drop("BEGIN").await.unwrap();
    let flags = conn.last_ok_packet().unwrap().status_flags();
    assert!(flags.contains(mysql_async::consts::StatusFlags::SERVER_STATUS_IN_TRANS));
    conn.query_drop("COMMIT").await.unwrap();
    let flags = conn.last_ok_packet().unwrap().status_flags();
    assert!(!flags.contains(mysql_async::consts::StatusFlags::SERVER_STATUS_IN_TRANS));
    assert!(flags.contains(mysql_async::consts::StatusFlags::SERVER_STATUS_AUTOCOMMIT));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_byte_identical_to_direct() {
    let pair = Pair::start().await;
    pair.db.sql(SETUP).await;
    pair.db
        .sql(
            "CREATE TABLE app.mix (id INT PRIMARY KEY, d DECIMAL(10,3), dt DATETIME(3), \
             b BLOB, s VARCHAR(10), j JSON); \
             INSERT INTO app.mix VALUES (1, 1.5, '2020-01-02 03:04:05.678', X'00FF10', 'ü', '[1]'), \
             (2, NULL, NULL, NULL, NULL, NULL)",
        )
        .await;
    let mut via = pair.raw().await;
    let mut direct = pair.raw_direct().await;

    assert_eq!(
        via.greeting.server_version, direct.greeting.server_version,
        "greeting server version"
    );
    assert_eq!(via.greeting.charset, direct.greeting.charset);
    assert_eq!(via.login_ok.payload, direct.login_ok.payload, "login OK");
    // The connection id in the greeting is the backend's.
    let rs = via.query_rows("SELECT CONNECTION_ID()").await.unwrap();
    let id = raw::text_row(&rs.rows[0], 1).unwrap()[0].clone().unwrap();
    assert_eq!(id, via.connection_id().to_string().into_bytes());

    let commands: Vec<(u8, Vec<u8>)> = vec![
        (cmd::QUERY, b"SELECT * FROM app.mix ORDER BY id".to_vec()),
        (
            cmd::QUERY,
            b"SELECT 1, 'abc', NULL, 1.5, -2e10, X'00'".to_vec(),
        ),
        (cmd::QUERY, b"SELECT nosuchcolumn FROM app.t".to_vec()),
        (cmd::QUERY, b"SELEKT 1".to_vec()),
        (
            cmd::QUERY,
            b"SHOW VARIABLES LIKE 'max_allowed_packet'".to_vec(),
        ),
        (
            cmd::QUERY,
            b"UPDATE app.t SET name = name WHERE id < 3".to_vec(),
        ),
        (cmd::QUERY, b"INSERT INTO app.t VALUES (1, 'dup')".to_vec()),
        (cmd::QUERY, b"DO 1; SELECT 2; SELECT 'x' AS y".to_vec()),
        (cmd::PING, Vec::new()),
        (cmd::INIT_DB, b"app".to_vec()),
        (cmd::FIELD_LIST, b"mix\0".to_vec()),
        (
            cmd::STMT_PREPARE,
            b"SELECT * FROM app.mix WHERE id > ?".to_vec(),
        ),
        (
            cmd::STMT_EXECUTE,
            raw::stmt_execute_payload(
                1,
                0,
                &[(raw::types::LONGLONG, Some(0i64.to_le_bytes().to_vec()))],
                &[],
            ),
        ),
        (cmd::STMT_RESET, 1u32.to_le_bytes().to_vec()),
        (cmd::STMT_PREPARE, b"SELECT broken FROM".to_vec()),
        (cmd::RESET_CONNECTION, Vec::new()),
        (cmd::QUERY, b"SELECT @@autocommit, DATABASE()".to_vec()),
    ];
    for (command, payload) in &commands {
        let a = via.command(*command, payload).await.unwrap();
        let b = direct.command(*command, payload).await.unwrap();
        assert!(!a.packets.is_empty());
        assert_eq!(
            a.bytes(),
            b.bytes(),
            "command {command:#04x} {:?}: response through Sluice differs from direct",
            String::from_utf8_lossy(payload)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deprecate_eof_client_gets_ok_terminators() {
    let pair = Pair::start().await;
    pair.db.sql(SETUP).await;
    let opts = raw::RawOpts {
        capabilities: raw::caps::DEFAULT | raw::caps::DEPRECATE_EOF,
        ..Default::default()
    };
    let mut via = RawConn::connect_with(pair.sluice.addr(), opts.clone())
        .await
        .unwrap();
    let mut direct = RawConn::connect_with(pair.db.addr(), opts).await.unwrap();
    assert!(via.deprecate_eof() && direct.deprecate_eof());
    for sql in [
        "SELECT * FROM app.t ORDER BY id",
        "SELECT 1; SELECT 2",
        "SELECT * FROM app.t WHERE id < 0",
    ] {
        let a = via.query(sql).await.unwrap();
        let b = direct.query(sql).await.unwrap();
        assert_eq!(a.bytes(), b.bytes(), "{sql}");
        let last = a.last().unwrap();
        assert!(last.is_eof() && raw::parse_ok(&last.payload).is_ok());
    }
    // And mysql_async (which asks for DEPRECATE_EOF) reads them.
    let mut conn: Conn = pair.conn().await;
    let rows: Vec<(i64, String)> = conn.query("SELECT * FROM app.t ORDER BY id").await.unwrap();
    assert_eq!(rows.len(), 2);
}
