//! Table facts (engine, table type, triggers, AUTO_INCREMENT column) read
//! from `information_schema` on the asking session's own connection, and
//! cached for a short while. DDL that passes through Sluice forgets them
//! at once; the time limit bounds how long a change made elsewhere goes
//! unnoticed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::SessionError;
use crate::internal::{hex_literal, query, QueryResult, TextRow};
use crate::io::PacketStream;
use sluice_protocol::caps::SessionCaps;

/// How long a cached fact is trusted.
const FACTS_TTL: Duration = Duration::from_secs(10);
/// Entries kept at most; beyond it the cache is cleared.
const MAX_ENTRIES: usize = 10_000;

/// What batching needs to know of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableFacts {
    /// The table exists, is a base table of a transactional engine and has
    /// no triggers: a multi-row INSERT into it is atomic and runs nothing
    /// session-dependent.
    pub(crate) batchable: bool,
    /// Name of the AUTO_INCREMENT column, if any.
    pub(crate) auto_increment: Option<String>,
    /// `schema.table`, for metric labels.
    pub(crate) label: String,
}

type FactsKey = (Arc<[u8]>, Vec<u8>, String);

/// Facts shared by all sessions, keyed by (user, schema, table): what a
/// user may see of `information_schema` depends on its privileges.
#[derive(Default)]
pub(crate) struct FactsCache {
    entries: Mutex<HashMap<FactsKey, (Instant, Arc<TableFacts>)>>,
    /// Lookups under way: other sessions do not batch that table until it
    /// is known, rather than all asking the server at once.
    fetching: Mutex<std::collections::HashSet<FactsKey>>,
    /// Moves on each [`FactsCache::forget_all`], so that what a session
    /// kept in its [`RecentFacts`] is dropped with the rest.
    generation: AtomicU64,
}

/// The facts a session used last, kept by the session: its next row for
/// the same table skips the shared cache's lock, key and hash.
#[derive(Default)]
pub(crate) struct RecentFacts {
    last: Option<Recent>,
    /// How many times this session read facts from the server.
    pub(crate) reads: u64,
}

struct Recent {
    generation: u64,
    /// When the cache stops trusting them.
    until: Instant,
    user: Arc<[u8]>,
    schema: Vec<u8>,
    table: String,
    facts: Arc<TableFacts>,
}

impl RecentFacts {
    fn get(
        &self,
        generation: u64,
        now: Instant,
        user: &[u8],
        schema: &[u8],
        table: &str,
    ) -> Option<Arc<TableFacts>> {
        let recent = self.last.as_ref()?;
        (recent.generation == generation
            && now < recent.until
            && *recent.user == *user
            && recent.schema == schema
            && recent.table == table)
            .then(|| recent.facts.clone())
    }

    #[allow(clippy::too_many_arguments)]
    fn keep(
        &mut self,
        generation: u64,
        until: Instant,
        user: &Arc<[u8]>,
        schema: &[u8],
        table: &str,
        facts: &Arc<TableFacts>,
    ) {
        self.last = Some(Recent {
            generation,
            until,
            user: user.clone(),
            schema: schema.to_vec(),
            table: table.to_string(),
            facts: facts.clone(),
        });
    }
}

impl FactsCache {
    /// Cached facts still trusted at `now`, and when they were read.
    pub(crate) fn get(
        &self,
        now: Instant,
        user: &Arc<[u8]>,
        schema: &[u8],
        table: &str,
    ) -> Option<(Instant, Arc<TableFacts>)> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let key = (user.clone(), schema.to_vec(), table.to_string());
        entries
            .get(&key)
            .filter(|(at, _)| now.saturating_duration_since(*at) < FACTS_TTL)
            .map(|(at, facts)| (*at, facts.clone()))
    }

    fn put(&self, user: &Arc<[u8]>, schema: &[u8], table: &str, facts: Arc<TableFacts>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            (user.clone(), schema.to_vec(), table.to_string()),
            (Instant::now(), facts),
        );
    }

    /// DDL passed through: forget everything (DDL is rare; precision is
    /// not worth a wrong fact).
    pub(crate) fn forget_all(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The facts the session used last if they are still good at `now`,
    /// else cached facts, else reads them on `backend`; `None` while
    /// another session is reading them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn lookup(
        &self,
        recent: &mut RecentFacts,
        now: Instant,
        backend: &mut PacketStream,
        caps: SessionCaps,
        user: &Arc<[u8]>,
        schema: &[u8],
        table: &str,
    ) -> Result<Option<Arc<TableFacts>>, SessionError> {
        // Read before the cache: a forget after this makes what is kept
        // now stale at once.
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(facts) = recent.get(generation, now, user, schema, table) {
            return Ok(Some(facts));
        }
        if let Some((at, facts)) = self.get(now, user, schema, table) {
            recent.keep(generation, at + FACTS_TTL, user, schema, table, &facts);
            return Ok(Some(facts));
        }
        let key = (user.clone(), schema.to_vec(), table.to_string());
        if !self
            .fetching
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone())
        {
            return Ok(None);
        }
        let sql = facts_query(schema, table);
        recent.reads += 1;
        let result = query(backend, caps, sql.as_bytes()).await;
        self.fetching
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        let mut facts = match result? {
            QueryResult::Rows { rows, .. } => parse_facts(&rows),
            // No privilege, or information_schema refused: not batchable.
            _ => TableFacts {
                batchable: false,
                auto_increment: None,
                label: String::new(),
            },
        };
        facts.label = format!("{}.{table}", String::from_utf8_lossy(schema));
        let facts = Arc::new(facts);
        self.put(user, schema, table, facts.clone());
        recent.keep(generation, now + FACTS_TTL, user, schema, table, &facts);
        Ok(Some(facts))
    }
}

/// One column of the facts query, in query order: the row is read by
/// fact, never by a position written out by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fact {
    /// `BASE TABLE`, `VIEW`, `SEQUENCE`, …
    TableType,
    /// Whether the table's engine supports transactions.
    Transactional,
    /// How many triggers the table has.
    Triggers,
    /// The AUTO_INCREMENT column, if any.
    AutoIncrementColumn,
    /// How many columns have a DEFAULT that is an expression.
    ExpressionDefaults,
}

impl Fact {
    /// Every fact, in query order (each one's index is its position).
    const ALL: [Fact; 5] = [
        Fact::TableType,
        Fact::Transactional,
        Fact::Triggers,
        Fact::AutoIncrementColumn,
        Fact::ExpressionDefaults,
    ];

    /// The scalar subquery that reads it; `this` selects the table's row
    /// in `information_schema.TABLES` and `COLUMNS`.
    fn subquery(self, schema: &str, table: &str, this: &str) -> String {
        match self {
            Fact::TableType => {
                format!("(SELECT TABLE_TYPE FROM information_schema.TABLES WHERE {this})")
            }
            Fact::Transactional => format!(
                "(SELECT TRANSACTIONS FROM information_schema.ENGINES WHERE ENGINE = \
                 (SELECT ENGINE FROM information_schema.TABLES WHERE {this}))"
            ),
            Fact::Triggers => format!(
                "(SELECT COUNT(*) FROM information_schema.TRIGGERS \
                 WHERE EVENT_OBJECT_SCHEMA = {schema} AND EVENT_OBJECT_TABLE = {table})"
            ),
            Fact::AutoIncrementColumn => format!(
                "(SELECT COLUMN_NAME FROM information_schema.COLUMNS \
                 WHERE {this} AND EXTRA LIKE '%auto_increment%' LIMIT 1)"
            ),
            Fact::ExpressionDefaults => format!(
                "(SELECT COUNT(*) FROM information_schema.COLUMNS WHERE {this} \
                 AND COLUMN_DEFAULT IS NOT NULL AND COLUMN_DEFAULT <> 'NULL' \
                 AND COLUMN_DEFAULT NOT LIKE '''%' \
                 AND COLUMN_DEFAULT NOT REGEXP '^-?[0-9]+(\\\\.[0-9]+)?(e[-+]?[0-9]+)?$' \
                 AND COLUMN_DEFAULT NOT REGEXP '^current_timestamp(\\\\([0-6]?\\\\))?$')"
            ),
        }
    }
}

/// One row of scalar subqueries, each with constant predicates:
/// MariaDB then opens only this table's definition, where a correlated
/// form scans every table (tens of milliseconds).
fn facts_query(schema: &[u8], table: &str) -> String {
    let schema = hex_literal(schema);
    let table = hex_literal(table.as_bytes());
    let this = format!("TABLE_SCHEMA = {schema} AND TABLE_NAME = {table}");
    let columns: Vec<String> = Fact::ALL
        .iter()
        .map(|fact| fact.subquery(&schema, &table, &this))
        .collect();
    format!("SELECT {}", columns.join(", "))
}

fn parse_facts(rows: &[TextRow]) -> TableFacts {
    let not_batchable = TableFacts {
        batchable: false,
        auto_increment: None,
        label: String::new(),
    };
    let [row] = rows else {
        return not_batchable;
    };
    let text = |fact: Fact| row.cell(fact as usize).flatten();
    let base_table = text(Fact::TableType) == Some(b"BASE TABLE");
    let transactional = text(Fact::Transactional) == Some(b"YES");
    let no_triggers = text(Fact::Triggers) == Some(b"0");
    // A DEFAULT expression (CONNECTION_ID(), @var, CURRENT_USER(), …) would
    // be evaluated in the leader's session: only constants and the clock
    // are the same whoever runs the statement.
    let constant_defaults = text(Fact::ExpressionDefaults) == Some(b"0");
    TableFacts {
        batchable: base_table && transactional && no_triggers && constant_defaults,
        auto_increment: text(Fact::AutoIncrementColumn)
            .map(|c| String::from_utf8_lossy(c).into_owned()),
        label: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(values: &[Option<&str>]) -> Vec<TextRow> {
        vec![TextRow::from(
            values
                .iter()
                .map(|v| v.map(|s| s.as_bytes().to_vec()))
                .collect::<Vec<_>>(),
        )]
    }

    #[test]
    fn only_transactional_base_tables_without_triggers() {
        let facts = |v: &[Option<&str>]| parse_facts(&row(v));
        let innodb = facts(&[
            Some("BASE TABLE"),
            Some("YES"),
            Some("0"),
            Some("id"),
            Some("0"),
        ]);
        assert!(innodb.batchable);
        assert_eq!(innodb.auto_increment.as_deref(), Some("id"));
        assert!(!facts(&[Some("BASE TABLE"), Some("NO"), Some("0"), None]).batchable);
        assert!(!facts(&[Some("VIEW"), None, Some("0"), None]).batchable);
        assert!(!facts(&[None, None, Some("0"), None]).batchable);
        assert!(!facts(&[Some("BASE TABLE"), Some("YES"), Some("1"), None, Some("0")]).batchable);
        assert!(!facts(&[Some("BASE TABLE"), Some("YES"), Some("0"), None, Some("1")]).batchable);
        assert!(!parse_facts(&[]).batchable);
    }

    #[test]
    fn each_fact_is_read_from_its_own_column() {
        for (i, fact) in Fact::ALL.iter().enumerate() {
            assert_eq!(*fact as usize, i, "{fact:?}");
        }
        let sql = facts_query(b"db", "t");
        assert_eq!(sql.matches("(SELECT ").count(), 6, "{sql}");
        assert!(
            sql.contains(r"'^current_timestamp(\\([0-6]?\\))?$'"),
            "{sql}"
        );
    }

    #[test]
    fn cache_is_per_user_and_forgets() {
        let cache = FactsCache::default();
        let alice: Arc<[u8]> = Arc::from(&b"alice"[..]);
        let bob: Arc<[u8]> = Arc::from(&b"bob"[..]);
        let facts = Arc::new(TableFacts {
            batchable: true,
            auto_increment: None,
            label: "db.t".into(),
        });
        cache.put(&alice, b"db", "t", facts);
        let now = Instant::now();
        assert!(cache.get(now, &alice, b"db", "t").is_some());
        assert!(cache.get(now, &bob, b"db", "t").is_none());
        assert!(cache.get(now + FACTS_TTL, &alice, b"db", "t").is_none());
        cache.forget_all();
        assert!(cache.get(now, &alice, b"db", "t").is_none());
    }

    #[test]
    fn what_a_session_keeps_ends_with_its_time_and_with_a_forget() {
        let cache = FactsCache::default();
        let alice: Arc<[u8]> = Arc::from(&b"alice"[..]);
        let facts = Arc::new(TableFacts {
            batchable: true,
            auto_increment: None,
            label: "db.t".into(),
        });
        let now = Instant::now();
        let mut recent = RecentFacts::default();
        let generation = cache.generation.load(Ordering::Acquire);
        recent.keep(generation, now + FACTS_TTL, &alice, b"db", "t", &facts);
        assert!(recent.get(generation, now, b"alice", b"db", "t").is_some());
        assert!(recent.get(generation, now, b"bob", b"db", "t").is_none());
        assert!(recent.get(generation, now, b"alice", b"db", "u").is_none());
        assert!(recent.get(generation, now, b"alice", b"db2", "t").is_none());
        assert!(recent
            .get(generation, now + FACTS_TTL, b"alice", b"db", "t")
            .is_none());
        cache.forget_all();
        let after = cache.generation.load(Ordering::Acquire);
        assert!(recent.get(after, now, b"alice", b"db", "t").is_none());
    }
}
