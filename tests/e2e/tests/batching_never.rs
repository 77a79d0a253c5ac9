//! What write batching must leave alone: INSERTs inside a transaction or
//! with autocommit off, in sessions holding temporary tables, table locks
//! or having called a procedure, into non-transactional tables, views and
//! tables with triggers, and every INSERT form the classifier refuses.
//! Those run through Sluice exactly as before: MariaDB executes the same
//! statements as when each client runs alone, and every client gets the
//! same results.

use mysql_async::Value;
use sluice_e2e::differential::{self, batching_sluice, Client, Scenario, Step};
use sluice_e2e::MariaDb;

const CLIENTS: usize = 64;

const BASE: &str = "CREATE DATABASE app; \
    CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(40) NOT NULL UNIQUE) \
      ENGINE=InnoDB; \
    CREATE TABLE app.lk (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(40) NOT NULL UNIQUE) \
      ENGINE=InnoDB AUTO_INCREMENT=100000; \
    CREATE PROCEDURE app.noop() BEGIN DO 1; END";

fn base_scenario(clients: Vec<Client>) -> Scenario {
    Scenario {
        databases: vec!["app".into()],
        setup: BASE.into(),
        clients,
        contents: vec![
            "SELECT tag FROM app.t ORDER BY tag".into(),
            "SELECT tag FROM app.lk ORDER BY tag".into(),
        ],
        ids: Some("SELECT id, tag FROM app.t UNION ALL SELECT id, tag FROM app.lk".into()),
        warmup: vec![Client::root("app")
            .sql("INSERT INTO t (tag) VALUES ('warmup')")
            .sql("INSERT INTO lk (tag) VALUES ('warmup')")],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_and_session_state_are_never_batched() {
    let db = MariaDb::start().await;
    let sluice = batching_sluice(&db).await;

    // Inside BEGIN … COMMIT/ROLLBACK, and with autocommit off.
    let clients = (0..CLIENTS)
        .map(|i| {
            let end = if i % 4 < 2 { "ROLLBACK" } else { "COMMIT" };
            if i % 2 == 0 {
                Client::root("app")
                    .sql("BEGIN")
                    .sql(format!("INSERT INTO t (tag) VALUES ('a{i}-1')"))
                    .step(Step::text("SELECT LAST_INSERT_ID()").ids(&[0]))
                    .sql(format!("INSERT INTO t (tag) VALUES ('a{i}-2')"))
                    .step(Step::labels(format!(
                        "SELECT id, tag FROM t WHERE tag LIKE 'a{i}-%'"
                    )))
                    .sql(end)
                    .sql("START TRANSACTION")
                    .sql(format!("INSERT INTO t (tag) VALUES ('a{i}-3')"))
                    .sql("COMMIT")
            } else {
                Client::root("app")
                    .sql("SET autocommit = 0")
                    .sql(format!("INSERT INTO t (tag) VALUES ('b{i}-1')"))
                    .sql(format!("INSERT INTO t (tag) VALUES ('b{i}-2')"))
                    .step(Step::text("SELECT LAST_INSERT_ID(), ROW_COUNT()").ids(&[0]))
                    .step(Step::labels(format!(
                        "SELECT id, tag FROM t WHERE tag LIKE 'b{i}-%'"
                    )))
                    .sql(end)
                    .sql(format!("INSERT INTO t (tag) VALUES ('b{i}-3')"))
                    .step(Step::labels(format!(
                        "SELECT id, tag FROM t WHERE tag = 'b{i}-3'"
                    )))
                    .sql("ROLLBACK")
            }
        })
        .collect();
    let tx = differential::differential(&db, &sluice, &base_scenario(clients)).await;
    tx.assert_not_batched();

    // Temporary tables, LOCK TABLES and CALL taint the session.
    let clients = (0..CLIENTS)
        .map(|i| match i % 4 {
            // A temporary table that hides the base table.
            0 => Client::root("app")
                .sql(
                    "CREATE TEMPORARY TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, \
                     tag VARCHAR(40)) ENGINE=InnoDB AUTO_INCREMENT=1000000",
                )
                .sql(format!("INSERT INTO t (tag) VALUES ('hidden{i}')"))
                .sql("SELECT id, tag FROM t")
                .sql("DROP TEMPORARY TABLE t")
                .sql(format!("INSERT INTO t (tag) VALUES ('c{i}-1')"))
                .sql(format!("INSERT INTO t (tag) VALUES ('c{i}-2')")),
            // An unrelated temporary table.
            1 => Client::root("app")
                .sql("CREATE TEMPORARY TABLE scratch (x INT)")
                .sql(format!("INSERT INTO t (tag) VALUES ('d{i}-1')"))
                .sql("SELECT 1")
                .sql(format!("INSERT INTO t (tag) VALUES ('d{i}-2')"))
                .sql(format!("INSERT INTO t (tag) VALUES ('d{i}-3')")),
            // LOCK TABLES (read locks only: all of these clients hold one at
            // the same time) and UNLOCK TABLES.
            2 => Client::root("app")
                .sql("LOCK TABLES lk READ")
                .sql(format!("INSERT INTO lk (tag) VALUES ('e{i}-1')"))
                .sql(format!("INSERT INTO t (tag) VALUES ('e{i}-2')"))
                .sql("UNLOCK TABLES")
                .sql(format!("INSERT INTO lk (tag) VALUES ('e{i}-3')"))
                .sql(format!("INSERT INTO lk (tag) VALUES ('e{i}-4')")),
            // A stored procedure was called.
            _ => Client::root("app")
                .sql("CALL noop()")
                .sql(format!("INSERT INTO t (tag) VALUES ('f{i}-1')"))
                .sql(format!("INSERT INTO t (tag) VALUES ('f{i}-2')"))
                .step(Step::text("SELECT LAST_INSERT_ID()").ids(&[0])),
        })
        .collect();
    let tainted = differential::differential(&db, &sluice, &base_scenario(clients)).await;
    tainted.assert_not_batched();
    let errors: Vec<u16> = tainted
        .alone
        .outcomes
        .iter()
        .flatten()
        .filter_map(differential::Outcome::error_code)
        .collect();
    assert_eq!(errors.len(), CLIENTS / 2, "{errors:?}");
    assert!(
        errors.contains(&1099) && errors.contains(&1100),
        "{errors:?}"
    );

    // COM_RESET_CONNECTION ends the taint: batched again.
    let clients = (0..CLIENTS)
        .map(|i| {
            Client::root("app")
                .sql("CREATE TEMPORARY TABLE scratch (x INT)")
                .sql(format!("INSERT INTO t (tag) VALUES ('g{i}-1')"))
                .step(Step::reset())
                .sql(format!("INSERT INTO t (tag) VALUES ('g{i}-2')"))
                .sql(format!("INSERT INTO t (tag) VALUES ('g{i}-3')"))
                .step(Step::text("SELECT LAST_INSERT_ID()").ids(&[0]))
        })
        .collect();
    let reset = differential::differential(&db, &sluice, &base_scenario(clients)).await;
    reset.assert_batches_committed(2);
    sluice.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsuitable_tables_and_insert_forms_are_never_batched() {
    let db = MariaDb::start().await;
    let sluice = batching_sluice(&db).await;

    // Non-transactional engines, a view, a table with a trigger.
    let clients = (0..CLIENTS)
        .map(|i| {
            Client::root("app")
                .sql(format!("INSERT INTO m (tag) VALUES ('m{i}')"))
                .sql(format!("INSERT INTO a (tag) VALUES ('a{i}')"))
                .sql(format!("INSERT INTO v (tag) VALUES ('v{i}')"))
                .sql(format!("INSERT INTO tr (tag) VALUES ('tr{i}')"))
                .sql(format!(
                    "SELECT COUNT(*) FROM trlog WHERE tag = 'tr{i}' AND conn = CONNECTION_ID()"
                ))
                .step(Step::text("SELECT LAST_INSERT_ID()").ids(&[0]))
        })
        .collect();
    let tables = Scenario {
        databases: vec!["app".into()],
        setup: "CREATE DATABASE app; \
            CREATE TABLE app.m (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(40)) ENGINE=MyISAM; \
            CREATE TABLE app.a (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(40)) ENGINE=Aria \
              AUTO_INCREMENT=100000; \
            CREATE TABLE app.base (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(40)) \
              ENGINE=InnoDB AUTO_INCREMENT=200000; \
            CREATE VIEW app.v AS SELECT id, tag FROM app.base; \
            CREATE TABLE app.tr (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(40)) \
              ENGINE=InnoDB AUTO_INCREMENT=300000; \
            CREATE TABLE app.trlog (tag VARCHAR(40), conn BIGINT) ENGINE=InnoDB; \
            CREATE TRIGGER app.tr_log AFTER INSERT ON app.tr FOR EACH ROW \
              INSERT INTO app.trlog VALUES (NEW.tag, CONNECTION_ID())"
            .into(),
        clients,
        contents: vec![
            "SELECT tag FROM app.m ORDER BY tag".into(),
            "SELECT tag FROM app.a ORDER BY tag".into(),
            "SELECT tag FROM app.base ORDER BY tag".into(),
            "SELECT tag FROM app.tr ORDER BY tag".into(),
            "SELECT tag FROM app.trlog ORDER BY tag".into(),
        ],
        ids: Some(
            "SELECT id, tag FROM app.m UNION ALL SELECT id, tag FROM app.a UNION ALL \
             SELECT id, tag FROM app.base UNION ALL SELECT id, tag FROM app.tr"
                .into(),
        ),
        warmup: vec![Client::root("app")
            .sql("INSERT INTO m (tag) VALUES ('w')")
            .sql("INSERT INTO a (tag) VALUES ('w')")
            .sql("INSERT INTO v (tag) VALUES ('w')")
            .sql("INSERT INTO tr (tag) VALUES ('w')")],
    };
    let result = differential::differential(&db, &sluice, &tables).await;
    result.assert_not_batched();

    // Every INSERT form the classifier marks not batchable.
    let clients = (0..CLIENTS)
        .map(|i| {
            let forms = [
                // REPLACE and ON DUPLICATE KEY UPDATE are batched now
                // (batching_upserts.rs), but not an update clause that
                // calls a stored function.
                format!(
                    "INSERT INTO f (tag, v) VALUES ('{i}-odku', 1) ON DUPLICATE KEY UPDATE v = plus1(v)"
                ),
                format!("INSERT INTO f (tag, v) SELECT '{i}-sel', 5"),
                // Several rows are batched now too (batching_several_rows.rs),
                // but not rows of different lengths.
                format!("INSERT INTO f (tag, v) VALUES ('{i}-m1', 1), ('{i}-m2')"),
                format!("INSERT INTO f SET tag = '{i}-set', v = 1"),
                format!("INSERT INTO f (tag, v) VALUES ('{i}-lii', LAST_INSERT_ID())"),
                format!("SET @x = {i}"),
                format!("INSERT INTO f (tag, v) VALUES ('{i}-var', @x)"),
                format!("INSERT INTO f (tag, v) VALUES ('{i}-sys', @@auto_increment_increment)"),
                format!("INSERT INTO f (tag, v) VALUES ('{i}-sub', (SELECT 41 + 1))"),
                format!("INSERT HIGH_PRIORITY INTO f (tag, v) VALUES ('{i}-hp', 1)"),
                format!("INSERT LOW_PRIORITY INTO f (tag, v) VALUES ('{i}-lp', 1)"),
                format!("INSERT INTO pt PARTITION (p0) (tag, v) VALUES ('{i}-part', 1)"),
                format!("SET STATEMENT sql_mode = '' FOR INSERT INTO f (tag, v) VALUES ('{i}-ss', 1)"),
                format!("INSERT INTO f (tag, v) VALUES ('{i}-cid', CONNECTION_ID() > 0)"),
                format!("INSERT INTO f (tag, v) VALUES ('{i}-usr', USER() <> '')"),
                format!("INSERT INTO f (tag, v) VALUES ('{i}-seq', NEXT VALUE FOR s)"),
                format!("INSERT INTO f (tag, v) VALUES ('{i}-fn', plus1(1))"),
                format!("INSERT INTO f (tag, v) VALUES ('{i}-case', CASE WHEN 1 THEN 2 END)"),
                format!(
                    "INSERT INTO f (tag, v) VALUES ('{i}-ms1', 1); \
                     INSERT INTO f (tag, v) VALUES ('{i}-ms2', 1)"
                ),
                format!("/* batch:0 */ INSERT INTO f (tag, v) VALUES ('{i}-h0', 1)"),
                format!("INSERT INTO f (tag, v) VALUES ('{i}-ret', 1) RETURNING id, tag"),
            ];
            let mut client = Client::root("app");
            for sql in forms {
                let returning = sql.contains("RETURNING");
                let step = Step::text(sql);
                client = client.step(if returning { step.ids(&[0]) } else { step });
                client = client.step(Step::text("SELECT LAST_INSERT_ID(), ROW_COUNT()").ids(&[0]));
            }
            client
                .sql(format!(
                    "SELECT v = PREVIOUS VALUE FOR s FROM f WHERE tag = '{i}-seq'"
                ))
                .step(Step::prepared(
                    "SELECT v FROM f WHERE tag = ?",
                    vec![Value::from(format!("{i}-var"))],
                ))
        })
        .collect();
    let forms = Scenario {
        databases: vec!["app".into()],
        setup: "CREATE DATABASE app; \
            CREATE TABLE app.f (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(40) NOT NULL UNIQUE, \
              v BIGINT) ENGINE=InnoDB; \
            CREATE TABLE app.pt (id INT AUTO_INCREMENT, tag VARCHAR(40) NOT NULL, v INT, \
              PRIMARY KEY (id, v)) ENGINE=InnoDB AUTO_INCREMENT=1000000 \
              PARTITION BY RANGE (v) (PARTITION p0 VALUES LESS THAN (100), \
                PARTITION p1 VALUES LESS THAN MAXVALUE); \
            CREATE SEQUENCE app.s; \
            CREATE FUNCTION app.plus1(x INT) RETURNS INT DETERMINISTIC RETURN x + 1"
            .into(),
        clients,
        contents: vec![
            // A row filled with LAST_INSERT_ID() is compared by the row that
            // id names; sequence values depend on arrival order.
            "SELECT f.tag, CASE WHEN f.tag LIKE '%-lii' THEN g.tag \
               WHEN f.tag LIKE '%-seq' THEN NULL ELSE f.v END \
             FROM app.f f LEFT JOIN app.f g ON g.id = f.v AND f.tag LIKE '%-lii' ORDER BY f.tag"
                .into(),
            "SELECT tag, v FROM app.pt ORDER BY tag".into(),
        ],
        ids: Some("SELECT id, tag FROM app.f UNION ALL SELECT id, tag FROM app.pt".into()),
        warmup: vec![Client::root("app")
            .sql("INSERT INTO f (tag) VALUES ('w')")
            .sql("INSERT INTO pt (tag, v) VALUES ('w', 1)")],
    };
    let result = differential::differential(&db, &sluice, &forms).await;
    result.assert_not_batched();
    sluice.assert_no_panic();
}
