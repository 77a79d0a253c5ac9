//! Session effects are read from code only: the tricky cases put each
//! word in a string, a comment, a quoted identifier and an executable
//! comment, in both escape modes and with `ANSI_QUOTES`.

use sluice_classifier::{Classifier, Effects, EscapeMode, Options};

const BACKSLASH: Options = Options {
    prepared: false,
    escapes: EscapeMode::Backslash,
    ansi_quotes: false,
};
const NO_BACKSLASH: Options = Options {
    prepared: false,
    escapes: EscapeMode::NoBackslash,
    ansi_quotes: false,
};
const ANSI: Options = Options {
    prepared: false,
    escapes: EscapeMode::Backslash,
    ansi_quotes: true,
};

fn effects(sql: &str, opts: Options) -> Effects {
    Classifier::new(0)
        .classify_with(sql.as_bytes(), opts)
        .effects
}

/// (statement, options, which effect, expected)
type Case = (&'static str, Options, fn(&Effects) -> bool, bool);

const TEMPORARY: fn(&Effects) -> bool = |e| e.temporary_table;
const TABLE_LOCK: fn(&Effects) -> bool = |e| e.table_lock;
const GLOBAL_LOCK: fn(&Effects) -> bool = |e| e.global_lock;
const PINS: fn(&Effects) -> bool = |e| e.pins_clock_or_seed;
const NEXT_TRANSACTION: fn(&Effects) -> bool = |e| e.sets_next_transaction;
const ROUTINE: fn(&Effects) -> bool = |e| e.may_call_routine;
const USE: fn(&Effects) -> bool = |e| e.may_change_database;
const SEVERAL: fn(&Effects) -> bool = |e| e.several_statements;

const CASES: &[Case] = &[
    // TEMPORARY
    (
        "CREATE TEMPORARY TABLE t (a INT)",
        BACKSLASH,
        TEMPORARY,
        true,
    ),
    ("drop temporary table t", BACKSLASH, TEMPORARY, true),
    (
        "INSERT INTO t (v) VALUES ('a temporary note')",
        BACKSLASH,
        TEMPORARY,
        false,
    ),
    (
        "INSERT INTO t (v) VALUES (\"a temporary note\")",
        BACKSLASH,
        TEMPORARY,
        false,
    ),
    (
        "INSERT INTO t (v) VALUES (1) -- temporary",
        BACKSLASH,
        TEMPORARY,
        false,
    ),
    (
        "INSERT INTO t (v) VALUES (1) /* temporary */",
        BACKSLASH,
        TEMPORARY,
        false,
    ),
    ("SELECT `temporary` FROM t", BACKSLASH, TEMPORARY, false),
    ("SELECT \"temporary\" FROM t", ANSI, TEMPORARY, false),
    (
        "CREATE /*! TEMPORARY */ TABLE t (a INT)",
        BACKSLASH,
        TEMPORARY,
        true,
    ),
    // A backslash before the quote ends the string only without escapes.
    ("SELECT 'it\\'s temporary'", BACKSLASH, TEMPORARY, false),
    (
        "SELECT 'a\\'; CREATE TEMPORARY TABLE x (a INT)",
        NO_BACKSLASH,
        TEMPORARY,
        true,
    ),
    (
        "SELECT 'a\\'; CREATE TEMPORARY TABLE x (a INT)",
        BACKSLASH,
        TEMPORARY,
        false,
    ),
    // LOCK TABLES
    ("LOCK TABLES t WRITE", BACKSLASH, TABLE_LOCK, true),
    ("lock table t read", BACKSLASH, TABLE_LOCK, true),
    ("SELECT 'LOCK TABLES' FROM t", BACKSLASH, TABLE_LOCK, false),
    ("UNLOCK TABLES", BACKSLASH, TABLE_LOCK, false),
    // global locks
    ("FLUSH TABLES WITH READ LOCK", BACKSLASH, GLOBAL_LOCK, true),
    ("FLUSH TABLES t FOR EXPORT", BACKSLASH, GLOBAL_LOCK, true),
    ("BACKUP STAGE START", BACKSLASH, GLOBAL_LOCK, true),
    (
        "SELECT 'read lock', `backup stage`",
        BACKSLASH,
        GLOBAL_LOCK,
        false,
    ),
    // pinned clock and seeds
    ("SET timestamp = 1700000000", BACKSLASH, PINS, true),
    ("SET @@session.rand_seed2 = 3", BACKSLASH, PINS, true),
    ("SET @@timestamp := 5", BACKSLASH, PINS, true),
    ("SET @timestamp = 5", BACKSLASH, PINS, false),
    ("SELECT 'timestamp = 5'", BACKSLASH, PINS, false),
    (
        "SELECT timestamp FROM t WHERE timestamp > 5",
        BACKSLASH,
        PINS,
        false,
    ),
    ("set @@timestamp:=UNIX_TIMESTAMP()", BACKSLASH, PINS, true),
    ("SET @@session.TIMESTAMP=5", BACKSLASH, PINS, true),
    (
        "SET SESSION timestamp = 7, sql_mode = ''",
        BACKSLASH,
        PINS,
        true,
    ),
    ("SET sql_mode = '', rand_seed1 = 1", BACKSLASH, PINS, true),
    (
        "SET explicit_defaults_for_timestamp = 1",
        BACKSLASH,
        PINS,
        false,
    ),
    ("SELECT @@timestamp", BACKSLASH, PINS, false),
    ("SET timestamp_x = 1", BACKSLASH, PINS, false),
    (
        "INSERT INTO t (ts) VALUES (CURRENT_TIMESTAMP)",
        BACKSLASH,
        PINS,
        false,
    ),
    // SET TRANSACTION without a scope
    (
        "SET TRANSACTION READ ONLY",
        BACKSLASH,
        NEXT_TRANSACTION,
        true,
    ),
    (
        "DO 1; set\n transaction read only",
        BACKSLASH,
        NEXT_TRANSACTION,
        true,
    ),
    (
        "SET SESSION TRANSACTION READ ONLY",
        BACKSLASH,
        NEXT_TRANSACTION,
        false,
    ),
    ("START TRANSACTION", BACKSLASH, NEXT_TRANSACTION, false),
    (
        "SELECT 'set transaction'",
        BACKSLASH,
        NEXT_TRANSACTION,
        false,
    ),
    (
        "INSERT INTO t VALUES ('transaction')",
        BACKSLASH,
        NEXT_TRANSACTION,
        false,
    ),
    (
        "SELECT 1 AS offset TRANSACTION",
        BACKSLASH,
        NEXT_TRANSACTION,
        false,
    ),
    // routine calls
    ("SELECT east()", BACKSLASH, ROUTINE, true),
    ("SELECT app.f(1) FROM t", BACKSLASH, ROUTINE, true),
    ("UPDATE t SET a = my_func (a)", BACKSLASH, ROUTINE, true),
    ("SELECT `my func`(1)", BACKSLASH, ROUTINE, true),
    (
        "SELECT COUNT(*), MAX(id), NOW() FROM t WHERE a IN (1, 2)",
        BACKSLASH,
        ROUTINE,
        false,
    ),
    (
        "SELECT 'f(x)', `g(y)` FROM t -- h(z)\n",
        BACKSLASH,
        ROUTINE,
        false,
    ),
    (
        "INSERT INTO t (a, b) VALUES (1, 2)",
        BACKSLASH,
        ROUTINE,
        false,
    ),
    (
        "insert into app.t(a) values (f2(1))",
        BACKSLASH,
        ROUTINE,
        true,
    ),
    (
        "CREATE TABLE t2 (a INT, FOREIGN KEY (a) REFERENCES p (id))",
        BACKSLASH,
        ROUTINE,
        false,
    ),
    (
        "SELECT * FROM t /* k(1) */ WHERE x = 'it''s(' ",
        BACKSLASH,
        ROUTINE,
        false,
    ),
    ("SELECT /*! f(1) */ 2", BACKSLASH, ROUTINE, true),
    (
        "SELECT JSON_OBJECT('a', 1), ST_GeomFromText('POINT(1 1)')",
        BACKSLASH,
        ROUTINE,
        false,
    ),
    (
        "SELECT NEXTVAL(s), CONNECTION_ID()",
        BACKSLASH,
        ROUTINE,
        false,
    ),
    // The bug: under NO_BACKSLASH_ESCAPES the string ends at the quote
    // after the backslash, and the call after it is code.
    ("SELECT 'C:\\', app.finer()", NO_BACKSLASH, ROUTINE, true),
    ("SELECT 'C:\\', app.finer()", BACKSLASH, ROUTINE, false),
    ("SELECT \"C:\\\", finer()", ANSI, ROUTINE, true),
    // USE
    ("USE shop", BACKSLASH, USE, true),
    ("select 1; use `x`", BACKSLASH, USE, true),
    ("SELECT user FROM users", BACKSLASH, USE, false),
    ("SELECT reuse, 'use x' FROM t", BACKSLASH, USE, false),
    // several statements
    ("SELECT 1; SELECT 2", BACKSLASH, SEVERAL, true),
    ("SELECT 1;", BACKSLASH, SEVERAL, false),
    ("SELECT ';'", BACKSLASH, SEVERAL, false),
    ("SELECT 1 -- ; SELECT 2", BACKSLASH, SEVERAL, false),
];

#[test]
fn effects_come_from_code_only() {
    let mut wrong = Vec::new();
    for (sql, opts, effect, want) in CASES {
        let got = effect(&effects(sql, *opts));
        if got != *want {
            wrong.push(format!("{sql:?} under {opts:?}: got {got}, want {want}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn show_sluice_status_is_recognised_in_code_only() {
    use sluice_classifier::is_show_sluice_status;
    assert!(is_show_sluice_status(b"SHOW SLUICE STATUS"));
    assert!(is_show_sluice_status(b"  show   sluice\nstatus ; "));
    assert!(is_show_sluice_status(b"SHOW /* ours */ SLUICE STATUS"));
    assert!(!is_show_sluice_status(b"SHOW STATUS"));
    assert!(!is_show_sluice_status(b"SHOW SLUICE STATUS LIKE 'x'"));
    assert!(!is_show_sluice_status(b"SELECT 'SHOW SLUICE STATUS'"));
    assert!(!is_show_sluice_status(b"SHOW SLUICE STATUS; SELECT 1"));
    // The session reads the same answer from the one classification.
    use sluice_classifier::{classify, Kind, ReadKind};
    assert_eq!(
        classify(b"show sluice status;").kind,
        Kind::Read(ReadKind::SluiceStatus)
    );
    assert_eq!(
        classify(b"SHOW SLUICE STATUS LIKE 'x'").kind,
        Kind::Read(ReadKind::Show)
    );
}

#[test]
fn a_failed_single_write_keeps_the_transaction_state() {
    use sluice_classifier::classify;
    for sql in [
        "INSERT INTO t VALUES (1)",
        "INSERT IGNORE INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = 2",
        "REPLACE INTO t VALUES (1)",
        "UPDATE t SET a = f(a)",
        "DELETE FROM t WHERE a = 'COMMIT'",
    ] {
        assert!(
            classify(sql.as_bytes()).failure_keeps_transaction_state(),
            "{sql}"
        );
    }
    for sql in [
        "BEGIN",
        "COMMIT",
        "SELECT 1",
        "SET autocommit = 0",
        "INSERT INTO t VALUES (1); COMMIT",
        "BEGIN; INSERT INTO t VALUES (1)",
        "CALL p()",
        "LOAD DATA INFILE 'f' INTO TABLE t",
    ] {
        assert!(
            !classify(sql.as_bytes()).failure_keeps_transaction_state(),
            "{sql}"
        );
    }
}
