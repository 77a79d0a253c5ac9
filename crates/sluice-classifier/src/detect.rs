//! Deciding a statement's [`Kind`] from its leading keywords.
//!
//! Kind detection never needs sqlparser: it reads the first significant
//! tokens (comments skipped, executable comments opened), so it is right
//! even for statements sqlparser cannot parse (`XA`, `LOAD DATA`,
//! `SET STATEMENT … FOR`, MariaDB-only syntax).

use crate::code::Code;
use crate::kind::{
    Ddl, DdlOp, DdlTarget, Kind, OtherKind, ReadKind, SessionKind, TransactionKind, WriteKind,
};
use crate::lexer::Tok;

const LOCK_FUNCS: &[&str] = &["GET_LOCK", "RELEASE_LOCK", "RELEASE_ALL_LOCKS"];
const SEQUENCE_FUNCS: &[&str] = &["NEXTVAL", "SETVAL"];

/// Decide the kind of the statement whose code tokens start at `start`.
/// Whether the whole text is `SHOW SLUICE STATUS`, with an optional `;`.
fn is_sluice_status(code: &Code<'_>) -> bool {
    let words = match code.toks.last() {
        Some(last) if last.tok == Tok::Semi => &code.toks[..code.toks.len() - 1],
        _ => &code.toks[..],
    };
    let sql = code.sql;
    matches!(words, [show, sluice, status]
        if show.is_kw(sql, "SHOW") && sluice.is_kw(sql, "SLUICE") && status.is_kw(sql, "STATUS"))
}

pub(crate) fn detect(code: &Code<'_>, start: usize) -> Kind {
    let Some(first) = code.toks.get(start) else {
        return Kind::Other(OtherKind::Empty);
    };
    if first.tok == Tok::LParen {
        return select_kind(code, start);
    }
    if first.tok != Tok::Word {
        return Kind::Other(OtherKind::Unknown);
    }
    let kw = |k: &str| first.is_kw(code.sql, k);
    let at = |off: usize, k: &str| code.kw(start + off, k);
    if kw("SELECT") || kw("VALUES") || kw("TABLE") {
        select_kind(code, start)
    } else if kw("WITH") {
        match code.find_top(start, &["INSERT", "REPLACE", "UPDATE", "DELETE"]) {
            Some(i) => detect(code, i),
            None => select_kind(code, start),
        }
    } else if start == 0 && is_sluice_status(code) {
        Kind::Read(ReadKind::SluiceStatus)
    } else if ["SHOW", "DESCRIBE", "DESC", "EXPLAIN", "HELP", "CHECKSUM"]
        .iter()
        .any(|k| kw(k))
    {
        Kind::Read(ReadKind::Show)
    } else if kw("INSERT") {
        Kind::Write(WriteKind::Insert)
    } else if kw("REPLACE") {
        Kind::Write(WriteKind::Replace)
    } else if kw("UPDATE") {
        Kind::Write(WriteKind::Update)
    } else if kw("DELETE") {
        Kind::Write(WriteKind::Delete)
    } else if kw("LOAD") {
        if at(1, "DATA") || at(1, "XML") {
            Kind::Write(WriteKind::LoadData)
        } else {
            Kind::Other(OtherKind::Admin)
        }
    } else if kw("BEGIN") {
        if at(1, "NOT") {
            Kind::Other(OtherKind::Compound)
        } else {
            Kind::Transaction(TransactionKind::Begin)
        }
    } else if kw("START") {
        if at(1, "TRANSACTION") {
            let rest = start + 2;
            let read_only =
                (rest..code.toks.len()).any(|i| code.kw(i, "READ") && code.kw(i + 1, "ONLY"));
            let consistent_snapshot = (rest..code.toks.len()).any(|i| code.kw(i, "CONSISTENT"));
            Kind::Transaction(TransactionKind::Start {
                read_only,
                consistent_snapshot,
            })
        } else {
            Kind::Other(OtherKind::Admin)
        }
    } else if kw("COMMIT") {
        Kind::Transaction(TransactionKind::Commit)
    } else if kw("ROLLBACK") {
        let to = (start + 1..code.toks.len().min(start + 3)).any(|i| code.kw(i, "TO"));
        if to {
            Kind::Transaction(TransactionKind::RollbackToSavepoint)
        } else {
            Kind::Transaction(TransactionKind::Rollback)
        }
    } else if kw("SAVEPOINT") {
        Kind::Transaction(TransactionKind::Savepoint)
    } else if kw("RELEASE") {
        Kind::Transaction(TransactionKind::ReleaseSavepoint)
    } else if kw("XA") {
        Kind::Transaction(TransactionKind::Xa)
    } else if kw("SET") {
        set_kind(code, start)
    } else if kw("USE") {
        match code.ident(start + 1) {
            Some(schema) => Kind::Session(SessionKind::Use { schema }),
            None => Kind::Other(OtherKind::Unknown),
        }
    } else if kw("LOCK") {
        if at(1, "TABLES") || at(1, "TABLE") {
            Kind::Session(SessionKind::LockTables)
        } else {
            Kind::Other(OtherKind::Admin)
        }
    } else if kw("UNLOCK") {
        if at(1, "TABLES") || at(1, "TABLE") {
            Kind::Session(SessionKind::UnlockTables)
        } else {
            Kind::Other(OtherKind::Admin)
        }
    } else if kw("PREPARE") || kw("EXECUTE") || kw("DEALLOCATE") || (kw("DROP") && at(1, "PREPARE"))
    {
        Kind::Session(SessionKind::SqlPrepared)
    } else if kw("CALL") {
        Kind::Other(OtherKind::Call)
    } else if kw("DO") {
        if code.calls_any(LOCK_FUNCS) {
            Kind::Session(SessionKind::UserLock)
        } else {
            Kind::Other(OtherKind::Do)
        }
    } else if kw("HANDLER") {
        Kind::Other(OtherKind::Handler)
    } else if kw("IF") || kw("CASE") || kw("LOOP") || kw("WHILE") || kw("REPEAT") {
        Kind::Other(OtherKind::Compound)
    } else if kw("ANALYZE") {
        if at(1, "TABLE") || at(2, "TABLE") {
            ddl(DdlOp::Maintenance, tables_after(code, start, &["TABLE"]))
        } else {
            // MariaDB `ANALYZE [FORMAT=JSON] <statement>` runs the statement.
            match code.find_top(
                start + 1,
                &["SELECT", "INSERT", "REPLACE", "UPDATE", "DELETE", "WITH"],
            ) {
                Some(i) => detect(code, i),
                None => Kind::Other(OtherKind::Unknown),
            }
        }
    } else if kw("OPTIMIZE") || kw("REPAIR") || kw("CHECK") {
        ddl(DdlOp::Maintenance, tables_after(code, start, &["TABLE"]))
    } else if kw("CREATE") {
        create_kind(code, start)
    } else if kw("DROP") {
        drop_kind(code, start)
    } else if kw("ALTER") {
        alter_kind(code, start)
    } else if kw("RENAME") {
        if at(1, "TABLE") || at(1, "TABLES") {
            let mut tables = Vec::new();
            let mut i = start + 2;
            while let Some((t, next)) = code.table_name(i) {
                tables.push(t);
                i = next;
                if code.kw(i, "TO") || code.tok(i) == Some(Tok::Comma) {
                    i += 1;
                } else {
                    break;
                }
            }
            ddl(DdlOp::Rename, DdlTarget::Tables(tables))
        } else {
            ddl(DdlOp::Account, DdlTarget::Nothing)
        }
    } else if kw("TRUNCATE") {
        let i = if at(1, "TABLE") { start + 2 } else { start + 1 };
        ddl(DdlOp::Truncate, DdlTarget::Tables(code.table_list(i)))
    } else if kw("GRANT") || kw("REVOKE") {
        ddl(DdlOp::Account, DdlTarget::Nothing)
    } else if [
        "FLUSH",
        "KILL",
        "RESET",
        "PURGE",
        "CHANGE",
        "INSTALL",
        "UNINSTALL",
        "SHUTDOWN",
        "STOP",
        "BACKUP",
        "BINLOG",
        "CACHE",
    ]
    .iter()
    .any(|k| kw(k))
    {
        Kind::Other(OtherKind::Admin)
    } else {
        Kind::Other(OtherKind::Unknown)
    }
}

fn ddl(op: DdlOp, target: DdlTarget) -> Kind {
    Kind::Ddl(Ddl { op, target })
}

fn select_kind(code: &Code<'_>, start: usize) -> Kind {
    if code.calls_any(LOCK_FUNCS) {
        return Kind::Session(SessionKind::UserLock);
    }
    let assigns = code.toks.windows(3).skip(start).any(|w| {
        // `@x :=`
        w[0].tok == Tok::Word
            && w[1].tok == Tok::Op
            && w[1].bytes(code.sql) == b":"
            && w[2].tok == Tok::Op
            && w[2].bytes(code.sql) == b"="
    });
    let into_var = code
        .toks
        .windows(2)
        .skip(start)
        .any(|w| w[0].is_kw(code.sql, "INTO") && w[1].tok == Tok::At);
    if assigns || into_var {
        return Kind::Session(SessionKind::UserVariable);
    }
    let next_value = code.toks.windows(3).any(|w| {
        w[0].is_kw(code.sql, "NEXT") && w[1].is_kw(code.sql, "VALUE") && w[2].is_kw(code.sql, "FOR")
    });
    if next_value || code.calls_any(SEQUENCE_FUNCS) {
        return Kind::Read(ReadKind::SelectSequence);
    }
    Kind::Read(ReadKind::Select)
}

fn set_kind(code: &Code<'_>, start: usize) -> Kind {
    let at = |off: usize, k: &str| code.kw(start + off, k);
    if at(1, "STATEMENT") {
        // MariaDB `SET STATEMENT var=… FOR <statement>`.
        // Nested prefixes are skipped in a loop: no recursion on input.
        let mut from = start + 2;
        loop {
            let Some(i) = code.find_top(from, &["FOR"]) else {
                return Kind::Other(OtherKind::Unknown);
            };
            if code.kw(i + 1, "SET") && code.kw(i + 2, "STATEMENT") {
                from = i + 3;
            } else {
                return detect(code, i + 1);
            }
        }
    }
    if at(1, "TRANSACTION") {
        return Kind::Transaction(TransactionKind::SetTransaction { next_only: true });
    }
    if at(2, "TRANSACTION") && (at(1, "SESSION") || at(1, "GLOBAL") || at(1, "LOCAL")) {
        return Kind::Transaction(TransactionKind::SetTransaction { next_only: false });
    }
    if at(1, "NAMES") || at(1, "CHARSET") || (at(1, "CHARACTER") && at(2, "SET")) {
        return Kind::Session(SessionKind::SetNames);
    }
    if at(1, "PASSWORD") || at(1, "ROLE") || (at(1, "DEFAULT") && at(2, "ROLE")) {
        return ddl(DdlOp::Account, DdlTarget::Nothing);
    }
    // Walk the assignments: `[scope] name = value` separated by commas.
    let mut i = start + 1;
    let mut autocommit: Option<Option<bool>> = None;
    loop {
        let mut global = false;
        // Scope words and `@@scope.` prefixes.
        loop {
            if code.kw(i, "GLOBAL") {
                global = true;
                i += 1;
            } else if code.kw(i, "SESSION") || code.kw(i, "LOCAL") {
                i += 1;
            } else if code.tok(i) == Some(Tok::At) && code.tok(i + 1) == Some(Tok::At) {
                i += 2;
                if (code.kw(i, "GLOBAL") || code.kw(i, "SESSION") || code.kw(i, "LOCAL"))
                    && code.tok(i + 1) == Some(Tok::Dot)
                {
                    global |= code.kw(i, "GLOBAL");
                    i += 2;
                }
            } else {
                break;
            }
        }
        if code.kw(i, "AUTOCOMMIT") && !global {
            let mut v = i + 1;
            while code.tok(v) == Some(Tok::Op) {
                v += 1;
            }
            autocommit = Some(autocommit_value(code, v));
        }
        // Skip to the next top-level comma.
        let mut depth = 0usize;
        while let Some(t) = code.tok(i) {
            match t {
                Tok::LParen => depth += 1,
                Tok::RParen => depth = depth.saturating_sub(1),
                Tok::Comma if depth == 0 => break,
                _ => {}
            }
            i += 1;
        }
        if code.tok(i) != Some(Tok::Comma) {
            break;
        }
        i += 1;
    }
    match autocommit {
        Some(v) => Kind::Transaction(TransactionKind::SetAutocommit(v)),
        None => Kind::Session(SessionKind::SetVariable),
    }
}

fn autocommit_value(code: &Code<'_>, i: usize) -> Option<bool> {
    let t = code.toks.get(i)?;
    let b = t.bytes(code.sql);
    let next_ends = matches!(code.tok(i + 1), None | Some(Tok::Comma) | Some(Tok::Semi));
    if !next_ends {
        return None;
    }
    if b == b"1" || t.is_kw(code.sql, "ON") || t.is_kw(code.sql, "TRUE") {
        Some(true)
    } else if b == b"0" || t.is_kw(code.sql, "OFF") || t.is_kw(code.sql, "FALSE") {
        Some(false)
    } else {
        None
    }
}

/// Skip `IF [NOT] EXISTS` at `i`.
fn skip_if_exists(code: &Code<'_>, mut i: usize) -> usize {
    if code.kw(i, "IF") {
        i += 1;
        if code.kw(i, "NOT") {
            i += 1;
        }
        if code.kw(i, "EXISTS") {
            i += 1;
        }
    }
    i
}

/// Tables named after the first of `objects` (e.g. `TABLE`).
fn tables_after(code: &Code<'_>, start: usize, objects: &[&str]) -> DdlTarget {
    match code.find_top(start, objects) {
        Some(i) => DdlTarget::Tables(code.table_list(skip_if_exists(code, i + 1))),
        None => DdlTarget::Unknown,
    }
}

/// Table named after `ON` (indexes, triggers).
fn table_after_on(code: &Code<'_>, from: usize) -> DdlTarget {
    match code.find_top(from, &["ON"]) {
        Some(i) => match code.table_name(i + 1) {
            Some((t, _)) => DdlTarget::Tables(vec![t]),
            None => DdlTarget::Unknown,
        },
        None => DdlTarget::Unknown,
    }
}

const MODIFIERS: &[&str] = &[
    "OR",
    "REPLACE",
    "UNIQUE",
    "FULLTEXT",
    "SPATIAL",
    "ONLINE",
    "OFFLINE",
    "IGNORE",
    "AGGREGATE",
    "SQL",
    "SECURITY",
    "DEFINER",
    "INVOKER",
    "ALGORITHM",
    "UNDEFINED",
    "MERGE",
    "TEMPTABLE",
];

/// Index of the object word (`TABLE`, `INDEX`, …) after `CREATE`/`DROP`/
/// `ALTER` and its modifiers; also whether `TEMPORARY` was seen.
fn object_word(code: &Code<'_>, start: usize) -> (usize, bool) {
    let mut i = start + 1;
    let mut temporary = false;
    loop {
        let Some(t) = code.toks.get(i) else {
            return (i, temporary);
        };
        if t.is_kw(code.sql, "TEMPORARY") {
            temporary = true;
            i += 1;
        } else if MODIFIERS.iter().any(|m| t.is_kw(code.sql, m)) {
            i += 1;
        } else if t.tok == Tok::Op || t.tok == Tok::At {
            // `DEFINER = user@host`, `ALGORITHM = MERGE`
            i += 1;
        } else if t.tok != Tok::Word || code.kw(i + 1, "VIEW") || code.tok(i + 1) == Some(Tok::At) {
            // user names in DEFINER clauses
            i += 1;
        } else {
            return (i, temporary);
        }
    }
}

fn create_kind(code: &Code<'_>, start: usize) -> Kind {
    let (i, temporary) = object_word(code, start);
    let obj = |k: &str| code.kw(i, k);
    if obj("TABLE") {
        let name = code.table_name(skip_if_exists(code, i + 1)).map(|(t, _)| t);
        match (temporary, name) {
            (true, Some(table)) => Kind::Session(SessionKind::CreateTemporaryTable { table }),
            (false, Some(t)) => ddl(DdlOp::Create, DdlTarget::Tables(vec![t])),
            (_, None) => ddl(DdlOp::Create, DdlTarget::Unknown),
        }
    } else if obj("INDEX") || obj("TRIGGER") {
        ddl(DdlOp::Create, table_after_on(code, i + 1))
    } else if obj("VIEW") || obj("SEQUENCE") {
        ddl(DdlOp::Create, tables_after(code, i, &["VIEW", "SEQUENCE"]))
    } else if obj("DATABASE") || obj("SCHEMA") {
        match code.ident(skip_if_exists(code, i + 1)) {
            Some(s) => ddl(DdlOp::Create, DdlTarget::Schema(s)),
            None => ddl(DdlOp::Create, DdlTarget::Unknown),
        }
    } else if obj("USER") || obj("ROLE") {
        ddl(DdlOp::Account, DdlTarget::Nothing)
    } else if ["PROCEDURE", "FUNCTION", "EVENT", "SERVER", "PACKAGE"]
        .iter()
        .any(|k| obj(k))
    {
        ddl(DdlOp::Create, DdlTarget::Nothing)
    } else {
        ddl(DdlOp::Create, DdlTarget::Unknown)
    }
}

fn drop_kind(code: &Code<'_>, start: usize) -> Kind {
    let (i, temporary) = object_word(code, start);
    let obj = |k: &str| code.kw(i, k);
    if obj("TABLE") || obj("TABLES") {
        let tables = code.table_list(skip_if_exists(code, i + 1));
        if temporary {
            Kind::Session(SessionKind::DropTemporaryTable { tables })
        } else {
            ddl(DdlOp::Drop, DdlTarget::Tables(tables))
        }
    } else if obj("INDEX") {
        ddl(DdlOp::Drop, table_after_on(code, i + 1))
    } else if obj("VIEW") || obj("SEQUENCE") {
        ddl(
            DdlOp::Drop,
            DdlTarget::Tables(code.table_list(skip_if_exists(code, i + 1))),
        )
    } else if obj("DATABASE") || obj("SCHEMA") {
        match code.ident(skip_if_exists(code, i + 1)) {
            Some(s) => ddl(DdlOp::Drop, DdlTarget::Schema(s)),
            None => ddl(DdlOp::Drop, DdlTarget::Unknown),
        }
    } else if obj("USER") || obj("ROLE") {
        ddl(DdlOp::Account, DdlTarget::Nothing)
    } else if ["PROCEDURE", "FUNCTION", "EVENT", "SERVER", "PACKAGE"]
        .iter()
        .any(|k| obj(k))
    {
        ddl(DdlOp::Drop, DdlTarget::Nothing)
    } else {
        // DROP TRIGGER names no table: forget everything.
        ddl(DdlOp::Drop, DdlTarget::Unknown)
    }
}

fn alter_kind(code: &Code<'_>, start: usize) -> Kind {
    let (i, _) = object_word(code, start);
    let obj = |k: &str| code.kw(i, k);
    if obj("TABLE") || obj("VIEW") || obj("SEQUENCE") {
        match code.table_name(skip_if_exists(code, i + 1)) {
            Some((t, _)) => ddl(DdlOp::Alter, DdlTarget::Tables(vec![t])),
            None => ddl(DdlOp::Alter, DdlTarget::Unknown),
        }
    } else if obj("DATABASE") || obj("SCHEMA") {
        match code.ident(i + 1) {
            Some(s) => ddl(DdlOp::Alter, DdlTarget::Schema(s)),
            None => ddl(DdlOp::Alter, DdlTarget::Unknown),
        }
    } else if obj("USER") || obj("ROLE") {
        ddl(DdlOp::Account, DdlTarget::Nothing)
    } else if ["PROCEDURE", "FUNCTION", "EVENT", "SERVER"]
        .iter()
        .any(|k| obj(k))
    {
        ddl(DdlOp::Alter, DdlTarget::Nothing)
    } else {
        ddl(DdlOp::Alter, DdlTarget::Unknown)
    }
}
