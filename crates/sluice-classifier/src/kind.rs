//! What kind of statement a text is, decided from its leading keywords.
//!
//! The types live here; [`crate::detect`] decides them.

/// The kind of a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Reads data only.
    Read(ReadKind),
    /// Changes rows.
    Write(WriteKind),
    /// Starts, ends or shapes a transaction.
    Transaction(TransactionKind),
    /// Changes session state that later statements depend on.
    Session(SessionKind),
    /// Changes the schema; the tables named lose their cached facts.
    Ddl(Ddl),
    /// Anything else.
    Other(OtherKind),
}

/// Kinds of reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadKind {
    /// `SELECT`, `WITH … SELECT`, `VALUES`, `TABLE`.
    Select,
    /// A `SELECT` that advances a sequence (`NEXTVAL`, `SETVAL`,
    /// `NEXT VALUE FOR`): it changes data.
    SelectSequence,
    /// `SHOW`, `DESCRIBE`, `EXPLAIN`, `HELP`, `CHECKSUM`.
    Show,
    /// `SHOW SLUICE STATUS` alone (any case, spacing and comments, an
    /// optional trailing `;`): Sluice's own statement, which Sluice
    /// answers and the server never sees.
    SluiceStatus,
}

/// Kinds of writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    /// `INSERT`
    Insert,
    /// `REPLACE`
    Replace,
    /// `UPDATE`
    Update,
    /// `DELETE`
    Delete,
    /// `LOAD DATA` / `LOAD XML`
    LoadData,
}

/// Kinds of transaction control.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionKind {
    /// `BEGIN [WORK]`
    Begin,
    /// `START TRANSACTION [READ ONLY | READ WRITE | WITH CONSISTENT SNAPSHOT]`
    Start {
        /// `READ ONLY` was given.
        read_only: bool,
        /// `WITH CONSISTENT SNAPSHOT` was given.
        consistent_snapshot: bool,
    },
    /// `COMMIT`
    Commit,
    /// `ROLLBACK` (the whole transaction)
    Rollback,
    /// `SAVEPOINT name`
    Savepoint,
    /// `ROLLBACK TO [SAVEPOINT] name`
    RollbackToSavepoint,
    /// `RELEASE SAVEPOINT name`
    ReleaseSavepoint,
    /// Any `XA …` statement.
    Xa,
    /// `SET autocommit = …`; the value when it is a plain literal.
    SetAutocommit(Option<bool>),
    /// `SET [SESSION | GLOBAL] TRANSACTION …`
    SetTransaction {
        /// No scope given: the characteristics apply to the session's
        /// next transaction only (an autocommit statement counts).
        next_only: bool,
    },
}

/// Kinds of session changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionKind {
    /// `SET [SESSION | GLOBAL | @@…] var = …`, `SET @user = …`.
    SetVariable,
    /// `SET NAMES …`, `SET CHARACTER SET …`.
    SetNames,
    /// `USE db`
    Use {
        /// The database named.
        schema: String,
    },
    /// `CREATE TEMPORARY TABLE`
    CreateTemporaryTable {
        /// The table created.
        table: TableName,
    },
    /// `DROP TEMPORARY TABLE`
    DropTemporaryTable {
        /// The tables dropped.
        tables: Vec<TableName>,
    },
    /// `LOCK TABLES`
    LockTables,
    /// `UNLOCK TABLES`
    UnlockTables,
    /// A statement calling `GET_LOCK`, `RELEASE_LOCK` or `RELEASE_ALL_LOCKS`.
    UserLock,
    /// A `SELECT` that assigns user variables (`@x := …`, `INTO @x`).
    UserVariable,
    /// `PREPARE`, `EXECUTE`, `DEALLOCATE PREPARE` (SQL-level prepared
    /// statements live in the session).
    SqlPrepared,
}

/// A DDL statement and what it touches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ddl {
    /// The operation.
    pub op: DdlOp,
    /// What table facts it invalidates.
    pub target: DdlTarget,
}

/// DDL operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DdlOp {
    /// `CREATE …`
    Create,
    /// `ALTER …`
    Alter,
    /// `DROP …`
    Drop,
    /// `RENAME …`
    Rename,
    /// `TRUNCATE …`
    Truncate,
    /// `ANALYZE / OPTIMIZE / REPAIR / CHECK TABLE`
    Maintenance,
    /// `GRANT`, `REVOKE`, `CREATE USER`, … (no table facts change).
    Account,
}

/// What a DDL statement invalidates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DdlTarget {
    /// These tables (or views, or sequences).
    Tables(Vec<TableName>),
    /// Every table of this database.
    Schema(String),
    /// No table facts (routines, users, events, …).
    Nothing,
    /// Unknown: forget every table fact.
    Unknown,
}

/// Kinds of statements that fit no other group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtherKind {
    /// `CALL proc(…)`: may change anything.
    Call,
    /// `DO expr`: may call functions that change data.
    Do,
    /// `BEGIN NOT ATOMIC …`, `IF …`, `CASE …` compound statements.
    Compound,
    /// `HANDLER …`
    Handler,
    /// `FLUSH`, `KILL`, `RESET`, `PURGE`, `CHANGE MASTER`, `SHUTDOWN`, …
    Admin,
    /// Empty text (only comments or whitespace).
    Empty,
    /// Not recognised.
    Unknown,
}

/// A possibly schema-qualified table name, unquoted.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TableName {
    /// The schema, if the name was qualified.
    pub schema: Option<String>,
    /// The table.
    pub name: String,
}

impl Kind {
    /// True for anything that may change data (rows, schema, sequences,
    /// temporary tables). Unknown statements count as writes.
    pub fn writable(&self) -> bool {
        match self {
            Kind::Read(r) => *r == ReadKind::SelectSequence,
            Kind::Write(_) | Kind::Ddl(_) => true,
            Kind::Transaction(_) => false,
            Kind::Session(s) => matches!(
                s,
                SessionKind::CreateTemporaryTable { .. }
                    | SessionKind::DropTemporaryTable { .. }
                    | SessionKind::SqlPrepared
            ),
            Kind::Other(o) => !matches!(o, OtherKind::Handler | OtherKind::Empty),
        }
    }
}
