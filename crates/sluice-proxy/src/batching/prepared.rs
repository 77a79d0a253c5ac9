//! Rows of prepared INSERTs: the values a COM_STMT_EXECUTE binds, decoded
//! with checked reads and rendered as literals that read back as exactly
//! the same values, so text and prepared rows of one shape share a batch.

use sluice_classifier::{render_row, BatchableInsert, BoundValue, RenderOptions};
use sluice_protocol::stmt::{
    column_type as t, decode_params, ExecuteParams, ParamType, ParamValue,
};

use super::decline::Decline;

/// Renders the row tuple of a prepared INSERT with its bound values.
pub(crate) fn render_prepared_row(
    sql: &[u8],
    insert: &BatchableInsert,
    params: &ExecuteParams<'_>,
    types: &[ParamType],
    charset: &str,
) -> Result<Vec<u8>, Decline> {
    let values = decode_params(params, types).map_err(|_| Decline::MalformedParams)?;
    let bound: Vec<BoundValue<'_>> = values
        .iter()
        .map(bound_value)
        .collect::<Option<_>>()
        .ok_or(Decline::UnsupportedParamType)?;
    let tuple = insert.row_bytes(sql).map_err(|_| Decline::Splice)?;
    render_row(
        tuple,
        insert.placeholders(),
        &bound,
        &RenderOptions { charset },
    )
    .map_err(|_| Decline::UnrenderableValue)
}

fn bound_value<'a>(value: &ParamValue<'a>) -> Option<BoundValue<'a>> {
    Some(match *value {
        ParamValue::Null => BoundValue::Null,
        ParamValue::Int(i) => BoundValue::Int(i),
        ParamValue::UInt(u) => BoundValue::UInt(u),
        ParamValue::Float(f) => BoundValue::Float(f),
        ParamValue::Double(d) => BoundValue::Double(d),
        ParamValue::Bytes { column_type, data } => match column_type {
            t::DECIMAL | t::NEWDECIMAL => BoundValue::Decimal(data),
            t::JSON => BoundValue::Json(data),
            t::BIT => BoundValue::Bit(data),
            t::TINY_BLOB | t::MEDIUM_BLOB | t::LONG_BLOB | t::BLOB => BoundValue::Binary(data),
            t::VARCHAR | t::VAR_STRING | t::STRING | t::ENUM | t::SET => BoundValue::Text(data),
            // Geometry bound as WKB has no plain literal form.
            _ => return None,
        },
        ParamValue::DateTime {
            column_type,
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
        } => {
            if column_type == t::DATE {
                BoundValue::Date { year, month, day }
            } else {
                BoundValue::DateTime {
                    year,
                    month,
                    day,
                    hour,
                    minute,
                    second,
                    micros,
                }
            }
        }
        ParamValue::Time {
            negative,
            days,
            hours,
            minutes,
            seconds,
            micros,
        } => BoundValue::Time {
            negative,
            days,
            hours,
            minutes,
            seconds,
            micros,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_classifier::classify_prepared;

    #[test]
    fn renders_bound_values_into_the_tuple() {
        let sql = b"INSERT INTO t (a, b) VALUES (?, ?)";
        let c = classify_prepared(sql);
        let insert = c.batchable().expect("batchable");
        let types = [
            ParamType {
                column_type: t::LONGLONG,
                flags: 0,
            },
            ParamType {
                column_type: t::VAR_STRING,
                flags: 0,
            },
        ];
        let mut values = 42i64.to_le_bytes().to_vec();
        values.extend_from_slice(&[3, b'a', b'\'', b'b']);
        let params = ExecuteParams {
            null_bitmap: &[0],
            types: None,
            values: &values,
        };
        let row = render_prepared_row(sql, insert, &params, &types, "utf8mb4").unwrap();
        let text = String::from_utf8(row).unwrap();
        assert!(text.starts_with("(42, "), "{text}");
        let geometry = [
            ParamType {
                column_type: t::GEOMETRY,
                flags: 0,
            },
            types[1],
        ];
        let params = ExecuteParams {
            null_bitmap: &[0],
            types: None,
            values: &[1, 0, 1, b'x'],
        };
        assert_eq!(
            render_prepared_row(sql, insert, &params, &geometry, "utf8mb4"),
            Err(Decline::UnsupportedParamType)
        );
    }
}
