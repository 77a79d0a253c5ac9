//! Checked readers for the protocol's primitive fields. Every read of peer
//! bytes goes through here and fails with [`ProtocolError::Truncated`]
//! instead of panicking.

use crate::ProtocolError;

/// A cursor over a payload with checked reads.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Reads `bytes`; `what` names the packet in errors.
    pub fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader { bytes, what }
    }

    /// Bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    /// Whether everything has been read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if self.bytes.len() < n {
            return Err(ProtocolError::Truncated {
                what: self.what,
                needed: n - self.bytes.len(),
            });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.take(1)?[0])
    }

    /// Reads a little-endian u16.
    pub fn u16(&mut self) -> Result<u16, ProtocolError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    /// Reads a little-endian u32.
    pub fn u32(&mut self) -> Result<u32, ProtocolError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a little-endian u64.
    pub fn u64(&mut self) -> Result<u64, ProtocolError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Reads a length-encoded integer (always unsigned). The prefixes
    /// 0xFB (NULL in rows) and 0xFF (error) are not integers and fail.
    pub fn lenenc_int(&mut self) -> Result<u64, ProtocolError> {
        match self.u8()? {
            n @ 0..=0xFA => Ok(u64::from(n)),
            0xFC => Ok(u64::from(self.u16()?)),
            0xFD => {
                let b = self.take(3)?;
                Ok(u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16)
            }
            0xFE => self.u64(),
            other => Err(ProtocolError::malformed(
                self.what,
                format!("0x{other:02X} is not a length-encoded integer prefix"),
            )),
        }
    }

    /// Reads a length-encoded byte string.
    pub fn lenenc_bytes(&mut self) -> Result<&'a [u8], ProtocolError> {
        let len = self.lenenc_int()?;
        let len = usize::try_from(len)
            .map_err(|_| ProtocolError::malformed(self.what, "length does not fit in memory"))?;
        self.take(len)
    }

    /// Reads a NUL-terminated byte string (the NUL is consumed, not returned).
    pub fn nul_bytes(&mut self) -> Result<&'a [u8], ProtocolError> {
        match self.bytes.iter().position(|&b| b == 0) {
            Some(end) => {
                let s = &self.bytes[..end];
                self.bytes = &self.bytes[end + 1..];
                Ok(s)
            }
            None => Err(ProtocolError::Truncated {
                what: self.what,
                needed: 1,
            }),
        }
    }
}

/// Appends a length-encoded integer.
pub fn put_lenenc_int(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xFA => out.push(n as u8),
        0xFB..=0xFFFF => {
            out.push(0xFC);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xFF_FFFF => {
            out.push(0xFD);
            out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xFE);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// Appends a length-encoded byte string.
pub fn put_lenenc_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_lenenc_int(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn lenenc_round_trip(n in any::<u64>()) {
            let mut out = Vec::new();
            put_lenenc_int(&mut out, n);
            let mut r = Reader::new(&out, "test");
            prop_assert_eq!(r.lenenc_int().unwrap(), n);
            prop_assert!(r.is_empty());
        }

        #[test]
        fn reads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut r = Reader::new(&bytes, "test");
            let _ = r.lenenc_bytes();
            let _ = r.nul_bytes();
            let _ = r.u64();
        }
    }

    #[test]
    fn error_prefix_is_not_an_integer() {
        assert!(Reader::new(&[0xFF], "t").lenenc_int().is_err());
        assert!(Reader::new(&[0xFB], "t").lenenc_int().is_err());
        assert!(matches!(
            Reader::new(&[0xFD, 1], "t").lenenc_int(),
            Err(ProtocolError::Truncated { needed: 2, .. })
        ));
    }
}
