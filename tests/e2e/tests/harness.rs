//! Checks of the harness itself: private server, raw client, CLI helper.

use mysql_async::prelude::Queryable;
use sluice_e2e::cli::Cli;
use sluice_e2e::raw::{self, RawConn};
use sluice_e2e::{MariaDb, Sluice};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_server_starts_and_is_removed() {
    let db = MariaDb::builder()
        .arg("--auto-increment-increment=3")
        .start()
        .await;
    let dir = db.dir().to_path_buf();
    assert_ne!(db.port(), 3306, "never the system server");
    let mut conn = db.root_conn().await;
    let (inc, packet, conns): (u64, u64, u64) = conn
        .query_first("SELECT @@auto_increment_increment, @@max_allowed_packet, @@max_connections")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inc, 3);
    assert!(packet >= 64 * 1024 * 1024);
    assert!(conns > 200);
    let datadir: String = conn.query_first("SELECT @@datadir").await.unwrap().unwrap();
    assert!(datadir.starts_with(dir.to_str().unwrap()), "{datadir}");
    drop(conn);
    drop(db);
    assert!(!dir.exists(), "data dir removed on drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_client_and_cli_work_directly() {
    let db = MariaDb::start().await;
    let mut c = RawConn::connect(db.addr()).await.unwrap();
    let rs = c.query_rows("SELECT 1, 'x', NULL").await.unwrap();
    assert_eq!(rs.columns.len(), 3);
    let row = raw::text_row(&rs.rows[0], 3).unwrap();
    assert_eq!(row, vec![Some(b"1".to_vec()), Some(b"x".to_vec()), None]);
    let ping = c.command(raw::cmd::PING, &[]).await.unwrap();
    assert!(ping.packets[0].is_ok());
    c.quit().await.unwrap();

    let out = Cli::new(db.port()).arg("-N").run("SELECT 40+2").await;
    out.assert_success();
    assert_eq!(out.stdout.trim(), "42");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sluice_handle_relays_select() {
    let db = MariaDb::start().await;
    let sluice = Sluice::start(&db).await;
    let mut conn = sluice.root_conn().await;
    let one: i64 = conn.query_first("SELECT 1").await.unwrap().unwrap();
    assert_eq!(one, 1);
}
