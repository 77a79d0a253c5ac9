//! Statements Sluice itself runs on a session's backend connection (table
//! facts, session fingerprint, a batch, a reconcile). Their responses are
//! read here and never reach the client.

use sluice_protocol::caps::SessionCaps;
use sluice_protocol::command::{code, ResponseShape};
use sluice_protocol::lenenc::Reader;
use sluice_protocol::ok::{ErrInfo, OkInfo};
use sluice_protocol::packet::{encode_packet, MAX_PAYLOAD_LEN};
use sluice_protocol::response::{Event, Next, ResponseTracker};
use sluice_protocol::{ProtocolError, StatusFlags};

use crate::error::{Peer, SessionError};
use crate::io::PacketStream;

/// A text-protocol row: one optional value per column.
pub(crate) type TextRow = Vec<Option<Vec<u8>>>;

/// An error the server returned for an internal statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerError {
    pub(crate) code: u16,
    pub(crate) sql_state: [u8; 5],
    pub(crate) message: String,
}

/// What an internal statement returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum QueryResult {
    Ok {
        affected_rows: u64,
        last_insert_id: u64,
        status: StatusFlags,
        warnings: u16,
    },
    Rows {
        rows: Vec<TextRow>,
        status: StatusFlags,
        warnings: u16,
    },
    Err(ServerError),
}

/// Frames `sql` as a COM_QUERY and appends it to `out`.
pub(crate) fn encode_query(out: &mut Vec<u8>, sql: &[u8]) {
    let mut payload = Vec::with_capacity(sql.len() + 1);
    payload.push(code::QUERY);
    payload.extend_from_slice(sql);
    encode_packet(out, 0, &payload);
}

/// Reads the whole response to one internal COM_QUERY.
pub(crate) async fn read_result(
    backend: &mut PacketStream,
    caps: SessionCaps,
) -> Result<QueryResult, SessionError> {
    let mut tracker = ResponseTracker::new(ResponseShape::Query, caps);
    let mut rows = Vec::new();
    let mut outcome = None;
    loop {
        let packet = backend.read_packet().await?;
        if packet.header.payload_len == MAX_PAYLOAD_LEN {
            return Err(SessionError::protocol(Peer::Backend)(
                ProtocolError::TooLarge {
                    len: MAX_PAYLOAD_LEN,
                    limit: MAX_PAYLOAD_LEN - 1,
                },
            ));
        }
        let payload = packet.payload();
        let observed = tracker
            .on_packet(payload, payload.len())
            .map_err(SessionError::protocol(Peer::Backend))?;
        match observed.event {
            Event::Row => {
                rows.push(decode_text_row(payload).map_err(SessionError::protocol(Peer::Backend))?)
            }
            // A compound statement's result set is followed by the OK
            // that ends the statement: the rows are the answer.
            Event::Ok if matches!(outcome, Some(QueryResult::Rows { .. })) => {}
            Event::Ok => {
                let ok = OkInfo::parse(payload, caps.session_track())
                    .map_err(SessionError::protocol(Peer::Backend))?;
                outcome = Some(QueryResult::Ok {
                    affected_rows: ok.affected_rows,
                    last_insert_id: ok.last_insert_id,
                    status: ok.status,
                    warnings: ok.warnings,
                });
            }
            Event::ResultSetEnd => {
                let (status, warnings) =
                    sluice_protocol::ok::terminator_status(payload, caps.session_track())
                        .map_err(SessionError::protocol(Peer::Backend))?;
                outcome = Some(QueryResult::Rows {
                    rows: std::mem::take(&mut rows),
                    status,
                    warnings,
                });
            }
            Event::Err => {
                let err = ErrInfo::parse(payload).map_err(SessionError::protocol(Peer::Backend))?;
                let mut sql_state = *b"HY000";
                if let Some(state) = err.sql_state {
                    sql_state.copy_from_slice(state);
                }
                outcome = Some(QueryResult::Err(ServerError {
                    code: err.code,
                    sql_state,
                    message: String::from_utf8_lossy(err.message).into_owned(),
                }));
            }
            Event::Prepared(_) | Event::Other => {}
        }
        match observed.next {
            Next::ServerPacket => {}
            Next::Done => break,
            other => {
                return Err(SessionError::protocol(Peer::Backend)(
                    ProtocolError::Malformed {
                        what: "internal query response",
                        detail: format!("unexpected {other:?}"),
                    },
                ))
            }
        }
    }
    outcome.ok_or_else(|| {
        SessionError::protocol(Peer::Backend)(ProtocolError::Malformed {
            what: "internal query response",
            detail: "no final packet".into(),
        })
    })
}

/// Runs one internal statement and reads its result.
pub(crate) async fn query(
    backend: &mut PacketStream,
    caps: SessionCaps,
    sql: &[u8],
) -> Result<QueryResult, SessionError> {
    let mut out = Vec::new();
    encode_query(&mut out, sql);
    backend.write_all(&out).await?;
    read_result(backend, caps).await
}

fn decode_text_row(payload: &[u8]) -> Result<TextRow, ProtocolError> {
    let mut r = Reader::new(payload, "text row");
    let mut row = Vec::new();
    while !r.is_empty() {
        if r.rest()[0] == 0xFB {
            r.u8()?;
            row.push(None);
        } else {
            row.push(Some(r.lenenc_bytes()?.to_vec()));
        }
    }
    Ok(row)
}

/// Quotes an identifier with backticks for an internal statement.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A string literal that reads back as exactly `bytes` in every sql_mode
/// (hex, so no escaping rules apply).
pub(crate) fn hex_literal(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(3 + 2 * bytes.len());
    s.push_str("X'");
    for b in bytes {
        s.push_str(&format!("{b:02X}"));
    }
    s.push('\'');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rows() {
        assert_eq!(
            decode_text_row(&[1, b'a', 0xFB, 0]).unwrap(),
            vec![Some(b"a".to_vec()), None, Some(vec![])]
        );
        assert!(decode_text_row(&[5, b'a']).is_err());
    }

    #[test]
    fn literals() {
        assert_eq!(quote_ident("a`b"), "`a``b`");
        assert_eq!(hex_literal(b"\x00'"), "X'0027'");
    }
}
