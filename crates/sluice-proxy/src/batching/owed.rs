//! Session effects a batched member is owed. Its own connection did not
//! run its INSERT (or ran it inside a bigger one), so before its next
//! statement that could observe `LAST_INSERT_ID()`, `ROW_COUNT()` or the
//! warnings list, one statement makes them what they would have been.

/// What a session's connection still has to be told.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Owed {
    /// `LAST_INSERT_ID()` must become this.
    pub(crate) last_insert_id: Option<u64>,
    /// `ROW_COUNT()` must be 1 and the warnings list empty (a single-row
    /// INSERT that succeeded without warnings).
    pub(crate) row_inserted: bool,
}

impl Owed {
    pub(crate) fn is_pending(&self) -> bool {
        self.row_inserted || self.last_insert_id.is_some()
    }

    /// A batched row of this session was inserted.
    pub(crate) fn on_batched(&mut self, generated_id: Option<u64>) {
        self.row_inserted = true;
        if generated_id.is_some() {
            self.last_insert_id = generated_id;
        }
    }

    /// The statement that settles the debt: selecting one row into a
    /// variable leaves `ROW_COUNT()` at 1, and a statement with a derived
    /// table clears the warnings list (one that uses no table keeps it);
    /// `LAST_INSERT_ID(n)` sets the session's value. It used to read a row
    /// of `information_schema.COLLATIONS`, which costs the server five
    /// times as much (about 0.5 ms here, paid by every isolated row).
    pub(crate) fn reconcile_sql(&self) -> String {
        let value = match self.last_insert_id {
            Some(id) => format!("LAST_INSERT_ID({id})"),
            None => "1".to_string(),
        };
        format!("SELECT {value} INTO @sluice_reconcile FROM (SELECT 1) AS sluice_one")
    }

    /// The settling statement, when one is owed; the debt is then paid.
    pub(crate) fn settle(&mut self) -> Option<String> {
        if !self.is_pending() {
            return None;
        }
        let sql = self.reconcile_sql();
        *self = Owed::default();
        Some(sql)
    }

    /// Before the session's own INSERT runs alone (its row was skipped,
    /// or its batch failed): the statement that settles what that INSERT
    /// leaves to settle. Its rows read none of the session's effects and
    /// it uses a table, so it sets `ROW_COUNT()` and the warnings list
    /// itself; only an owed `LAST_INSERT_ID()` must be set first (should
    /// the INSERT fail or give no id of its own, the value stands as it
    /// would alone). `DO` does that without a derived table: about a
    /// third of [`Self::reconcile_sql`]'s server CPU (25 against 75 µs
    /// on 10.11), paid by every isolated row. With `may_read_session` (an
    /// `ON DUPLICATE KEY UPDATE` clause, which may read `ROW_COUNT()`, or
    /// a statement not known to be a batchable INSERT), the full
    /// statement. The debt is then paid.
    pub(crate) fn settle_before_own_insert(&mut self, may_read_session: bool) -> Option<String> {
        if may_read_session {
            return self.settle();
        }
        let sql = self
            .last_insert_id
            .map(|id| format!("DO LAST_INSERT_ID({id})"));
        *self = Owed::default();
        sql
    }

    /// Before the session's next command (`command`, its command byte):
    /// the settling statement to send ahead of it, when the command could
    /// observe what is owed. A reset or change of user forgets the debt.
    pub(crate) fn settle_before(&mut self, command: u8) -> Option<String> {
        use sluice_protocol::command::code;
        let harmless = matches!(
            command,
            code::PING
                | code::STATISTICS
                | code::STMT_CLOSE
                | code::STMT_RESET
                | code::STMT_SEND_LONG_DATA
                | code::QUIT
                | code::SET_OPTION
        );
        if harmless {
            return None;
        }
        if matches!(command, code::RESET_CONNECTION | code::CHANGE_USER) {
            *self = Owed::default();
            return None;
        }
        self.settle()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_ids_keep_an_earlier_owed_id() {
        let mut owed = Owed::default();
        assert!(!owed.is_pending());
        owed.on_batched(Some(7));
        owed.on_batched(None);
        assert_eq!(owed.last_insert_id, Some(7));
        assert!(owed.reconcile_sql().contains("LAST_INSERT_ID(7)"));
        let plain = Owed {
            row_inserted: true,
            ..Owed::default()
        };
        assert!(plain.reconcile_sql().starts_with("SELECT 1 INTO"));
    }

    #[test]
    fn before_its_own_insert_only_an_owed_id_is_settled() {
        let mut owed = Owed::default();
        owed.on_batched(Some(9));
        assert_eq!(
            owed.settle_before_own_insert(false).as_deref(),
            Some("DO LAST_INSERT_ID(9)")
        );
        assert!(!owed.is_pending(), "the INSERT sets the rest itself");
        let mut no_id = Owed::default();
        no_id.on_batched(None);
        assert_eq!(no_id.settle_before_own_insert(false), None);
        assert!(!no_id.is_pending());
        assert_eq!(Owed::default().settle_before_own_insert(false), None);

        // An update clause may read ROW_COUNT(): the full statement.
        let mut upsert = Owed::default();
        upsert.on_batched(None);
        let full = upsert.reconcile_sql();
        assert_eq!(upsert.settle_before_own_insert(true), Some(full));
        assert!(!upsert.is_pending());
    }

    #[test]
    fn a_debt_is_settled_once_and_only_before_a_command_that_can_see_it() {
        use sluice_protocol::command::code;
        let owing = || {
            let mut owed = Owed::default();
            owed.on_batched(Some(3));
            owed
        };
        let mut owed = owing();
        assert_eq!(owed.settle_before(code::PING), None);
        assert_eq!(owed.settle_before(code::STMT_CLOSE), None);
        assert!(owed.is_pending());
        let sql = owed
            .settle_before(code::QUERY)
            .expect("a query can observe it");
        assert!(sql.contains("LAST_INSERT_ID(3)"));
        assert_eq!(owed.settle_before(code::QUERY), None, "paid once");

        let mut reset = owing();
        assert_eq!(reset.settle_before(code::RESET_CONNECTION), None);
        assert!(!reset.is_pending(), "a reset session owes nothing");

        let mut prepared = owing();
        assert!(prepared.settle_before(code::STMT_EXECUTE).is_some());
        assert_eq!(Owed::default().settle(), None);
    }
}
