//! Property: N single-row INSERTs of one shape, spliced into one
//! statement, read back as the same shape with exactly their N rows.

use proptest::prelude::*;
use sluice_classifier::Classifier;

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        any::<u32>().prop_map(|i| format!("-{i}")),
        (any::<i32>(), -30i32..30).prop_map(|(m, e)| format!("{m}.5e{e}")),
        "[a-zA-Z0-9 ,;()'\"é*/#-]{0,12}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        "[a-z]{0,6}".prop_map(|s| format!("'{s}\\\\{s}'")),
        "[a-z]{0,6}".prop_map(|s| format!("_utf8mb4'{s}'")),
        proptest::collection::vec(any::<u8>(), 0..6).prop_map(|b| {
            let hex: String = b.iter().map(|x| format!("{x:02X}")).collect();
            format!("X'{hex}'")
        }),
        Just("NOW()".to_string()),
        Just("CURRENT_TIMESTAMP".to_string()),
        Just("UUID()".to_string()),
        Just("DEFAULT".to_string()),
        Just("NULL".to_string()),
        Just("CONCAT('a', 1)".to_string()),
        Just("1 /* c ) */ + 2".to_string()),
        Just("0x1F".to_string()),
    ]
}

fn space() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just(" "),
        Just("  "),
        Just("\n"),
        Just(" /* x */ "),
        Just("\t")
    ]
}

#[derive(Debug, Clone)]
struct Frame {
    table: &'static str,
    columns: bool,
    keyword: &'static str,
    tail: &'static str,
}

fn frame() -> impl Strategy<Value = Frame> {
    (
        prop_oneof![
            Just("t"),
            Just("`db`.`t`"),
            Just("shop.orders"),
            Just("`we``ird`")
        ],
        any::<bool>(),
        prop_oneof![Just("VALUES"), Just("VALUE"), Just("values")],
        prop_oneof![
            Just(""),
            Just(";"),
            Just(" ; "),
            Just(" -- end"),
            Just(" /* end */")
        ],
    )
        .prop_map(|(table, columns, keyword, tail)| Frame {
            table,
            columns,
            keyword,
            tail,
        })
}

fn case() -> impl Strategy<Value = (Frame, Vec<Vec<String>>, Vec<&'static str>)> {
    (frame(), 1usize..6, 1usize..9).prop_flat_map(|(f, k, n)| {
        (
            Just(f),
            proptest::collection::vec(proptest::collection::vec(value(), k), n),
            proptest::collection::vec(space(), n),
        )
    })
}

fn statement(f: &Frame, row: &str, k: usize, i: usize, sp: &str) -> String {
    let cols = if f.columns {
        let names: Vec<String> = (0..k).map(|c| format!("c{c}")).collect();
        format!(" ({})", names.join(", "))
    } else {
        String::new()
    };
    format!(
        "INSERT /* batch:{} line:{i} */{sp}INTO {}{cols} {}{sp}{row}{}",
        i + 1,
        f.table,
        f.keyword,
        f.tail
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn splice_round_trip((f, rows, spaces) in case()) {
        let classifier = Classifier::new(64);
        let k = rows[0].len();
        let rows: Vec<String> = rows.iter().map(|r| format!("({})", r.join(", "))).collect();
        let sqls: Vec<String> = rows
            .iter()
            .zip(&spaces)
            .enumerate()
            .map(|(i, (r, sp))| statement(&f, r, k, i, sp))
            .collect();
        let mut key = None;
        let mut row_bytes = Vec::new();
        for (sql, row) in sqls.iter().zip(&rows) {
            let c = classifier.classify(sql.as_bytes());
            let shape = match c.batchable() {
                Ok(s) => s.clone(),
                Err(r) => panic!("{sql:?}: {r}"),
            };
            prop_assert_eq!(&sql.as_bytes()[shape.row()], row.as_bytes());
            match &key {
                None => key = Some(shape.shape_key().clone()),
                Some(k) => prop_assert_eq!(k, shape.shape_key()),
            }
            row_bytes.push(shape.row_bytes(sql.as_bytes()).unwrap_or_default().to_vec());
        }
        let leader = classifier.classify(sqls[0].as_bytes());
        let Ok(shape) = leader.batchable() else { panic!("leader") };
        let refs: Vec<&[u8]> = row_bytes.iter().map(Vec::as_slice).collect();
        let spliced = shape.splice(sqls[0].as_bytes(), &refs).unwrap_or_default();
        if rows.len() == 1 {
            prop_assert_eq!(&spliced, sqls[0].as_bytes());
        } else {
            // A statement of several rows is batchable too, under the same
            // key, its rows one span.
            let again = classifier.classify(&spliced);
            let Ok(several) = again.batchable() else { panic!("{again:?}") };
            prop_assert_eq!(several.row_count(), rows.len());
            prop_assert_eq!(Some(several.shape_key()), key.as_ref());
            prop_assert_eq!(
                several.row(),
                shape.row().start..spliced.len() - shape.suffix().len()
            );
        }
        let read = classifier.rows(&spliced, false);
        let Ok(read) = read else { panic!("{:?}: {read:?}", String::from_utf8_lossy(&spliced)) };
        prop_assert_eq!(Some(&read.key), key.as_ref());
        let back: Vec<&[u8]> = read.rows.iter().map(|r| &spliced[r.clone()]).collect();
        prop_assert_eq!(back, refs);
    }
}
