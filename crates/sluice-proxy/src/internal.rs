//! Statements Sluice itself runs on a session's backend connection (table
//! facts, session fingerprint, a batch, a reconcile). Their responses are
//! read here and never reach the client.

use bytes::Bytes;
use sluice_protocol::caps::SessionCaps;
use sluice_protocol::command::{code, ResponseShape};
use sluice_protocol::lenenc::Reader;
use sluice_protocol::ok::{ErrInfo, OkInfo};
use sluice_protocol::packet::{encode_packet, MAX_PAYLOAD_LEN};
use sluice_protocol::response::{Event, Next, ResponseTracker};
use sluice_protocol::{ProtocolError, StatusFlags};

use crate::error::{Peer, SessionError};
use crate::io::PacketStream;

/// A text-protocol row, kept as the packet's payload (checked to hold
/// whole cells when it arrived) and read cell by cell: the leader gets
/// one per batched row, so it costs no allocation of its own.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct TextRow {
    payload: Bytes,
}

impl TextRow {
    fn decode(payload: Bytes) -> Result<TextRow, ProtocolError> {
        let row = TextRow { payload };
        let mut cells = row.reader();
        while !cells.is_empty() {
            next_cell(&mut cells)?;
        }
        Ok(row)
    }

    fn reader(&self) -> Reader<'_> {
        Reader::new(&self.payload, "text row")
    }

    /// The row's values in column order (`None` for SQL NULL).
    pub(crate) fn cells(&self) -> impl Iterator<Item = Option<&[u8]>> {
        let mut cells = self.reader();
        std::iter::from_fn(move || {
            if cells.is_empty() {
                return None;
            }
            // Checked in `decode`: every cell is whole.
            next_cell(&mut cells).ok()
        })
    }

    /// The value of column `index`: `None` past the last column, `Some(None)`
    /// for SQL NULL.
    pub(crate) fn cell(&self, index: usize) -> Option<Option<&[u8]>> {
        self.cells().nth(index)
    }

    /// Column `index` as text, when it is there, not NULL and UTF-8.
    pub(crate) fn text(&self, index: usize) -> Option<&str> {
        std::str::from_utf8(self.cell(index)??).ok()
    }

    /// Column `index` as a decimal integer (MariaDB's text form of an
    /// integer column: an optional `-` and digits), when it is one that
    /// fits an `i64`.
    pub(crate) fn integer(&self, index: usize) -> Option<i64> {
        let text = self.cell(index)??;
        let (negative, digits) = match text.split_first()? {
            (b'-', rest) => (true, rest),
            _ => (false, text),
        };
        if digits.is_empty() {
            return None;
        }
        // Accumulated on the negative side, which also holds i64::MIN.
        let mut value: i64 = 0;
        for &digit in digits {
            if !digit.is_ascii_digit() {
                return None;
            }
            value = value
                .checked_mul(10)?
                .checked_sub(i64::from(digit - b'0'))?;
        }
        if negative {
            Some(value)
        } else {
            value.checked_neg()
        }
    }
}

/// Builds the row the server would send with these values.
#[cfg(test)]
impl From<Vec<Option<Vec<u8>>>> for TextRow {
    fn from(cells: Vec<Option<Vec<u8>>>) -> TextRow {
        let mut payload = Vec::new();
        for cell in cells {
            match cell {
                Some(value) => {
                    sluice_protocol::lenenc::put_lenenc_bytes(&mut payload, &value);
                }
                None => payload.push(0xFB),
            }
        }
        TextRow {
            payload: payload.into(),
        }
    }
}

impl std::fmt::Debug for TextRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.cells().map(|cell| cell.map(String::from_utf8_lossy)))
            .finish()
    }
}

fn next_cell<'a>(cells: &mut Reader<'a>) -> Result<Option<&'a [u8]>, ProtocolError> {
    if cells.rest().first() == Some(&0xFB) {
        cells.u8()?;
        Ok(None)
    } else {
        cells.lenenc_bytes().map(Some)
    }
}

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
            Event::Row => rows.push(
                TextRow::decode(packet.into_payload())
                    .map_err(SessionError::protocol(Peer::Backend))?,
            ),
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
        let row = TextRow::decode(Bytes::from_static(&[1, b'a', 0xFB, 0])).unwrap();
        assert_eq!(
            row.cells().collect::<Vec<_>>(),
            vec![Some(b"a".as_slice()), None, Some(b"".as_slice())]
        );
        assert_eq!(row.cell(0), Some(Some(b"a".as_slice())));
        assert_eq!(row.cell(1), Some(None));
        assert_eq!(row.cell(3), None);
        assert_eq!(row.text(0), Some("a"));
        assert_eq!(row.text(1), None);
        assert_eq!(
            TextRow::from(vec![Some(b"a".to_vec()), None, Some(vec![])]),
            row
        );
        assert!(TextRow::decode(Bytes::from_static(&[5, b'a'])).is_err());
        assert!(TextRow::decode(Bytes::from_static(&[0xFC, 1])).is_err());
    }

    #[test]
    fn integer_cells_read_as_the_standard_parser_does() {
        let cases = [
            "0",
            "7",
            "-7",
            "42",
            "000123",
            "-0",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "-9223372036854775809",
            "18446744073709551615",
            "",
            "-",
            "+5",
            "1.5",
            "1e3",
            " 1",
            "12a",
            "--1",
        ];
        for text in cases {
            let row = TextRow::from(vec![Some(text.as_bytes().to_vec())]);
            assert_eq!(
                row.integer(0),
                text.parse::<i64>().ok().filter(|_| !text.starts_with('+')),
                "{text:?}"
            );
        }
        let null = TextRow::from(vec![None]);
        assert_eq!(null.integer(0), None);
        assert_eq!(null.integer(1), None);
    }

    #[test]
    fn literals() {
        assert_eq!(quote_ident("a`b"), "`a``b`");
        assert_eq!(hex_literal(b"\x00'"), "X'0027'");
    }
}
