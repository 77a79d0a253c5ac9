//! One command as the session loop read it: the client's packet, the
//! command parsed from it once, and (when batching is on) the
//! classification of the SQL text it runs, made once with the session's
//! escape mode and quoting. Every handler reads this one value; and
//! [`route`] says which handler a statement goes to.

use bytes::Bytes;
use sluice_classifier::{Classification, Kind, ReadKind};
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

/// Where a statement goes, from its command and its classification
/// (which exists only when the session batches).
pub(crate) fn route(statement: &Statement<'_>) -> Route {
    let Some(classification) = &statement.classification else {
        return Route::Relay;
    };
    match statement.command {
        Some(Command::Query(_)) if classification.kind == Kind::Read(ReadKind::SluiceStatus) => {
            Route::Admin
        }
        Some(Command::Query(_) | Command::StmtExecute { .. }) => Route::Batch,
        _ => Route::Relay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_classifier::Classifier;

    fn packet(payload: &[u8]) -> Bytes {
        let mut bytes = Vec::new();
        sluice_protocol::packet::encode_packet(&mut bytes, 0, payload);
        Bytes::from(bytes)
    }

    /// What the session loop does: parse, then classify a query's text
    /// (a prepared statement's text would come from the session state).
    fn routed(bytes: &Bytes, batching: bool) -> Route {
        let mut statement = Statement::parse(bytes);
        if batching {
            if let Some(Command::Query(sql)) = statement.command {
                statement.classification = Some(Classifier::default().classify(sql));
            }
            if let Some(Command::StmtExecute { .. }) = statement.command {
                statement.classification =
                    Some(Classifier::default().classify(b"INSERT INTO t VALUES (?)"));
            }
        }
        route(&statement)
    }

    #[test]
    fn each_command_goes_to_one_handler() {
        let cases: [(&[u8], Route); 7] = [
            (b"\x03SHOW SLUICE STATUS", Route::Admin),
            (b"\x03 show /* ours */ sluice status ;", Route::Admin),
            (b"\x03SELECT 'SHOW SLUICE STATUS'", Route::Batch),
            (b"\x03INSERT INTO t VALUES (1)", Route::Batch),
            (b"\x17\x01\x00\x00\x00\x00\x01\x00\x00\x00", Route::Batch),
            (b"\x0e", Route::Relay),
            (b"\x16SELECT 1", Route::Relay),
        ];
        for (payload, want) in cases {
            let bytes = packet(payload);
            assert_eq!(Statement::parse(&bytes).command_byte(), payload[0]);
            assert_eq!(routed(&bytes, true), want, "{payload:?}");
            assert_eq!(routed(&bytes, false), Route::Relay);
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
        assert!(Statement::parse(&unreadable).command.is_none());
        assert_eq!(routed(&unreadable, true), Route::Relay);
    }
}
