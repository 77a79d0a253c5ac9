//! Whether a statement may call a stored function. A stored function can
//! change session settings (`SET time_zone = …` in its body) without the
//! server saying so to a client that did not ask for session tracking, so
//! after such a statement the session fingerprint is read again.

use super::scan::{find, skip_quoted};

/// Built-in functions and keywords written like calls. Anything else
/// followed by `(` may be a stored function.
const BUILTINS: &[&str] = &[
    "ABS",
    "ACOS",
    "ADDDATE",
    "ADDTIME",
    "AES_DECRYPT",
    "AES_ENCRYPT",
    "ALL",
    "AND",
    "ANY",
    "AS",
    "ASCII",
    "ASIN",
    "ATAN",
    "ATAN2",
    "AVG",
    "BETWEEN",
    "BIN",
    "BINARY",
    "BIT_AND",
    "BIT_COUNT",
    "BIT_LENGTH",
    "BIT_OR",
    "BIT_XOR",
    "CASE",
    "CAST",
    "CEIL",
    "CEILING",
    "CHAR",
    "CHARSET",
    "CHAR_LENGTH",
    "CHARACTER_LENGTH",
    "COALESCE",
    "COLLATION",
    "COLUMN_CREATE",
    "COLUMN_GET",
    "CONCAT",
    "CONCAT_WS",
    "CONNECTION_ID",
    "CONV",
    "CONVERT",
    "CONVERT_TZ",
    "COS",
    "COT",
    "COUNT",
    "CRC32",
    "CURDATE",
    "CURRENT_DATE",
    "CURRENT_ROLE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "CURRENT_USER",
    "CURTIME",
    "DATABASE",
    "DATE",
    "DATEDIFF",
    "DATE_ADD",
    "DATE_FORMAT",
    "DATE_SUB",
    "DAY",
    "DAYNAME",
    "DAYOFMONTH",
    "DAYOFWEEK",
    "DAYOFYEAR",
    "DECODE",
    "DEFAULT",
    "DEGREES",
    "DENSE_RANK",
    "DISTINCT",
    "ELT",
    "ENCODE",
    "EXISTS",
    "EXP",
    "EXPORT_SET",
    "EXTRACT",
    "FIELD",
    "FIND_IN_SET",
    "FIRST_VALUE",
    "FLOOR",
    "FOR",
    "FORMAT",
    "FOUND_ROWS",
    "FROM",
    "FROM_BASE64",
    "FROM_DAYS",
    "FROM_UNIXTIME",
    "GET_FORMAT",
    "GET_LOCK",
    "GREATEST",
    "GROUP_CONCAT",
    "HEX",
    "HOUR",
    "IF",
    "IFNULL",
    "IN",
    "INET6_ATON",
    "INET6_NTOA",
    "INET_ATON",
    "INET_NTOA",
    "INSERT",
    "INSTR",
    "INTERVAL",
    "INTO",
    "IS_FREE_LOCK",
    "IS_USED_LOCK",
    "ISNULL",
    "JOIN",
    "JSON_ARRAY",
    "JSON_ARRAYAGG",
    "JSON_CONTAINS",
    "JSON_EXTRACT",
    "JSON_KEYS",
    "JSON_LENGTH",
    "JSON_OBJECT",
    "JSON_OBJECTAGG",
    "JSON_QUOTE",
    "JSON_SET",
    "JSON_UNQUOTE",
    "JSON_VALID",
    "JSON_VALUE",
    "KEY",
    "LAG",
    "LAST_DAY",
    "LAST_INSERT_ID",
    "LAST_VALUE",
    "LCASE",
    "LEAD",
    "LEAST",
    "LEFT",
    "LENGTH",
    "LIKE",
    "LIMIT",
    "LN",
    "LOCATE",
    "LOG",
    "LOG10",
    "LOG2",
    "LOWER",
    "LPAD",
    "LTRIM",
    "MAKEDATE",
    "MAKETIME",
    "MAKE_SET",
    "MATCH",
    "MAX",
    "MD5",
    "MICROSECOND",
    "MID",
    "MIN",
    "MINUTE",
    "MOD",
    "MONTH",
    "MONTHNAME",
    "NOT",
    "NOW",
    "NTILE",
    "NULLIF",
    "OCT",
    "OCTET_LENGTH",
    "ON",
    "OR",
    "ORD",
    "OVER",
    "PASSWORD",
    "PERCENT_RANK",
    "PERIOD_ADD",
    "PERIOD_DIFF",
    "PI",
    "POSITION",
    "POW",
    "POWER",
    "PRIMARY",
    "QUARTER",
    "QUOTE",
    "RADIANS",
    "RAND",
    "RANK",
    "REGEXP",
    "REGEXP_INSTR",
    "REGEXP_REPLACE",
    "REGEXP_SUBSTR",
    "RELEASE_LOCK",
    "REPEAT",
    "REPLACE",
    "REVERSE",
    "RIGHT",
    "RLIKE",
    "ROUND",
    "ROW",
    "ROW_COUNT",
    "ROW_NUMBER",
    "RPAD",
    "RTRIM",
    "SCHEMA",
    "SEC_TO_TIME",
    "SECOND",
    "SELECT",
    "SESSION_USER",
    "SET",
    "SHA",
    "SHA1",
    "SHA2",
    "SIGN",
    "SIN",
    "SLEEP",
    "SOUNDEX",
    "SPACE",
    "SQRT",
    "STD",
    "STDDEV",
    "STDDEV_POP",
    "STDDEV_SAMP",
    "STR_TO_DATE",
    "STRCMP",
    "SUBDATE",
    "SUBSTR",
    "SUBSTRING",
    "SUBSTRING_INDEX",
    "SUBTIME",
    "SUM",
    "SYSDATE",
    "SYSTEM_USER",
    "TAN",
    "TIME",
    "TIMEDIFF",
    "TIMESTAMP",
    "TIMESTAMPADD",
    "TIMESTAMPDIFF",
    "TIME_FORMAT",
    "TIME_TO_SEC",
    "TO_BASE64",
    "TO_DAYS",
    "TO_SECONDS",
    "TRIM",
    "TRUNCATE",
    "UCASE",
    "UNHEX",
    "UNION",
    "UNIX_TIMESTAMP",
    "UPPER",
    "USER",
    "USING",
    "UTC_DATE",
    "UTC_TIME",
    "UTC_TIMESTAMP",
    "UUID",
    "UUID_SHORT",
    "VALUE",
    "VALUES",
    "VARIANCE",
    "VAR_POP",
    "VAR_SAMP",
    "VERSION",
    "WEEK",
    "WEEKDAY",
    "WEEKOFYEAR",
    "WHERE",
    "WITH",
    "XOR",
    "YEAR",
    "YEARWEEK",
];

/// Whether `sql` has a call that is not a built-in function: a word or a
/// qualified name directly followed by `(`, outside quotes and comments.
pub(crate) fn may_call_routine(sql: &[u8]) -> bool {
    // Words after which `name (` is a table and its column list.
    const TABLE_BEFORE: &[&str] = &[
        "INTO",
        "TABLE",
        "REFERENCES",
        "INDEX",
        "KEY",
        "ON",
        "UPDATE",
    ];
    let mut previous: &[u8] = b"";
    let mut i = 0;
    while i < sql.len() {
        let c = sql[i];
        match c {
            b'\'' | b'"' | b'`' => i = skip_quoted(sql, i, c, true).unwrap_or(sql.len()),
            b'/' if sql.get(i + 1) == Some(&b'*') => i = find_from(sql, i + 2, b"*/") + 2,
            b'#' => i = find_from(sql, i, b"\n"),
            b'-' if sql.get(i + 1) == Some(&b'-') => i = find_from(sql, i, b"\n"),
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < sql.len()
                    && (sql[i].is_ascii_alphanumeric() || sql[i] == b'_' || sql[i] == b'$')
                {
                    i += 1;
                }
                let qualified = start > 0 && sql[start - 1] == b'.';
                let mut j = i;
                while j < sql.len() && sql[j].is_ascii_whitespace() {
                    j += 1;
                }
                let word = &sql[start..i];
                if sql.get(j) == Some(&b'(') {
                    let listed = |list: &[&str], w: &[u8]| {
                        list.iter().any(|b| b.as_bytes().eq_ignore_ascii_case(w))
                    };
                    let table = listed(TABLE_BEFORE, previous);
                    if !table && (qualified || !listed(BUILTINS, word)) {
                        return true;
                    }
                }
                if sql.get(i) != Some(&b'.') {
                    previous = word;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// Position of `needle` at or after `from`, or the end of `sql`.
fn find_from(sql: &[u8], from: usize, needle: &[u8]) -> usize {
    sql.get(from..)
        .and_then(|rest| find(rest, needle))
        .map_or(sql.len(), |p| from + p)
}

#[cfg(test)]
mod tests {
    use super::may_call_routine;

    #[test]
    fn finds_stored_function_calls() {
        assert!(may_call_routine(b"SELECT east()"));
        assert!(may_call_routine(b"SELECT app.f(1) FROM t"));
        assert!(may_call_routine(b"UPDATE t SET a = my_func (a)"));
        assert!(!may_call_routine(
            b"SELECT COUNT(*), MAX(id), NOW() FROM t WHERE a IN (1, 2)"
        ));
        assert!(!may_call_routine(b"SELECT 'f(x)', `g(y)` FROM t -- h(z)\n"));
        assert!(!may_call_routine(b"INSERT INTO t (a, b) VALUES (1, 2)"));
        assert!(may_call_routine(b"insert into app.t(a) values (f2(1))"));
        assert!(!may_call_routine(
            b"CREATE TABLE t2 (a INT, FOREIGN KEY (a) REFERENCES p (id))"
        ));
        assert!(!may_call_routine(
            b"SELECT * FROM t /* k(1) */ WHERE x = 'it''s(' "
        ));
    }
}
