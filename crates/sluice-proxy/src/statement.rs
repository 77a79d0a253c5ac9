//! One command as the session loop read it: the client's packet, the
//! command parsed from it once, and (when batching is on) the
//! classification of the SQL text it runs, made once with the session's
//! escape mode and quoting. Every handler reads this one value; and
//! [`route`] says which handler a statement goes to.

use bytes::Bytes;
use sluice_classifier::Classification;
use sluice_protocol::command::{code, Command};
use sluice_protocol::packet::HEADER_LEN;

pub(crate) struct Statement<'p> {
    /// The whole packet, header included, as the client sent it.
    pub(crate) packet: &'p Bytes,
    /// `None` when the packet is not a command Sluice can read; it is
    /// relayed all the same.
    pub(crate) command: Option<Command<'p>>,
    /// The classification of the text a query or an executed prepared
    /// statement runs; `None` when batching is off or there is no text.
    pub(crate) classification: Option<Classification>,
}

impl<'p> Statement<'p> {
    /// Reads the command in `packet`, a whole packet of at least one
    /// payload byte.
    pub(crate) fn parse(packet: &'p Bytes) -> Statement<'p> {
        Statement {
            packet,
            command: packet
                .get(HEADER_LEN..)
                .and_then(|payload| Command::parse(payload).ok()),
            classification: None,
        }
    }

    pub(crate) fn command_byte(&self) -> u8 {
        self.packet.get(HEADER_LEN).copied().unwrap_or(code::QUERY)
    }

    /// A query's text, in the packet (empty for any other command).
    pub(crate) fn sql_text(&self) -> &'p [u8] {
        match self.command {
            Some(Command::Query(sql)) => sql,
            _ => &[],
        }
    }
}

/// Which handler answers a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// `SHOW SLUICE STATUS`, answered by Sluice.
    Admin,
    /// A query or a prepared statement's execution: batching may take it.
    Batch,
    /// Everything else, and everything when batching is off.
    Relay,
}

/// Where `command` goes. `batching` says whether the session batches at
/// all (the admin statement needs batching's counters too).
pub(crate) fn route(command: Option<&Command<'_>>, batching: bool) -> Route {
    if !batching {
        return Route::Relay;
    }
    match command {
        Some(Command::Query(sql)) if sluice_classifier::is_show_sluice_status(sql) => Route::Admin,
        Some(Command::Query(_) | Command::StmtExecute { .. }) => Route::Batch,
        _ => Route::Relay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(payload: &[u8]) -> Bytes {
        let mut bytes = Vec::new();
        sluice_protocol::packet::encode_packet(&mut bytes, 0, payload);
        Bytes::from(bytes)
    }

    #[test]
    fn each_command_goes_to_one_handler() {
        let cases: [(&[u8], Route); 6] = [
            (b"\x03SHOW SLUICE STATUS", Route::Admin),
            (b"\x03SELECT 'SHOW SLUICE STATUS'", Route::Batch),
            (b"\x03INSERT INTO t VALUES (1)", Route::Batch),
            (b"\x17\x01\x00\x00\x00\x00\x01\x00\x00\x00", Route::Batch),
            (b"\x0e", Route::Relay),
            (b"\x16SELECT 1", Route::Relay),
        ];
        for (payload, want) in cases {
            let bytes = packet(payload);
            let statement = Statement::parse(&bytes);
            assert_eq!(statement.command_byte(), payload[0]);
            assert_eq!(route(statement.command.as_ref(), true), want, "{payload:?}");
            assert_eq!(route(statement.command.as_ref(), false), Route::Relay);
        }
    }

    #[test]
    fn a_query_text_is_the_payload_after_its_command_byte() {
        let bytes = packet(b"\x03INSERT INTO t VALUES (1)");
        assert_eq!(
            Statement::parse(&bytes).sql_text(),
            b"INSERT INTO t VALUES (1)"
        );
        let ping = packet(b"\x0e");
        assert_eq!(Statement::parse(&ping).sql_text(), b"");
        let unreadable = packet(b"\x17\x01");
        let statement = Statement::parse(&unreadable);
        assert!(statement.command.is_none());
        assert_eq!(route(statement.command.as_ref(), true), Route::Relay);
    }
}
