//! Commands a client sends after login, parsed into borrowed views of the
//! payload, and the shape of the response each one gets.

use crate::lenenc::Reader;
use crate::ProtocolError;

/// Command bytes (first byte of a command packet).
#[allow(missing_docs)]
pub mod code {
    pub const QUIT: u8 = 0x01;
    pub const INIT_DB: u8 = 0x02;
    pub const QUERY: u8 = 0x03;
    pub const FIELD_LIST: u8 = 0x04;
    pub const STATISTICS: u8 = 0x09;
    pub const PROCESS_KILL: u8 = 0x0C;
    pub const PING: u8 = 0x0E;
    pub const CHANGE_USER: u8 = 0x11;
    pub const BINLOG_DUMP: u8 = 0x12;
    pub const STMT_PREPARE: u8 = 0x16;
    pub const STMT_EXECUTE: u8 = 0x17;
    pub const STMT_SEND_LONG_DATA: u8 = 0x18;
    pub const STMT_CLOSE: u8 = 0x19;
    pub const STMT_RESET: u8 = 0x1A;
    pub const SET_OPTION: u8 = 0x1B;
    pub const STMT_FETCH: u8 = 0x1C;
    pub const BINLOG_DUMP_GTID: u8 = 0x1E;
    pub const RESET_CONNECTION: u8 = 0x1F;
    pub const STMT_BULK_EXECUTE: u8 = 0xFA;
}

/// A command, borrowing from its packet payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// COM_QUIT: the client is leaving; no response.
    Quit,
    /// COM_INIT_DB with the database name.
    InitDb(&'a [u8]),
    /// COM_QUERY with the statement text.
    Query(&'a [u8]),
    /// COM_FIELD_LIST (deprecated column listing).
    FieldList,
    /// COM_STATISTICS: answered by one plain-text packet.
    Statistics,
    /// COM_PROCESS_KILL.
    ProcessKill,
    /// COM_PING.
    Ping,
    /// COM_CHANGE_USER: re-authentication.
    ChangeUser,
    /// COM_BINLOG_DUMP / COM_BINLOG_DUMP_GTID: the connection turns into a
    /// replication stream.
    BinlogDump,
    /// COM_STMT_PREPARE with the statement text.
    StmtPrepare(&'a [u8]),
    /// COM_STMT_EXECUTE.
    StmtExecute {
        /// Statement id.
        stmt_id: u32,
        /// Cursor flags.
        flags: u8,
        /// Everything after the iteration count: null bitmap, types, values.
        params: &'a [u8],
    },
    /// COM_STMT_SEND_LONG_DATA: no response.
    StmtSendLongData {
        /// Statement id.
        stmt_id: u32,
    },
    /// COM_STMT_CLOSE: no response.
    StmtClose {
        /// Statement id.
        stmt_id: u32,
    },
    /// COM_STMT_RESET.
    StmtReset {
        /// Statement id.
        stmt_id: u32,
    },
    /// COM_SET_OPTION.
    SetOption,
    /// COM_STMT_FETCH.
    StmtFetch {
        /// Statement id.
        stmt_id: u32,
    },
    /// COM_RESET_CONNECTION.
    ResetConnection,
    /// MariaDB's COM_STMT_BULK_EXECUTE.
    StmtBulkExecute {
        /// Statement id.
        stmt_id: u32,
    },
    /// Any other command; the server answers with one packet (usually an
    /// error for commands it does not know).
    Other(u8),
}

/// How the server answers a command, which decides how the response
/// tracker reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseShape {
    /// No response at all.
    None,
    /// Exactly one packet.
    Single,
    /// OK, ERR, local-infile request or text result sets (COM_QUERY).
    Query,
    /// OK, ERR or binary result sets (COM_STMT_EXECUTE, bulk execute).
    Execute,
    /// COM_STMT_PREPARE's OK with parameter and column definitions.
    Prepare,
    /// Rows of an open cursor (COM_STMT_FETCH).
    Fetch,
    /// Column definitions up to a terminator (COM_FIELD_LIST).
    FieldList,
    /// An authentication exchange (COM_CHANGE_USER).
    Auth,
    /// A stream that never returns to the command phase.
    Stream,
}

impl<'a> Command<'a> {
    /// Parses a complete command payload.
    pub fn parse(payload: &'a [u8]) -> Result<Command<'a>, ProtocolError> {
        let mut r = Reader::new(payload, "command");
        let cmd = r.u8()?;
        let command = match cmd {
            code::QUIT => Command::Quit,
            code::INIT_DB => Command::InitDb(r.rest()),
            code::QUERY => Command::Query(r.rest()),
            code::FIELD_LIST => Command::FieldList,
            code::STATISTICS => Command::Statistics,
            code::PROCESS_KILL => Command::ProcessKill,
            code::PING => Command::Ping,
            code::CHANGE_USER => Command::ChangeUser,
            code::BINLOG_DUMP | code::BINLOG_DUMP_GTID => Command::BinlogDump,
            code::STMT_PREPARE => Command::StmtPrepare(r.rest()),
            code::STMT_EXECUTE => {
                let stmt_id = r.u32()?;
                let flags = r.u8()?;
                let _iterations = r.u32()?;
                Command::StmtExecute {
                    stmt_id,
                    flags,
                    params: r.rest(),
                }
            }
            code::STMT_SEND_LONG_DATA => Command::StmtSendLongData { stmt_id: r.u32()? },
            code::STMT_CLOSE => Command::StmtClose { stmt_id: r.u32()? },
            code::STMT_RESET => Command::StmtReset { stmt_id: r.u32()? },
            code::SET_OPTION => Command::SetOption,
            code::STMT_FETCH => Command::StmtFetch { stmt_id: r.u32()? },
            code::RESET_CONNECTION => Command::ResetConnection,
            code::STMT_BULK_EXECUTE => Command::StmtBulkExecute { stmt_id: r.u32()? },
            other => Command::Other(other),
        };
        Ok(command)
    }

    /// How the server answers this command.
    pub fn response_shape(&self) -> ResponseShape {
        response_shape(self.code())
    }

    /// The command byte.
    pub fn code(&self) -> u8 {
        match self {
            Command::Quit => code::QUIT,
            Command::InitDb(_) => code::INIT_DB,
            Command::Query(_) => code::QUERY,
            Command::FieldList => code::FIELD_LIST,
            Command::Statistics => code::STATISTICS,
            Command::ProcessKill => code::PROCESS_KILL,
            Command::Ping => code::PING,
            Command::ChangeUser => code::CHANGE_USER,
            Command::BinlogDump => code::BINLOG_DUMP,
            Command::StmtPrepare(_) => code::STMT_PREPARE,
            Command::StmtExecute { .. } => code::STMT_EXECUTE,
            Command::StmtSendLongData { .. } => code::STMT_SEND_LONG_DATA,
            Command::StmtClose { .. } => code::STMT_CLOSE,
            Command::StmtReset { .. } => code::STMT_RESET,
            Command::SetOption => code::SET_OPTION,
            Command::StmtFetch { .. } => code::STMT_FETCH,
            Command::ResetConnection => code::RESET_CONNECTION,
            Command::StmtBulkExecute { .. } => code::STMT_BULK_EXECUTE,
            Command::Other(c) => *c,
        }
    }
}

/// How the server answers the command with this byte.
pub fn response_shape(command: u8) -> ResponseShape {
    match command {
        code::QUIT | code::STMT_SEND_LONG_DATA | code::STMT_CLOSE => ResponseShape::None,
        code::QUERY => ResponseShape::Query,
        code::STMT_EXECUTE | code::STMT_BULK_EXECUTE => ResponseShape::Execute,
        code::STMT_PREPARE => ResponseShape::Prepare,
        code::STMT_FETCH => ResponseShape::Fetch,
        code::FIELD_LIST => ResponseShape::FieldList,
        code::CHANGE_USER => ResponseShape::Auth,
        code::BINLOG_DUMP | code::BINLOG_DUMP_GTID => ResponseShape::Stream,
        _ => ResponseShape::Single,
    }
}

/// Stable lower-case name of a command byte, for logs and metric labels.
pub fn command_name(command: u8) -> &'static str {
    match command {
        code::QUIT => "quit",
        code::INIT_DB => "init_db",
        code::QUERY => "query",
        code::FIELD_LIST => "field_list",
        code::STATISTICS => "statistics",
        code::PROCESS_KILL => "process_kill",
        code::PING => "ping",
        code::CHANGE_USER => "change_user",
        code::BINLOG_DUMP | code::BINLOG_DUMP_GTID => "binlog_dump",
        code::STMT_PREPARE => "stmt_prepare",
        code::STMT_EXECUTE => "stmt_execute",
        code::STMT_SEND_LONG_DATA => "stmt_send_long_data",
        code::STMT_CLOSE => "stmt_close",
        code::STMT_RESET => "stmt_reset",
        code::SET_OPTION => "set_option",
        code::STMT_FETCH => "stmt_fetch",
        code::RESET_CONNECTION => "reset_connection",
        code::STMT_BULK_EXECUTE => "stmt_bulk_execute",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(
            Command::parse(b"\x03SELECT 1").unwrap(),
            Command::Query(b"SELECT 1")
        );
        let exec = [0x17, 7, 0, 0, 0, 1, 1, 0, 0, 0, 0xAA];
        assert_eq!(
            Command::parse(&exec).unwrap(),
            Command::StmtExecute {
                stmt_id: 7,
                flags: 1,
                params: &[0xAA]
            }
        );
        assert!(Command::parse(&[0x17, 7, 0]).is_err());
        assert!(Command::parse(&[]).is_err());
        assert_eq!(Command::parse(&[0x20]).unwrap(), Command::Other(0x20));
    }

    #[test]
    fn shapes() {
        assert_eq!(response_shape(code::STMT_CLOSE), ResponseShape::None);
        assert_eq!(response_shape(code::PING), ResponseShape::Single);
        assert_eq!(
            response_shape(code::STMT_BULK_EXECUTE),
            ResponseShape::Execute
        );
    }
}
