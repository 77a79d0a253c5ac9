//! `Type=notify`: with NOTIFY_SOCKET set, Sluice sends READY=1 once it
//! listens, RELOADING=1 then READY=1 around a SIGHUP reload, and
//! STOPPING=1 when SIGTERM starts the drain.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use sluice_e2e::{direct_mode, e2e_dir, unique_name, MariaDb, Sluice};

fn next_message(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = socket
        .recv(&mut buf)
        .expect("a notify datagram within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_ready_reloading_and_stopping() {
    if direct_mode() {
        eprintln!("skipped in direct mode: needs the daemon");
        return;
    }
    let path = e2e_dir().join(format!("{}.notify", unique_name("notify")));
    let socket = UnixDatagram::bind(&path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let db = MariaDb::start().await;
    let mut sluice = Sluice::builder(&db)
        .env("NOTIFY_SOCKET", path.to_str().unwrap())
        .start()
        .await;
    assert_eq!(next_message(&socket), "READY=1");
    sluice.send_signal(libc::SIGHUP);
    assert_eq!(next_message(&socket), "RELOADING=1");
    assert_eq!(next_message(&socket), "READY=1");
    sluice.send_signal(libc::SIGTERM);
    assert_eq!(next_message(&socket), "STOPPING=1");
    let status = sluice
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("exits");
    assert!(status.success());
    let _ = std::fs::remove_file(&path);
}
