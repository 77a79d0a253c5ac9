//! The session fingerprint: the settings that change what an INSERT
//! means, read from the server (never guessed from `SET` statements).
//! Two sessions batch together only with equal fingerprints.

use std::sync::Arc;

use sluice_protocol::caps::SessionCaps;

use crate::error::SessionError;
use crate::internal::{query, QueryResult};
use crate::io::PacketStream;

/// Read once per session, and again after any statement that may have
/// changed session settings. Timeouts are here because a batch runs
/// under its leader's: a member whose own limit would have stopped its
/// row must not see it succeed. The subquery reads the settings that only
/// some servers have (`note_verbosity` from 10.6.16, Galera's `wsrep_*`,
/// 11.2's `block_encryption_mode` and `character_set_collations`) without
/// failing on the others.
const FINGERPRINT_SQL: &str = "SELECT @@session.sql_mode, @@session.time_zone, \
    @@session.character_set_client, @@session.character_set_connection, \
    @@session.collation_connection, @@session.auto_increment_increment, \
    @@session.auto_increment_offset, @@session.foreign_key_checks, \
    @@session.unique_checks, @@session.check_constraint_checks, \
    @@session.div_precision_increment, @@session.explicit_defaults_for_timestamp, \
    @@session.lc_time_names, @@session.old_mode, @@session.insert_id, \
    ABS(@@session.timestamp - UNIX_TIMESTAMP(SYSDATE(6))) > 1, \
    DATABASE(), CURRENT_USER(), CURRENT_ROLE(), \
    @@session.tx_read_only, @@session.gtid_seq_no, \
    @@session.sql_log_bin, @@session.binlog_format, @@session.server_id, \
    @@session.gtid_domain_id, @@session.skip_replication, \
    @@session.sql_notes, @@session.sql_warnings, \
    @@session.innodb_lock_wait_timeout, @@session.lock_wait_timeout, \
    @@session.max_statement_time, @@session.binlog_row_image, \
    @@session.binlog_annotate_row_events, @@session.skip_parallel_replication, \
    @@session.session_track_system_variables, \
    (SELECT GROUP_CONCAT(VARIABLE_NAME, '=', VARIABLE_VALUE ORDER BY VARIABLE_NAME SEPARATOR ';') \
     FROM information_schema.SESSION_VARIABLES WHERE VARIABLE_NAME IN \
     ('NOTE_VERBOSITY', 'WSREP_ON', 'WSREP_SYNC_WAIT', 'WSREP_TRX_FRAGMENT_SIZE', \
      'BLOCK_ENCRYPTION_MODE', 'CHARACTER_SET_COLLATIONS'))";

/// Index of `@@insert_id` (a pending forced id makes the session
/// unbatchable) and of the pinned-timestamp test.
const INSERT_ID: usize = 14;
const TIMESTAMP_PINNED: usize = 15;
const DATABASE: usize = 16;
const CURRENT_USER: usize = 17;
const CHARSET_CLIENT: usize = 2;
const READ_ONLY: usize = 19;
const GTID_SEQ_NO: usize = 20;
const SESSION_TRACK_VARIABLES: usize = 34;

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
            match query(backend, caps, FINGERPRINT_SQL.as_bytes()).await? {
                QueryResult::Rows { rows, .. } => {
                    rows.first().map(|row| Fingerprint::from_row(row))
                }
                _ => None,
            },
        )
    }

    fn from_row(row: &[Option<Vec<u8>>]) -> Fingerprint {
        let mut bytes = Vec::new();
        for value in row {
            match value {
                Some(v) => {
                    bytes.push(1);
                    bytes.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    bytes.extend_from_slice(v);
                }
                None => bytes.push(0),
            }
        }
        let text = |i: usize| row.get(i).and_then(|v| v.as_deref()).unwrap_or_default();
        let sql_mode = String::from_utf8_lossy(text(0)).to_ascii_uppercase();
        let modes: Vec<&str> = sql_mode.split(',').collect();
        Fingerprint {
            // A forced next id, a pinned clock, a read-only session or a
            // forced GTID sequence number all make a row's outcome
            // depend on which session runs it. A client that tracks
            // `last_gtid` expects its own transaction's GTID in the OK
            // packet, which a batch cannot give it.
            batchable: text(INSERT_ID) == b"0"
                && text(TIMESTAMP_PINNED) == b"0"
                && text(READ_ONLY) == b"0"
                && text(GTID_SEQ_NO) == b"0"
                && !tracks_last_gtid(text(SESSION_TRACK_VARIABLES)),
            no_auto_value_on_zero: modes.contains(&"NO_AUTO_VALUE_ON_ZERO"),
            no_backslash_escapes: modes.contains(&"NO_BACKSLASH_ESCAPES"),
            database: row.get(DATABASE).cloned().flatten().map(Arc::from),
            current_user: Arc::from(text(CURRENT_USER)),
            charset: String::from_utf8_lossy(text(CHARSET_CLIENT)).into_owned(),
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

    fn row(sql_mode: &str, insert_id: &str, pinned: &str) -> Vec<Option<Vec<u8>>> {
        let mut row: Vec<Option<Vec<u8>>> = vec![Some(sql_mode.as_bytes().to_vec())];
        row.extend((1..INSERT_ID).map(|_| Some(b"x".to_vec())));
        row.push(Some(insert_id.as_bytes().to_vec()));
        row.push(Some(pinned.as_bytes().to_vec()));
        row.push(Some(b"shop".to_vec()));
        row.push(Some(b"app@%".to_vec()));
        row.push(None);
        row.push(Some(b"0".to_vec()));
        row.push(Some(b"0".to_vec()));
        row
    }

    #[test]
    fn reads_modes_and_eligibility() {
        let f = Fingerprint::from_row(&row("STRICT_TRANS_TABLES,NO_AUTO_VALUE_ON_ZERO", "0", "0"));
        assert!(f.batchable && f.no_auto_value_on_zero && !f.no_backslash_escapes);
        assert_eq!(f.database.as_deref(), Some(&b"shop"[..]));
        assert!(!Fingerprint::from_row(&row("", "5", "0")).batchable);
        assert!(!Fingerprint::from_row(&row("", "0", "1")).batchable);
        assert_ne!(
            Fingerprint::from_row(&row("", "0", "0")).bytes,
            Fingerprint::from_row(&row("ANSI", "0", "0")).bytes
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
        tracked.resize(SESSION_TRACK_VARIABLES, Some(b"0".to_vec()));
        tracked.push(Some(b"autocommit,last_gtid".to_vec()));
        assert!(!Fingerprint::from_row(&tracked).batchable);
        tracked[SESSION_TRACK_VARIABLES] = Some(b"autocommit".to_vec());
        assert!(Fingerprint::from_row(&tracked).batchable);
    }
}
