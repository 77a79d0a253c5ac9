//! The leader over in-memory streams: the server's side is bytes captured
//! from MariaDB 10.11 answering the very statements the leader sends
//! (EOF packets, no session tracking), so every ending of a batch is
//! driven without a server: committed, rolled back with the members run
//! alone, the connection lost after the batch was sent, and before; and
//! (from 10.7) committed without the rows the server skipped.

use bytes::Bytes;
use sluice_batch::BatchSettings;
use sluice_protocol::ok::{ErrInfo, OkInfo};
use sluice_protocol::packet::encode_packet;
use sluice_protocol::StatusFlags;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use super::lead;
use crate::batching::admission::Candidate;
use crate::batching::facts::TableFacts;
use crate::batching::key::{BatchKey, KeyParts};
use crate::batching::member::{Assignment, Isolation, Member, MemberResult};
use crate::batching::{BatchContext, BatchMode, BatchingSettings, SessionBatching};
use crate::captured::{basic_caps, hex};
use crate::error::{Peer, SessionError};
use crate::exchange::SessionIo;
use crate::io::PacketStream;
use crate::session_state::SessionState;
use crate::statement::Statement;

/// `START TRANSACTION`.
const OPENED: &str = "0700000100000003000000";
/// `INSERT INTO t (v) VALUES (1),(2),(3) RETURNING `id``: ids 2, 3, 4.
const RETURNED_2_3_4: &str = "0100000101210000020364656605636170646201740174026964026964\
    0c3f000b00000003034200000005000003fe0000030002000004013202000005013302000006013405000007\
    fe00000300";
/// `INSERT INTO t (v) VALUES (2),(3) RETURNING `id``: ids 3, 4 (the
/// packets of [`RETURNED_2_3_4`] without its first row).
const RETURNED_3_4: &str = "01000001012100000203646566056361706462017401740269640269640c3f000b\
    00000003034200000005000003fe0000030002000004013302000005013405000006fe00000300";
/// The settling statement, when it commits.
const COMMITTED: &str = "0700000100000002000000";
/// `… VALUES (4),(100),(5) RETURNING `id`` where 100 is taken: one row,
/// then error 1062 in the middle of the result set.
const DUPLICATE_MIDWAY: &str = "01000001012100000203646566056361706462017401740269640269640c\
    3f000b00000003034200000005000003fe000003000200000401352a000005ff26042332333030304475706c\
    696361746520656e74727920273130302720666f72206b657920277627";
/// The settling statement, when it rolls back: its own SIGNAL.
const ROLLED_BACK: &str =
    "22000001ff6c06233435303030736c756963653a20626174636820726f6c6c6564206261636b";
/// The leader's own INSERT run alone, id 8.
const ALONE_OK: &str = "0700000100010802000000";

/// `INSERT IGNORE … VALUES (1),(100),(3) RETURNING `id`, LAST_INSERT_ID()`
/// where 100 is taken: ids 2 and 3, LAST_INSERT_ID() 41 before, 1 warning.
const RETURNED_SKIPPING: &str = "01000001022100000203646566056361706462017401740269640269640c\
    3f000b0000000303420000002600000303646566000000104c4153545f494e534552545f49442829000c3f0015\
    00000008a10000000005000004fe0000030005000005013202343105000006013302343105000007fe01000300";
/// The settling `IF` after an INSERT that left conditions: it did not
/// commit, and the transaction is still open.
const LEFT_OPEN: &str = "0700000100000003000000";
/// The report for it (`1062:2`, committed 0), then its final OK: the
/// transaction still open.
const REPORT_ROW_2: &str = "01000001041800000203646566000000017701770c3f000b00000003000000\
    00001800000303646566000000016e016e0c3f000b0000000300000000001800000403646566000000017301730c\
    2100fdff0200fc10000000001800000503646566000000016301630c3f000b00000003000000000005000006fe00\
    000b000e0000070131013107313036323a3220013005000008fe00000b000700000900000003000000";
/// The report for [`RETURNED_SKIPPING`] when it found every condition a
/// skipped row and committed itself (`1062:2`, committed 1), then its
/// final OK: autocommit, no transaction open.
const REPORT_COMMITTED_ROW_2: &str = "0100000104180000020364656600000001770177\
    0c3f000b0000000300000000001800000303646566000000016e016e0c3f000b0000000300000000001800000403\
    646566000000017301730c2100fdff0200fc10000000001800000503646566000000016301630c3f000b00000003\
    000000000005000006fe00000b000e0000070131013107313036323a3220013105000008fe00000b000700000900\
    000002000000";
/// `INSERT IGNORE … VALUES (20),(21),(22) RETURNING `id`,
/// LAST_INSERT_ID()`: ids 11, 12, 13, LAST_INSERT_ID() 8 before.
const RETURNED_11_12_13: &str = "0100000102210000020364656605636170646201\
    7401740269640269640c3f000b0000000303420000002600000303646566000000104c4153545f494e534552545f\
    49442829000c3f001500000008a10000000005000004fe0000030005000005023131013805000006023132013805\
    000007023133013805000008fe00000300";
/// The report of that clean batch, sent in the settling statement's place:
/// no conditions, committed (`0`, `0`, ``, `1`), then its final OK with
/// no transaction open.
const REPORT_CLEAN_COMMITTED: &str = "0100000104180000020364656600000001770177\
    0c3f000b0000000300000000001800000303646566000000016e016e0c3f000b0000000300000000001800000403\
    646566000000017301730c2100fdff0200fc10000000001800000503646566000000016301630c3f000b00000003\
    000000000005000006fe00000b00070000070130013000013105000008fe00000b000700000900000002000000";
/// `COMMIT` after a report.
const COMMITTED_AFTER_REPORT: &str = "0700000100000002000000";
/// `… VALUES (100),(7),(8) …`: the first row skipped; ids 8 and 9,
/// LAST_INSERT_ID() 5 before.
const RETURNED_FIRST_SKIPPED: &str = "01000001022100000203646566056361706462017401740269640269\
    640c3f000b0000000303420000002600000303646566000000104c4153545f494e534552545f49442829000c3f\
    001500000008a10000000005000004fe000003000400000501380135040000060139013505000007fe01000300";
/// Its report (`1062:1`, committed 0) and final OK.
const REPORT_ROW_1: &str = "01000001041800000203646566000000017701770c3f000b00000003000000\
    00001800000303646566000000016e016e0c3f000b0000000300000000001800000403646566000000017301730c\
    2100fdff0200fc10000000001800000503646566000000016301630c3f000b00000003000000000005000006fe00\
    000b000e0000070131013107313036323a3120013005000008fe00000b000700000900000003000000";
/// `ROLLBACK` of an open batch.
const ROLLED_BACK_BY_SLUICE: &str = "0700000100000002000000";
/// `DO LAST_INSERT_ID(5)`: an owed id set before an INSERT runs alone.
const ID_SET: &str = "0700000100000002000000";
/// A single-row INSERT of a taken key, alone.
const ALONE_DUPLICATE: &str = "2a000001ff26042332333030304475706c696361746520656e7472792027\
    3130302720666f72206b657920277627";

/// MariaDB 10.6 settles a batch in the server (no `ROW_NUMBER` to report
/// with); 10.11 reports skipped rows.
const WITHOUT_ROW_NUMBERS: (u16, u16, u16) = (10, 6, 21);
const WITH_ROW_NUMBERS: (u16, u16, u16) = (10, 11, 19);

const LEADER_SQL: &[u8] = b"INSERT INTO t (v) VALUES (1)";

/// What one run of the leader left behind.
struct Run {
    result: Result<(), SessionError>,
    /// What the leader's client received.
    client_got: Vec<u8>,
    /// What the server received.
    server_got: Vec<u8>,
    /// What each other member was told, in order.
    members: Vec<Option<MemberResult>>,
    snapshot: sluice_metrics::StatusSnapshot,
    /// The Prometheus text of the metrics afterwards.
    metrics: String,
}

/// Runs the leader of a batch of its own row and `others` rows against a
/// server that answers with `server` and then hangs up (or, with `None`,
/// is gone before the batch is written).
async fn run(server: Option<&[u8]>, others: usize, version: (u16, u16, u16)) -> Run {
    run_after(server, others, version, 0).await
}

/// As [`run`], under a key whose last `with_conditions` batches left
/// conditions. Every run has a key of its own, so tests running at once
/// never see each other's batches.
async fn run_after(
    server: Option<&[u8]>,
    others: usize,
    version: (u16, u16, u16),
    with_conditions: usize,
) -> Run {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run_id = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let metrics = sluice_metrics::Metrics::new().unwrap();
    let ctx = BatchContext::start(
        BatchingSettings {
            enabled: true,
            mode: BatchMode::Auto,
            batch: BatchSettings::default(),
            max_statement_rows: 100,
        },
        metrics.clone(),
    );
    let mut batching = SessionBatching::new(ctx.clone(), 1, 0, Some(version));
    let (client, mut client_far) = tokio::io::duplex(1 << 16);
    let (backend, mut backend_far) = tokio::io::duplex(1 << 16);
    let mut client = PacketStream::over(client, Peer::Client);
    let mut backend = PacketStream::over(backend, Peer::Backend);
    let mut state = SessionState::new(StatusFlags::SERVER_STATUS_AUTOCOMMIT, None);
    match server {
        Some(answers) => {
            backend_far.write_all(answers).await.unwrap();
            backend_far.shutdown().await.unwrap();
        }
        None => {
            // The server is gone: the leader's writes fail.
            drop(backend_far);
            backend_far = tokio::io::duplex(1).0;
        }
    }

    let mut packet = Vec::new();
    encode_packet(&mut packet, 0, &[&[3u8][..], LEADER_SQL].concat());
    let packet = Bytes::from(packet);
    let mut statement = Statement::parse(&packet);
    statement.classification = batching.classify(statement.command.as_ref(), &state);
    let facts = TableFacts {
        batchable: true,
        auto_increment: Some("id".into()),
        label: "capdb.t".into(),
    };
    let classification = statement.classification.as_ref().unwrap();
    let key = BatchKey::new(KeyParts {
        backend: 0,
        user: b"root@localhost".as_slice().into(),
        database: Some(b"capdb".as_slice().into()),
        fingerprint: format!("settings of run {run_id}").as_bytes().into(),
        shape: classification.batchable().unwrap().shape_key().clone(),
    });
    for _ in 0..with_conditions {
        key.recent().record(true);
    }
    let candidate = Candidate::of_query(&statement, facts, key, version >= (10, 7, 0));
    let mut replies = Vec::new();
    let members = (0..others)
        .map(|i| {
            let (reply, told) = oneshot::channel();
            replies.push(told);
            Member {
                conn_id: 2,
                row: Bytes::from(format!("({})", i + 2)),
                rows: 1,
                generates_id: true,
                reply,
            }
        })
        .collect();

    let mut io = SessionIo {
        client: &mut client,
        backend: &mut backend,
        caps: basic_caps(),
        state: &mut state,
    };
    let result = lead(&mut batching, &mut io, &statement, candidate, members).await;
    drop(client);
    drop(backend);
    let mut client_got = Vec::new();
    client_far.read_to_end(&mut client_got).await.unwrap();
    let mut server_got = Vec::new();
    let _ = backend_far.read_to_end(&mut server_got).await;
    let mut members = Vec::new();
    for told in replies {
        members.push(match told.await {
            Ok(Assignment::Done(result)) => Some(result),
            _ => None,
        });
    }
    Run {
        result,
        client_got,
        server_got,
        members,
        snapshot: metrics.snapshot(),
        metrics: metrics.render(),
    }
}

/// What members of one row each are told when their rows went in with
/// these ids.
fn inserted(ids: &[u64]) -> Vec<Option<MemberResult>> {
    ids.iter()
        .map(|&insert_id| Some(MemberResult::Inserted { insert_id, rows: 1 }))
        .collect()
}

/// The queries in what the server received, as text.
fn queries(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 5 {
        let len = usize::from(rest[0]) | usize::from(rest[1]) << 8 | usize::from(rest[2]) << 16;
        assert_eq!(rest[4], 3, "only queries are sent");
        out.push(String::from_utf8_lossy(&rest[5..4 + len]).into_owned());
        rest = &rest[4 + len..];
    }
    assert!(rest.is_empty());
    out
}

#[tokio::test]
async fn a_committed_batch_gives_every_member_its_own_id() {
    let server = [hex(OPENED), hex(RETURNED_2_3_4), hex(COMMITTED)].concat();
    let run = run(Some(&server), 2, WITHOUT_ROW_NUMBERS).await;
    run.result.as_ref().unwrap();
    let sent = queries(&run.server_got);
    assert_eq!(sent[0], "START TRANSACTION");
    assert_eq!(
        sent[1],
        "INSERT INTO t (v) VALUES (1),(2),(3) RETURNING `id`, LAST_INSERT_ID() "
    );
    assert!(sent[2].starts_with("IF @@warning_count = 0 THEN COMMIT"));
    assert_eq!(sent.len(), 3);
    assert_eq!(run.members, inserted(&[3, 4]));
    // The leader's client: the OK of a one-row INSERT with the first id.
    assert_eq!(run.client_got[3], 1, "sequence id");
    let ok = OkInfo::parse(&run.client_got[4..], false).unwrap();
    assert_eq!((ok.affected_rows, ok.last_insert_id), (1, 2));
    assert!(ok.status.contains(StatusFlags::SERVER_STATUS_AUTOCOMMIT));
    assert_eq!(run.snapshot.batches, 1);
    assert_eq!(run.snapshot.rows_batched, 3);
    assert_eq!(run.snapshot.batch_failures, 0);
}

#[tokio::test]
async fn a_batch_that_fails_is_halved_down_to_the_row_that_fails() {
    // The batch (1),(2),(3) fails as a whole on a server that cannot name
    // the row. Its halves: the leader's row alone, and (2),(3) as a batch,
    // which commits; the leader's own statement then runs alone.
    let server = [
        hex(OPENED),
        hex(DUPLICATE_MIDWAY),
        hex(ROLLED_BACK),
        hex(OPENED),
        hex(RETURNED_3_4),
        hex(COMMITTED),
        hex(ALONE_OK),
    ]
    .concat();
    let run = run(Some(&server), 2, WITHOUT_ROW_NUMBERS).await;
    run.result.as_ref().unwrap();
    let sent = queries(&run.server_got);
    assert_eq!(sent.len(), 7, "{sent:?}");
    assert_eq!(
        sent[1],
        "INSERT INTO t (v) VALUES (1),(2),(3) RETURNING `id`, LAST_INSERT_ID() "
    );
    assert_eq!(sent[3], "START TRANSACTION");
    assert_eq!(
        sent[4],
        "INSERT INTO t (v) VALUES (2),(3) RETURNING `id`, LAST_INSERT_ID() "
    );
    assert_eq!(
        sent[6], "INSERT INTO t (v) VALUES (1)",
        "the leader's own text, last"
    );
    assert_eq!(run.members, inserted(&[3, 4]));
    // The leader's client gets the server's own answer, byte for byte.
    assert_eq!(run.client_got, hex(ALONE_OK));
    assert_eq!(run.snapshot.batches, 1);
    assert_eq!(run.snapshot.rows_batched, 2);
    assert_eq!(run.snapshot.batch_failures, 1);
    assert_eq!(run.snapshot.isolated_rows, 1, "the leader's");
    assert!(
        run.metrics
            .contains("sluice_write_isolated_rows_total{reason=\"batch_failed\"} 1"),
        "{}",
        run.metrics
    );
}

#[tokio::test]
async fn halves_that_fail_again_end_with_their_members_alone() {
    // (1),(2),(3) fails; (2),(3) fails too (the server hangs up on the
    // leader's statement afterwards, which is enough here): (2) and (3)
    // are single rows and run alone.
    let server = [
        hex(OPENED),
        hex(DUPLICATE_MIDWAY),
        hex(ROLLED_BACK),
        hex(OPENED),
        hex(DUPLICATE_MIDWAY),
        hex(ROLLED_BACK),
        hex(ALONE_OK),
    ]
    .concat();
    let run = run(Some(&server), 2, WITHOUT_ROW_NUMBERS).await;
    run.result.as_ref().unwrap();
    assert_eq!(queries(&run.server_got).len(), 7);
    assert_eq!(
        run.members,
        [Some(MemberResult::RunAlone(Isolation::BatchFailed)); 2]
    );
    assert_eq!(run.client_got, hex(ALONE_OK));
    assert_eq!(run.snapshot.batches, 0);
    assert_eq!(run.snapshot.batch_failures, 2);
}

#[tokio::test]
async fn a_connection_lost_after_the_batch_was_sent_leaves_every_row_unknown() {
    // The server answered the INSERT, then went before the commit's answer.
    let server = [hex(OPENED), hex(RETURNED_2_3_4)].concat();
    let run = run(Some(&server), 2, WITHOUT_ROW_NUMBERS).await;
    let error = run.result.unwrap_err();
    assert_eq!(error.peer(), Some(Peer::Backend));
    assert_eq!(run.members, [Some(MemberResult::Unknown); 2]);
    let err = ErrInfo::parse(&run.client_got[4..]).unwrap();
    assert_eq!(err.code, 1180);
    assert_eq!(run.snapshot.outcome_unknown, 3);
    assert_eq!(run.snapshot.batches, 0);
}

#[tokio::test]
async fn a_batch_that_could_not_be_sent_is_not_applied_and_members_run_alone() {
    let run = run(None, 2, WITHOUT_ROW_NUMBERS).await;
    let error = run.result.unwrap_err();
    assert_eq!(error.peer(), Some(Peer::Backend));
    assert_eq!(
        run.members,
        [Some(MemberResult::RunAlone(Isolation::NotSent)); 2]
    );
    assert!(
        run.client_got.is_empty(),
        "the session ends; no answer was made up"
    );
    assert_eq!(run.snapshot.batch_failures, 1);
    assert_eq!(run.snapshot.outcome_unknown, 0);
}

#[tokio::test]
async fn a_leader_alone_in_its_batch_runs_its_own_statement() {
    let run = run(Some(&hex(ALONE_OK)), 0, WITHOUT_ROW_NUMBERS).await;
    run.result.as_ref().unwrap();
    assert_eq!(queries(&run.server_got), ["INSERT INTO t (v) VALUES (1)"]);
    assert_eq!(run.client_got, hex(ALONE_OK));
    assert_eq!(run.snapshot.batches, 0);
    assert_eq!(run.snapshot.batch_failures, 0);
}

#[tokio::test]
async fn a_duplicate_costs_its_own_row_not_the_batch() {
    let server = [
        hex(OPENED),
        hex(RETURNED_SKIPPING),
        hex(LEFT_OPEN),
        hex(REPORT_ROW_2),
        hex(COMMITTED_AFTER_REPORT),
    ]
    .concat();
    let run = run(Some(&server), 2, WITH_ROW_NUMBERS).await;
    run.result.as_ref().unwrap();
    let sent = queries(&run.server_got);
    assert_eq!(
        sent[1],
        "INSERT IGNORE INTO t (v) VALUES (1),(2),(3) RETURNING `id`, LAST_INSERT_ID() "
    );
    assert_eq!(
        sent[2],
        "IF @@warning_count = 0 THEN COMMIT AND NO CHAIN NO RELEASE; END IF"
    );
    assert!(sent[3].starts_with("BEGIN NOT ATOMIC"), "{}", sent[3]);
    assert!(sent[3].contains("GET DIAGNOSTICS CONDITION i e = MYSQL_ERRNO, r = ROW_NUMBER"));
    assert_eq!(sent[4], "COMMIT AND NO CHAIN NO RELEASE");
    assert_eq!(
        sent.len(),
        5,
        "no rollback, nobody re-run on this connection"
    );
    assert_second_row_skipped(&run);
}

#[tokio::test]
async fn a_batch_whose_conditions_are_all_skipped_rows_commits_in_its_report() {
    let server = [
        hex(OPENED),
        hex(RETURNED_SKIPPING),
        hex(LEFT_OPEN),
        hex(REPORT_COMMITTED_ROW_2),
    ]
    .concat();
    let run = run(Some(&server), 2, WITH_ROW_NUMBERS).await;
    run.result.as_ref().unwrap();
    let sent = queries(&run.server_got);
    assert!(
        sent[3]
            .contains("SET c = w = n AND (n = 0 OR good = 1); SELECT w, n, s, c; IF c THEN COMMIT"),
        "{}",
        sent[3]
    );
    assert!(sent[3].contains("OR r > 3 THEN"), "{}", sent[3]);
    assert_eq!(sent.len(), 4, "no COMMIT of its own: {sent:?}");
    assert_second_row_skipped(&run);
}

/// A batch of rows 1, 100 (taken) and 3, led by the first: the skipped
/// row's member runs alone, the other has its id, the leader gets 2, and
/// the batch counts as committed with two rows.
fn assert_second_row_skipped(run: &Run) {
    assert_eq!(
        run.members,
        [
            Some(MemberResult::RunAlone(Isolation::Skipped(1062))),
            Some(MemberResult::Inserted {
                insert_id: 3,
                rows: 1
            })
        ]
    );
    let ok = OkInfo::parse(&run.client_got[4..], false).unwrap();
    assert_eq!((ok.affected_rows, ok.last_insert_id), (1, 2));
    assert_eq!(run.snapshot.batches, 1);
    assert_eq!(run.snapshot.rows_batched, 2);
    assert_eq!(run.snapshot.batch_failures, 0);
}

#[tokio::test]
async fn a_skipped_leader_runs_alone_and_keeps_its_last_insert_id() {
    let server = [
        hex(OPENED),
        hex(RETURNED_FIRST_SKIPPED),
        hex(LEFT_OPEN),
        hex(REPORT_ROW_1),
        hex(COMMITTED_AFTER_REPORT),
        hex(ID_SET),
        hex(ALONE_DUPLICATE),
    ]
    .concat();
    let run = run(Some(&server), 2, WITH_ROW_NUMBERS).await;
    run.result.as_ref().unwrap();
    assert_eq!(run.members, inserted(&[8, 9]));
    let sent = queries(&run.server_got);
    assert_eq!(sent.len(), 7);
    // The batch moved LAST_INSERT_ID() to 8; the leader's statement fails
    // alone, so the value from before the batch is put back first (only
    // that: the INSERT sets ROW_COUNT() and the warnings itself).
    assert_eq!(sent[5], "DO LAST_INSERT_ID(5)");
    assert_eq!(sent[6], "INSERT INTO t (v) VALUES (1)");
    // The leader's client gets the server's own error, byte for byte.
    assert_eq!(run.client_got, hex(ALONE_DUPLICATE));
    assert_eq!(run.snapshot.rows_batched, 2);
    assert_eq!(run.snapshot.isolated_rows, 1);
}

#[tokio::test]
async fn a_server_without_row_numbers_never_gets_an_ignore_batch() {
    let server = [hex(OPENED), hex(RETURNED_2_3_4), hex(COMMITTED)].concat();
    let run = run(Some(&server), 2, WITHOUT_ROW_NUMBERS).await;
    run.result.as_ref().unwrap();
    let sent = queries(&run.server_got);
    assert!(!sent[1].contains("IGNORE"), "{}", sent[1]);
    assert!(!sent[2].contains("DIAGNOSTICS"), "{}", sent[2]);
}

#[tokio::test]
async fn a_clean_ignore_batch_commits_without_parsing_a_report() {
    let server = [hex(OPENED), hex(RETURNED_2_3_4), hex(COMMITTED)].concat();
    let run = run(Some(&server), 2, WITH_ROW_NUMBERS).await;
    run.result.as_ref().unwrap();
    let sent = queries(&run.server_got);
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(sent[1].starts_with("INSERT IGNORE"), "{}", sent[1]);
    // The server parses every branch of what it is sent: the settling
    // statement of a clean batch holds nothing but its commit.
    assert_eq!(
        sent[2],
        "IF @@warning_count = 0 THEN COMMIT AND NO CHAIN NO RELEASE; END IF"
    );
    assert_eq!(run.snapshot.batches, 1);
    assert_eq!(run.snapshot.rows_batched, 3);
}

#[tokio::test]
async fn a_connection_lost_before_the_report_answered_leaves_every_row_unknown() {
    // The report may have committed the batch: nobody is told either way.
    let server = [hex(OPENED), hex(RETURNED_SKIPPING), hex(LEFT_OPEN)].concat();
    let run = run(Some(&server), 2, WITH_ROW_NUMBERS).await;
    let error = run.result.unwrap_err();
    assert_eq!(error.peer(), Some(Peer::Backend));
    assert_eq!(queries(&run.server_got).len(), 4, "the report was sent");
    assert_eq!(run.members, [Some(MemberResult::Unknown); 2]);
    let err = ErrInfo::parse(&run.client_got[4..]).unwrap();
    assert_eq!(err.code, 1180);
    assert_eq!(run.snapshot.batches, 0);
}

#[tokio::test]
async fn an_ignore_batch_whose_insert_failed_is_rolled_back_then_halved() {
    // The INSERT fails outright (an error no IGNORE turns into a skip):
    // the settling IF leaves the transaction open, Sluice rolls it back,
    // and the halves run as on a server that cannot name rows.
    let server = [
        hex(OPENED),
        hex(DUPLICATE_MIDWAY),
        hex(LEFT_OPEN),
        hex(ROLLED_BACK_BY_SLUICE),
        hex(OPENED),
        hex(RETURNED_3_4),
        hex(COMMITTED),
        hex(ALONE_OK),
    ]
    .concat();
    let run = run(Some(&server), 2, WITH_ROW_NUMBERS).await;
    run.result.as_ref().unwrap();
    let sent = queries(&run.server_got);
    assert_eq!(sent.len(), 8, "{sent:?}");
    assert_eq!(sent[3], "ROLLBACK AND NO CHAIN NO RELEASE");
    assert!(
        !sent.iter().any(|q| q.contains("DIAGNOSTICS")),
        "no report of a failed INSERT"
    );
    assert_eq!(run.members, inserted(&[3, 4]));
    assert_eq!(run.client_got, hex(ALONE_OK));
    assert_eq!(run.snapshot.batch_failures, 1);
}

#[tokio::test]
async fn a_key_whose_batches_mostly_skip_rows_sends_its_report_with_the_insert() {
    let server = [
        hex(OPENED),
        hex(RETURNED_SKIPPING),
        hex(REPORT_COMMITTED_ROW_2),
    ]
    .concat();
    let run = run_after(Some(&server), 2, WITH_ROW_NUMBERS, 16).await;
    run.result.as_ref().unwrap();
    let sent = queries(&run.server_got);
    assert_eq!(
        sent.len(),
        3,
        "one write, no IF and no second trip: {sent:?}"
    );
    assert!(sent[1].starts_with("INSERT IGNORE"), "{}", sent[1]);
    assert!(sent[2].starts_with("BEGIN NOT ATOMIC"), "{}", sent[2]);
    assert!(sent[2].contains("OR r > 3 THEN"), "{}", sent[2]);
    assert_second_row_skipped(&run);
}

#[tokio::test]
async fn a_clean_batch_of_such_a_key_is_committed_by_its_report() {
    let server = [
        hex(OPENED),
        hex(RETURNED_11_12_13),
        hex(REPORT_CLEAN_COMMITTED),
    ]
    .concat();
    let run = run_after(Some(&server), 2, WITH_ROW_NUMBERS, 16).await;
    run.result.as_ref().unwrap();
    assert_eq!(queries(&run.server_got).len(), 3);
    assert_eq!(run.members, inserted(&[12, 13]));
    let ok = OkInfo::parse(&run.client_got[4..], false).unwrap();
    assert_eq!((ok.affected_rows, ok.last_insert_id), (1, 11));
    assert_eq!(run.snapshot.batches, 1);
    assert_eq!(run.snapshot.rows_batched, 3);
}

#[tokio::test]
async fn a_report_sent_with_the_insert_that_leaves_it_open_is_committed_after() {
    // The report did not commit (as for a batch with a member of several
    // rows): Sluice commits once it has read which row was skipped.
    let server = [
        hex(OPENED),
        hex(RETURNED_SKIPPING),
        hex(REPORT_ROW_2),
        hex(COMMITTED_AFTER_REPORT),
    ]
    .concat();
    let run = run_after(Some(&server), 2, WITH_ROW_NUMBERS, 16).await;
    run.result.as_ref().unwrap();
    let sent = queries(&run.server_got);
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert_eq!(sent[3], "COMMIT AND NO CHAIN NO RELEASE");
    assert_second_row_skipped(&run);
}

#[tokio::test]
async fn a_failed_insert_with_its_report_sent_is_rolled_back_then_halved() {
    // The report's answer to a failed INSERT is never read as a verdict
    // on rows: the batch is rolled back and halved.
    let server = [
        hex(OPENED),
        hex(DUPLICATE_MIDWAY),
        hex(REPORT_ROW_2),
        hex(ROLLED_BACK_BY_SLUICE),
        hex(OPENED),
        hex(RETURNED_3_4),
        hex(REPORT_CLEAN_COMMITTED),
        hex(ALONE_OK),
    ]
    .concat();
    let run = run_after(Some(&server), 2, WITH_ROW_NUMBERS, 16).await;
    run.result.as_ref().unwrap();
    let sent = queries(&run.server_got);
    assert_eq!(sent[3], "ROLLBACK AND NO CHAIN NO RELEASE", "{sent:?}");
    assert_eq!(run.members, inserted(&[3, 4]));
    assert_eq!(run.client_got, hex(ALONE_OK));
    assert_eq!(run.snapshot.batch_failures, 1);
}

#[tokio::test]
async fn a_connection_lost_before_the_report_sent_with_the_insert_answered_is_unknown() {
    let server = [hex(OPENED), hex(RETURNED_SKIPPING)].concat();
    let run = run_after(Some(&server), 2, WITH_ROW_NUMBERS, 16).await;
    assert!(run.result.is_err());
    assert_eq!(run.members, [Some(MemberResult::Unknown); 2]);
    assert_eq!(run.snapshot.outcome_unknown, 3);
}
