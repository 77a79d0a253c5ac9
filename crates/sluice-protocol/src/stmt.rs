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

#[cfg(test)]
mod tests {
    use super::*;

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
