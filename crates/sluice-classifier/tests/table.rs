//! Table-driven classification tests: every kind, every reason, and the
//! exact row span of every batchable statement. Each case is classified
//! cold (no cache) and hot (cache warmed by itself), and both must agree.

use sluice_classifier::{
    Classification, Classifier, Ddl, DdlOp, DdlTarget, Kind, NotBatchable as N, OtherKind,
    ReadKind, SessionKind, TableName, TransactionKind as Tx, WriteKind,
};

enum E {
    /// Batchable; the row tuple text.
    Row(&'static str),
    /// Not batchable for this reason.
    No(N),
}
use E::{No, Row};

fn t(name: &str) -> TableName {
    match name.split_once('.') {
        Some((s, n)) => TableName {
            schema: Some(s.into()),
            name: n.into(),
        },
        None => TableName {
            schema: None,
            name: name.into(),
        },
    }
}

fn ddl(op: DdlOp, names: &[&str]) -> Kind {
    Kind::Ddl(Ddl {
        op,
        target: DdlTarget::Tables(names.iter().map(|n| t(n)).collect()),
    })
}

fn ddl_t(op: DdlOp, target: DdlTarget) -> Kind {
    Kind::Ddl(Ddl { op, target })
}

const INS: Kind = Kind::Write(WriteKind::Insert);
const SEL: Kind = Kind::Read(ReadKind::Select);
const SHOW: Kind = Kind::Read(ReadKind::Show);
const SETV: Kind = Kind::Session(SessionKind::SetVariable);

fn cases() -> Vec<(&'static str, Kind, E)> {
    use DdlOp::*;
    vec![
        // ---- batchable INSERTs
        ("INSERT INTO t VALUES (1)", INS, Row("(1)")),
        ("insert into t values (1)", INS, Row("(1)")),
        ("INSERT t VALUES (1)", INS, Row("(1)")),
        ("INSERT INTO t VALUE (1, 2)", INS, Row("(1, 2)")),
        ("INSERT INTO t (a, b) VALUES (1, 'x')", INS, Row("(1, 'x')")),
        ("INSERT INTO `t` (`a`, `b c`) VALUES (1, 2)", INS, Row("(1, 2)")),
        ("INSERT INTO db.t (a) VALUES (1);", INS, Row("(1)")),
        ("INSERT INTO `db`.`t` (a) VALUES (1) ;  ", INS, Row("(1)")),
        ("INSERT INTO t (t.a) VALUES (1)", INS, Row("(1)")),
        ("INSERT INTO t VALUES (NOW())", INS, Row("(NOW())")),
        ("INSERT INTO t VALUES (NOW(6), CURRENT_TIMESTAMP, CURRENT_TIMESTAMP(3))", INS, Row("(NOW(6), CURRENT_TIMESTAMP, CURRENT_TIMESTAMP(3))")),
        ("INSERT INTO t VALUES (UUID(), UUID_SHORT(), RAND())", INS, Row("(UUID(), UUID_SHORT(), RAND())")),
        ("INSERT INTO t VALUES (DEFAULT, NULL, TRUE, FALSE)", INS, Row("(DEFAULT, NULL, TRUE, FALSE)")),
        ("INSERT INTO t VALUES (-1, +2, - -3, --4)", INS, Row("(-1, +2, - -3, --4)")),
        ("INSERT INTO t VALUES (-1.5e-3, .5, 1., 0x1F, 0b101)", INS, Row("(-1.5e-3, .5, 1., 0x1F, 0b101)")),
        ("INSERT INTO t VALUES (_utf8mb4'x', _binary X'00', _latin1 x'41')", INS, Row("(_utf8mb4'x', _binary X'00', _latin1 x'41')")),
        ("INSERT INTO t VALUES (_latin1 b'01')", INS, No(N::UnsupportedExpression)),
        ("INSERT INTO t VALUES (X'0')", INS, No(N::ParseFailure)),
        ("INSERT INTO t VALUES (X'GG')", INS, No(N::ParseFailure)),
        ("INSERT INTO t VALUES (X'\\00')", INS, No(N::ParseFailure)),
        ("INSERT INTO t VALUES (b'012')", INS, No(N::ParseFailure)),
        ("INSERT INTO t VALUES (X'', b'')", INS, Row("(X'', b'')")),
        ("INSERT INTO t VALUES ('x' COLLATE utf8mb4_bin)", INS, Row("('x' COLLATE utf8mb4_bin)")),
        ("INSERT INTO t VALUES (X'00', x'ff', B'1', N'nat')", INS, Row("(X'00', x'ff', B'1', N'nat')")),
        ("INSERT INTO t VALUES ('a\\\\b', 'c\\\\')", INS, Row("('a\\\\b', 'c\\\\')")),
        ("INSERT INTO t VALUES ('it''s', '')", INS, Row("('it''s', '')")),
        ("INSERT INTO t VALUES ('(', ')', ',', ';')", INS, Row("('(', ')', ',', ';')")),
        ("INSERT INTO t VALUES (1 /* one */, 2 -- two\n)", INS, Row("(1 /* one */, 2 -- two\n)")),
        ("INSERT INTO t VALUES (1 # c\n)", INS, Row("(1 # c\n)")),
        ("INSERT /*M! */ INTO t VALUES (1)", INS, Row("(1)")),
        ("INSERT INTO t /*! */ VALUES (1)", INS, Row("(1)")),
        ("INSERT /*! INTO */ t VALUES (1)", INS, Row("(1)")),
        ("INSERT INTO t VALUES (1) /*M!100000 */", INS, Row("(1)")),
        ("/* batch:20 */ INSERT INTO t VALUES (1)", INS, Row("(1)")),
        ("INSERT /* file:a.rs line:3 */ INTO t VALUES (1)", INS, Row("(1)")),
        ("INSERT /*+ NO_RANGE_OPTIMIZATION(t) */ INTO t VALUES (1)", INS, Row("(1)")),
        ("INSERT INTO t VALUES (DATE '2020-01-01', TIMESTAMP'2020-01-01 00:00:00', TIME '10:00')", INS, Row("(DATE '2020-01-01', TIMESTAMP'2020-01-01 00:00:00', TIME '10:00')")),
        ("INSERT INTO t VALUES (CONCAT('a', 1), COALESCE(NULL, 2), IF(1, 2, 3))", INS, Row("(CONCAT('a', 1), COALESCE(NULL, 2), IF(1, 2, 3))")),
        ("INSERT INTO t VALUES (1 + 2 * 3 DIV 4 % 5 / 6 - 7)", INS, Row("(1 + 2 * 3 DIV 4 % 5 / 6 - 7)")),
        ("INSERT INTO t VALUES ((1), ((2)))", INS, Row("((1), ((2)))")),
        ("INSERT INTO t VALUES (JSON_OBJECT('a', 1), ST_GeomFromText('POINT(1 1)'))", INS, Row("(JSON_OBJECT('a', 1), ST_GeomFromText('POINT(1 1)'))")),
        ("INSERT INTO t VALUES (UNHEX('00'), MD5('x'), FROM_UNIXTIME(0))", INS, Row("(UNHEX('00'), MD5('x'), FROM_UNIXTIME(0))")),
        ("INSERT INTO t () VALUES ()", INS, Row("()")),
        ("INSERT INTO t VALUES ()", INS, Row("()")),
        ("INSERT INTO value VALUES (1)", INS, Row("(1)")),
        ("INSERT INTO t (value) VALUES (1)", INS, Row("(1)")),
        ("INSERT INTO t VALUES ('é', 'ü')", INS, Row("('é', 'ü')")),
        ("  \n INSERT INTO t VALUES (1)\n", INS, Row("(1)")),
        ("INSERT INTO t VALUES ('/* not a comment */', '-- nor this')", INS, Row("('/* not a comment */', '-- nor this')")),
        ("INSERT INTO t VALUES (1) -- trailing comment", INS, Row("(1)")),
        ("INSERT INTO t VALUES ('a'\n'b')", INS, No(N::UnsupportedExpression)),
        ("INSERT IGNORE INTO t VALUES (1)", INS, Row("(1)")),
        ("insert ignore t (a) values (1)", INS, Row("(1)")),
        ("INSERT /*! IGNORE */ INTO t VALUES (1)", INS, Row("(1)")),
        // ---- not batchable INSERTs
        ("INSERT /*M! IGNORE */ INTO t VALUES (1)", INS, No(N::ConditionalComment)),
        ("INSERT /*!50000 IGNORE */ INTO t VALUES (1)", INS, No(N::ConditionalComment)),
        ("INSERT LOW_PRIORITY IGNORE INTO t VALUES (1)", INS, No(N::PriorityModifier)),
        ("INSERT /*M!100000 INTO t VALUES (1) */", INS, No(N::ConditionalComment)),
        ("INSERT INTO t VALUES (1) /*M!100000 , (2) */", INS, No(N::UnsupportedExpression)),
        ("INSERT INTO t /*!40000 VALUES */ (1)", INS, No(N::ConditionalComment)),
        ("INSERT LOW_PRIORITY INTO t VALUES (1)", INS, No(N::PriorityModifier)),
        ("INSERT DELAYED INTO t VALUES (1)", INS, No(N::PriorityModifier)),
        ("INSERT HIGH_PRIORITY INTO t VALUES (1)", INS, No(N::PriorityModifier)),
        ("INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = 1", INS, Row("(1)")),
        ("INSERT INTO t (a, b) VALUES (1, 2) ON DUPLICATE KEY UPDATE b = VALUES(b), n = n + 1;", INS, Row("(1, 2)")),
        ("INSERT IGNORE INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id)", INS, Row("(1)")),
        ("INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = (SELECT MAX(a) FROM u)", INS, Row("(1)")),
        ("INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = my_func(a)", INS, No(N::UnsupportedExpression)),
        ("INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = 1 RETURNING id", INS, No(N::Returning)),
        ("INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = 1; SELECT 1", INS, No(N::MultiStatement)),
        ("INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE", INS, No(N::ParseFailure)),
        ("INSERT INTO t VALUES (1) ON DUPLICATE KEY a = 1", INS, No(N::ParseFailure)),
        ("INSERT INTO t VALUES (1) /*!50000 ON DUPLICATE KEY UPDATE a = 1 */", INS, No(N::ConditionalComment)),
        ("INSERT INTO t VALUES (1) AS new ON DUPLICATE KEY UPDATE a = new.a", INS, No(N::RowAlias)),
        ("INSERT INTO t SELECT * FROM u", INS, No(N::SelectSource)),
        ("INSERT INTO t (a) SELECT 1", INS, No(N::SelectSource)),
        ("INSERT INTO t (SELECT 1)", INS, No(N::SelectSource)),
        ("INSERT INTO t TABLE u", INS, No(N::SelectSource)),
        ("INSERT INTO t WITH c AS (SELECT 1) SELECT * FROM c", INS, No(N::SelectSource)),
        ("INSERT INTO t SET a = 1", INS, No(N::SetForm)),
        ("INSERT INTO t VALUES (1) RETURNING id", INS, No(N::Returning)),
        ("INSERT INTO t PARTITION (p0) VALUES (1)", INS, No(N::Partition)),
        ("INSERT INTO t VALUES (1), (2)", INS, Row("(1), (2)")),
        ("INSERT INTO t VALUES (1),(2),(3)", INS, Row("(1),(2),(3)")),
        ("INSERT INTO t VALUES (1),(2, 3)", INS, No(N::ParseFailure)),
        ("INSERT INTO t VALUES (1), 2", INS, No(N::SeveralRows)),
        ("INSERT INTO t VALUES (1),(LAST_INSERT_ID())", INS, No(N::SessionFunction)),
        ("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)", INS, No(N::MultiStatement)),
        ("INSERT INTO t VALUES (1); SELECT 1", INS, No(N::MultiStatement)),
        ("INSERT INTO t VALUES (LAST_INSERT_ID())", INS, No(N::SessionFunction)),
        ("INSERT INTO t VALUES (CONNECTION_ID())", INS, No(N::SessionFunction)),
        ("INSERT INTO t VALUES (ROW_COUNT())", INS, No(N::SessionFunction)),
        ("INSERT INTO t VALUES (FOUND_ROWS())", INS, No(N::SessionFunction)),
        ("INSERT INTO t VALUES (DATABASE())", INS, No(N::SessionFunction)),
        ("INSERT INTO t VALUES (USER())", INS, No(N::SessionFunction)),
        ("INSERT INTO t VALUES (CURRENT_USER)", INS, No(N::SessionFunction)),
        ("INSERT INTO t VALUES (CURRENT_USER())", INS, No(N::SessionFunction)),
        ("INSERT INTO t VALUES (GET_LOCK('x', 1))", INS, No(N::SessionFunction)),
        ("INSERT INTO t VALUES (SLEEP(1))", INS, No(N::SessionFunction)),
        ("INSERT INTO t VALUES (CONCAT('a', LAST_INSERT_ID()))", INS, No(N::SessionFunction)),
        ("INSERT INTO t VALUES (my_func(1))", INS, No(N::UnknownFunction)),
        ("INSERT INTO t VALUES (db.my_func(1))", INS, No(N::UnknownFunction)),
        ("INSERT INTO t VALUES (NEXTVAL(s))", INS, No(N::Sequence)),
        ("INSERT INTO t VALUES (NEXT VALUE FOR s)", INS, No(N::Sequence)),
        ("INSERT INTO t VALUES (LASTVAL(s))", INS, No(N::Sequence)),
        ("INSERT INTO t VALUES (@x)", INS, No(N::UserVariable)),
        ("INSERT INTO t VALUES (@`x`)", INS, No(N::UserVariable)),
        ("INSERT INTO t VALUES (@@sql_mode)", INS, No(N::SystemVariable)),
        ("INSERT INTO t VALUES (@@session.time_zone)", INS, No(N::SystemVariable)),
        ("INSERT INTO t VALUES ((SELECT 1))", INS, No(N::Subquery)),
        ("INSERT INTO t VALUES ((SELECT MAX(id) FROM u) + 1)", INS, No(N::Subquery)),
        ("INSERT INTO t VALUES (?)", INS, No(N::Placeholder)),
        ("INSERT INTO t (a, b) VALUES (1, a + 1)", INS, No(N::UnsupportedExpression)),
        ("INSERT INTO t VALUES (`a`)", INS, No(N::UnsupportedExpression)),
        ("INSERT INTO t VALUES (CASE WHEN 1 THEN 2 END)", INS, No(N::UnsupportedExpression)),
        ("INSERT INTO t VALUES (NOW() + INTERVAL 1 DAY)", INS, No(N::UnsupportedExpression)),
        ("INSERT INTO t VALUES (1 = 1)", INS, No(N::UnsupportedExpression)),
        ("INSERT INTO t VALUES (\"dq\")", INS, No(N::UnsupportedExpression)),
        ("INSERT INTO t VALUES (1 /*! + 1 */)", INS, No(N::UnsupportedExpression)),
        ("INSERT INTO t VALUES ('it\\'s')", INS, No(N::AmbiguousEscapes)),
        ("INSERT INTO t VALUES ('a\\', 'b')", INS, No(N::AmbiguousEscapes)),
        ("INSERT INTO t VALUES (1) /* batch:0 */", INS, No(N::HintNoBatch)),
        ("INSERT INTO t VALUES (1) -- batch:0", INS, No(N::HintNoBatch)),
        ("INSERT INTO t VALUES (1", INS, No(N::ParseFailure)),
        ("INSERT INTO t VALUES ('unterminated)", INS, No(N::ParseFailure)),
        ("INSERT INTO t VALUES (1) /* open", INS, No(N::ParseFailure)),
        ("INSERT INTO VALUES (1)", INS, No(N::ParseFailure)),
        ("INSERT INTO t VALUES 1", INS, No(N::ParseFailure)),
        ("INSERT INTO t (a,) VALUES (1)", INS, No(N::ParseFailure)),
        ("INSERT INTO t VALUES (1,)", INS, No(N::UnsupportedExpression)),
        ("INSERT INTO t VALUES (1) LIMIT 1", INS, No(N::ParseFailure)),
        ("INSERT INTO t VALUES ROW(1)", INS, No(N::ParseFailure)),
        ("INSERT INTO t (a, b) VALUES (1, 2) garbage", INS, No(N::ParseFailure)),
        ("SET STATEMENT max_statement_time=1 FOR INSERT INTO t VALUES (1)", INS, No(N::SetStatement)),
        ("WITH c AS (SELECT 1) INSERT INTO t SELECT * FROM c", INS, No(N::ParseFailure)),
        ("SET STATEMENT a=1 FOR SET STATEMENT b=2 FOR UPDATE t SET a=1", Kind::Write(WriteKind::Update), No(N::NotInsert)),
        ("REPLACE INTO t VALUES (1)", Kind::Write(WriteKind::Replace), Row("(1)")),
        ("replace t (a, b) value (1, 'x');", Kind::Write(WriteKind::Replace), Row("(1, 'x')")),
        ("REPLACE LOW_PRIORITY INTO t VALUES (1)", Kind::Write(WriteKind::Replace), No(N::PriorityModifier)),
        ("REPLACE IGNORE INTO t VALUES (1)", Kind::Write(WriteKind::Replace), No(N::ParseFailure)),
        ("REPLACE INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = 1", Kind::Write(WriteKind::Replace), No(N::ParseFailure)),
        ("REPLACE INTO t SELECT * FROM u", Kind::Write(WriteKind::Replace), No(N::SelectSource)),
        ("REPLACE INTO t SET a = 1", Kind::Write(WriteKind::Replace), No(N::SetForm)),
        // ---- other writes
        ("UPDATE t SET a = 1 WHERE id = 2", Kind::Write(WriteKind::Update), No(N::NotInsert)),
        ("DELETE FROM t WHERE id = 2", Kind::Write(WriteKind::Delete), No(N::NotInsert)),
        ("LOAD DATA INFILE 'x' INTO TABLE t", Kind::Write(WriteKind::LoadData), No(N::NotInsert)),
        ("LOAD DATA LOCAL INFILE 'x' INTO TABLE t", Kind::Write(WriteKind::LoadData), No(N::NotInsert)),
        ("LOAD XML INFILE 'x' INTO TABLE t", Kind::Write(WriteKind::LoadData), No(N::NotInsert)),
        ("WITH c AS (SELECT 1) UPDATE t, c SET t.a = 1", Kind::Write(WriteKind::Update), No(N::NotInsert)),
        // ---- reads
        ("SELECT 1", SEL, No(N::NotInsert)),
        ("select * from t where a = 'INSERT INTO t VALUES (1)'", SEL, No(N::NotInsert)),
        ("(SELECT 1) UNION (SELECT 2)", SEL, No(N::NotInsert)),
        ("WITH c AS (SELECT 1) SELECT * FROM c", SEL, No(N::NotInsert)),
        ("VALUES (1), (2)", SEL, No(N::NotInsert)),
        ("TABLE t", SEL, No(N::NotInsert)),
        ("SELECT * FROM t FOR UPDATE", SEL, No(N::NotInsert)),
        ("/* batch:5 */ SELECT 1", SEL, No(N::NotInsert)),
        ("SELECT NEXTVAL(s)", Kind::Read(ReadKind::SelectSequence), No(N::NotInsert)),
        ("SELECT NEXT VALUE FOR s", Kind::Read(ReadKind::SelectSequence), No(N::NotInsert)),
        ("SHOW TABLES", SHOW, No(N::NotInsert)),
        ("SHOW WARNINGS", SHOW, No(N::NotInsert)),
        ("DESCRIBE t", SHOW, No(N::NotInsert)),
        ("DESC t", SHOW, No(N::NotInsert)),
        ("EXPLAIN SELECT 1", SHOW, No(N::NotInsert)),
        ("HELP 'x'", SHOW, No(N::NotInsert)),
        // ---- transactions
        ("BEGIN", Kind::Transaction(Tx::Begin), No(N::NotInsert)),
        ("begin work", Kind::Transaction(Tx::Begin), No(N::NotInsert)),
        ("START TRANSACTION", Kind::Transaction(Tx::Start { read_only: false, consistent_snapshot: false }), No(N::NotInsert)),
        ("START TRANSACTION READ ONLY", Kind::Transaction(Tx::Start { read_only: true, consistent_snapshot: false }), No(N::NotInsert)),
        ("START TRANSACTION READ WRITE", Kind::Transaction(Tx::Start { read_only: false, consistent_snapshot: false }), No(N::NotInsert)),
        ("START TRANSACTION WITH CONSISTENT SNAPSHOT", Kind::Transaction(Tx::Start { read_only: false, consistent_snapshot: true }), No(N::NotInsert)),
        ("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY", Kind::Transaction(Tx::Start { read_only: true, consistent_snapshot: true }), No(N::NotInsert)),
        ("COMMIT", Kind::Transaction(Tx::Commit), No(N::NotInsert)),
        ("COMMIT WORK AND NO CHAIN", Kind::Transaction(Tx::Commit), No(N::NotInsert)),
        ("ROLLBACK", Kind::Transaction(Tx::Rollback), No(N::NotInsert)),
        ("ROLLBACK WORK", Kind::Transaction(Tx::Rollback), No(N::NotInsert)),
        ("ROLLBACK TO SAVEPOINT s1", Kind::Transaction(Tx::RollbackToSavepoint), No(N::NotInsert)),
        ("ROLLBACK WORK TO s1", Kind::Transaction(Tx::RollbackToSavepoint), No(N::NotInsert)),
        ("SAVEPOINT s1", Kind::Transaction(Tx::Savepoint), No(N::NotInsert)),
        ("RELEASE SAVEPOINT s1", Kind::Transaction(Tx::ReleaseSavepoint), No(N::NotInsert)),
        ("XA START 'x'", Kind::Transaction(Tx::Xa), No(N::NotInsert)),
        ("XA COMMIT 'x'", Kind::Transaction(Tx::Xa), No(N::NotInsert)),
        ("SET autocommit = 0", Kind::Transaction(Tx::SetAutocommit(Some(false))), No(N::NotInsert)),
        ("SET autocommit=1", Kind::Transaction(Tx::SetAutocommit(Some(true))), No(N::NotInsert)),
        ("SET @@session.autocommit = ON", Kind::Transaction(Tx::SetAutocommit(Some(true))), No(N::NotInsert)),
        ("SET SESSION autocommit = @x", Kind::Transaction(Tx::SetAutocommit(None)), No(N::NotInsert)),
        ("SET sql_mode = '', autocommit = 0", Kind::Transaction(Tx::SetAutocommit(Some(false))), No(N::NotInsert)),
        ("SET GLOBAL autocommit = 0", SETV, No(N::NotInsert)),
        ("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", Kind::Transaction(Tx::SetTransaction { next_only: true }), No(N::NotInsert)),
        ("SET SESSION TRANSACTION READ ONLY", Kind::Transaction(Tx::SetTransaction { next_only: false }), No(N::NotInsert)),
        // ---- session changes
        ("SET sql_mode = 'STRICT_ALL_TABLES'", SETV, No(N::NotInsert)),
        ("SET SESSION time_zone = '+00:00'", SETV, No(N::NotInsert)),
        ("SET @@time_zone = 'UTC'", SETV, No(N::NotInsert)),
        ("SET @x = 1", SETV, No(N::NotInsert)),
        ("SET NAMES utf8mb4", Kind::Session(SessionKind::SetNames), No(N::NotInsert)),
        ("SET NAMES 'utf8mb4' COLLATE 'utf8mb4_bin'", Kind::Session(SessionKind::SetNames), No(N::NotInsert)),
        ("SET CHARACTER SET latin1", Kind::Session(SessionKind::SetNames), No(N::NotInsert)),
        ("USE shop", Kind::Session(SessionKind::Use { schema: "shop".into() }), No(N::NotInsert)),
        ("USE `my db`", Kind::Session(SessionKind::Use { schema: "my db".into() }), No(N::NotInsert)),
        ("CREATE TEMPORARY TABLE tmp (a INT)", Kind::Session(SessionKind::CreateTemporaryTable { table: t("tmp") }), No(N::NotInsert)),
        ("CREATE TEMPORARY TABLE IF NOT EXISTS db.tmp AS SELECT 1", Kind::Session(SessionKind::CreateTemporaryTable { table: t("db.tmp") }), No(N::NotInsert)),
        ("DROP TEMPORARY TABLE tmp, tmp2", Kind::Session(SessionKind::DropTemporaryTable { tables: vec![t("tmp"), t("tmp2")] }), No(N::NotInsert)),
        ("DROP TEMPORARY TABLE IF EXISTS tmp", Kind::Session(SessionKind::DropTemporaryTable { tables: vec![t("tmp")] }), No(N::NotInsert)),
        ("LOCK TABLES t WRITE", Kind::Session(SessionKind::LockTables), No(N::NotInsert)),
        ("LOCK TABLE t READ", Kind::Session(SessionKind::LockTables), No(N::NotInsert)),
        ("UNLOCK TABLES", Kind::Session(SessionKind::UnlockTables), No(N::NotInsert)),
        ("SELECT GET_LOCK('a', 10)", Kind::Session(SessionKind::UserLock), No(N::NotInsert)),
        ("SELECT RELEASE_LOCK('a')", Kind::Session(SessionKind::UserLock), No(N::NotInsert)),
        ("DO GET_LOCK('a', 10)", Kind::Session(SessionKind::UserLock), No(N::NotInsert)),
        ("SELECT @x := 1", Kind::Session(SessionKind::UserVariable), No(N::NotInsert)),
        ("SELECT a INTO @x FROM t", Kind::Session(SessionKind::UserVariable), No(N::NotInsert)),
        ("PREPARE s FROM 'SELECT 1'", Kind::Session(SessionKind::SqlPrepared), No(N::NotInsert)),
        ("EXECUTE s", Kind::Session(SessionKind::SqlPrepared), No(N::NotInsert)),
        ("DEALLOCATE PREPARE s", Kind::Session(SessionKind::SqlPrepared), No(N::NotInsert)),
        // ---- DDL
        ("CREATE TABLE t (a INT)", ddl(Create, &["t"]), No(N::NotInsert)),
        ("CREATE TABLE IF NOT EXISTS db.t (a INT)", ddl(Create, &["db.t"]), No(N::NotInsert)),
        ("CREATE OR REPLACE TABLE t (a INT)", ddl(Create, &["t"]), No(N::NotInsert)),
        ("CREATE TABLE t LIKE u", ddl(Create, &["t"]), No(N::NotInsert)),
        ("CREATE INDEX i ON t (a)", ddl(Create, &["t"]), No(N::NotInsert)),
        ("CREATE UNIQUE INDEX i ON db.t (a)", ddl(Create, &["db.t"]), No(N::NotInsert)),
        ("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1", ddl(Create, &["t"]), No(N::NotInsert)),
        ("CREATE DEFINER=`root`@`localhost` TRIGGER tr AFTER INSERT ON t FOR EACH ROW SET @x = 1", ddl(Create, &["t"]), No(N::NotInsert)),
        ("CREATE VIEW v AS SELECT 1", ddl(Create, &["v"]), No(N::NotInsert)),
        ("CREATE OR REPLACE ALGORITHM=MERGE VIEW v AS SELECT 1", ddl(Create, &["v"]), No(N::NotInsert)),
        ("CREATE SEQUENCE s", ddl(Create, &["s"]), No(N::NotInsert)),
        ("CREATE DATABASE shop", ddl_t(Create, DdlTarget::Schema("shop".into())), No(N::NotInsert)),
        ("CREATE PROCEDURE p() BEGIN END", ddl_t(Create, DdlTarget::Nothing), No(N::NotInsert)),
        ("CREATE USER 'u'@'%'", ddl_t(Account, DdlTarget::Nothing), No(N::NotInsert)),
        ("ALTER TABLE t ADD COLUMN b INT", ddl(Alter, &["t"]), No(N::NotInsert)),
        ("ALTER ONLINE TABLE db.t ENGINE = InnoDB", ddl(Alter, &["db.t"]), No(N::NotInsert)),
        ("ALTER DATABASE shop CHARACTER SET utf8mb4", ddl_t(Alter, DdlTarget::Schema("shop".into())), No(N::NotInsert)),
        ("DROP TABLE t", ddl(Drop, &["t"]), No(N::NotInsert)),
        ("DROP TABLE IF EXISTS t, db.u", ddl(Drop, &["t", "db.u"]), No(N::NotInsert)),
        ("DROP INDEX i ON t", ddl(Drop, &["t"]), No(N::NotInsert)),
        ("DROP VIEW IF EXISTS v", ddl(Drop, &["v"]), No(N::NotInsert)),
        ("DROP TRIGGER tr", ddl_t(Drop, DdlTarget::Unknown), No(N::NotInsert)),
        ("DROP DATABASE shop", ddl_t(Drop, DdlTarget::Schema("shop".into())), No(N::NotInsert)),
        ("DROP SCHEMA IF EXISTS shop", ddl_t(Drop, DdlTarget::Schema("shop".into())), No(N::NotInsert)),
        ("RENAME TABLE a TO b, c TO db.d", ddl(Rename, &["a", "b", "c", "db.d"]), No(N::NotInsert)),
        ("TRUNCATE TABLE t", ddl(Truncate, &["t"]), No(N::NotInsert)),
        ("TRUNCATE t", ddl(Truncate, &["t"]), No(N::NotInsert)),
        ("OPTIMIZE TABLE t", ddl(Maintenance, &["t"]), No(N::NotInsert)),
        ("ANALYZE TABLE t, u", ddl(Maintenance, &["t", "u"]), No(N::NotInsert)),
        ("GRANT SELECT ON *.* TO 'u'@'%'", ddl_t(Account, DdlTarget::Nothing), No(N::NotInsert)),
        ("REVOKE ALL ON *.* FROM 'u'@'%'", ddl_t(Account, DdlTarget::Nothing), No(N::NotInsert)),
        // ---- other
        ("CALL p(1)", Kind::Other(OtherKind::Call), No(N::NotInsert)),
        ("DO 1 + 1", Kind::Other(OtherKind::Do), No(N::NotInsert)),
        ("BEGIN NOT ATOMIC SELECT 1; END", Kind::Other(OtherKind::Compound), No(N::NotInsert)),
        ("HANDLER t OPEN", Kind::Other(OtherKind::Handler), No(N::NotInsert)),
        ("FLUSH TABLES", Kind::Other(OtherKind::Admin), No(N::NotInsert)),
        ("KILL 12", Kind::Other(OtherKind::Admin), No(N::NotInsert)),
        ("", Kind::Other(OtherKind::Empty), No(N::NotInsert)),
        ("  /* only a comment */ ", Kind::Other(OtherKind::Empty), No(N::NotInsert)),
        ("FROBNICATE everything", Kind::Other(OtherKind::Unknown), No(N::NotInsert)),
        ("ANALYZE FORMAT=JSON SELECT 1", SEL, No(N::NotInsert)),
        ("ANALYZE DELETE FROM t", Kind::Write(WriteKind::Delete), No(N::NotInsert)),
        ("/*!40101 SET NAMES utf8 */", Kind::Session(SessionKind::SetNames), No(N::NotInsert)),
        ("/*!40000 ALTER TABLE t DISABLE KEYS */", ddl(Alter, &["t"]), No(N::NotInsert)),
    ]
}

fn check(sql: &str, c: &Classification, kind: &Kind, e: &E) {
    assert_eq!(&c.kind, kind, "kind of {sql:?}");
    match (e, c.batchable()) {
        (Row(row), Ok(shape)) => {
            assert_eq!(&sql[shape.row()], *row, "row of {sql:?}");
            assert_eq!(shape.prefix().end, shape.row().start);
            assert_eq!(shape.suffix(), shape.row().end..sql.len());
        }
        (No(reason), Err(got)) => assert_eq!(got, *reason, "reason for {sql:?}"),
        (Row(_), Err(got)) => panic!("{sql:?} should be batchable, got {got}"),
        (No(reason), Ok(_)) => panic!("{sql:?} should not be batchable ({reason})"),
    }
}

#[test]
fn table_cold_and_hot() {
    let cases = cases();
    assert!(cases.len() >= 150, "{} cases", cases.len());
    let hot = Classifier::new(1024);
    for (sql, kind, e) in &cases {
        let cold = Classifier::new(0).classify(sql.as_bytes());
        check(sql, &cold, kind, e);
        let first = hot.classify(sql.as_bytes());
        let second = hot.classify(sql.as_bytes());
        check(sql, &first, kind, e);
        check(sql, &second, kind, e);
        assert_eq!(cold, second, "cold and cached verdicts of {sql:?}");
    }
}

#[test]
fn every_reason_is_covered() {
    let cases = cases();
    let reasons: Vec<N> = cases
        .iter()
        .filter_map(|(_, _, e)| match e {
            No(r) => Some(*r),
            Row(_) => None,
        })
        .collect();
    for r in N::ALL {
        assert!(reasons.contains(r), "no case for {r}");
    }
}

#[test]
fn deep_inputs_do_not_overflow() {
    let mut sql = String::new();
    for _ in 0..100_000 {
        sql.push_str("SET STATEMENT a=1 FOR ");
    }
    sql.push_str("SELECT 1");
    assert_eq!(sluice_classifier::classify(sql.as_bytes()).kind, SEL);
    let deep = format!(
        "INSERT INTO t VALUES ({}1{})",
        "(".repeat(50_000),
        ")".repeat(50_000)
    );
    assert_eq!(
        sluice_classifier::classify(deep.as_bytes())
            .batchable()
            .err(),
        Some(N::UnsupportedExpression)
    );
    let unary = format!("INSERT INTO t VALUES ({}1)", "- ".repeat(100));
    assert_eq!(
        sluice_classifier::classify(unary.as_bytes())
            .batchable()
            .err(),
        Some(N::UnsupportedExpression)
    );
    // 16 levels of nesting (parentheses, calls, unary operators) at most
    let ok = format!(
        "INSERT INTO t VALUES ({}1{})",
        "(- ".repeat(7),
        ")".repeat(7)
    );
    assert!(sluice_classifier::classify(ok.as_bytes())
        .batchable()
        .is_ok());
    let ok = format!(
        "INSERT INTO t VALUES ({}1{})",
        "(".repeat(15),
        ")".repeat(15)
    );
    assert!(sluice_classifier::classify(ok.as_bytes())
        .batchable()
        .is_ok());
    let calls = format!(
        "INSERT INTO t VALUES ({}1{})",
        "CONCAT(".repeat(50_000),
        ")".repeat(50_000)
    );
    assert_eq!(
        sluice_classifier::classify(calls.as_bytes())
            .batchable()
            .err(),
        Some(N::UnsupportedExpression)
    );
}

#[test]
fn writable() {
    let w = |sql: &str| sluice_classifier::classify(sql.as_bytes()).writable();
    for sql in [
        "INSERT INTO t VALUES (1)",
        "UPDATE t SET a = 1",
        "DELETE FROM t",
        "REPLACE INTO t VALUES (1)",
        "LOAD DATA INFILE 'f' INTO TABLE t",
        "CREATE TABLE t (a INT)",
        "TRUNCATE t",
        "CALL p()",
        "SELECT NEXTVAL(s)",
        "CREATE TEMPORARY TABLE x (a INT)",
        "FROBNICATE",
    ] {
        assert!(w(sql), "{sql}");
    }
    for sql in [
        "SELECT 1",
        "SHOW TABLES",
        "BEGIN",
        "COMMIT",
        "SET autocommit = 0",
        "SET NAMES utf8mb4",
        "USE db",
        "LOCK TABLES t WRITE",
        "SELECT GET_LOCK('x', 1)",
        "",
    ] {
        assert!(!w(sql), "{sql}");
    }
}

#[test]
fn conflict_forms_show_what_a_batch_rewrites_and_cuts() {
    use sluice_classifier::classify;
    let sql = b"/* c */ REPLACE INTO t (a) VALUES (1) ;";
    let c = classify(sql);
    let s = c.batchable().unwrap();
    assert!(s.is_replace() && s.acts_on_conflict());
    assert_eq!(&sql[s.verb()], b"REPLACE");
    assert_eq!(s.update_clause(), None);
    assert_eq!(&sql[s.suffix_before_update()], b" ;");

    let sql = b"INSERT INTO t (a) VALUES (1)  ON DUPLICATE KEY UPDATE a = VALUES(a) + 1 ; ";
    let c = classify(sql);
    let s = c.batchable().unwrap();
    assert!(!s.is_replace() && s.acts_on_conflict());
    assert_eq!(&sql[s.verb()], b"INSERT");
    assert_eq!(
        &sql[s.update_clause().unwrap()],
        b"ON DUPLICATE KEY UPDATE a = VALUES(a) + 1"
    );
    assert_eq!(&sql[s.suffix_before_update()], b"  ");

    let plain = classify(b"INSERT INTO t (a) VALUES (2)");
    let plain = plain.batchable().unwrap();
    assert!(!plain.acts_on_conflict());
    // Each form is its own shape: rows of one never join a batch of another.
    let replace = classify(b"REPLACE INTO t (a) VALUES (2)");
    let upsert = classify(b"INSERT INTO t (a) VALUES (2) ON DUPLICATE KEY UPDATE a = 1");
    let other_update = classify(b"INSERT INTO t (a) VALUES (2) ON DUPLICATE KEY UPDATE a = 2");
    let keys = [
        plain.shape_key(),
        replace.batchable().unwrap().shape_key(),
        upsert.batchable().unwrap().shape_key(),
        other_update.batchable().unwrap().shape_key(),
    ];
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            assert_ne!(a, b);
        }
    }
}
