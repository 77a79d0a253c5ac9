//! Why a write was relayed without batching: one typed reason, whose name
//! is the `reason` label of `sluice_write_unbatched_total` and the
//! `unbatched_<reason>` row of `SHOW SLUICE STATUS`.

use sluice_classifier::NotBatchable;

/// A write relayed alone, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decline {
    /// The statement's own form (the classifier's reason).
    Statement(NotBatchable),
    /// The batch queues hold `max_queued_rows` already.
    QueueFull,
    /// The session is inside a transaction or not in autocommit mode.
    InTransaction,
    /// A temporary table, a lock, a pinned clock or seed: session state
    /// no fingerprint shows.
    SessionState,
    /// A `SET TRANSACTION` waits for the session's next transaction.
    NextTransactionCharacteristics,
    /// `mode = hint` and the statement carries no `batch:` hint.
    NoHint,
    /// The session's settings could not be read.
    SessionSettingsUnreadable,
    /// The session's settings make its rows unbatchable (a forced
    /// `insert_id`, a pinned clock).
    SessionSettings,
    /// The table's facts are being read by another session.
    TableFactsPending,
    /// The table is not one Sluice batches (triggers, DEFAULT expressions,
    /// not InnoDB, excluded by configuration, …).
    Table,
    /// The row's auto-increment value is an expression.
    IdExpression,
    /// A prepared statement's parameters are malformed.
    MalformedParams,
    /// A bound value of a type without a plain literal form.
    UnsupportedParamType,
    /// The prepared row could not be spliced from its text.
    Splice,
    /// A bound value could not be rendered as a literal.
    UnrenderableValue,
    /// A `REPLACE`, and the server (before MariaDB 10.7) or the session
    /// (`sql_mode = ORACLE`, no `CLIENT_MULTI_RESULTS`) cannot report
    /// which rows a batch skipped.
    Replace,
    /// An `INSERT … ON DUPLICATE KEY UPDATE`, under the same conditions.
    OnDuplicateKeyUpdate,
    /// A client INSERT of more rows than `max_statement_rows`.
    RowsOverLimit,
    /// A client INSERT of several rows in a form a batch cannot answer
    /// for it: `IGNORE`, `REPLACE` or `ON DUPLICATE KEY UPDATE` (its rows
    /// may each go their own way), or values for the AUTO_INCREMENT column
    /// (its insert id follows other rules).
    SeveralRowsForm,
}

impl Decline {
    /// The metric label: snake_case and stable.
    pub fn as_str(self) -> &'static str {
        match self {
            Decline::Statement(reason) => reason.as_str(),
            Decline::QueueFull => "queue_full",
            Decline::InTransaction => "in_transaction",
            Decline::SessionState => "session_state",
            Decline::NextTransactionCharacteristics => "next_transaction_characteristics",
            Decline::NoHint => "no_hint",
            Decline::SessionSettingsUnreadable => "session_settings_unreadable",
            Decline::SessionSettings => "session_settings",
            Decline::TableFactsPending => "table_facts_pending",
            Decline::Table => "table",
            Decline::IdExpression => "id_expression",
            Decline::MalformedParams => "malformed_params",
            Decline::UnsupportedParamType => "unsupported_param_type",
            Decline::Splice => "splice",
            Decline::UnrenderableValue => "unrenderable_value",
            Decline::Replace => "replace",
            Decline::OnDuplicateKeyUpdate => "on_duplicate_key_update",
            Decline::RowsOverLimit => "rows_over_limit",
            Decline::SeveralRowsForm => "several_rows_form",
        }
    }

    /// Every reason the proxy itself gives (the classifier's are in
    /// [`NotBatchable::ALL`]).
    pub const PROXY: &'static [Decline] = &[
        Decline::QueueFull,
        Decline::InTransaction,
        Decline::SessionState,
        Decline::NextTransactionCharacteristics,
        Decline::NoHint,
        Decline::SessionSettingsUnreadable,
        Decline::SessionSettings,
        Decline::TableFactsPending,
        Decline::Table,
        Decline::IdExpression,
        Decline::MalformedParams,
        Decline::UnsupportedParamType,
        Decline::Splice,
        Decline::UnrenderableValue,
        Decline::Replace,
        Decline::OnDuplicateKeyUpdate,
        Decline::RowsOverLimit,
        Decline::SeveralRowsForm,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_is_distinct_and_snake_case() {
        let labels: Vec<&str> = Decline::PROXY
            .iter()
            .copied()
            .chain(NotBatchable::ALL.iter().map(|r| Decline::Statement(*r)))
            .map(Decline::as_str)
            .collect();
        let mut unique = labels.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), labels.len(), "{labels:?}");
        assert!(labels
            .iter()
            .all(|l| l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    }
}
