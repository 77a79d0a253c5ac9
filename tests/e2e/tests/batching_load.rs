//! Write batching under load: 10 000 rows from 200 clients checked row by
//! row, and text-protocol and prepared-statement clients mixed.

use std::collections::HashSet;

use mysql_async::Value;
use sluice_e2e::differential::{self, batching_sluice, Client, IdValue, Outcome, Scenario, Step};
use sluice_e2e::MariaDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_rows_from_two_hundred_clients() {
    const CLIENTS: usize = 200;
    const ROWS: usize = 50;
    let db = MariaDb::start().await;
    let sluice = batching_sluice(&db).await;
    let clients = (0..CLIENTS)
        .map(|i| {
            let mut client = Client::root("app");
            for k in 0..ROWS {
                // Literals whose bytes must survive splicing: quotes,
                // backslashes, non-ASCII, NULL, hex, negative and decimal
                // numbers, a comment inside the tuple.
                let payload = match k % 5 {
                    0 => format!("'it''s \\'{i}\\' ü'"),
                    1 => "NULL".to_string(),
                    2 => format!("X'00FF{:02X}'", k),
                    3 => format!("'a,b),(c {i}' /* ) , ( */"),
                    _ => format!("CONCAT('x', {k})"),
                };
                client = client.sql(format!(
                    "INSERT INTO t (client, seq, tag, payload, amount) \
                     VALUES ({i}, {k}, 'c{i}-{k}', {payload}, -{k}.25)"
                ));
            }
            client.step(Step::text("SELECT LAST_INSERT_ID()").ids(&[0]))
        })
        .collect();
    let scenario = Scenario {
        databases: vec!["app".into()],
        setup: "CREATE DATABASE app; \
            CREATE TABLE app.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, client INT NOT NULL, \
              seq INT NOT NULL, tag VARCHAR(20) NOT NULL UNIQUE, payload VARBINARY(40), \
              amount DECIMAL(8,2)) ENGINE=InnoDB"
            .into(),
        clients,
        contents: vec![
            "SELECT tag, client, seq, HEX(payload), amount FROM app.t ORDER BY tag".into(),
            // Each client's rows got increasing ids, in the order it sent them.
            "SELECT client, COUNT(*), SUM(ordered) FROM (SELECT client, \
               id > LAG(id) OVER (PARTITION BY client ORDER BY seq) AS ordered \
               FROM app.t) x GROUP BY client ORDER BY client"
                .into(),
        ],
        ids: Some("SELECT id, tag FROM app.t".into()),
        warmup: vec![
            Client::root("app").sql("INSERT INTO t (client, seq, tag) VALUES (-1, 0, 'warmup')")
        ],
    };
    let result = differential::differential(&db, &sluice, &scenario).await;

    // Row by row: every client was told the id of the very row it sent.
    let mut seen = HashSet::new();
    for (i, outcomes) in result.batched.outcomes.iter().enumerate() {
        for (k, outcome) in outcomes.iter().take(ROWS).enumerate() {
            match outcome {
                Outcome::Done {
                    affected_rows: 1,
                    insert_id: IdValue::Row(tag),
                    warnings: 0,
                    ..
                } => {
                    assert_eq!(tag, &format!("c{i}-{k}"));
                    assert!(seen.insert(tag.clone()));
                }
                other => panic!("client {i} row {k}: {other:?}"),
            }
        }
    }
    assert_eq!(seen.len(), CLIENTS * ROWS);
    assert_eq!(result.batched.contents[0].len(), CLIENTS * ROWS);
    result.assert_batched(0.2);
    sluice.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_and_prepared_clients_mixed() {
    const CLIENTS: usize = 64;
    let db = MariaDb::start().await;
    let sluice = batching_sluice(&db).await;
    let clients = (0..CLIENTS)
        .map(|i| {
            let mut client = Client::root("app");
            for k in 0..6 {
                let tag = format!("m{i}-{k}");
                // Even clients use the text protocol, odd ones prepared
                // statements; every fourth client switches each round.
                let prepared = if i % 4 == 3 { k % 2 == 0 } else { i % 2 == 1 };
                let step = if prepared {
                    Step::prepared(
                        "INSERT INTO t (tag, n, s) VALUES (?, ?, ?)",
                        vec![
                            Value::from(tag),
                            Value::from(i as i64 * 1000 + k),
                            if k == 3 {
                                Value::NULL
                            } else {
                                Value::from(format!("p'{i}\\"))
                            },
                        ],
                    )
                } else {
                    let s = if k == 3 {
                        "NULL".to_string()
                    } else {
                        format!("'p''{i}\\\\'")
                    };
                    Step::text(format!(
                        "INSERT INTO t (tag, n, s) VALUES ('{tag}', {}, {s})",
                        i as i64 * 1000 + k
                    ))
                };
                client = client.step(step);
                if k == 4 {
                    client = client
                        .step(Step::prepared("SELECT LAST_INSERT_ID()", Vec::new()).ids(&[0]))
                        .step(Step::text("SELECT LAST_INSERT_ID(), ROW_COUNT()").ids(&[0]));
                }
            }
            client
        })
        .collect();
    let scenario = Scenario {
        databases: vec!["app".into()],
        setup: "CREATE DATABASE app; \
            CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(20) NOT NULL UNIQUE, \
              n BIGINT, s VARCHAR(20)) ENGINE=InnoDB"
            .into(),
        clients,
        contents: vec!["SELECT tag, n, s FROM app.t ORDER BY tag".into()],
        ids: Some("SELECT id, tag FROM app.t".into()),
        warmup: vec![Client::root("app").sql("INSERT INTO t (tag) VALUES ('warmup')")],
    };
    let result = differential::differential(&db, &sluice, &scenario).await;
    // The text-protocol rows were batched.
    result.assert_batches_committed(3);
    sluice.assert_no_panic();
}
