//! What Sluice knows about one client session, learned from the server's
//! own reports (status flags, session-state tracking, prepare responses),
//! never from guessing at SQL text. Where something cannot be known, it is
//! reported as unknown, and the batching layer treats unknown as "do not
//! batch".

use std::collections::HashMap;
use std::sync::Arc;

use sluice_protocol::lenenc::Reader;
use sluice_protocol::stmt::ParamType;
use sluice_protocol::StatusFlags;

/// Session-state tracker type for a change of current schema.
const SESSION_TRACK_SCHEMA: u8 = 1;

/// The session's current database as far as Sluice knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// Known: `None` means no database is selected.
    Known(Option<Vec<u8>>),
    /// A statement may have changed it without the server telling.
    Unknown,
}

/// A statement prepared on the session's backend connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedStatement {
    /// Statement text as the client sent it; `None` if it was too large to
    /// keep.
    pub sql: Option<Arc<[u8]>>,
    /// Number of `?` parameters.
    pub num_params: u16,
    /// Number of result columns.
    pub num_columns: u16,
    /// Parameter types from the last execution that sent them.
    pub bound_types: Option<Vec<ParamType>>,
    /// COM_STMT_SEND_LONG_DATA sent values for the next execution.
    pub long_data_pending: bool,
}

/// Statement texts longer than this are not kept.
pub const MAX_KEPT_SQL: usize = 1024 * 1024;

/// The typed state of one session.
#[derive(Debug, Clone)]
pub struct SessionState {
    status: Option<StatusFlags>,
    /// The last command's response held an error.
    last_failed: bool,
    database: Database,
    statements: HashMap<u32, PreparedStatement>,
}

impl SessionState {
    /// State right after login.
    pub fn new(status: StatusFlags, database: Option<Vec<u8>>) -> SessionState {
        SessionState {
            status: Some(status),
            last_failed: false,
            database: Database::Known(database),
            statements: HashMap::new(),
        }
    }

    /// Last status flags the server reported, or `None` when a statement
    /// since then ended without reporting them (an error).
    pub fn status(&self) -> Option<StatusFlags> {
        self.status
    }

    /// Whether a transaction is open; `None` if unknown.
    pub fn in_transaction(&self) -> Option<bool> {
        self.status
            .map(|s| s.contains(StatusFlags::SERVER_STATUS_IN_TRANS))
    }

    /// Whether autocommit is on; `None` if unknown.
    pub fn autocommit(&self) -> Option<bool> {
        self.status
            .map(|s| s.contains(StatusFlags::SERVER_STATUS_AUTOCOMMIT))
    }

    /// Whether the last response announced more results.
    pub fn more_results(&self) -> bool {
        self.status
            .is_some_and(|s| s.contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS))
    }

    /// Whether string literals are read without backslash escapes.
    pub fn no_backslash_escapes(&self) -> Option<bool> {
        self.status
            .map(|s| s.contains(StatusFlags::SERVER_STATUS_NO_BACKSLASH_ESCAPES))
    }

    /// How the classifier reads this session's statement texts: its
    /// backslash mode and whether `"…"` quotes identifiers, as the last
    /// status flags report them.
    pub fn classifier_options(&self, prepared: bool) -> sluice_classifier::Options {
        let escapes = match self.no_backslash_escapes() {
            Some(true) => sluice_classifier::EscapeMode::NoBackslash,
            Some(false) => sluice_classifier::EscapeMode::Backslash,
            None => sluice_classifier::EscapeMode::Unknown,
        };
        let ansi_quotes = self
            .status
            .is_some_and(|s| s.contains(StatusFlags::SERVER_STATUS_ANSI_QUOTES));
        sluice_classifier::Options {
            prepared,
            escapes,
            ansi_quotes,
        }
    }

    /// Whether the session is in autocommit mode with no open transaction:
    /// the only state in which a statement commits on its own.
    pub fn is_autocommit_idle(&self) -> bool {
        self.autocommit() == Some(true) && self.in_transaction() == Some(false)
    }

    /// The current database.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// A prepared statement by id.
    pub fn statement(&self, id: u32) -> Option<&PreparedStatement> {
        self.statements.get(&id)
    }

    /// Number of prepared statements open.
    pub fn statement_count(&self) -> usize {
        self.statements.len()
    }

    /// The server reported status flags (OK or end of result set).
    pub fn on_status(&mut self, status: StatusFlags) {
        self.status = Some(status);
    }

    /// A statement ended in an error: the server said nothing about the
    /// state it left (a deadlock, for one, rolls the transaction back).
    pub fn on_error(&mut self) {
        self.status = None;
    }

    /// Whether the last command's response held an error.
    pub fn last_command_failed(&self) -> bool {
        self.last_failed
    }

    /// How the last command's response ended.
    pub fn on_command_done(&mut self, failed: bool) {
        self.last_failed = failed;
    }

    /// Session-state change data from an OK packet.
    pub fn on_session_state(&mut self, data: &[u8]) {
        let mut r = Reader::new(data, "session state");
        while !r.is_empty() {
            let (Ok(kind), Ok(body)) = (r.u8(), r.lenenc_bytes()) else {
                self.database = Database::Unknown;
                return;
            };
            if kind == SESSION_TRACK_SCHEMA {
                self.database = match Reader::new(body, "schema").lenenc_bytes() {
                    Ok(name) => Database::Known(Some(name.to_vec())),
                    Err(_) => Database::Unknown,
                };
            }
        }
    }

    /// COM_INIT_DB succeeded.
    pub fn on_database_selected(&mut self, name: &[u8]) {
        self.database = Database::Known(Some(name.to_vec()));
    }

    /// A statement may have changed the database without telling.
    pub fn forget_database(&mut self) {
        self.database = Database::Unknown;
    }

    /// COM_STMT_PREPARE succeeded.
    pub fn on_prepared(&mut self, id: u32, sql: &[u8], num_params: u16, num_columns: u16) {
        let sql = (sql.len() <= MAX_KEPT_SQL).then(|| Arc::from(sql));
        self.statements.insert(
            id,
            PreparedStatement {
                sql,
                num_params,
                num_columns,
                bound_types: None,
                long_data_pending: false,
            },
        );
    }

    /// COM_STMT_EXECUTE sent new parameter types.
    pub fn on_types_bound(&mut self, id: u32, types: Vec<ParamType>) {
        if let Some(stmt) = self.statements.get_mut(&id) {
            stmt.bound_types = Some(types);
        }
    }

    /// COM_STMT_SEND_LONG_DATA: the next execution carries data the
    /// execute packet does not show.
    pub fn on_long_data(&mut self, id: u32) {
        if let Some(stmt) = self.statements.get_mut(&id) {
            stmt.long_data_pending = true;
        }
    }

    /// COM_STMT_EXECUTE or COM_STMT_RESET consumed the long data.
    pub fn on_long_data_consumed(&mut self, id: u32) {
        if let Some(stmt) = self.statements.get_mut(&id) {
            stmt.long_data_pending = false;
        }
    }

    /// COM_STMT_CLOSE.
    pub fn on_statement_closed(&mut self, id: u32) {
        self.statements.remove(&id);
    }

    /// COM_RESET_CONNECTION succeeded: statements are gone, the database
    /// stays.
    pub fn on_reset(&mut self) {
        self.statements.clear();
    }

    /// COM_CHANGE_USER succeeded: a new session on the same connection.
    pub fn on_user_changed(&mut self) {
        self.statements.clear();
        self.database = Database::Unknown;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AC: StatusFlags = StatusFlags::SERVER_STATUS_AUTOCOMMIT;

    #[test]
    fn transaction_flags() {
        let mut s = SessionState::new(AC, None);
        assert!(s.is_autocommit_idle());
        s.on_status(AC | StatusFlags::SERVER_STATUS_IN_TRANS);
        assert_eq!(s.in_transaction(), Some(true));
        assert!(!s.is_autocommit_idle());
        s.on_status(StatusFlags::empty());
        assert_eq!(s.autocommit(), Some(false));
        s.on_error();
        assert_eq!(s.in_transaction(), None);
        assert!(!s.is_autocommit_idle());
    }

    #[test]
    fn database_from_session_tracking() {
        let mut s = SessionState::new(AC, Some(b"a".to_vec()));
        s.forget_database();
        assert_eq!(s.database(), &Database::Unknown);
        // type 1 (schema), length 4, lenenc "shop"
        s.on_session_state(&[1, 5, 4, b's', b'h', b'o', b'p']);
        assert_eq!(s.database(), &Database::Known(Some(b"shop".to_vec())));
        s.on_session_state(&[0, 9]);
        assert_eq!(s.database(), &Database::Unknown);
        s.on_database_selected(b"x");
        assert_eq!(s.database(), &Database::Known(Some(b"x".to_vec())));
    }

    #[test]
    fn prepared_statements() {
        let mut s = SessionState::new(AC, None);
        s.on_prepared(1, b"INSERT INTO t VALUES (?)", 1, 0);
        let ty = ParamType {
            column_type: 3,
            flags: 0,
        };
        s.on_types_bound(1, vec![ty]);
        assert_eq!(s.statement(1).unwrap().bound_types, Some(vec![ty]));
        s.on_types_bound(9, vec![ty]);
        s.on_statement_closed(1);
        assert!(s.statement(1).is_none());
        s.on_prepared(2, b"SELECT 1", 0, 1);
        s.on_reset();
        assert_eq!(s.statement_count(), 0);
    }
}
