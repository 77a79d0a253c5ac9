//! Text result sets Sluice writes itself (its admin statements), in the
//! layout the session negotiated.

use crate::caps::SessionCaps;
use crate::lenenc::{put_lenenc_bytes, put_lenenc_int};
use crate::ok::EOF_HEADER;
use crate::packet::encode_packet;
use crate::MariadbCapabilities;
use crate::StatusFlags;

/// `MYSQL_TYPE_VAR_STRING`.
const VAR_STRING: u8 = 0xFD;
/// utf8mb4_general_ci.
const UTF8MB4: u16 = 45;

/// Appends a complete text result set of string columns (sequence ids
/// from 1, as the answer to a command) to `out`.
pub fn write_text_result(
    out: &mut Vec<u8>,
    caps: SessionCaps,
    status: StatusFlags,
    columns: &[&str],
    rows: &[Vec<String>],
) {
    let mut seq = 1u8;
    let mut payload = Vec::new();
    put_lenenc_int(&mut payload, columns.len() as u64);
    seq = encode_packet(out, seq, &payload);
    let extended = caps
        .mariadb
        .contains(MariadbCapabilities::MARIADB_CLIENT_EXTENDED_METADATA);
    for name in columns {
        payload.clear();
        column_definition(&mut payload, name, extended);
        seq = encode_packet(out, seq, &payload);
    }
    if !caps.deprecate_eof() {
        seq = encode_packet(out, seq, &eof(status));
    }
    for row in rows {
        payload.clear();
        for value in row {
            put_lenenc_bytes(&mut payload, value.as_bytes());
        }
        seq = encode_packet(out, seq, &payload);
    }
    if caps.deprecate_eof() {
        let mut end = vec![EOF_HEADER, 0, 0];
        end.extend_from_slice(&status.bits().to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        encode_packet(out, seq, &end);
    } else {
        encode_packet(out, seq, &eof(status));
    }
}

fn eof(status: StatusFlags) -> Vec<u8> {
    let mut p = vec![EOF_HEADER, 0, 0];
    p.extend_from_slice(&status.bits().to_le_bytes());
    p
}

fn column_definition(out: &mut Vec<u8>, name: &str, extended_metadata: bool) {
    put_lenenc_bytes(out, b"def");
    put_lenenc_bytes(out, b"");
    put_lenenc_bytes(out, b"");
    put_lenenc_bytes(out, b"");
    put_lenenc_bytes(out, name.as_bytes());
    put_lenenc_bytes(out, b"");
    if extended_metadata {
        put_lenenc_int(out, 0);
    }
    put_lenenc_int(out, 0x0C);
    out.extend_from_slice(&UTF8MB4.to_le_bytes());
    out.extend_from_slice(&1024u32.to_le_bytes());
    out.push(VAR_STRING);
    out.extend_from_slice(&0u16.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&[0, 0]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::ResponseShape;
    use crate::packet::PacketHeader;
    use crate::response::{Event, Next, ResponseTracker};
    use crate::CapabilityFlags;

    /// The response tracker (which follows MariaDB's own result sets)
    /// reads what Sluice writes, row for row, in both EOF layouts.
    #[test]
    fn tracker_reads_it_back() {
        for deprecate in [false, true] {
            let mut flags = CapabilityFlags::CLIENT_PROTOCOL_41;
            if deprecate {
                flags |= CapabilityFlags::CLIENT_DEPRECATE_EOF;
            }
            let caps = SessionCaps {
                flags,
                mariadb: MariadbCapabilities::empty(),
            };
            let mut out = Vec::new();
            let rows = vec![
                vec!["a".to_string(), "1".to_string()],
                vec!["b".into(), "2".into()],
            ];
            write_text_result(
                &mut out,
                caps,
                StatusFlags::SERVER_STATUS_AUTOCOMMIT,
                &["k", "v"],
                &rows,
            );
            let mut tracker = ResponseTracker::new(ResponseShape::Query, caps);
            let mut at = 0;
            let mut seen_rows = 0;
            let mut expected_seq = 1u8;
            loop {
                let h = PacketHeader::parse(&out[at..]).unwrap();
                assert_eq!(h.seq, expected_seq);
                expected_seq += 1;
                let payload = &out[at + 4..at + h.wire_len()];
                at += h.wire_len();
                let o = tracker.on_packet(payload, payload.len()).unwrap();
                if o.event == Event::Row {
                    seen_rows += 1;
                }
                if o.next == Next::Done {
                    break;
                }
            }
            assert_eq!(at, out.len());
            assert_eq!(seen_rows, 2);
        }
    }
}
