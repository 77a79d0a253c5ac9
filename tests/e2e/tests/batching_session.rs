//! Write batching and the session: after a batched INSERT, a member's own
//! `LAST_INSERT_ID()`, `ROW_COUNT()` and `SHOW WARNINGS` answer as if the
//! INSERT had run alone on its connection; sessions that differ in
//! database, user, sql_mode, time zone, character set or other settings
//! never share a batch; a client that leaves while its row is queued
//! harms nobody.

use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};
use sluice_e2e::differential::{self, batching_sluice, Client, Scenario, Step};
use sluice_e2e::raw::{cmd, RawConn, RawOpts};
use sluice_e2e::{MariaDb, Sluice};
use tokio::sync::Barrier;

const CLIENTS: usize = 64;

const PARENT_CHILD: &str = "CREATE DATABASE app; \
    CREATE TABLE app.parent (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(40) NOT NULL UNIQUE, \
      note VARCHAR(8)) ENGINE=InnoDB AUTO_INCREMENT=1000; \
    CREATE TABLE app.child (id INT AUTO_INCREMENT PRIMARY KEY, parent_id INT NOT NULL, \
      tag VARCHAR(40) NOT NULL UNIQUE) ENGINE=InnoDB AUTO_INCREMENT=5000000; \
    INSERT INTO app.parent (id, tag) VALUES (1, 'existing')";

const PARENT_CHILD_IDS: &str = "SELECT id, CONCAT('p:', tag) FROM app.parent \
    UNION ALL SELECT id, CONCAT('c:', tag) FROM app.child";

fn parent_child_contents() -> Vec<String> {
    vec![
        "SELECT tag, note, IF(id < 1000, id, NULL) FROM app.parent ORDER BY tag".into(),
        "SELECT c.tag, p.tag FROM app.child c LEFT JOIN app.parent p ON p.id = c.parent_id \
         ORDER BY c.tag"
            .into(),
    ]
}

fn parent_child_warmup() -> Vec<Client> {
    vec![Client::root("app").sql("INSERT INTO parent (tag) VALUES ('warmup')")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_insert_id_row_count_and_warnings_after_a_batched_insert() {
    let db = MariaDb::start().await;
    let sluice = batching_sluice(&db).await;
    let clients = (0..CLIENTS)
        .map(|i| {
            Client::root("app")
                .sql(format!("INSERT INTO parent (tag) VALUES ('p{i}-1')"))
                .step(Step::text("SELECT LAST_INSERT_ID()").ids(&[0]))
                .sql("SELECT ROW_COUNT()")
                .sql("SHOW WARNINGS")
                .sql("SELECT @@warning_count, @@error_count")
                // The case that matters most: the child row must point at
                // this client's own parent row.
                .sql(format!(
                    "INSERT INTO child (parent_id, tag) VALUES (LAST_INSERT_ID(), 'c{i}-1')"
                ))
                // An explicit id does not change LAST_INSERT_ID().
                .sql(format!(
                    "INSERT INTO parent (id, tag) VALUES ({}, 'p{i}-2')",
                    100 + i
                ))
                .step(Step::text("SELECT LAST_INSERT_ID(), ROW_COUNT(), @@warning_count").ids(&[0]))
                .sql(format!("INSERT INTO parent (tag) VALUES ('p{i}-3')"))
                // The statement after a batched INSERT has its own OK packet.
                .sql(format!("UPDATE parent SET note = 'u' WHERE tag = 'p{i}-3'"))
                .step(Step::text("SELECT LAST_INSERT_ID(), ROW_COUNT()").ids(&[0]))
                // Several batched INSERTs in a row, then a prepared read.
                .sql(format!("INSERT INTO parent (tag) VALUES ('p{i}-4')"))
                .sql(format!("INSERT INTO parent (tag) VALUES ('p{i}-5')"))
                .step(Step::prepared("SELECT LAST_INSERT_ID(), ROW_COUNT()", Vec::new()).ids(&[0]))
                .sql(format!("INSERT INTO parent (tag) VALUES ('p{i}-6')"))
                .sql(format!(
                    "INSERT INTO child (parent_id, tag) SELECT LAST_INSERT_ID(), 'c{i}-2'"
                ))
                .step(Step::text("SELECT LAST_INSERT_ID()").ids(&[0]))
                // A prepared INSERT after a batched one (prepared INSERTs
                // run unbatched).
                .sql(format!("INSERT INTO parent (tag) VALUES ('p{i}-7')"))
                .step(Step::prepared(
                    "INSERT INTO child (parent_id, tag) VALUES (LAST_INSERT_ID(), ?)",
                    vec![Value::from(format!("c{i}-3"))],
                ))
                // COM_RESET_CONNECTION forgets the session's last id.
                .sql(format!("INSERT INTO parent (tag) VALUES ('p{i}-8')"))
                .step(Step::reset())
                .sql("SELECT LAST_INSERT_ID(), ROW_COUNT()")
                .sql(format!("INSERT INTO parent (tag) VALUES ('p{i}-9')"))
                .step(Step::text("SELECT LAST_INSERT_ID()").ids(&[0]))
                // A warning on the member's own connection, which the
                // batched INSERT would have cleared alone.
                .sql("SELECT CAST('x' AS SIGNED)")
                .sql(format!("INSERT INTO parent (tag) VALUES ('p{i}-10')"))
                .sql("SHOW WARNINGS")
                .sql("SELECT @@warning_count")
        })
        .collect();
    let scenario = Scenario {
        databases: vec!["app".into()],
        setup: PARENT_CHILD.into(),
        clients,
        contents: parent_child_contents(),
        ids: Some(PARENT_CHILD_IDS.into()),
        warmup: parent_child_warmup(),
    };
    let result = differential::differential(&db, &sluice, &scenario).await;
    // Every child row points at its client's parent row.
    for row in &result.batched.contents[1] {
        let child = row[0].as_deref().unwrap();
        let parent = row[1].as_deref().unwrap_or("<none>");
        let (client, n) = child[1..].split_once('-').unwrap();
        let expected = match n {
            "1" => format!("p{client}-1"),
            "2" => format!("p{client}-6"),
            _ => format!("p{client}-7"),
        };
        assert_eq!(parent, expected, "child {child}");
    }
    result.assert_batched(0.5);
    sluice.assert_no_panic();
}

/// A session group: a name, how it logs in, how it sets itself up, and
/// the `s` value of its row in round 1 (bytes: é is UTF-8 for the others
/// and latin1 for the latin1 group).
struct Group {
    name: &'static str,
    client: Client,
    setup: Vec<Step>,
    special: Vec<u8>,
}

fn group(name: &'static str, client: Client, setup: &[&str], special: &[u8]) -> Group {
    Group {
        name,
        client,
        setup: setup.iter().map(|s| Step::text(*s)).collect(),
        special: special.to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_that_differ_never_share_a_batch() {
    let db = MariaDb::start().await;
    let sluice = batching_sluice(&db).await;
    let groups = vec![
        group("base", Client::root("app1"), &[], b"'\xc3\xa9'"),
        group("db2", Client::root("app2"), &[], b"'\xc3\xa9'"),
        group(
            "writer",
            Client::root("app1").user("writer", "w-pw"),
            &[],
            b"'w'",
        ),
        group(
            "reader",
            Client::root("app1").user("reader", "r-pw"),
            &[],
            b"'r'",
        ),
        group(
            "tzeast",
            Client::root("app1"),
            &["SET time_zone = '+05:30'"],
            b"'e'",
        ),
        group(
            "tzwest",
            Client::root("app1"),
            &["SET time_zone = '-08:00'"],
            b"'w'",
        ),
        group(
            "loose",
            Client::root("app1"),
            &["SET sql_mode = ''"],
            b"'much too long'",
        ),
        group(
            "strict",
            Client::root("app1"),
            &["SET sql_mode = 'STRICT_ALL_TABLES'"],
            b"'much too long'",
        ),
        group(
            "nulls",
            Client::root("app1"),
            &["SET sql_mode = 'STRICT_ALL_TABLES,EMPTY_STRING_IS_NULL'"],
            b"''",
        ),
        group(
            "latin1",
            Client::root("app1"),
            &["SET NAMES latin1"],
            b"'\xe9'",
        ),
        group(
            "german",
            Client::root("app1"),
            &["SET lc_time_names = 'de_DE'"],
            b"'de'",
        ),
        group(
            "pinned",
            Client::root("app1"),
            &["SET timestamp = 1000000000"],
            b"'pin'",
        ),
    ];
    let mut clients = Vec::new();
    for g in &groups {
        for i in 0..8 {
            let mut client = g.client.clone();
            client.steps.extend(g.setup.iter().cloned());
            for k in 0..3 {
                let mut sql = format!(
                    "INSERT INTO t (tag, s, ts, dt, utc, fu, dn) VALUES ('{}{i}-{k}', ",
                    g.name
                )
                .into_bytes();
                if k == 1 {
                    sql.extend_from_slice(&g.special);
                } else {
                    sql.extend_from_slice(b"'x'");
                }
                sql.extend_from_slice(
                    b", '2024-01-01 12:00:00', NOW(), UTC_TIMESTAMP(), FROM_UNIXTIME(86400), \
                      DATE_FORMAT('2024-01-01', '%W'))",
                );
                client = client.step(Step::bytes(sql));
            }
            clients.push(client);
        }
    }
    // NO_AUTO_VALUE_ON_ZERO: 0 is an id for these sessions, "generate" for
    // the others.
    for i in 0..8 {
        let mut zero =
            Client::root("app1").sql("SET sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO')");
        let mut plain = Client::root("app1").sql("SET sql_mode = @@sql_mode");
        for k in 0..3 {
            let id = if i == 0 && k == 1 { "0" } else { "NULL" };
            zero = zero.sql(format!(
                "INSERT INTO z (id, tag) VALUES ({id}, 'zero{i}-{k}')"
            ));
            plain = plain.sql(format!(
                "INSERT INTO z (id, tag) VALUES (0, 'plain{i}-{k}')"
            ));
        }
        clients.push(zero);
        clients.push(plain);
    }
    let scenario = Scenario {
        databases: vec!["app1".into(), "app2".into()],
        setup: "CREATE DATABASE app1; CREATE DATABASE app2; \
            CREATE TABLE app1.t (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(40) NOT NULL UNIQUE, \
              s VARCHAR(8), ts TIMESTAMP NULL, dt DATETIME, utc DATETIME, fu DATETIME, \
              dn VARCHAR(20)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4; \
            CREATE TABLE app2.t LIKE app1.t; ALTER TABLE app2.t AUTO_INCREMENT = 100000; \
            CREATE TABLE app1.z (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(40) UNIQUE) \
              ENGINE=InnoDB AUTO_INCREMENT=50000; \
            CREATE USER IF NOT EXISTS writer@'%' IDENTIFIED BY 'w-pw'; \
            GRANT SELECT, INSERT ON app1.* TO writer@'%'; \
            CREATE USER IF NOT EXISTS reader@'%' IDENTIFIED BY 'r-pw'; \
            GRANT SELECT ON app1.* TO reader@'%'"
            .into(),
        clients,
        contents: vec![
            "SET time_zone = '+00:00'".into(),
            "SELECT tag, s, HEX(s), ts, TIMESTAMPDIFF(MINUTE, utc, dt), fu, dn, \
             IF(tag LIKE 'pinned%', dt, NULL) FROM app1.t ORDER BY tag"
                .into(),
            "SELECT tag, s, ts, TIMESTAMPDIFF(MINUTE, utc, dt), fu, dn FROM app2.t ORDER BY tag"
                .into(),
            "SELECT tag, IF(id = 0, 'zero', 'generated') FROM app1.z ORDER BY tag".into(),
        ],
        ids: Some(
            "SELECT id, CONCAT('1:', tag) FROM app1.t UNION ALL \
             SELECT id, CONCAT('2:', tag) FROM app2.t UNION ALL \
             SELECT id, CONCAT('z:', tag) FROM app1.z"
                .into(),
        ),
        warmup: vec![
            Client::root("app1")
                .sql("INSERT INTO t (tag) VALUES ('warmup')")
                .sql("INSERT INTO z (tag) VALUES ('warmup')"),
            Client::root("app2").sql("INSERT INTO t (tag) VALUES ('warmup')"),
            Client::root("app1").user("writer", "w-pw").sql("INSERT INTO t (tag) VALUES ('warmup2')"),
            Client::root("app1").user("reader", "r-pw").sql("INSERT INTO t (tag) VALUES ('warmup3')"),
        ],
    };
    let result = differential::differential(&db, &sluice, &scenario).await;

    // The scenario is sensitive: each group's rows really differ.
    let rows = &result.batched.contents[1];
    let row = |tag: &str| {
        rows.iter()
            .find(|r| r[0].as_deref() == Some(tag))
            .unwrap_or_else(|| panic!("no row {tag}"))
            .clone()
    };
    let cell = |tag: &str, col: usize| row(tag)[col].clone();
    assert_eq!(cell("base0-1", 1).as_deref(), Some("é"));
    assert_eq!(
        cell("latin10-1", 2).as_deref(),
        Some("C3A9"),
        "latin1 é stored as é"
    );
    assert_eq!(
        cell("loose0-1", 1).as_deref(),
        Some("much too"),
        "truncated"
    );
    assert!(
        !rows.iter().any(|r| r[0].as_deref() == Some("strict0-1")),
        "refused"
    );
    assert_eq!(cell("nulls0-1", 1), None, "'' is NULL");
    assert_eq!(cell("german0-0", 6).as_deref(), Some("Montag"));
    assert_eq!(cell("base0-0", 6).as_deref(), Some("Monday"));
    assert_eq!(cell("tzeast0-0", 4).as_deref(), Some("330"));
    assert_eq!(cell("tzwest0-0", 4).as_deref(), Some("-480"));
    assert_eq!(cell("tzeast0-0", 3).as_deref(), Some("2024-01-01 06:30:00"));
    assert_eq!(cell("tzwest0-0", 3).as_deref(), Some("2024-01-01 20:00:00"));
    assert_eq!(cell("tzeast0-0", 5).as_deref(), Some("1970-01-02 05:30:00"));
    assert_eq!(cell("pinned0-0", 7), cell("pinned7-2", 7), "pinned NOW()");
    assert!(cell("pinned0-0", 7).unwrap().starts_with("2001-09-"));
    let zero = &result.batched.contents[3];
    assert!(zero.contains(&vec![Some("zero0-1".into()), Some("zero".into())]));
    assert!(zero.contains(&vec![Some("plain0-1".into()), Some("generated".into())]));
    result.assert_batches_committed(12);
    sluice.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_while_its_row_is_queued_harms_nobody() {
    const STAYING: usize = 48;
    const LEAVING: usize = 16;
    const ROUNDS: usize = 3;
    let db = MariaDb::start().await;
    // A longer delay, so rows wait in the queue while their clients leave.
    let sluice = Sluice::builder(&db)
        .env("SLUICE_WRITEBATCH__MIN_DELAY_MS", "20")
        .env("SLUICE_WRITEBATCH__INITIAL_DELAY_MS", "20")
        .env("SLUICE_WRITEBATCH__MAX_DELAY_MS", "40")
        .start()
        .await;
    db.sql(
        "CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, \
         tag VARCHAR(40) NOT NULL UNIQUE) ENGINE=InnoDB",
    )
    .await;
    let mut warm = Conn::new(sluice.root_opts().db_name(Some("app")))
        .await
        .unwrap();
    warm.query_drop("INSERT INTO t (tag) VALUES ('warmup')")
        .await
        .unwrap();
    drop(warm);
    let baseline = db.client_connections().await;
    let before = differential::com_counters(&db).await;
    let barrier = Arc::new(Barrier::new(STAYING + LEAVING));
    let mut staying = Vec::new();
    for i in 0..STAYING {
        let opts = sluice.root_opts().db_name(Some("app"));
        let barrier = barrier.clone();
        staying.push(tokio::spawn(async move {
            let mut conn = Conn::new(opts).await.unwrap();
            let mut told = Vec::new();
            for k in 0..ROUNDS {
                barrier.wait().await;
                conn.query_drop(format!("INSERT INTO t (tag) VALUES ('s{i}-{k}')"))
                    .await
                    .unwrap();
                assert_eq!(conn.affected_rows(), 1);
                assert_eq!(conn.get_warnings(), 0);
                let id = conn.last_insert_id().unwrap();
                let last: u64 = conn
                    .query_first("SELECT LAST_INSERT_ID()")
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(last, id, "client s{i} round {k}");
                told.push((format!("s{i}-{k}"), id));
            }
            conn.disconnect().await.unwrap();
            told
        }));
    }
    let mut leaving = Vec::new();
    for i in 0..LEAVING {
        let addr = sluice.addr();
        let barrier = barrier.clone();
        leaving.push(tokio::spawn(async move {
            for k in 0..ROUNDS {
                let opts = RawOpts {
                    database: Some("app".into()),
                    ..Default::default()
                };
                let mut conn = RawConn::connect_with(addr, opts).await.unwrap();
                barrier.wait().await;
                let sql = format!("INSERT INTO t (tag) VALUES ('l{i}-{k}')");
                conn.send(cmd::QUERY, sql.as_bytes()).await.unwrap();
                match i % 3 {
                    // Gone at once, socket closed without COM_QUIT.
                    0 => drop(conn),
                    // Gone a moment later, while the row waits.
                    1 => {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        drop(conn);
                    }
                    // COM_QUIT right behind the INSERT, answer unread.
                    _ => conn.quit().await.unwrap(),
                }
            }
        }));
    }
    let mut told = Vec::new();
    for t in staying {
        told.extend(
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .expect("a staying client hangs")
                .expect("staying client"),
        );
    }
    for t in leaving {
        t.await.unwrap();
    }
    let after = differential::com_counters(&db).await;

    // Wait until Sluice has finished with the leavers' sessions.
    let settled = sluice_e2e::wait_until(Duration::from_secs(10), || async {
        db.client_connections().await <= baseline
    })
    .await;
    assert!(
        settled,
        "backend connections of departed clients were not closed"
    );

    let mut direct = db.root_conn().await;
    let rows: Vec<(u64, String)> = direct.query("SELECT id, tag FROM app.t").await.unwrap();
    let by_tag: std::collections::HashMap<String, u64> =
        rows.iter().map(|(id, tag)| (tag.clone(), *id)).collect();
    for (tag, id) in &told {
        assert_eq!(by_tag.get(tag), Some(id), "{tag} was told another row's id");
    }
    let left: Vec<&String> = rows
        .iter()
        .map(|(_, tag)| tag)
        .filter(|t| t.starts_with('l'))
        .collect();
    // Tags are unique, so no row was applied twice; a leaver's row may or
    // may not have been written.
    assert!(left.len() <= LEAVING * ROUNDS);
    assert_eq!(rows.len(), 1 + STAYING * ROUNDS + left.len());
    eprintln!(
        "{} of {} rows of departed clients were written",
        left.len(),
        LEAVING * ROUNDS
    );

    // Sluice still batches and answers.
    let mut conn = Conn::new(sluice.root_opts().db_name(Some("app")))
        .await
        .unwrap();
    conn.query_drop("INSERT INTO t (tag) VALUES ('after')")
        .await
        .unwrap();
    assert_eq!(by_tag.len() + 1, {
        let n: u64 = conn
            .query_first("SELECT COUNT(*) FROM t")
            .await
            .unwrap()
            .unwrap();
        n as usize
    });
    if sluice.is_real("a_client_that_leaves_while_its_row_is_queued_harms_nobody") {
        let delta = differential::counter_delta(&before, &after);
        assert!(
            delta.get("Com_commit").copied().unwrap_or(0) > 0,
            "no batch was committed: {delta:?}"
        );
    }
    sluice.assert_no_panic();
}
