//! Upkeep between batched statements: what a statement batching did not
//! take may have changed about the session (its settings, a temporary
//! table, a lock, the next transaction's characteristics), noted after
//! the statement ran so that the next candidate is judged on the truth.

use sluice_classifier::{Classification, Effects, Kind, OtherKind, SessionKind, TransactionKind};
use sluice_protocol::command::Command;
use sluice_protocol::StatusFlags;

use super::owed::Owed;
use super::SessionBatching;
use crate::session_state::SessionState;

impl SessionBatching {
    /// After a statement was relayed: note what it may have changed.
    /// `classification` is the one the session loop made of the SQL text
    /// `command` ran, before it was sent.
    pub(crate) fn after_relay(
        &mut self,
        command: Option<&Command<'_>>,
        classification: Option<&Classification>,
        state: &SessionState,
    ) {
        use sluice_protocol::command::Command as C;
        if state.last_command_failed()
            || state
                .status()
                .is_none_or(|s| s.contains(StatusFlags::SERVER_SESSION_STATE_CHANGED))
        {
            // The server says session state changed (a stored function
            // may set a variable), or a statement failed part-way (a
            // trigger may have run): read the fingerprint again.
            self.forget_settings();
        }
        match command {
            Some(C::Query(_) | C::StmtExecute { .. }) => match classification {
                Some(classification) => self.after_sql(classification, state.last_command_failed()),
                // A prepared statement whose text is unknown.
                None => self.forget_settings(),
            },
            Some(C::InitDb(_)) => self.forget_settings(),
            Some(C::ChangeUser) | Some(C::ResetConnection) => {
                self.forget_settings();
                self.tainted = false;
                self.next_transaction_set = false;
                self.owed = Owed::default();
            }
            Some(
                C::Ping
                | C::Statistics
                | C::StmtClose { .. }
                | C::StmtReset { .. }
                | C::StmtFetch { .. }
                | C::StmtSendLongData { .. }
                | C::StmtPrepare(_)
                | C::FieldList
                | C::ProcessKill
                | C::SetOption
                | C::Quit,
            ) => {}
            _ => self.forget_settings(),
        }
    }

    /// `failed`: the statement's response held an error.
    fn after_sql(&mut self, classification: &Classification, failed: bool) {
        let effects = classification.effects;
        let next_only = match &classification.kind {
            Kind::Transaction(TransactionKind::SetTransaction { next_only }) => *next_only,
            Kind::Transaction(_) => false,
            // One hidden in a multi-statement text.
            _ => effects.sets_next_transaction,
        };
        if next_only {
            self.next_transaction_set = true;
        } else if !failed
            && matches!(
                classification.kind,
                Kind::Write(_)
                    | Kind::Transaction(TransactionKind::Begin | TransactionKind::Start { .. })
            )
        {
            // This statement's transaction took the characteristics. One
            // that failed leaves them for the next (the server resets them
            // when a transaction ends, not when a statement is undone).
            self.next_transaction_set = false;
        }
        match &classification.kind {
            Kind::Read(_) | Kind::Write(_) => {}
            Kind::Transaction(TransactionKind::SetTransaction { .. }) => {
                // `SET SESSION TRANSACTION READ ONLY` changes tx_read_only.
                self.forget_settings();
            }
            Kind::Transaction(_) => {}
            Kind::Ddl(_) => {
                self.ctx.facts.forget_all();
                self.forget_settings();
            }
            Kind::Session(kind) => {
                if matches!(
                    kind,
                    SessionKind::CreateTemporaryTable { .. } | SessionKind::LockTables
                ) {
                    self.tainted = true;
                }
                self.forget_settings();
            }
            Kind::Other(other) => {
                if matches!(
                    other,
                    OtherKind::Call | OtherKind::Compound | OtherKind::Unknown
                ) {
                    self.tainted = true;
                }
                self.forget_settings();
            }
        }
        if effects.may_call_routine {
            self.forget_settings();
        }
        if taints_session(&classification.kind, &effects) {
            self.tainted = true;
            self.forget_settings();
        }
    }
}

/// Whether a statement leaves the session in a state no fingerprint
/// shows, for good: a temporary table or table lock (also hidden in a
/// multi-statement text); a global read lock or backup stage, which a
/// batch from another session would wait on; a pinned clock or random
/// seed, which the server reads back as if unset (a clock pinned to about
/// now looks unpinned, the seeds read as 0). The last two are not looked
/// for in a single read or write, where `timestamp = …` is a column.
fn taints_session(kind: &Kind, effects: &Effects) -> bool {
    if effects.temporary_table || effects.table_lock {
        return true;
    }
    let single_read_or_write =
        matches!(kind, Kind::Read(_) | Kind::Write(_)) && !effects.several_statements;
    !single_read_or_write && (effects.global_lock || effects.pins_clock_or_seed)
}

#[cfg(test)]
mod tests {
    use super::taints_session;
    use sluice_classifier::Classifier;

    #[test]
    fn pinning_and_global_locks_taint_but_a_timestamp_column_does_not() {
        let classifier = Classifier::default();
        let taints = |sql: &str| {
            let classification = classifier.classify(sql.as_bytes());
            taints_session(&classification.kind, &classification.effects)
        };
        assert!(taints("SET timestamp = 1700000000"));
        assert!(taints("SET @@session.rand_seed2 = 3"));
        assert!(taints("SELECT 1; SET timestamp = 5"));
        assert!(taints("FLUSH TABLES WITH READ LOCK"));
        assert!(taints("BACKUP STAGE START"));
        assert!(taints("CREATE TEMPORARY TABLE t (a INT)"));
        assert!(taints("SELECT 1; LOCK TABLES t WRITE"));
        assert!(!taints("UPDATE t SET timestamp = NOW() WHERE id = 1"));
        assert!(!taints("SELECT * FROM t WHERE timestamp = 5"));
        assert!(!taints("SET sql_mode = ''"));
        assert!(!taints("INSERT INTO t (v) VALUES ('a temporary note')"));
        assert!(!taints("SELECT 'lock tables', 'read lock'; SELECT 1"));
    }
}
