use super::*;
use crate::ok::{err_payload, ok_payload};
use mysql_common::constants::{CapabilityFlags, MariadbCapabilities};

fn caps(deprecate_eof: bool) -> SessionCaps {
    let mut flags = CapabilityFlags::CLIENT_PROTOCOL_41 | CapabilityFlags::CLIENT_SESSION_TRACK;
    if deprecate_eof {
        flags |= CapabilityFlags::CLIENT_DEPRECATE_EOF;
    }
    SessionCaps {
        flags,
        mariadb: MariadbCapabilities::MARIADB_CLIENT_PROGRESS,
    }
}

fn eof(status: StatusFlags) -> Vec<u8> {
    let s = status.bits().to_le_bytes();
    vec![0xFE, 0, 0, s[0], s[1]]
}

fn ok_end(status: StatusFlags) -> Vec<u8> {
    let mut p = ok_payload(0, 0, status, 0);
    p[0] = 0xFE;
    p
}

/// Feeds whole packets; returns the `next` after each.
fn run(tracker: &mut ResponseTracker, packets: &[Vec<u8>]) -> Vec<Next> {
    packets
        .iter()
        .map(|p| tracker.on_packet(p, p.len()).expect("valid packet").next)
        .collect()
}

const AC: StatusFlags = StatusFlags::SERVER_STATUS_AUTOCOMMIT;
const MORE: StatusFlags = StatusFlags::SERVER_MORE_RESULTS_EXISTS;

#[test]
fn query_ok_and_err() {
    let mut t = ResponseTracker::new(ResponseShape::Query, caps(false));
    assert_eq!(run(&mut t, &[ok_payload(1, 0, AC, 0)]), [Next::Done]);
    assert_eq!(t.status(), Some(AC));
    let mut t = ResponseTracker::new(ResponseShape::Query, caps(false));
    assert_eq!(
        run(&mut t, &[err_payload(1064, b"42000", "syntax")]),
        [Next::Done]
    );
}

#[test]
fn text_result_set_with_eofs() {
    let mut t = ResponseTracker::new(ResponseShape::Query, caps(false));
    let packets = vec![
        vec![2],
        b"coldef1".to_vec(),
        b"coldef2".to_vec(),
        eof(AC),
        vec![1, b'a', 1, b'b'],
        vec![0xFB, 1, b'c'],
        eof(AC),
    ];
    let next = run(&mut t, &packets);
    assert_eq!(next.last(), Some(&Next::Done));
    assert!(next[..next.len() - 1]
        .iter()
        .all(|n| *n == Next::ServerPacket));
}

#[test]
fn multi_results_then_error() {
    let mut t = ResponseTracker::new(ResponseShape::Query, caps(true));
    let packets = vec![
        vec![1],
        b"coldef".to_vec(),
        vec![1, b'1'],
        ok_end(AC | MORE),
        err_payload(1146, b"42S02", "no such table"),
    ];
    let next = run(&mut t, &packets);
    assert_eq!(
        next,
        [
            Next::ServerPacket,
            Next::ServerPacket,
            Next::ServerPacket,
            Next::ServerPacket,
            Next::Done
        ]
    );
}

#[test]
fn row_starting_with_fe_is_data_when_long() {
    let mut t = ResponseTracker::new(ResponseShape::Query, caps(true));
    run(&mut t, &[vec![1], b"coldef".to_vec()]);
    let mut big_row = vec![0xFE];
    big_row.extend_from_slice(&[0; 8]);
    let obs = t
        .on_packet(&big_row[..HEAD_LEN.min(big_row.len())], MAX_PAYLOAD_LEN)
        .unwrap();
    assert_eq!(obs.next, Next::ServerPacket);
    assert_eq!(run(&mut t, &[ok_end(AC)]), [Next::Done]);
}

#[test]
fn local_infile_round() {
    let mut t = ResponseTracker::new(ResponseShape::Query, caps(false));
    assert_eq!(run(&mut t, &[b"\xFBdata.csv".to_vec()]), [Next::ClientFile]);
    assert!(
        t.on_packet(&[0], 1).is_err(),
        "server must wait for the file"
    );
    t.client_done();
    assert_eq!(run(&mut t, &[ok_payload(3, 0, AC, 0)]), [Next::Done]);
}

#[test]
fn cursor_execute_ends_after_metadata() {
    let mut t = ResponseTracker::new(ResponseShape::Execute, caps(false));
    let packets = vec![
        vec![1],
        b"coldef".to_vec(),
        eof(AC | StatusFlags::SERVER_STATUS_CURSOR_EXISTS),
    ];
    assert_eq!(run(&mut t, &packets).last(), Some(&Next::Done));
    let mut f = ResponseTracker::new(ResponseShape::Fetch, caps(false));
    let fetched = run(
        &mut f,
        &[
            vec![0, 0, 1],
            eof(AC | StatusFlags::SERVER_STATUS_LAST_ROW_SENT),
        ],
    );
    assert_eq!(fetched, [Next::ServerPacket, Next::Done]);
}

#[test]
fn prepare_with_and_without_eofs() {
    let prep_ok = vec![0, 1, 0, 0, 0, 2, 0, 1, 0, 0, 0, 0];
    for deprecate in [false, true] {
        let mut t = ResponseTracker::new(ResponseShape::Prepare, caps(deprecate));
        let mut packets = vec![prep_ok.clone(), b"param".to_vec()];
        if !deprecate {
            packets.push(eof(AC));
        }
        packets.push(b"col1".to_vec());
        packets.push(b"col2".to_vec());
        if !deprecate {
            packets.push(eof(AC));
        }
        let next = run(&mut t, &packets);
        assert_eq!(next.last(), Some(&Next::Done), "deprecate_eof={deprecate}");
        assert!(next[..next.len() - 1]
            .iter()
            .all(|n| *n == Next::ServerPacket));
    }
    let mut t = ResponseTracker::new(ResponseShape::Prepare, caps(false));
    assert_eq!(
        run(&mut t, &[vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]),
        [Next::Done]
    );
}

#[test]
fn auth_rounds() {
    let mut t = ResponseTracker::new(ResponseShape::Auth, caps(false));
    assert_eq!(
        run(&mut t, &[b"\xFEclient_ed25519\0nonce".to_vec()]),
        [Next::ClientAuth]
    );
    t.client_done();
    assert_eq!(
        run(&mut t, &[vec![0x01, 0x03], ok_payload(0, 0, AC, 0)]),
        [Next::ServerPacket, Next::Done]
    );
}

#[test]
fn progress_reports_do_not_end_a_query() {
    let mut t = ResponseTracker::new(ResponseShape::Query, caps(false));
    let progress = vec![0xFF, 0xFF, 0xFF, 1, 1, 2, 0, 0, 0];
    assert_eq!(
        run(&mut t, &[progress, ok_payload(0, 0, AC, 0)]),
        [Next::ServerPacket, Next::Done]
    );
}

#[test]
fn no_response_and_stream_shapes() {
    assert_eq!(
        ResponseTracker::new(ResponseShape::None, caps(false)).initial(),
        Next::Done
    );
    assert_eq!(
        ResponseTracker::new(ResponseShape::Stream, caps(false)).initial(),
        Next::Stream
    );
}

mod fuzzish {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_packets_never_panic(
            shape in 0usize..8,
            packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..12),
            deprecate in any::<bool>(),
        ) {
            let shapes = [ResponseShape::Single, ResponseShape::Query, ResponseShape::Execute,
                ResponseShape::Prepare, ResponseShape::Fetch, ResponseShape::FieldList,
                ResponseShape::Auth, ResponseShape::None];
            let mut t = ResponseTracker::new(shapes[shape], caps(deprecate));
            for p in packets {
                match t.on_packet(&p, p.len()) {
                    Ok(o) if o.next == Next::ServerPacket => {}
                    Ok(o) if matches!(o.next, Next::ClientAuth | Next::ClientFile) => t.client_done(),
                    _ => break,
                }
            }
        }
    }
}
