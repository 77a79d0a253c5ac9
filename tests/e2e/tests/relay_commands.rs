//! Every client command relayed through Sluice: text and binary protocol
//! via mysql_async, the rest via the raw client and the mariadb CLI.

use mysql_async::prelude::Queryable;
use mysql_async::{ChangeUserOpts, Conn, Row, WhiteListFsHandler};
use sluice_e2e::raw::{self, cmd, status, types};
use sluice_e2e::{e2e_dir, unique_name, Pair};

async fn setup_table(pair: &Pair) {
    pair.db
        .sql(
            "CREATE DATABASE app; \
             CREATE TABLE app.t (id INT PRIMARY KEY, name VARCHAR(100), body LONGBLOB) ENGINE=InnoDB",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn com_query_single_multi_statement_and_call() {
    let pair = Pair::start().await;
    pair.db
        .sql(
            "CREATE DATABASE app; CREATE PROCEDURE app.two_sets() \
             BEGIN SELECT 1 AS a; SELECT 2 AS b, 'x' AS c; END",
        )
        .await;
    let mut conn = pair.conn().await;

    let v: Option<(i64, String)> = conn.query_first("SELECT 41 + 1, 'hello'").await.unwrap();
    assert_eq!(v, Some((42, "hello".to_string())));

    // Multi-statement: three result sets, the last one an OK without rows.
    let mut result = conn
        .query_iter("SELECT 1 AS one; SELECT 'a', 'b' UNION ALL SELECT 'c', 'd'; DO 1")
        .await
        .unwrap();
    let first: Vec<(i64,)> = result.collect().await.unwrap();
    assert_eq!(first, vec![(1,)]);
    let second: Vec<(String, String)> = result.collect().await.unwrap();
    assert_eq!(
        second,
        vec![
            ("a".to_string(), "b".to_string()),
            ("c".to_string(), "d".to_string())
        ]
    );
    let third: Vec<Row> = result.collect().await.unwrap();
    assert!(third.is_empty());
    assert!(result.is_empty(), "no more result sets");
    drop(result);

    // CALL of a procedure returning two result sets (plus the CALL's own OK).
    let mut result = conn.query_iter("CALL app.two_sets()").await.unwrap();
    let a: Vec<(i64,)> = result.collect().await.unwrap();
    let b: Vec<(i64, String)> = result.collect().await.unwrap();
    assert_eq!(a, vec![(1,)]);
    assert_eq!(b, vec![(2, "x".to_string())]);
    let _: Vec<Row> = result.collect().await.unwrap();
    assert!(result.is_empty());
    drop(result);

    // The connection is still in sync afterwards.
    let n: i64 = conn.query_first("SELECT 7").await.unwrap().unwrap();
    assert_eq!(n, 7);

    // Same through the CLI.
    let out = pair
        .cli()
        .arg("-N")
        .run("SELECT 1; SELECT 'two'; CALL app.two_sets()")
        .await;
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, vec!["1", "two", "1", "2\tx"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn com_init_db_and_use() {
    let pair = Pair::start().await;
    pair.db
        .sql("CREATE DATABASE db_a; CREATE DATABASE db_b; CREATE TABLE db_b.marker (x INT)")
        .await;
    // mysql_async has no COM_INIT_DB API: the raw client sends it.
    let mut raw = pair.raw().await;
    let resp = raw.command(cmd::INIT_DB, b"db_a").await.unwrap();
    assert_eq!(resp.packets.len(), 1);
    assert!(resp.packets[0].is_ok(), "{resp:?}");
    let rs = raw.query_rows("SELECT DATABASE()").await.unwrap();
    assert_eq!(
        raw::text_row(&rs.rows[0], 1).unwrap(),
        vec![Some(b"db_a".to_vec())]
    );
    raw.command(cmd::INIT_DB, b"db_b").await.unwrap();
    let rs = raw
        .query_rows("SELECT DATABASE(), COUNT(*) FROM marker")
        .await
        .unwrap();
    assert_eq!(
        raw::text_row(&rs.rows[0], 2).unwrap(),
        vec![Some(b"db_b".to_vec()), Some(b"0".to_vec())]
    );
    let resp = raw.command(cmd::INIT_DB, b"no_such_db").await.unwrap();
    let e = resp.error().expect("unknown database");
    assert_eq!(e.code, 1049);
    assert_eq!(e.sqlstate, "42000");
    assert_eq!(e.message, "Unknown database 'no_such_db'");
    // Still usable, and still in db_b.
    let rs = raw.query_rows("SELECT DATABASE()").await.unwrap();
    assert_eq!(
        raw::text_row(&rs.rows[0], 1).unwrap(),
        vec![Some(b"db_b".to_vec())]
    );

    // CLI: `USE` (sent by the client as COM_INIT_DB) then a query.
    let out = pair
        .cli()
        .arg("-N")
        .stdin("USE db_b;\nSELECT DATABASE();\nSHOW TABLES;\n")
        .run("")
        .await;
    out.assert_success();
    assert_eq!(out.stdout, "db_b\nmarker\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn com_ping_and_statistics() {
    let pair = Pair::start().await;
    let mut conn = pair.conn().await;
    for _ in 0..3 {
        conn.ping().await.unwrap();
    }
    let mut raw = pair.raw().await;
    let resp = raw.command(cmd::PING, &[]).await.unwrap();
    assert_eq!(resp.packets.len(), 1);
    assert!(resp.packets[0].is_ok());
    assert_eq!(resp.packets[0].seq, 1);

    let resp = raw.command(cmd::STATISTICS, &[]).await.unwrap();
    assert_eq!(resp.packets.len(), 1);
    let text = String::from_utf8_lossy(&resp.packets[0].payload).into_owned();
    assert!(text.starts_with("Uptime: "), "{text}");
    assert!(text.contains("Threads: ") && text.contains("Queries per second avg"));
    // Still in sync.
    let rs = raw.query_rows("SELECT 5").await.unwrap();
    assert_eq!(
        raw::text_row(&rs.rows[0], 1).unwrap(),
        vec![Some(b"5".to_vec())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn com_process_kill_of_another_session() {
    let pair = Pair::start().await;
    let mut victim = pair.conn().await;
    let victim_id: u64 = victim
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        victim_id,
        u64::from(victim.id()),
        "greeting id = CONNECTION_ID()"
    );

    // The id seen through Sluice is the backend thread id.
    let mut direct = pair.direct().await;
    let users: Vec<(u64, String)> = direct
        .query("SELECT ID, USER FROM information_schema.PROCESSLIST")
        .await
        .unwrap();
    assert!(
        users.iter().any(|(id, _)| *id == victim_id),
        "{victim_id} not in {users:?}"
    );

    let mut raw = pair.raw().await;
    let resp = raw
        .command(cmd::PROCESS_KILL, &(victim_id as u32).to_le_bytes())
        .await
        .unwrap();
    assert!(resp.packets[0].is_ok(), "{:?}", resp.error());

    let err = victim.query_drop("SELECT 1").await;
    assert!(err.is_err(), "killed connection must fail");

    // Killing an unknown id: MariaDB's error 1094.
    let resp = raw
        .command(cmd::PROCESS_KILL, &999_999u32.to_le_bytes())
        .await
        .unwrap();
    let e = resp.error().expect("error for unknown thread id");
    assert_eq!(e.code, 1094);
    assert_eq!(e.message, "Unknown thread id: 999999");

    // CLI KILL also works through Sluice.
    let mut victim2 = pair.conn().await;
    let id2 = victim2.id();
    pair.cli()
        .run(&format!("KILL {id2}"))
        .await
        .assert_success();
    assert!(victim2.query_drop("SELECT 1").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn com_change_user_to_password_user() {
    let pair = Pair::start().await;
    pair.db
        .sql(
            "CREATE DATABASE app; CREATE USER u1@'%' IDENTIFIED BY 'secret1'; \
             GRANT ALL ON app.* TO u1@'%'",
        )
        .await;
    let mut conn = pair.conn().await;
    conn.query_drop("SET @before = 1").await.unwrap();
    conn.change_user(
        ChangeUserOpts::default()
            .with_user(Some("u1".into()))
            .with_pass(Some("secret1".into()))
            .with_db_name(Some("app".into())),
    )
    .await
    .unwrap();
    let (user, db, var): (String, Option<String>, Option<i64>) = conn
        .query_first("SELECT CURRENT_USER(), DATABASE(), @before")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user, "u1@%");
    assert_eq!(db.as_deref(), Some("app"));
    assert_eq!(var, None, "change user resets session state");

    // Wrong password: error 1045, and the connection is unusable or closed.
    let err = conn
        .change_user(
            ChangeUserOpts::default()
                .with_user(Some("u1".into()))
                .with_pass(Some("wrong".into())),
        )
        .await
        .unwrap_err();
    match err {
        mysql_async::Error::Server(e) => {
            assert_eq!(e.code, 1045, "{e:?}");
            assert!(e.message.starts_with("Access denied for user 'u1'@'"));
        }
        other => panic!("expected 1045, got {other:?}"),
    }
    // Sluice keeps serving new clients.
    let mut again = pair.conn().await;
    again.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn com_reset_connection_clears_session() {
    let pair = Pair::start().await;
    pair.db.sql("CREATE DATABASE app").await;
    let mut conn = Conn::new(pair.sluice.root_opts().db_name(Some("app")))
        .await
        .unwrap();
    conn.query_drop("SET @v = 5, SESSION sql_mode = ''")
        .await
        .unwrap();
    conn.query_drop("CREATE TEMPORARY TABLE tmp_x (a INT)")
        .await
        .unwrap();
    let v: Option<i64> = conn.query_first("SELECT @v").await.unwrap().unwrap();
    assert_eq!(v, Some(5));
    assert!(
        conn.reset().await.unwrap(),
        "COM_RESET_CONNECTION supported"
    );
    let v: Option<Option<i64>> = conn.query_first("SELECT @v").await.unwrap();
    assert_eq!(v, Some(None));
    let err = conn.query_drop("SELECT * FROM tmp_x").await.unwrap_err();
    assert!(
        matches!(err, mysql_async::Error::Server(ref e) if e.code == 1146),
        "{err:?}"
    );

    // Raw: the response is a single OK, sequence id 1.
    let mut raw = pair.raw().await;
    raw.query("SET @w = 1").await.unwrap();
    let resp = raw.command(cmd::RESET_CONNECTION, &[]).await.unwrap();
    assert_eq!(resp.packets.len(), 1);
    assert!(resp.packets[0].is_ok());
    let rs = raw.query_rows("SELECT @w").await.unwrap();
    assert_eq!(raw::text_row(&rs.rows[0], 1).unwrap(), vec![None]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn com_set_option_toggles_multi_statements() {
    let pair = Pair::start().await;
    let mut raw = pair.raw().await;
    let resp = raw.query("SELECT 1; SELECT 2").await.unwrap();
    assert_eq!(raw.result_sets(&resp).unwrap().len(), 2);

    // MYSQL_OPTION_MULTI_STATEMENTS_OFF = 1: answered with an EOF packet.
    let resp = raw
        .command(cmd::SET_OPTION, &1u16.to_le_bytes())
        .await
        .unwrap();
    assert_eq!(resp.packets.len(), 1);
    assert!(
        resp.packets[0].is_eof() || resp.packets[0].is_ok(),
        "{resp:?}"
    );
    let resp = raw.query("SELECT 1; SELECT 2").await.unwrap();
    let e = resp.error().expect("multi-statement refused");
    assert_eq!(e.code, 1064);
    assert_eq!(e.sqlstate, "42000");

    // ON again.
    let resp = raw
        .command(cmd::SET_OPTION, &0u16.to_le_bytes())
        .await
        .unwrap();
    assert!(resp.packets[0].is_eof() || resp.packets[0].is_ok());
    let resp = raw.query("SELECT 1; SELECT 2; SELECT 3").await.unwrap();
    assert_eq!(raw.result_sets(&resp).unwrap().len(), 3);

    // Invalid option value: error 1047 (unknown command) from MariaDB.
    let resp = raw
        .command(cmd::SET_OPTION, &7u16.to_le_bytes())
        .await
        .unwrap();
    assert!(resp.error().is_some(), "{resp:?}");
    let rs = raw.query_rows("SELECT 9").await.unwrap();
    assert_eq!(rs.rows.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn com_field_list_lists_columns() {
    let pair = Pair::start().await;
    setup_table(&pair).await;
    let mut raw = pair.raw().await;
    raw.command(cmd::INIT_DB, b"app").await.unwrap();
    let resp = raw.command(cmd::FIELD_LIST, b"t\0").await.unwrap();
    let names: Vec<String> = resp
        .packets
        .iter()
        .filter(|p| !p.is_eof() && !p.is_err())
        .map(|p| raw::parse_column(&p.payload).unwrap().name)
        .collect();
    assert_eq!(names, vec!["id", "name", "body"]);
    assert!(resp.last().unwrap().is_eof());

    // With a wildcard.
    let resp = raw.command(cmd::FIELD_LIST, b"t\0na%").await.unwrap();
    assert_eq!(resp.packets.len(), 2, "{resp:?}");
    assert_eq!(
        raw::parse_column(&resp.packets[0].payload).unwrap().name,
        "name"
    );

    // Unknown table: ERR 1146.
    let resp = raw.command(cmd::FIELD_LIST, b"nope\0").await.unwrap();
    assert_eq!(resp.error().unwrap().code, 1146);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_prepare_execute_close() {
    let pair = Pair::start().await;
    setup_table(&pair).await;
    let mut conn = Conn::new(pair.sluice.root_opts().db_name(Some("app")))
        .await
        .unwrap();

    let insert = conn
        .prep("INSERT INTO t (id, name, body) VALUES (?, ?, ?)")
        .await
        .unwrap();
    assert_eq!(insert.num_params(), 3);
    for i in 1..=5i64 {
        conn.exec_drop(
            &insert,
            (
                i,
                format!("name-{i}"),
                if i % 2 == 0 {
                    None
                } else {
                    Some(vec![i as u8; 3])
                },
            ),
        )
        .await
        .unwrap();
        assert_eq!(conn.affected_rows(), 1);
    }
    conn.close(insert).await.unwrap();

    let select = conn
        .prep("SELECT id, name, body FROM t WHERE id >= ? ORDER BY id")
        .await
        .unwrap();
    assert_eq!(select.num_columns(), 3);
    let rows: Vec<(i64, String, Option<Vec<u8>>)> = conn.exec(&select, (2,)).await.unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0], (2, "name-2".to_string(), None));
    assert_eq!(rows[1], (3, "name-3".to_string(), Some(vec![3, 3, 3])));
    // Re-execute the same statement id with another parameter.
    let rows: Vec<(i64, String, Option<Vec<u8>>)> = conn.exec(&select, (5,)).await.unwrap();
    assert_eq!(rows.len(), 1);
    conn.close(select).await.unwrap();

    // Prepare error: MariaDB's message.
    let err = conn.prep("SELECT * FROM missing_table").await.unwrap_err();
    assert!(
        matches!(err, mysql_async::Error::Server(ref e) if e.code == 1146),
        "{err:?}"
    );

    // Execute error.
    let dup = conn
        .prep("INSERT INTO t (id, name) VALUES (?, ?)")
        .await
        .unwrap();
    let err = conn.exec_drop(&dup, (1, "again")).await.unwrap_err();
    match err {
        mysql_async::Error::Server(e) => {
            assert_eq!(e.code, 1062);
            assert_eq!(e.state, "23000");
            assert_eq!(e.message, "Duplicate entry '1' for key 'PRIMARY'");
        }
        other => panic!("{other:?}"),
    }
    let n: i64 = conn
        .query_first("SELECT COUNT(*) FROM t")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 5);

    // Raw: COM_STMT_CLOSE has no response; executing a closed id errors 1243.
    let mut raw = pair.raw().await;
    let (id, _, _) = raw.prepare("SELECT 1").await.unwrap();
    let resp = raw
        .command(cmd::STMT_CLOSE, &id.to_le_bytes())
        .await
        .unwrap();
    assert!(resp.packets.is_empty());
    let resp = raw
        .command(
            cmd::STMT_EXECUTE,
            &raw::stmt_execute_payload(id, 0, &[], &[]),
        )
        .await
        .unwrap();
    assert_eq!(resp.error().unwrap().code, 1243);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn com_stmt_fetch_with_read_only_cursor() {
    let pair = Pair::start().await;
    setup_table(&pair).await;
    pair.db
        .sql("INSERT INTO app.t (id, name) SELECT seq, CONCAT('n', seq) FROM app.seq_1_to_10")
        .await;
    let mut raw = pair.raw().await;
    raw.command(cmd::INIT_DB, b"app").await.unwrap();
    let (id, ncols, nparams) = raw
        .prepare("SELECT id, name FROM t WHERE id > ? ORDER BY id")
        .await
        .unwrap();
    assert_eq!((ncols, nparams), (2, 1));

    // CURSOR_TYPE_READ_ONLY = 1: column definitions only, CURSOR_EXISTS set.
    let params = [(types::LONGLONG, Some(0i64.to_le_bytes().to_vec()))];
    let resp = raw
        .command(
            cmd::STMT_EXECUTE,
            &raw::stmt_execute_payload(id, 1, &params, &[]),
        )
        .await
        .unwrap();
    let sets = raw.result_sets(&resp).unwrap();
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].columns.len(), 2);
    assert!(sets[0].rows.is_empty());
    assert_ne!(sets[0].status & status::CURSOR_EXISTS, 0, "cursor opened");
    let columns = sets[0].columns.clone();

    let mut fetched = Vec::new();
    let mut last_status = 0;
    for round in 0..3 {
        let mut payload = id.to_le_bytes().to_vec();
        payload.extend_from_slice(&4u32.to_le_bytes());
        let resp = raw.command(cmd::STMT_FETCH, &payload).await.unwrap();
        assert!(resp.error().is_none(), "round {round}: {resp:?}");
        let end = resp.last().unwrap();
        assert!(end.is_eof());
        last_status = raw::parse_eof(&end.payload).unwrap().1;
        for p in &resp.packets[..resp.packets.len() - 1] {
            let row = raw::binary_row(&p.payload, &columns).unwrap();
            fetched.push(String::from_utf8(row[1].clone().unwrap()).unwrap());
        }
        let expected_rows = if round < 2 { 4 } else { 2 };
        assert_eq!(resp.packets.len() - 1, expected_rows, "round {round}");
    }
    assert_ne!(last_status & status::LAST_ROW_SENT, 0);
    let expected: Vec<String> = (1..=10).map(|i| format!("n{i}")).collect();
    assert_eq!(fetched, expected);

    // Fetch again after the end: no rows, just EOF (or an error); in sync afterwards.
    raw.command(cmd::STMT_CLOSE, &id.to_le_bytes())
        .await
        .unwrap();
    let rs = raw.query_rows("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(
        raw::text_row(&rs.rows[0], 1).unwrap(),
        vec![Some(b"10".to_vec())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn com_stmt_send_long_data_and_reset() {
    let pair = Pair::start().await;
    setup_table(&pair).await;
    let mut raw = pair.raw().await;
    raw.command(cmd::INIT_DB, b"app").await.unwrap();
    let (id, _, nparams) = raw
        .prepare("INSERT INTO t (id, name, body) VALUES (?, ?, ?)")
        .await
        .unwrap();
    assert_eq!(nparams, 3);

    let long_data = |param: u16, chunk: &[u8]| {
        let mut p = id.to_le_bytes().to_vec();
        p.extend_from_slice(&param.to_le_bytes());
        p.extend_from_slice(chunk);
        p
    };
    // Two chunks for param 2 (body); COM_STMT_SEND_LONG_DATA has no response.
    for chunk in [&b"hello "[..], &b"long world"[..]] {
        let resp = raw
            .command(cmd::STMT_SEND_LONG_DATA, &long_data(2, chunk))
            .await
            .unwrap();
        assert!(resp.packets.is_empty());
    }
    let params = [
        (types::LONG, Some(1i32.to_le_bytes().to_vec())),
        (types::VAR_STRING, Some(raw::lenenc_param(b"first"))),
        (types::BLOB, None),
    ];
    let resp = raw
        .command(
            cmd::STMT_EXECUTE,
            &raw::stmt_execute_payload(id, 0, &params, &[2]),
        )
        .await
        .unwrap();
    assert!(resp.packets[0].is_ok(), "{:?}", resp.error());
    assert_eq!(
        raw::parse_ok(&resp.packets[0].payload)
            .unwrap()
            .affected_rows,
        1
    );

    // Long data sent, then COM_STMT_RESET discards it.
    raw.command(cmd::STMT_SEND_LONG_DATA, &long_data(2, b"discarded"))
        .await
        .unwrap();
    let resp = raw
        .command(cmd::STMT_RESET, &id.to_le_bytes())
        .await
        .unwrap();
    assert_eq!(resp.packets.len(), 1);
    assert!(resp.packets[0].is_ok(), "{resp:?}");
    let params = [
        (types::LONG, Some(2i32.to_le_bytes().to_vec())),
        (types::VAR_STRING, Some(raw::lenenc_param(b"second"))),
        (types::BLOB, Some(raw::lenenc_param(b"inline"))),
    ];
    let resp = raw
        .command(
            cmd::STMT_EXECUTE,
            &raw::stmt_execute_payload(id, 0, &params, &[]),
        )
        .await
        .unwrap();
    assert!(resp.packets[0].is_ok(), "{:?}", resp.error());

    // COM_STMT_RESET of an unknown statement: error 1243.
    let resp = raw
        .command(cmd::STMT_RESET, &12345u32.to_le_bytes())
        .await
        .unwrap();
    assert_eq!(resp.error().unwrap().code, 1243);

    let mut direct = pair.direct().await;
    let rows: Vec<(i64, String, Vec<u8>)> = direct
        .query("SELECT id, name, body FROM app.t ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (1, "first".to_string(), b"hello long world".to_vec()),
            (2, "second".to_string(), b"inline".to_vec()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn com_stmt_bulk_execute_inserts_rows() {
    let pair = Pair::start().await;
    setup_table(&pair).await;
    let mut raw = pair.raw().await;
    assert_ne!(
        raw.greeting.capabilities & raw::caps::MARIADB_STMT_BULK_OPERATIONS,
        0,
        "server greeting offers MARIADB_CLIENT_STMT_BULK_OPERATIONS"
    );
    assert_ne!(
        raw.capabilities & raw::caps::MARIADB_STMT_BULK_OPERATIONS,
        0,
        "negotiated"
    );
    raw.command(cmd::INIT_DB, b"app").await.unwrap();
    let (id, _, nparams) = raw
        .prepare("INSERT INTO t (id, name) VALUES (?, ?)")
        .await
        .unwrap();
    assert_eq!(nparams, 2);

    // stmt id, flags = SEND_TYPES_TO_SERVER (128), types, then per row an
    // indicator byte (0 = value follows, 1 = NULL) before each value.
    let mut payload = id.to_le_bytes().to_vec();
    payload.extend_from_slice(&128u16.to_le_bytes());
    payload.extend_from_slice(&[types::LONG, 0, types::VAR_STRING, 0]);
    for (i, name) in [(10i32, Some("ten")), (11, None), (12, Some("twelve"))] {
        payload.push(0);
        payload.extend_from_slice(&i.to_le_bytes());
        match name {
            Some(n) => {
                payload.push(0);
                raw::put_lenenc_bytes(&mut payload, n.as_bytes());
            }
            None => payload.push(1),
        }
    }
    let resp = raw.command(cmd::STMT_BULK_EXECUTE, &payload).await.unwrap();
    assert!(resp.error().is_none(), "{:?}", resp.error());
    let ok = raw::parse_ok(&resp.packets[0].payload).unwrap();
    assert_eq!(ok.affected_rows, 3);

    let mut direct = pair.direct().await;
    let rows: Vec<(i64, Option<String>)> = direct
        .query("SELECT id, name FROM app.t ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (10, Some("ten".to_string())),
            (11, None),
            (12, Some("twelve".to_string()))
        ]
    );
}

fn write_infile(rows: usize) -> std::path::PathBuf {
    let path = e2e_dir().join(format!("{}.tsv", unique_name("tmp")));
    let mut text = String::new();
    for i in 1..=rows {
        text.push_str(&format!("{i}\tname {i}\n"));
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_data_local_infile_cli_and_mysql_async() {
    let pair = Pair::start().await;
    setup_table(&pair).await;

    let file = write_infile(500);
    let out = pair
        .cli()
        .arg("--local-infile=1")
        .run(&format!(
            "LOAD DATA LOCAL INFILE '{}' INTO TABLE app.t (id, name)",
            file.display()
        ))
        .await;
    out.assert_success();

    let file2 = write_infile(1200);
    let opts = pair
        .sluice
        .root_opts()
        .db_name(Some("app"))
        .local_infile_handler(Some(WhiteListFsHandler::new([file2.clone()])));
    let mut conn = Conn::new(opts).await.unwrap();
    conn.query_drop("DELETE FROM t").await.unwrap();
    conn.query_drop(format!(
        "LOAD DATA LOCAL INFILE '{}' INTO TABLE t (id, name)",
        file2.display()
    ))
    .await
    .unwrap();
    assert_eq!(conn.affected_rows(), 1200);
    let (n, last): (i64, String) = conn
        .query_first("SELECT COUNT(*), MAX(CONCAT(LPAD(id, 5, '0'), name)) FROM t")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 1200);
    assert_eq!(last, "01200name 1200");

    // A file the CLI cannot read: it answers the server's request with an
    // empty packet, the statement fails, nothing hangs, nothing is loaded.
    let out = pair
        .cli()
        .arg("--local-infile=1")
        .run("LOAD DATA LOCAL INFILE '/nonexistent/file.tsv' INTO TABLE app.t (id, name); SELECT 1")
        .await;
    assert!(!out.status.success(), "{out:?}");
    conn.ping().await.unwrap();
    let n: i64 = conn
        .query_first("SELECT COUNT(*) FROM t")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 1200);

    let _ = std::fs::remove_file(file);
    let _ = std::fs::remove_file(file2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn value_over_16_mib_round_trips() {
    let pair = Pair::start().await;
    setup_table(&pair).await;
    let size = 20 * 1024 * 1024 + 7;
    let blob: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();

    let mut conn = Conn::new(pair.sluice.root_opts().db_name(Some("app")))
        .await
        .unwrap();
    // Binary protocol (mysql_async sends a >16 MiB parameter as long data).
    conn.exec_drop("INSERT INTO t (id, body) VALUES (?, ?)", (1, blob.clone()))
        .await
        .unwrap();
    // Text protocol: a 40 MiB hex literal, i.e. a multi-packet COM_QUERY.
    let mut sql = String::with_capacity(size * 2 + 64);
    sql.push_str("INSERT INTO t (id, body) VALUES (2, X'");
    for b in &blob {
        sql.push_str(&format!("{b:02x}"));
    }
    sql.push_str("')");
    conn.query_drop(sql).await.unwrap();

    let text: Vec<(i64, Vec<u8>)> = conn
        .query("SELECT id, body FROM t ORDER BY id")
        .await
        .unwrap();
    assert_eq!(text.len(), 2);
    for (id, body) in &text {
        assert_eq!(body.len(), blob.len(), "text row {id}");
        assert!(body == &blob, "text row {id} differs");
    }
    let binary: Vec<(i64, Vec<u8>)> = conn
        .exec("SELECT id, body FROM t WHERE id > ? ORDER BY id", (0,))
        .await
        .unwrap();
    assert_eq!(binary.len(), 2);
    for (id, body) in &binary {
        assert!(body == &blob, "binary row {id} differs");
    }
    let (len, md5): (i64, String) = conn
        .query_first("SELECT LENGTH(body), MD5(body) FROM t WHERE id = 1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(len as usize, size);
    let mut direct = pair.direct().await;
    let direct_md5: String = direct
        .query_first("SELECT MD5(body) FROM app.t WHERE id = 2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(md5, direct_md5);
}
