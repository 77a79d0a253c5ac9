//! Authentication passes through Sluice: MariaDB checks every login and the
//! client sees MariaDB's own errors.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use sluice_e2e::Pair;

const USERS: &str = "CREATE DATABASE app; \
    CREATE USER native@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('native-pw'); \
    GRANT ALL ON app.* TO native@'%'; \
    CREATE USER limited@'%' IDENTIFIED BY 'limited-pw'";

/// Connects and returns the server error (code, state, message), panicking
/// on success or on a non-server error.
async fn login_error(opts: OptsBuilder) -> (u16, String, String) {
    match Conn::new(opts).await {
        Ok(_) => panic!("login unexpectedly succeeded"),
        Err(mysql_async::Error::Server(e)) => (e.code, e.state, e.message),
        Err(e) => panic!("expected a MariaDB error packet, got {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_1045_with_mariadb_text() {
    let pair = Pair::start().await;
    pair.db.sql(USERS).await;
    let via = login_error(pair.sluice.opts_for("native", Some("wrong"))).await;
    let direct = login_error(sluice_e2e::mariadb::client_opts(
        pair.db.port(),
        "native",
        Some("wrong"),
    ))
    .await;
    assert_eq!(via.0, 1045);
    assert_eq!(via.1, "28000");
    assert_eq!(
        via.2,
        "Access denied for user 'native'@'127.0.0.1' (using password: YES)"
    );
    assert_eq!(via, direct);

    // No password at all for a user that has one.
    let via = login_error(pair.sluice.opts_for("native", None)).await;
    assert_eq!(via.0, 1045);
    assert!(via.2.ends_with("(using password: NO)"), "{}", via.2);

    // Unknown user.
    let via = login_error(pair.sluice.opts_for("ghost", Some("x"))).await;
    assert_eq!(via.0, 1045);

    // CLI shows MariaDB's message and exits 1.
    let out = pair
        .cli()
        .user("native", Some("wrong"))
        .run("SELECT 1")
        .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains(
            "ERROR 1045 (28000): Access denied for user 'native'@'127.0.0.1' (using password: YES)"
        ),
        "{}",
        out.stderr
    );

    // Sluice still serves a correct login afterwards.
    let mut ok = Conn::new(pair.sluice.opts_for("native", Some("native-pw")))
        .await
        .unwrap();
    ok.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_or_forbidden_database_at_login() {
    let pair = Pair::start().await;
    pair.db.sql(USERS).await;
    let via = login_error(pair.sluice.root_opts().db_name(Some("nope"))).await;
    assert_eq!(via.0, 1049);
    assert_eq!(via.1, "42000");
    assert_eq!(via.2, "Unknown database 'nope'");
    let direct = login_error(pair.db.root_opts().db_name(Some("nope"))).await;
    assert_eq!(via, direct);

    let via = login_error(
        pair.sluice
            .opts_for("limited", Some("limited-pw"))
            .db_name(Some("app")),
    )
    .await;
    assert_eq!(via.0, 1044);
    assert_eq!(
        via.2,
        "Access denied for user 'limited'@'%' to database 'app'"
    );

    // A database at login that exists works, and is current.
    let mut conn = Conn::new(pair.sluice.root_opts().db_name(Some("app")))
        .await
        .unwrap();
    let db: Option<String> = conn
        .query_first("SELECT DATABASE()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(db.as_deref(), Some("app"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_password_user_logs_in() {
    let pair = Pair::start().await;
    pair.db.sql(USERS).await;
    let mut conn = Conn::new(
        pair.sluice
            .opts_for("native", Some("native-pw"))
            .db_name(Some("app")),
    )
    .await
    .unwrap();
    let (user, db): (String, String) = conn
        .query_first("SELECT CURRENT_USER(), DATABASE()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user, "native@%");
    assert_eq!(db, "app");
    // Privileges are MariaDB's: no access to mysql.user.
    let err = conn
        .query_drop("SELECT * FROM mysql.user")
        .await
        .unwrap_err();
    assert!(
        matches!(err, mysql_async::Error::Server(ref e) if e.code == 1142),
        "{err:?}"
    );

    let out = pair
        .cli()
        .user("native", Some("native-pw"))
        .arg("-N")
        .run("SELECT CURRENT_USER()")
        .await;
    out.assert_success();
    assert_eq!(out.stdout.trim(), "native@%");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ed25519_user_logs_in() {
    let pair = Pair::start().await;
    pair.db
        .sql(
            "INSTALL SONAME 'auth_ed25519'; \
             CREATE USER e@'%' IDENTIFIED VIA ed25519 USING PASSWORD('ed-pw')",
        )
        .await;
    let mut conn = sluice_e2e::connect_ed25519(pair.sluice.opts_for("e", Some("ed-pw")))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "ed25519 login through sluice: {e}\n{}",
                pair.sluice.log_tail(40)
            )
        });
    let user: String = conn
        .query_first("SELECT CURRENT_USER()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user, "e@%");

    let err = login_error(pair.sluice.opts_for("e", Some("not-it"))).await;
    assert_eq!(err.0, 1045);

    let out = pair
        .cli()
        .user("e", Some("ed-pw"))
        .arg("-N")
        .run("SELECT CURRENT_USER()")
        .await;
    out.assert_success();
    assert_eq!(out.stdout.trim(), "e@%");
}
