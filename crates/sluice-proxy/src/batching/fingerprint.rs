//! The session fingerprint: the settings that change what an INSERT
//! means, read from the server (never guessed from `SET` statements).
//! Two sessions batch together only with equal fingerprints.

use std::sync::Arc;

use sluice_protocol::caps::SessionCaps;

use crate::error::SessionError;
use crate::internal::{query, QueryResult, TextRow};
use crate::io::PacketStream;

/// One column of the fingerprint query, in query order: the row is read
/// by setting, never by a position written out by hand.
///
/// Read once per session, and again after any statement that may have
/// changed session settings. Timeouts are here because a batch runs
/// under its leader's: a member whose own limit would have stopped its
/// row must not see it succeed. `Optional` reads the settings that only
/// some servers have (`note_verbosity` from 10.6.16, Galera's `wsrep_*`,
/// 11.2's `block_encryption_mode` and `character_set_collations`) without
/// failing on the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setting {
    SqlMode,
    TimeZone,
    CharsetClient,
    CharsetConnection,
    CollationConnection,
    AutoIncrementIncrement,
    AutoIncrementOffset,
    ForeignKeyChecks,
    UniqueChecks,
    CheckConstraintChecks,
    DivPrecisionIncrement,
    ExplicitDefaultsForTimestamp,
    LcTimeNames,
    OldMode,
    InsertId,
    TimestampPinned,
    Database,
    CurrentUser,
    CurrentRole,
    ReadOnly,
    GtidSeqNo,
    SqlLogBin,
    BinlogFormat,
    ServerId,
    GtidDomainId,
    SkipReplication,
    SqlNotes,
    SqlWarnings,
    InnodbLockWaitTimeout,
    LockWaitTimeout,
    MaxStatementTime,
    BinlogRowImage,
    BinlogAnnotateRowEvents,
    SkipParallelReplication,
    SessionTrackVariables,
    Optional,
}

impl Setting {
    /// Every setting, in query order (each one's index is its position).
    const ALL: [Setting; 36] = [
        Setting::SqlMode,
        Setting::TimeZone,
        Setting::CharsetClient,
        Setting::CharsetConnection,
        Setting::CollationConnection,
        Setting::AutoIncrementIncrement,
        Setting::AutoIncrementOffset,
        Setting::ForeignKeyChecks,
        Setting::UniqueChecks,
        Setting::CheckConstraintChecks,
        Setting::DivPrecisionIncrement,
        Setting::ExplicitDefaultsForTimestamp,
        Setting::LcTimeNames,
        Setting::OldMode,
        Setting::InsertId,
        Setting::TimestampPinned,
        Setting::Database,
        Setting::CurrentUser,
        Setting::CurrentRole,
        Setting::ReadOnly,
        Setting::GtidSeqNo,
        Setting::SqlLogBin,
        Setting::BinlogFormat,
        Setting::ServerId,
        Setting::GtidDomainId,
        Setting::SkipReplication,
        Setting::SqlNotes,
        Setting::SqlWarnings,
        Setting::InnodbLockWaitTimeout,
        Setting::LockWaitTimeout,
        Setting::MaxStatementTime,
        Setting::BinlogRowImage,
        Setting::BinlogAnnotateRowEvents,
        Setting::SkipParallelReplication,
        Setting::SessionTrackVariables,
        Setting::Optional,
    ];

    /// The expression the query reads it with.
    fn expr(self) -> &'static str {
        match self {
            Setting::SqlMode => "@@session.sql_mode",
            Setting::TimeZone => "@@session.time_zone",
            Setting::CharsetClient => "@@session.character_set_client",
            Setting::CharsetConnection => "@@session.character_set_connection",
            Setting::CollationConnection => "@@session.collation_connection",
            Setting::AutoIncrementIncrement => "@@session.auto_increment_increment",
            Setting::AutoIncrementOffset => "@@session.auto_increment_offset",
            Setting::ForeignKeyChecks => "@@session.foreign_key_checks",
            Setting::UniqueChecks => "@@session.unique_checks",
            Setting::CheckConstraintChecks => "@@session.check_constraint_checks",
            Setting::DivPrecisionIncrement => "@@session.div_precision_increment",
            Setting::ExplicitDefaultsForTimestamp => "@@session.explicit_defaults_for_timestamp",
            Setting::LcTimeNames => "@@session.lc_time_names",
            Setting::OldMode => "@@session.old_mode",
            Setting::InsertId => "@@session.insert_id",
            // A clock pinned to within a second of now reads as unpinned.
            Setting::TimestampPinned => "ABS(@@session.timestamp - UNIX_TIMESTAMP(SYSDATE(6))) > 1",
            Setting::Database => "DATABASE()",
            Setting::CurrentUser => "CURRENT_USER()",
            Setting::CurrentRole => "CURRENT_ROLE()",
            Setting::ReadOnly => "@@session.tx_read_only",
            Setting::GtidSeqNo => "@@session.gtid_seq_no",
            Setting::SqlLogBin => "@@session.sql_log_bin",
            Setting::BinlogFormat => "@@session.binlog_format",
            Setting::ServerId => "@@session.server_id",
            Setting::GtidDomainId => "@@session.gtid_domain_id",
            Setting::SkipReplication => "@@session.skip_replication",
            Setting::SqlNotes => "@@session.sql_notes",
            Setting::SqlWarnings => "@@session.sql_warnings",
            Setting::InnodbLockWaitTimeout => "@@session.innodb_lock_wait_timeout",
            Setting::LockWaitTimeout => "@@session.lock_wait_timeout",
            Setting::MaxStatementTime => "@@session.max_statement_time",
            Setting::BinlogRowImage => "@@session.binlog_row_image",
            Setting::BinlogAnnotateRowEvents => "@@session.binlog_annotate_row_events",
            Setting::SkipParallelReplication => "@@session.skip_parallel_replication",
            Setting::SessionTrackVariables => "@@session.session_track_system_variables",
            Setting::Optional => {
                "(SELECT GROUP_CONCAT(VARIABLE_NAME, '=', VARIABLE_VALUE \
                 ORDER BY VARIABLE_NAME SEPARATOR ';') \
                 FROM information_schema.SESSION_VARIABLES WHERE VARIABLE_NAME IN \
                 ('NOTE_VERBOSITY', 'WSREP_ON', 'WSREP_SYNC_WAIT', 'WSREP_TRX_FRAGMENT_SIZE', \
                 'BLOCK_ENCRYPTION_MODE', 'CHARACTER_SET_COLLATIONS'))"
            }
        }
    }
}

/// The fingerprint query, built once from [`Setting::ALL`].
fn fingerprint_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let columns: Vec<&str> = Setting::ALL.iter().map(|s| s.expr()).collect();
        format!("SELECT {}", columns.join(", "))
    })
}

/// A row of the fingerprint query, read by setting.
struct SettingsRow<'a>(&'a TextRow);

impl SettingsRow<'_> {
    fn value(&self, setting: Setting) -> Option<&[u8]> {
        self.0.cell(setting as usize).flatten()
    }

    fn text(&self, setting: Setting) -> &[u8] {
        self.value(setting).unwrap_or_default()
    }
}

/// What the server said about a session's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    /// All values, concatenated with separators: the key part.
    pub(crate) bytes: Arc<[u8]>,
    /// Rows of this session may be batched (no forced `insert_id`, no
    /// pinned `timestamp`).
    pub(crate) batchable: bool,
    /// `sql_mode` contains `NO_AUTO_VALUE_ON_ZERO`.
    pub(crate) no_auto_value_on_zero: bool,
    /// `sql_mode` contains `NO_BACKSLASH_ESCAPES`.
    pub(crate) no_backslash_escapes: bool,
    /// `sql_mode` contains `ORACLE`, whose compound statements read
    /// differently (`BEGIN NOT ATOMIC` is not one of them).
    pub(crate) oracle_syntax: bool,
    /// `DATABASE()`.
    pub(crate) database: Option<Arc<[u8]>>,
    /// `CURRENT_USER()`: the account whose privileges apply.
    pub(crate) current_user: Arc<[u8]>,
    /// `character_set_client`: how the client's string parameters are
    /// encoded.
    pub(crate) charset: String,
}

impl Fingerprint {
    pub(crate) async fn read(
        backend: &mut PacketStream,
        caps: SessionCaps,
    ) -> Result<Option<Fingerprint>, SessionError> {
        Ok(
            match query(backend, caps, fingerprint_sql().as_bytes()).await? {
                QueryResult::Rows { rows, .. } => rows.first().map(Fingerprint::from_row),
                _ => None,
            },
        )
    }

    fn from_row(row: &TextRow) -> Fingerprint {
        let mut bytes = Vec::new();
        for value in row.cells() {
            match value {
                Some(v) => {
                    bytes.push(1);
                    bytes.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    bytes.extend_from_slice(v);
                }
                None => bytes.push(0),
            }
        }
        let settings = SettingsRow(row);
        let text = |setting| settings.text(setting);
        let sql_mode = String::from_utf8_lossy(text(Setting::SqlMode)).to_ascii_uppercase();
        let modes: Vec<&str> = sql_mode.split(',').collect();
        Fingerprint {
            // A forced next id, a pinned clock, a read-only session or a
            // forced GTID sequence number all make a row's outcome
            // depend on which session runs it. A client that tracks
            // `last_gtid` expects its own transaction's GTID in the OK
            // packet, which a batch cannot give it.
            batchable: text(Setting::InsertId) == b"0"
                && text(Setting::TimestampPinned) == b"0"
                && text(Setting::ReadOnly) == b"0"
                && text(Setting::GtidSeqNo) == b"0"
                && !tracks_last_gtid(text(Setting::SessionTrackVariables)),
            no_auto_value_on_zero: modes.contains(&"NO_AUTO_VALUE_ON_ZERO"),
            no_backslash_escapes: modes.contains(&"NO_BACKSLASH_ESCAPES"),
            oracle_syntax: modes.contains(&"ORACLE"),
            database: settings.value(Setting::Database).map(Arc::from),
            current_user: Arc::from(text(Setting::CurrentUser)),
            charset: String::from_utf8_lossy(text(Setting::CharsetClient)).into_owned(),
            bytes: Arc::from(bytes),
        }
    }
}

/// `session_track_system_variables` names `last_gtid`, or `*` (all).
fn tracks_last_gtid(tracked: &[u8]) -> bool {
    tracked.split(|&b| b == b',').any(|name| {
        let name = name.trim_ascii();
        name == b"*" || name.eq_ignore_ascii_case(b"last_gtid")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fingerprint of the row the server would send with these cells.
    fn fingerprint(cells: Vec<Option<Vec<u8>>>) -> Fingerprint {
        Fingerprint::from_row(&TextRow::from(cells))
    }

    fn row(sql_mode: &str, insert_id: &str, pinned: &str) -> Vec<Option<Vec<u8>>> {
        Setting::ALL
            .iter()
            .map(|setting| match setting {
                Setting::SqlMode => Some(sql_mode.as_bytes().to_vec()),
                Setting::InsertId => Some(insert_id.as_bytes().to_vec()),
                Setting::TimestampPinned => Some(pinned.as_bytes().to_vec()),
                Setting::Database => Some(b"shop".to_vec()),
                Setting::CurrentUser => Some(b"app@%".to_vec()),
                Setting::CurrentRole | Setting::Optional => None,
                Setting::ReadOnly | Setting::GtidSeqNo => Some(b"0".to_vec()),
                Setting::SessionTrackVariables => Some(b"autocommit".to_vec()),
                _ => Some(b"x".to_vec()),
            })
            .collect()
    }

    #[test]
    fn each_setting_is_read_from_its_own_column() {
        for (i, setting) in Setting::ALL.iter().enumerate() {
            assert_eq!(*setting as usize, i, "{setting:?}");
        }
        let sql = fingerprint_sql();
        assert!(sql.starts_with("SELECT @@session.sql_mode, @@session.time_zone,"));
        assert_eq!(sql.matches("@@session.").count(), 32);
    }

    #[test]
    fn reads_modes_and_eligibility() {
        let f = fingerprint(row("STRICT_TRANS_TABLES,NO_AUTO_VALUE_ON_ZERO", "0", "0"));
        assert!(f.batchable && f.no_auto_value_on_zero && !f.no_backslash_escapes);
        assert_eq!(f.database.as_deref(), Some(&b"shop"[..]));
        assert!(!fingerprint(row("", "5", "0")).batchable);
        assert!(!fingerprint(row("", "0", "1")).batchable);
        assert_ne!(
            fingerprint(row("", "0", "0")).bytes,
            fingerprint(row("ANSI", "0", "0")).bytes
        );
    }

    #[test]
    fn sessions_tracking_last_gtid_are_not_batched() {
        assert!(tracks_last_gtid(b"autocommit, last_gtid"));
        assert!(tracks_last_gtid(b"*"));
        assert!(tracks_last_gtid(b"LAST_GTID"));
        assert!(!tracks_last_gtid(b"autocommit,character_set_client"));
        assert!(!tracks_last_gtid(b""));
        let mut tracked = row("", "0", "0");
        let at = Setting::SessionTrackVariables as usize;
        tracked[at] = Some(b"autocommit,last_gtid".to_vec());
        assert!(!fingerprint(tracked.clone()).batchable);
        tracked[at] = Some(b"autocommit".to_vec());
        assert!(fingerprint(tracked.clone()).batchable);
    }
}
