//! Prepared statements: the OK packet of COM_STMT_PREPARE and the parameter
//! header of COM_STMT_EXECUTE.

use crate::lenenc::Reader;
use crate::ProtocolError;

/// The first packet of a successful COM_STMT_PREPARE response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareOk {
    /// Statement id the server assigned.
    pub stmt_id: u32,
    /// Number of result-set columns.
    pub num_columns: u16,
    /// Number of `?` parameters.
    pub num_params: u16,
    /// Warnings raised by the prepare.
    pub warnings: u16,
}

impl PrepareOk {
    /// Parses the payload (header byte 0x00 included).
    pub fn parse(payload: &[u8]) -> Result<PrepareOk, ProtocolError> {
        let mut r = Reader::new(payload, "COM_STMT_PREPARE OK");
        if r.u8()? != 0 {
            return Err(ProtocolError::malformed("COM_STMT_PREPARE OK", "header"));
        }
        let stmt_id = r.u32()?;
        let num_columns = r.u16()?;
        let num_params = r.u16()?;
        // Servers before 4.1.? stop here; the filler and warnings follow.
        let warnings = if r.rest().len() >= 3 {
            r.u8()?;
            r.u16()?
        } else {
            0
        };
        Ok(PrepareOk {
            stmt_id,
            num_columns,
            num_params,
            warnings,
        })
    }
}

/// A parameter type as sent in COM_STMT_EXECUTE: the MySQL type byte and
/// the flag byte (0x80 = unsigned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParamType {
    /// `MYSQL_TYPE_*` byte.
    pub column_type: u8,
    /// Flags byte; 0x80 means unsigned.
    pub flags: u8,
}

/// The parameter header of a COM_STMT_EXECUTE: the NULL bitmap and, when
/// the client sends them, the parameter types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecuteParams<'a> {
    /// NULL bitmap, one bit per parameter.
    pub null_bitmap: &'a [u8],
    /// Types as sent (2 bytes per parameter), when the client re-bound.
    pub types: Option<&'a [u8]>,
    /// The encoded values that follow.
    pub values: &'a [u8],
}

impl<'a> ExecuteParams<'a> {
    /// Splits the bytes after the iteration count for `num_params`
    /// parameters.
    pub fn parse(params: &'a [u8], num_params: u16) -> Result<ExecuteParams<'a>, ProtocolError> {
        if num_params == 0 {
            return Ok(ExecuteParams {
                null_bitmap: &[],
                types: None,
                values: params,
            });
        }
        let mut r = Reader::new(params, "COM_STMT_EXECUTE parameters");
        let n = usize::from(num_params);
        let null_bitmap = r.take(n.div_ceil(8))?;
        let types = if r.u8()? == 1 {
            Some(r.take(2 * n)?)
        } else {
            None
        };
        Ok(ExecuteParams {
            null_bitmap,
            types,
            values: r.rest(),
        })
    }

    /// Whether parameter `i` is NULL.
    pub fn is_null(&self, i: usize) -> bool {
        self.null_bitmap
            .get(i / 8)
            .is_some_and(|b| b & (1 << (i % 8)) != 0)
    }

    /// The types the client bound, if it sent them with this execution.
    pub fn param_types(&self) -> Option<Vec<ParamType>> {
        self.types.map(|t| {
            t.chunks_exact(2)
                .map(|c| ParamType {
                    column_type: c[0],
                    flags: c[1],
                })
                .collect()
        })
    }
}

/// `MYSQL_TYPE_*` bytes a client may bind.
#[allow(missing_docs)]
pub mod column_type {
    pub const DECIMAL: u8 = 0;
    pub const TINY: u8 = 1;
    pub const SHORT: u8 = 2;
    pub const LONG: u8 = 3;
    pub const FLOAT: u8 = 4;
    pub const DOUBLE: u8 = 5;
    pub const NULL: u8 = 6;
    pub const TIMESTAMP: u8 = 7;
    pub const LONGLONG: u8 = 8;
    pub const INT24: u8 = 9;
    pub const DATE: u8 = 10;
    pub const TIME: u8 = 11;
    pub const DATETIME: u8 = 12;
    pub const YEAR: u8 = 13;
    pub const VARCHAR: u8 = 15;
    pub const BIT: u8 = 16;
    pub const JSON: u8 = 245;
    pub const NEWDECIMAL: u8 = 246;
    pub const ENUM: u8 = 247;
    pub const SET: u8 = 248;
    pub const TINY_BLOB: u8 = 249;
    pub const MEDIUM_BLOB: u8 = 250;
    pub const LONG_BLOB: u8 = 251;
    pub const BLOB: u8 = 252;
    pub const VAR_STRING: u8 = 253;
    pub const STRING: u8 = 254;
    pub const GEOMETRY: u8 = 255;
}

/// Flag bit of [`ParamType::flags`] for unsigned integers.
pub const UNSIGNED_FLAG: u8 = 0x80;

/// One bound parameter value, decoded from the binary protocol.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamValue<'a> {
    /// NULL (bit set in the NULL bitmap, or type NULL).
    Null,
    /// A signed integer type.
    Int(i64),
    /// An unsigned integer type.
    UInt(u64),
    /// FLOAT.
    Float(f32),
    /// DOUBLE.
    Double(f64),
    /// A length-encoded value (strings, blobs, decimals, JSON, BIT, …)
    /// with the type byte it was sent as.
    Bytes {
        /// `MYSQL_TYPE_*` byte.
        column_type: u8,
        /// The bytes as sent.
        data: &'a [u8],
    },
    /// DATE, DATETIME or TIMESTAMP (all zero for a zero-length value).
    DateTime {
        /// `MYSQL_TYPE_*` byte.
        column_type: u8,
        /// Year.
        year: u16,
        /// Month.
        month: u8,
        /// Day.
        day: u8,
        /// Hour.
        hour: u8,
        /// Minute.
        minute: u8,
        /// Second.
        second: u8,
        /// Microseconds.
        micros: u32,
    },
    /// TIME.
    Time {
        /// Negative duration.
        negative: bool,
        /// Days.
        days: u32,
        /// Hours.
        hours: u8,
        /// Minutes.
        minutes: u8,
        /// Seconds.
        seconds: u8,
        /// Microseconds.
        micros: u32,
    },
}

/// Decodes the values of a COM_STMT_EXECUTE with the given types (from
/// this execution or the last one that sent them). Every type byte is
/// checked before its value is read: a client controls them.
pub fn decode_params<'a>(
    params: &ExecuteParams<'a>,
    types: &[ParamType],
) -> Result<Vec<ParamValue<'a>>, ProtocolError> {
    let mut r = Reader::new(params.values, "COM_STMT_EXECUTE values");
    let mut out = Vec::with_capacity(types.len());
    for (i, ty) in types.iter().enumerate() {
        if params.is_null(i) || ty.column_type == column_type::NULL {
            out.push(ParamValue::Null);
            continue;
        }
        let unsigned = ty.flags & UNSIGNED_FLAG != 0;
        use column_type as t;
        let value = match ty.column_type {
            t::TINY => {
                let b = r.u8()?;
                if unsigned {
                    ParamValue::UInt(u64::from(b))
                } else {
                    ParamValue::Int(i64::from(b as i8))
                }
            }
            t::SHORT | t::YEAR => {
                let v = r.u16()?;
                if unsigned {
                    ParamValue::UInt(u64::from(v))
                } else {
                    ParamValue::Int(i64::from(v as i16))
                }
            }
            t::LONG | t::INT24 => {
                let v = r.u32()?;
                if unsigned {
                    ParamValue::UInt(u64::from(v))
                } else {
                    ParamValue::Int(i64::from(v as i32))
                }
            }
            t::LONGLONG => {
                let v = r.u64()?;
                if unsigned {
                    ParamValue::UInt(v)
                } else {
                    ParamValue::Int(v as i64)
                }
            }
            t::FLOAT => ParamValue::Float(f32::from_bits(r.u32()?)),
            t::DOUBLE => ParamValue::Double(f64::from_bits(r.u64()?)),
            t::DATE | t::DATETIME | t::TIMESTAMP => {
                let len = r.u8()?;
                if !matches!(len, 0 | 4 | 7 | 11) {
                    return Err(ProtocolError::malformed(
                        "temporal parameter",
                        format!("length {len}"),
                    ));
                }
                let body = r.take(usize::from(len))?;
                let mut b = Reader::new(body, "temporal parameter");
                let (year, month, day) = if len >= 4 {
                    (b.u16()?, b.u8()?, b.u8()?)
                } else {
                    (0, 0, 0)
                };
                let (hour, minute, second) = if len >= 7 {
                    (b.u8()?, b.u8()?, b.u8()?)
                } else {
                    (0, 0, 0)
                };
                let micros = if len == 11 { b.u32()? } else { 0 };
                ParamValue::DateTime {
                    column_type: ty.column_type,
                    year,
                    month,
                    day,
                    hour,
                    minute,
                    second,
                    micros,
                }
            }
            t::TIME => {
                let len = r.u8()?;
                if !matches!(len, 0 | 8 | 12) {
                    return Err(ProtocolError::malformed(
                        "TIME parameter",
                        format!("length {len}"),
                    ));
                }
                let body = r.take(usize::from(len))?;
                let mut b = Reader::new(body, "TIME parameter");
                if len == 0 {
                    ParamValue::Time {
                        negative: false,
                        days: 0,
                        hours: 0,
                        minutes: 0,
                        seconds: 0,
                        micros: 0,
                    }
                } else {
                    let negative = b.u8()? != 0;
                    let days = b.u32()?;
                    let (hours, minutes, seconds) = (b.u8()?, b.u8()?, b.u8()?);
                    let micros = if len == 12 { b.u32()? } else { 0 };
                    ParamValue::Time {
                        negative,
                        days,
                        hours,
                        minutes,
                        seconds,
                        micros,
                    }
                }
            }
            t::DECIMAL
            | t::NEWDECIMAL
            | t::VARCHAR
            | t::BIT
            | t::JSON
            | t::ENUM
            | t::SET
            | t::TINY_BLOB
            | t::MEDIUM_BLOB
            | t::LONG_BLOB
            | t::BLOB
            | t::VAR_STRING
            | t::STRING
            | t::GEOMETRY => ParamValue::Bytes {
                column_type: ty.column_type,
                data: r.lenenc_bytes()?,
            },
            other => {
                return Err(ProtocolError::malformed(
                    "COM_STMT_EXECUTE values",
                    format!("unknown parameter type {other}"),
                ))
            }
        };
        out.push(value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_binary_values() {
        let types: Vec<ParamType> = [
            (column_type::LONGLONG, 0),
            (column_type::TINY, UNSIGNED_FLAG),
            (column_type::VAR_STRING, 0),
            (column_type::DATETIME, 0),
            (column_type::TIME, 0),
            (column_type::DOUBLE, 0),
            (column_type::LONG, 0),
        ]
        .iter()
        .map(|&(column_type, flags)| ParamType { column_type, flags })
        .collect();
        let mut values = Vec::new();
        values.extend_from_slice(&(-5i64).to_le_bytes());
        values.push(200);
        values.extend_from_slice(&[2, b'h', b'i']);
        values.extend_from_slice(&[11, 0xE8, 0x07, 2, 29, 13, 14, 15, 0x40, 0x42, 0x0F, 0]);
        values.extend_from_slice(&[8, 1, 2, 0, 0, 0, 3, 4, 5]);
        values.extend_from_slice(&1.5f64.to_le_bytes());
        // parameter 6 is NULL: no bytes
        let nulls = [0b0100_0000];
        let params = ExecuteParams {
            null_bitmap: &nulls,
            types: None,
            values: &values,
        };
        let decoded = decode_params(&params, &types).unwrap();
        assert_eq!(decoded[0], ParamValue::Int(-5));
        assert_eq!(decoded[1], ParamValue::UInt(200));
        assert_eq!(
            decoded[2],
            ParamValue::Bytes {
                column_type: column_type::VAR_STRING,
                data: b"hi"
            }
        );
        assert!(matches!(
            decoded[3],
            ParamValue::DateTime {
                year: 2024,
                month: 2,
                day: 29,
                micros: 1_000_000,
                ..
            }
        ));
        assert!(matches!(
            decoded[4],
            ParamValue::Time {
                negative: true,
                days: 2,
                hours: 3,
                ..
            }
        ));
        assert_eq!(decoded[5], ParamValue::Double(1.5));
        assert_eq!(decoded[6], ParamValue::Null);
    }

    #[test]
    fn rejects_unknown_types_and_short_values() {
        let bad = [ParamType {
            column_type: 100,
            flags: 0,
        }];
        let params = ExecuteParams {
            null_bitmap: &[0],
            types: None,
            values: &[1, 2, 3],
        };
        assert!(decode_params(&params, &bad).is_err());
        let long = [ParamType {
            column_type: column_type::LONGLONG,
            flags: 0,
        }];
        assert!(decode_params(&params, &long).is_err());
        let date = [ParamType {
            column_type: column_type::DATE,
            flags: 0,
        }];
        let params = ExecuteParams {
            null_bitmap: &[0],
            types: None,
            values: &[5, 1, 2, 3, 4, 5],
        };
        assert!(decode_params(&params, &date).is_err());
    }

    #[test]
    fn prepare_ok() {
        let p = [0, 5, 0, 0, 0, 2, 0, 3, 0, 0, 1, 0];
        assert_eq!(
            PrepareOk::parse(&p).unwrap(),
            PrepareOk {
                stmt_id: 5,
                num_columns: 2,
                num_params: 3,
                warnings: 1
            }
        );
        assert!(PrepareOk::parse(&p[..4]).is_err());
    }

    #[test]
    fn execute_params() {
        // 3 params, param 1 NULL, types bound.
        let p = [0b010, 1, 3, 0, 0xFD, 0, 8, 0x80, 1, 0, 0, 0];
        let e = ExecuteParams::parse(&p, 3).unwrap();
        assert!(e.is_null(1) && !e.is_null(0));
        let types = e.param_types().unwrap();
        assert_eq!(
            types[2],
            ParamType {
                column_type: 8,
                flags: 0x80
            }
        );
        assert_eq!(e.values, &[1, 0, 0, 0]);
        assert!(ExecuteParams::parse(&p[..3], 3).is_err());
    }
}
