//! Property: a session's memo never changes a classification. Statements
//! that share a remembered prefix and suffix but carry arbitrary text in
//! between (strings, comments, parentheses, backslashes, a second
//! statement) classify the same with the memo as without it.

use proptest::prelude::*;
use sluice_classifier::{Classification, Classifier, EscapeMode, Memo, Options};

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i32>().prop_map(|i| i.to_string()),
        "[a-z0-9 ,()]{0,8}".prop_map(|s| format!("'{s}'")),
        "[a-z]{0,4}".prop_map(|s| format!("'{s}\\'{s}'")),
        "[a-z]{0,4}".prop_map(|s| format!("\"{s}\"")),
        Just("NULL".to_string()),
        Just("NOW()".to_string()),
        Just("SLEEP(1)".to_string()),
        Just("?".to_string()),
        Just(",".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("), (".to_string()),
        Just(" ".to_string()),
        Just("/* batch:0 */".to_string()),
        Just("/*!50000 1 */".to_string()),
        Just("-- x\n".to_string()),
        Just("'".to_string()),
        Just(";".to_string()),
        Just(") ON DUPLICATE KEY UPDATE a = (1".to_string()),
        Just("é".to_string()),
    ]
}

fn rows() -> impl Strategy<Value = String> {
    proptest::collection::vec(fragment(), 0..8).prop_map(|f| format!("({})", f.concat()))
}

fn options() -> impl Strategy<Value = Options> {
    (
        any::<bool>(),
        prop_oneof![
            Just(EscapeMode::Unknown),
            Just(EscapeMode::Backslash),
            Just(EscapeMode::NoBackslash)
        ],
        any::<bool>(),
    )
        .prop_map(|(prepared, escapes, ansi_quotes)| Options {
            prepared,
            escapes,
            ansi_quotes,
        })
}

/// Every field a caller can read.
fn view(c: &Classification, sql: &[u8]) -> String {
    let detail = c.batchable().map(|b| {
        (
            b.row(),
            b.row_count(),
            b.value_count(),
            (0..b.value_count())
                .map(|i| b.value_form(i))
                .collect::<Vec<_>>(),
            b.verb(),
            b.is_ignore(),
            b.is_replace(),
            b.update_clause(),
            b.prefix_around_ignore(),
            b.placeholders().to_vec(),
            b.row_bytes(sql).map(<[u8]>::to_vec),
            b.columns().to_vec(),
        )
    });
    format!("{c:?} {detail:?}")
}

proptest! {
    #[test]
    fn the_memo_never_changes_a_classification(
        first in prop_oneof![
            Just("INSERT INTO t (a, b) VALUES (1, 2)".to_string()),
            Just("INSERT IGNORE INTO t (a) VALUES ('x')".to_string()),
            Just("INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a)".to_string()),
            Just("REPLACE INTO t VALUES (1, 'a') /* batch:5 */".to_string()),
            Just("INSERT INTO t (a, b) VALUES (?, 2)".to_string()),
        ],
        later in proptest::collection::vec(rows(), 1..6),
        opts in options(),
    ) {
        let classifier = Classifier::new(64);
        let reference = Classifier::new(64);
        let mut memo = Memo::default();
        let first_row = reference.classify_with(first.as_bytes(), opts);
        let (head, tail) = match first_row.batchable() {
            Ok(b) => (first[b.prefix()].to_string(), first[b.suffix()].to_string()),
            Err(_) => return Ok(()),
        };
        classifier.classify_remembering(first.as_bytes(), opts, &mut memo);
        for row in later {
            let sql = format!("{head}{row}{tail}");
            let with = classifier.classify_remembering(sql.as_bytes(), opts, &mut memo);
            let without = reference.classify_with(sql.as_bytes(), opts);
            prop_assert_eq!(view(&with, sql.as_bytes()), view(&without, sql.as_bytes()), "{}", sql);
        }
    }
}
