//! The login over in-memory streams. The server's side is bytes captured
//! from MariaDB 10.11 (its greeting, an OK, an authentication switch and
//! the access-denied error); the client's side is the handshake response a
//! client with the basic capabilities sends. Both far ends are written
//! before the login starts: each stream buffers what the other side has
//! not read yet.

use std::time::Duration;

use sluice_protocol::ok::{err_payload, ErrInfo};
use sluice_protocol::packet::encode_packet;
use sluice_protocol::{CapabilityFlags, StatusFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{login_over, Connected, LoginOutcome};
use crate::captured::hex;
use crate::error::{Peer, SessionError};
use crate::io::PacketStream;
use crate::settings::ProxySettings;

const GREETING: &str = "640000000a352e352e352d31302e31312e31392d4d6172696144422d302b6465\
    6231327531000a0000005b505e676b64337100fef72d0200ff81150000000000001d0000005f686e6d5957296544\
    613b42006d7973716c5f6e61746976655f70617373776f726400";
/// `root`, no password, protocol 41, transactions, multi-statements and
/// results, plugin auth.
const RESPONSE_ROOT: &str = "3c00000101a20b00000000012100000000000000000000000000000000000000\
    00000000726f6f7400006d7973716c5f6e61746976655f70617373776f726400";
const OK: &str = "0700000200000002000000";
const RESPONSE_NOSUCH: &str =
    "3e00000101a20b00000000012100000000000000000000000000000000000000000000006e6f7375636800006d\
    7973716c5f6e61746976655f70617373776f726400";
/// For an unknown user the server asks for another round, as it would for
/// a real one.
const SWITCH: &str = "2c000002fe6d7973716c5f6e61746976655f70617373776f726400337a32266653\
    4c622c4e26712a773d6a7d55736000";
const ROUND: &str = "00000003";
const ACCESS_DENIED: &str = "34000004ffa2062332383030304163636573732064656e69656420666f7220\
    7573657220276e6f737563682740273132372e302e302e3127";

/// How a login ended, with what the session would start from.
#[derive(Debug)]
enum Ended {
    LoggedIn {
        caps: sluice_protocol::caps::SessionCaps,
        status: Option<StatusFlags>,
    },
    Refused,
    Failed(SessionError),
}

struct Run {
    ended: Ended,
    client_got: Vec<u8>,
    server_got: Vec<u8>,
}

/// Logs in a client that sends `client` against a server that sends
/// `server`; both far ends then hang up.
async fn run(client: &[u8], server: &[u8]) -> Run {
    let (near, mut client_far) = tokio::io::duplex(1 << 16);
    let (backend, mut backend_far) = tokio::io::duplex(1 << 16);
    client_far.write_all(client).await.unwrap();
    backend_far.write_all(server).await.unwrap();
    let settings = ProxySettings {
        handshake_timeout: Duration::from_secs(5),
        ..ProxySettings::default()
    };
    let connect = async {
        Ok(Connected {
            stream: PacketStream::over(backend, Peer::Backend),
            backend_index: 0,
            eviction: sluice_cluster::EvictionNotice::never(),
        })
    };
    let outcome = login_over(PacketStream::over(near, Peer::Client), &settings, connect).await;
    let ended = match outcome {
        // The session would own both legs; here they close.
        Ok(LoginOutcome::LoggedIn(logged_in)) => Ended::LoggedIn {
            caps: logged_in.caps,
            status: logged_in.state.status(),
        },
        Ok(LoginOutcome::Refused) => Ended::Refused,
        Err(e) => Ended::Failed(e),
    };
    client_far.shutdown().await.unwrap();
    backend_far.shutdown().await.unwrap();
    let (mut client_got, mut server_got) = (Vec::new(), Vec::new());
    let wait = Duration::from_secs(5);
    let _ = tokio::time::timeout(wait, client_far.read_to_end(&mut client_got)).await;
    let _ = tokio::time::timeout(wait, backend_far.read_to_end(&mut server_got)).await;
    Run {
        ended,
        client_got,
        server_got,
    }
}

/// The packets in `bytes`: (sequence id, payload).
fn packets(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let len = usize::from(bytes[0]) | usize::from(bytes[1]) << 8 | usize::from(bytes[2]) << 16;
        out.push((bytes[3], bytes[4..4 + len].to_vec()));
        bytes = &bytes[4 + len..];
    }
    assert!(bytes.is_empty(), "whole packets only");
    out
}

#[tokio::test]
async fn a_login_passes_through_and_the_session_starts_from_the_servers_word() {
    let server = [hex(GREETING), hex(OK)].concat();
    let run = run(&hex(RESPONSE_ROOT), &server).await;
    let Ended::LoggedIn { caps, status } = run.ended else {
        panic!("{:?}", run.ended);
    };
    assert!(caps
        .flags
        .contains(CapabilityFlags::CLIENT_MULTI_STATEMENTS));
    assert!(!caps.flags.contains(CapabilityFlags::CLIENT_SSL));
    assert_eq!(status, Some(StatusFlags::SERVER_STATUS_AUTOCOMMIT));
    // The client: the server's greeting (same version, same nonce), then
    // the server's OK, byte for byte.
    let got = packets(&run.client_got);
    let greeting = packets(&hex(GREETING)).remove(0);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, 0);
    assert_eq!(got[0].1[..40], greeting.1[..40]);
    assert_eq!((got[1].0, &got[1].1[..]), (2, &hex(OK)[4..]));
    // The server: the client's response as sent (nothing to mask).
    assert_eq!(run.server_got, hex(RESPONSE_ROOT));
}

#[tokio::test]
async fn an_authentication_round_and_its_refusal_reach_the_client_as_sent() {
    let server = [hex(GREETING), hex(SWITCH), hex(ACCESS_DENIED)].concat();
    let client = [hex(RESPONSE_NOSUCH), hex(ROUND)].concat();
    let run = run(&client, &server).await;
    assert!(matches!(run.ended, Ended::Refused), "{:?}", run.ended);
    let got = packets(&run.client_got);
    assert_eq!(got.len(), 3);
    assert_eq!(got[1], packets(&hex(SWITCH))[0]);
    assert_eq!(got[2], packets(&hex(ACCESS_DENIED))[0]);
    let denied = ErrInfo::parse(&got[2].1).unwrap();
    assert_eq!(denied.code, 1698, "access denied, no password given");
    assert_eq!(run.server_got, client);
}

#[tokio::test]
async fn a_server_that_refuses_before_greeting_is_heard_by_the_client() {
    let mut refusal = Vec::new();
    encode_packet(
        &mut refusal,
        0,
        &err_payload(1040, b"08004", "Too many connections"),
    );
    let run = run(&hex(RESPONSE_ROOT), &refusal).await;
    assert!(matches!(run.ended, Ended::Refused), "{:?}", run.ended);
    assert_eq!(run.client_got, refusal);
    assert!(
        run.server_got.is_empty(),
        "nothing of the client's reaches it"
    );
}

#[tokio::test]
async fn an_unreadable_handshake_response_gets_an_error_packet_and_frees_the_backend() {
    // A packet too short to be a handshake response.
    let mut garbage = Vec::new();
    encode_packet(&mut garbage, 1, b"");
    let run = run(&garbage, &hex(GREETING)).await;
    let Ended::Failed(error) = &run.ended else {
        panic!("{:?}", run.ended);
    };
    assert_eq!(error.peer(), Some(Peer::Client));
    let got = packets(&run.client_got);
    assert_eq!(got.len(), 2, "the greeting, then the error");
    assert_eq!(got[1].0, 2, "the sequence id the client expects next");
    let err = ErrInfo::parse(&got[1].1).unwrap();
    assert_eq!((err.code, err.sql_state), (1043, Some(&b"08S01"[..])));
    // The backend connection is not left half logged in: Sluice ends its
    // handshake with a login of its own, which the server can refuse.
    let abandoned = packets(&run.server_got);
    assert_eq!(abandoned.len(), 1);
    assert_eq!(abandoned[0].0, 1);
    assert_ne!(run.server_got, garbage);
}
