//! TLS on both legs: clients log in to Sluice over TLS (mysql_async and
//! the `mariadb` client), Sluice logs in to a TLS-enabled MariaDB, and the
//! two legs are independent of each other.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, SslOpts};
use sluice_e2e::certs::TestCerts;
use sluice_e2e::cli::Cli;
use sluice_e2e::mariadb::client_opts;
use sluice_e2e::{direct_mode, e2e_dir, unique_name, MariaDb, Sluice};

fn certs() -> TestCerts {
    TestCerts::generate(&e2e_dir().join(unique_name("certs")))
}

async fn tls_db(certs: &TestCerts) -> MariaDb {
    MariaDb::builder().args(certs.server_args()).start().await
}

/// mysql_async options that insist on TLS and check the certificate
/// against the test CA.
fn tls_opts(port: u16, user: &str, password: Option<&str>, certs: &TestCerts) -> OptsBuilder {
    let ssl = SslOpts::default().with_root_certs(vec![certs.ca.clone().into()]);
    client_opts(port, user, password).ssl_opts(Some(ssl))
}

async fn status_value(conn: &mut Conn, name: &str) -> String {
    let row: Option<(String, String)> = conn
        .query_first(format!("SHOW SESSION STATUS LIKE '{name}'"))
        .await
        .unwrap();
    row.map(|(_, v)| v).unwrap_or_default()
}

/// Connections the server saw end before authentication (hang-ups in
/// the middle of the handshake).
async fn aborted_before_auth(db: &MariaDb) -> u64 {
    let mut conn = db.root_conn().await;
    let row: Option<(String, u64)> = conn
        .query_first("SHOW GLOBAL STATUS LIKE 'Aborted_connects_preauth'")
        .await
        .unwrap();
    conn.disconnect().await.unwrap();
    row.expect("Aborted_connects_preauth").1
}

async fn sluice_with(db: &MariaDb, env: &[(&str, String)]) -> Sluice {
    let mut builder = Sluice::builder(db);
    for (key, value) in env {
        builder = builder.env(*key, value.clone());
    }
    builder.start().await
}

fn client_tls_env(certs: &TestCerts) -> Vec<(&'static str, String)> {
    vec![
        ("SLUICE_PROXY__TLS_CERT", certs.cert.display().to_string()),
        ("SLUICE_PROXY__TLS_KEY", certs.key.display().to_string()),
    ]
}

/// The CLI over TLS with the server certificate checked against the CA.
fn cli_tls(port: u16, certs: &TestCerts) -> Cli {
    Cli::new(port)
        .arg("--ssl")
        .arg(&format!("--ssl-ca={}", certs.ca.display()))
        .arg("--ssl-verify-server-cert")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_log_in_over_tls_and_plain_clients_still_can() {
    if direct_mode() {
        return;
    }
    let certs = certs();
    let db = MariaDb::start().await;
    let sluice = sluice_with(&db, &client_tls_env(&certs)).await;
    db.sql("CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
        .await;

    // mysql_async, verifying Sluice's certificate.
    let mut conn = Conn::new(tls_opts(sluice.port(), "root", None, &certs))
        .await
        .unwrap_or_else(|e| panic!("TLS login: {e}\n{}", sluice.log_tail(30)));
    let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    // The backend leg is plain here (this MariaDB has no certificate).
    assert_eq!(status_value(&mut conn, "Ssl_version").await, "");

    // Inserts from several TLS clients at once, batched.
    let mut tasks = Vec::new();
    for client in 0..16 {
        let opts = tls_opts(sluice.port(), "root", None, &certs).db_name(Some("app"));
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(opts).await.unwrap();
            for i in 0..40 {
                conn.query_drop(format!("INSERT INTO t (v) VALUES ({})", client * 1000 + i))
                    .await
                    .unwrap();
                assert!(conn.last_insert_id().unwrap_or(0) > 0);
            }
            conn.disconnect().await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let rows: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM app.t")
        .await
        .unwrap();
    assert_eq!(rows, Some(640));

    // The mariadb client: --ssl with the certificate verified.
    let out = cli_tls(sluice.port(), &certs).run("status").await;
    out.assert_success();
    assert!(
        out.stdout.contains("Cipher in use is"),
        "the CLI did not report a TLS session:\n{}",
        out.stdout
    );

    // A plain client is still served when TLS is not required.
    let mut plain = sluice.root_conn().await;
    let one: Option<i64> = plain.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    let out = Cli::new(sluice.port())
        .arg("--skip-ssl")
        .run("status")
        .await;
    out.assert_success();
    assert!(
        out.stdout.contains("Not in use"),
        "plain CLI session: {}",
        out.stdout
    );
    sluice.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_secure_transport_refuses_plain_clients_as_mariadb_does() {
    if direct_mode() {
        return;
    }
    let certs = certs();
    // MariaDB's own refusal, for comparison.
    let strict_db = tls_db(&certs).await;
    strict_db
        .sql("SET GLOBAL require_secure_transport = ON")
        .await;
    let direct = match Conn::new(client_opts(strict_db.port(), "root", None)).await {
        Err(mysql_async::Error::Server(e)) => (e.code, e.state, e.message),
        other => panic!("MariaDB let a plain client in: {:?}", other.map(|_| ())),
    };
    let mut strict = Conn::new(tls_opts(strict_db.port(), "root", None, &certs))
        .await
        .unwrap();
    strict
        .query_drop("SET GLOBAL require_secure_transport = OFF")
        .await
        .unwrap();
    drop(strict);

    let db = MariaDb::start().await;
    let mut env = client_tls_env(&certs);
    env.push(("SLUICE_PROXY__REQUIRE_SECURE_TRANSPORT", "true".into()));
    let sluice = sluice_with(&db, &env).await;
    let via = match Conn::new(sluice.root_opts()).await {
        Err(mysql_async::Error::Server(e)) => (e.code, e.state, e.message),
        other => panic!("Sluice let a plain client in: {:?}", other.map(|_| ())),
    };
    assert_eq!(via, direct);

    let out = Cli::new(sluice.port())
        .arg("--skip-ssl")
        .run("SELECT 1")
        .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains(&format!("ERROR {}", direct.0)),
        "{}",
        out.stderr
    );

    // Refused clients leave no half-finished handshakes at the server,
    // which counts them toward blocking Sluice's host
    // (max_connect_errors).
    let before = aborted_before_auth(&db).await;
    for _ in 0..25 {
        assert!(Conn::new(sluice.root_opts()).await.is_err());
    }
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(aborted_before_auth(&db).await, before);
    let mut conn = Conn::new(tls_opts(sluice.port(), "root", None, &certs))
        .await
        .unwrap_or_else(|e| panic!("TLS login after refusals: {e}\n{}", sluice.log_tail(30)));
    let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    let out = cli_tls(sluice.port(), &certs).run("SELECT 1").await;
    out.assert_success();
    sluice.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_leg_follows_the_configured_mode() {
    if direct_mode() {
        return;
    }
    let certs = certs();
    let db = tls_db(&certs).await;
    db.sql(
        "CREATE USER secure@'%' IDENTIFIED BY 'secure-pw' REQUIRE SSL; \
         GRANT USAGE ON *.* TO secure@'%'",
    )
    .await;

    // verify: the certificate chains to the CA and names 127.0.0.1.
    let sluice = sluice_with(
        &db,
        &[
            ("SLUICE_BACKEND__TLS", "verify".into()),
            ("SLUICE_BACKEND__TLS_CA", certs.ca.display().to_string()),
        ],
    )
    .await;
    let mut conn = sluice.root_conn().await;
    assert_ne!(status_value(&mut conn, "Ssl_version").await, "");
    // An account that requires TLS logs in through a plain client leg.
    let mut secure = Conn::new(sluice.opts_for("secure", Some("secure-pw")))
        .await
        .unwrap_or_else(|e| panic!("REQUIRE SSL account: {e}\n{}", sluice.log_tail(30)));
    assert_ne!(status_value(&mut secure, "Ssl_cipher").await, "");
    drop(sluice);

    // preferred (the default) uses TLS when the server offers it.
    let sluice = Sluice::start(&db).await;
    let mut conn = sluice.root_conn().await;
    assert_ne!(status_value(&mut conn, "Ssl_version").await, "");
    drop(sluice);

    // off: plain, and the REQUIRE SSL account is refused by MariaDB.
    let sluice = sluice_with(&db, &[("SLUICE_BACKEND__TLS", "off".into())]).await;
    let mut conn = sluice.root_conn().await;
    assert_eq!(status_value(&mut conn, "Ssl_version").await, "");
    match Conn::new(sluice.opts_for("secure", Some("secure-pw"))).await {
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1045, "{e:?}"),
        other => panic!("REQUIRE SSL account in over plain: {:?}", other.map(|_| ())),
    }
    drop(sluice);

    // verify with a name the certificate does not carry: a clear error.
    let sluice = sluice_with(
        &db,
        &[
            ("SLUICE_BACKEND__TLS", "verify".into()),
            ("SLUICE_BACKEND__TLS_CA", certs.ca.display().to_string()),
            (
                "SLUICE_BACKEND__TLS_SERVER_NAME",
                "db.elsewhere.example".into(),
            ),
        ],
    )
    .await;
    match Conn::new(sluice.root_opts()).await {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!(e.code, 1105, "{e:?}");
            assert!(e.message.contains("TLS"), "{}", e.message);
        }
        other => panic!("logged in despite a wrong name: {:?}", other.map(|_| ())),
    }
    sluice.assert_no_panic();
}

/// A client that insists on TLS still reads Sluice's own refusals (here:
/// the server is down) instead of failing on a greeting without TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_clients_read_sluice_refusals() {
    if direct_mode() {
        return;
    }
    let certs = certs();
    let db = MariaDb::start().await;
    let closed = sluice_e2e::ClosedPort::reserve();
    let mut builder = Sluice::builder(&db).backend_port(closed.port());
    for (key, value) in client_tls_env(&certs) {
        builder = builder.env(key, value);
    }
    let sluice = builder.start().await;
    match Conn::new(tls_opts(sluice.port(), "root", None, &certs)).await {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!(e.code, 1105, "{e:?}");
            assert!(
                e.message.contains("cannot reach the database server"),
                "{}",
                e.message
            );
        }
        other => panic!("expected Sluice's refusal: {:?}", other.map(|_| ())),
    }
    let out = cli_tls(sluice.port(), &certs).run("SELECT 1").await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("ERROR 1105"), "{}", out.stderr);
    sluice.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_tls_to_a_server_without_it_is_a_clear_error() {
    if direct_mode() {
        return;
    }
    let db = MariaDb::start().await;
    let sluice = sluice_with(&db, &[("SLUICE_BACKEND__TLS", "required".into())]).await;
    match Conn::new(sluice.root_opts()).await {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!(e.code, 1105, "{e:?}");
            assert!(e.message.contains("does not offer it"), "{}", e.message);
        }
        other => panic!("logged in without TLS: {:?}", other.map(|_| ())),
    }
    // The abandoned backend handshakes ended with a refused login, not a
    // hang-up the server would count against Sluice's host.
    let before = aborted_before_auth(&db).await;
    for _ in 0..10 {
        assert!(Conn::new(sluice.root_opts()).await.is_err());
    }
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(aborted_before_auth(&db).await, before);
    sluice.assert_no_panic();
}

/// Each leg may be encrypted or not on its own; logins that go through
/// extra authentication rounds (ed25519 is not the server's default
/// plugin, so the server asks the client to switch) work in every
/// combination, and so do queries and batched inserts (from a
/// mysql_native_password account: mysql_async's ed25519 login fails now
/// and then on its own, see `connect_ed25519`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_combination_of_legs_logs_in_and_batches() {
    if direct_mode() {
        return;
    }
    let certs = certs();
    let db = tls_db(&certs).await;
    db.sql(
        "INSTALL SONAME 'auth_ed25519'; \
         CREATE USER edu@'%' IDENTIFIED VIA ed25519 USING PASSWORD('ed-pw'); \
         CREATE USER app@'%' IDENTIFIED BY 'app-pw'; \
         CREATE DATABASE app; GRANT ALL ON app.* TO edu@'%'; GRANT ALL ON app.* TO app@'%'; \
         CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
    )
    .await;
    for backend_mode in ["off", "verify"] {
        let mut env = client_tls_env(&certs);
        env.push(("SLUICE_BACKEND__TLS", backend_mode.into()));
        env.push(("SLUICE_BACKEND__TLS_CA", certs.ca.display().to_string()));
        let sluice = sluice_with(&db, &env).await;
        for client_tls in [false, true] {
            let opts_for = |user: &str, password: &str| {
                if client_tls {
                    tls_opts(sluice.port(), user, Some(password), &certs)
                } else {
                    sluice.opts_for(user, Some(password))
                }
            };
            let what = format!("client TLS {client_tls}, backend {backend_mode}");
            let mut conn =
                sluice_e2e::connect_ed25519(opts_for("edu", "ed-pw").db_name(Some("app")))
                    .await
                    .unwrap_or_else(|e| panic!("{what}: {e}\n{}", sluice.log_tail(30)));
            let backend_tls = status_value(&mut conn, "Ssl_version").await;
            assert_eq!(backend_tls.is_empty(), backend_mode == "off", "{what}");
            let mut tasks = Vec::new();
            for client in 0..8 {
                let opts = opts_for("app", "app-pw").db_name(Some("app"));
                tasks.push(tokio::spawn(async move {
                    let mut conn = Conn::new(opts).await.unwrap();
                    for i in 0..25 {
                        conn.exec_drop("INSERT INTO t (v) VALUES (?)", (client * 100 + i,))
                            .await
                            .unwrap();
                    }
                    conn.disconnect().await.unwrap();
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            // A wrong password is MariaDB's own refusal on every path.
            match Conn::new(opts_for("edu", "nope")).await {
                Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1045, "{what}: {e:?}"),
                other => panic!("{what}: wrong password accepted: {:?}", other.map(|_| ())),
            }
        }
        sluice.assert_no_panic();
    }
    let mut direct = db.root_conn().await;
    let rows: Option<i64> = direct
        .query_first("SELECT COUNT(*) FROM app.t")
        .await
        .unwrap();
    assert_eq!(rows, Some(4 * 8 * 25));
}
