//! Write batching, exact results: every client of a batch gets the OK
//! packet it would have got alone (affected rows, insert id, warnings,
//! status flags), with ids right under session and server
//! `auto_increment_increment`/`auto_increment_offset`, under
//! `innodb_autoinc_lock_mode = 2`, for tables without an AUTO_INCREMENT
//! column and when some rows give their own id.

use std::collections::HashMap;
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use sluice_e2e::differential::{self, batching_sluice, Client, Scenario, Step};
use sluice_e2e::raw::{self, caps, RawConn, RawOpts};
use sluice_e2e::MariaDb;
use tokio::sync::Barrier;

const CLIENTS: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ok_packets_and_ids_equal_alone() {
    let db = MariaDb::start().await;
    let sluice = batching_sluice(&db).await;
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        // Step 1 mixes, in one shape, rows that give their own id and rows
        // that let the server generate it (NULL, 0, DEFAULT).
        let own_id = match i % 4 {
            // Below the table's counter, so an explicit id never moves it
            // and the alone run does not depend on the order of clients.
            0 => format!("{}", 1_000 + i),
            1 => "NULL".to_string(),
            2 => "0".to_string(),
            _ => "DEFAULT".to_string(),
        };
        clients.push(
            Client::root("app")
                .sql(format!("INSERT INTO t (tag, v) VALUES ('a{i}', {i})"))
                .sql(format!(
                    "INSERT INTO t (id, tag, v) VALUES ({own_id}, 'b{i}', {i})"
                ))
                .sql(format!("INSERT INTO n (tag, v) VALUES ('c{i}', {i})"))
                .sql(format!(
                    "INSERT INTO t VALUES (NULL, 'd{i}', {i}, 'no column list')"
                ))
                .sql(format!(
                    "insert  into t(tag,v) value ('e{i}', -{i}) /* other text, other key */"
                ))
                .sql(format!("INSERT INTO `app`.`t` (`tag`) VALUES ('f{i}')")),
        );
    }
    // Session auto_increment_increment / offset: their own batch key, and
    // ids that follow their own arithmetic.
    for j in 0..16 {
        clients.push(
            Client::root("app")
                .sql("SET SESSION auto_increment_increment = 5, auto_increment_offset = 3")
                .sql(format!("INSERT INTO s (tag) VALUES ('s{j}-1')"))
                .sql(format!("INSERT INTO s (tag) VALUES ('s{j}-2')"))
                .sql(format!("INSERT INTO s (id, tag) VALUES (NULL, 's{j}-3')"))
                .sql(format!("INSERT INTO n (tag, v) VALUES ('sn{j}', {j})")),
        );
    }
    let scenario = Scenario {
        databases: vec!["app".into()],
        setup: "CREATE DATABASE app; \
            CREATE TABLE app.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, \
              tag VARCHAR(40) NOT NULL UNIQUE, v INT, note VARCHAR(20)) ENGINE=InnoDB \
              AUTO_INCREMENT=1000000; \
            CREATE TABLE app.n (tag VARCHAR(40) PRIMARY KEY, v INT) ENGINE=InnoDB; \
            CREATE TABLE app.s (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(40) UNIQUE) \
              ENGINE=InnoDB AUTO_INCREMENT=10000000"
            .into(),
        clients,
        contents: vec![
            "SELECT tag, v, note, IF(id < 1000000, id, NULL) FROM app.t ORDER BY tag".into(),
            "SELECT COUNT(*) = COUNT(DISTINCT id) FROM app.t".into(),
            "SELECT tag, v FROM app.n ORDER BY tag".into(),
            "SELECT tag, MOD(id, 5) FROM app.s ORDER BY tag".into(),
        ],
        ids: Some(
            "SELECT id, CONCAT('t:', tag) FROM app.t \
             UNION ALL SELECT id, CONCAT('s:', tag) FROM app.s"
                .into(),
        ),
        warmup: vec![Client::root("app")
            .sql("INSERT INTO t (tag) VALUES ('warmup')")
            .sql("INSERT INTO n (tag) VALUES ('warmup')")
            .sql("INSERT INTO s (tag) VALUES ('warmup')")],
    };
    let result = differential::differential(&db, &sluice, &scenario).await;

    // The oracle itself: alone, each client was told its own rows' ids.
    for (i, outcomes) in result.alone.outcomes.iter().take(CLIENTS).enumerate() {
        let expect_row = |step: usize, tag: &str| match &outcomes[step] {
            differential::Outcome::Done {
                affected_rows: 1,
                insert_id,
                warnings: 0,
                ..
            } => assert_eq!(
                insert_id,
                &differential::IdValue::Row(format!("t:{tag}")),
                "client {i} step {step}"
            ),
            other => panic!("client {i} step {step}: {other:?}"),
        };
        expect_row(0, &format!("a{i}"));
        expect_row(1, &format!("b{i}"));
        expect_row(3, &format!("d{i}"));
        match &outcomes[2] {
            differential::Outcome::Done { insert_id, .. } => {
                assert_eq!(
                    insert_id,
                    &differential::IdValue::Raw(0),
                    "no AUTO_INCREMENT column"
                )
            }
            other => panic!("{other:?}"),
        }
    }
    // Every MOD(id, 5) is the offset.
    for row in &result.batched.contents[3] {
        assert_eq!(row[1].as_deref(), Some("3"), "{row:?}");
    }
    result.assert_batched(0.5);
    sluice.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_exact_with_interleaved_autoinc_and_server_increment() {
    let db = MariaDb::builder()
        .arg("--innodb-autoinc-lock-mode=2")
        .arg("--auto-increment-increment=7")
        .arg("--auto-increment-offset=4")
        .start()
        .await;
    let sluice = batching_sluice(&db).await;
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        // Two shapes into one table: two batches in flight at once take ids
        // from the same counter, interleaved under lock mode 2.
        let insert = |k: usize| {
            if i % 2 == 0 {
                format!("INSERT INTO t (tag, v) VALUES ('r{i}-{k}', {k})")
            } else {
                format!("INSERT INTO t (v, tag) VALUES ({k}, 'r{i}-{k}')")
            }
        };
        let mut client = Client::root("app");
        for k in 0..5 {
            client = client.sql(insert(k));
        }
        // Some rows give their own id (below the counter, so the alone run
        // does not depend on client order), the others let it generate.
        let id = if i % 3 == 0 {
            format!("{}", 100 + i)
        } else {
            "NULL".to_string()
        };
        client = client.sql(format!(
            "INSERT INTO t (id, tag, v) VALUES ({id}, 'x{i}', 0)"
        ));
        if i % 16 == 0 {
            // A negative id: Sluice cannot read it back as an id and runs
            // the batch's rows alone; results must still be exact.
            client = client.sql(format!(
                "INSERT INTO t (id, tag, v) VALUES (-{i}, 'y{i}', 0)"
            ));
        }
        clients.push(
            client
                .step(Step::text("SELECT LAST_INSERT_ID()").ids(&[0]))
                .sql(insert(9)),
        );
    }
    let scenario = Scenario {
        databases: vec!["app".into()],
        setup: "CREATE DATABASE app; \
            CREATE TABLE app.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, \
              tag VARCHAR(40) NOT NULL UNIQUE, v INT) ENGINE=InnoDB AUTO_INCREMENT=1000000"
            .into(),
        clients,
        contents: vec![
            "SELECT tag, v, IF(id < 1000000, id, MOD(id, 7)) FROM app.t ORDER BY tag".into(),
        ],
        ids: Some("SELECT id, tag FROM app.t".into()),
        warmup: vec![Client::root("app").sql("INSERT INTO t (tag) VALUES ('warmup')")],
    };
    let result = differential::differential(&db, &sluice, &scenario).await;
    for row in &result.batched.contents[0] {
        if row[0].as_deref().is_some_and(|t| t.starts_with('r')) {
            assert_eq!(row[2].as_deref(), Some("4"), "offset 4 of 7: {row:?}");
        }
    }
    result.assert_batched(0.5);
    sluice.assert_no_panic();
}

/// The parts of an OK packet payload: header and affected rows, the insert
/// id, and everything after it (status flags, warnings, info).
fn ok_parts(payload: &[u8]) -> (Vec<u8>, u64, Vec<u8>) {
    let mut rest = payload;
    assert_eq!(rest.first(), Some(&0x00), "not an OK packet: {payload:?}");
    rest = &rest[1..];
    let affected = raw::read_lenenc(&mut rest).unwrap();
    let id = raw::read_lenenc(&mut rest).unwrap();
    let mut head = vec![0x00];
    raw::put_lenenc(&mut head, affected);
    (head, id, rest.to_vec())
}

/// One raw client: capabilities, session setup and its INSERTs.
#[derive(Clone)]
struct RawClient {
    capabilities: u64,
    setup: Vec<String>,
    inserts: Vec<String>,
}

/// Wire bytes of every INSERT's response per client, and the id → tag map.
async fn raw_run(
    addr: std::net::SocketAddr,
    db: &MariaDb,
    clients: &[RawClient],
    concurrent: bool,
) -> (Vec<Vec<raw::Response>>, HashMap<u64, String>) {
    db.sql(
        "DROP DATABASE IF EXISTS app; CREATE DATABASE app; \
         CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(40) UNIQUE, \
           v VARCHAR(10)) ENGINE=InnoDB AUTO_INCREMENT=1000000",
    )
    .await;
    let barrier = Arc::new(Barrier::new(if concurrent { clients.len() } else { 1 }));
    let run_one = |client: RawClient, barrier: Arc<Barrier>| async move {
        let opts = RawOpts {
            capabilities: client.capabilities,
            database: Some("app".into()),
            ..Default::default()
        };
        let mut conn = RawConn::connect_with(addr, opts).await.unwrap();
        for sql in &client.setup {
            let r = conn.query(sql).await.unwrap();
            assert!(r.error().is_none(), "{sql}: {:?}", r.error());
        }
        let mut responses = Vec::new();
        for sql in &client.inserts {
            barrier.wait().await;
            responses.push(conn.query(sql).await.unwrap());
        }
        responses
    };
    let mut out = Vec::new();
    if concurrent {
        let tasks: Vec<_> = clients
            .iter()
            .map(|c| tokio::spawn(run_one(c.clone(), barrier.clone())))
            .collect();
        for t in tasks {
            out.push(t.await.unwrap());
        }
    } else {
        for c in clients {
            out.push(run_one(c.clone(), barrier.clone()).await);
        }
    }
    let mut conn = db.root_conn().await;
    let ids: Vec<(i64, String)> = conn.query("SELECT id, tag FROM app.t").await.unwrap();
    (
        out,
        ids.into_iter().map(|(id, tag)| (id as u64, tag)).collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_ok_packets_are_byte_identical_to_alone() {
    let db = MariaDb::start().await;
    let sluice = batching_sluice(&db).await;
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        // Old-style, session-tracking/deprecate-EOF, and minimal clients
        // (no multi-statements or multi-results, under which the batch's
        // settling IF statement must still run); some under
        // NO_BACKSLASH_ESCAPES, whose status flag every OK packet carries.
        let capabilities = match i % 3 {
            0 => caps::DEFAULT,
            1 => caps::DEFAULT | caps::SESSION_TRACK | caps::DEPRECATE_EOF,
            _ => {
                caps::DEFAULT
                    & !(caps::MULTI_STATEMENTS | caps::MULTI_RESULTS | caps::PS_MULTI_RESULTS)
            }
        };
        let setup = if i % 4 == 3 {
            vec!["SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')".to_string()]
        } else {
            Vec::new()
        };
        let inserts = (0..4)
            .map(|k| {
                if k == 3 && i % 8 == 0 {
                    format!(
                        "INSERT INTO t (id, tag, v) VALUES ({}, 'r{i}-{k}', 'x')",
                        100 + i
                    )
                } else {
                    format!("INSERT INTO t (tag, v) VALUES ('r{i}-{k}', 'x')")
                }
            })
            .collect();
        clients.push(RawClient {
            capabilities,
            setup,
            inserts,
        });
    }
    let before = differential::com_counters(&db).await;
    let (alone, alone_ids) = raw_run(db.addr(), &db, &clients, false).await;
    let middle = differential::com_counters(&db).await;
    let (batched, batched_ids) = raw_run(sluice.addr(), &db, &clients, true).await;
    let after = differential::com_counters(&db).await;

    for (i, (a, b)) in alone.iter().zip(&batched).enumerate() {
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            assert_eq!(x.packets.len(), 1, "client {i} insert {k}: {x:?}");
            assert_eq!(y.packets.len(), 1, "client {i} insert {k}: {y:?}");
            assert_eq!(x.packets[0].seq, y.packets[0].seq);
            let (x_head, x_id, x_tail) = ok_parts(&x.packets[0].payload);
            let (y_head, y_id, y_tail) = ok_parts(&y.packets[0].payload);
            assert_eq!(x_head, y_head, "client {i} insert {k}: affected rows");
            assert_eq!(
                x_tail, y_tail,
                "client {i} insert {k}: status, warnings and info bytes"
            );
            let tag = format!("r{i}-{k}");
            assert_eq!(
                alone_ids.get(&x_id),
                Some(&tag),
                "alone: client {i} insert {k}"
            );
            assert_eq!(
                batched_ids.get(&y_id),
                Some(&tag),
                "through Sluice client {i} insert {k} was told id {y_id}, not its row's"
            );
        }
    }
    if sluice.is_real("batched_ok_packets_are_byte_identical_to_alone") {
        let alone_inserts = differential::counter_delta(&before, &middle)["Com_insert"];
        let batched_inserts = differential::counter_delta(&middle, &after)
            .get("Com_insert")
            .copied()
            .unwrap_or(0);
        assert_eq!(alone_inserts, (CLIENTS * 4) as u64);
        assert!(
            batched_inserts * 2 <= alone_inserts,
            "expected batching: {batched_inserts} INSERT statements for {alone_inserts} rows"
        );
        // Every batch committed, whichever client led it.
        let rollbacks = differential::counter_delta(&middle, &after)
            .get("Com_rollback")
            .copied()
            .unwrap_or(0);
        assert_eq!(rollbacks, 0, "batches were rolled back");
    }
    sluice.assert_no_panic();
}
