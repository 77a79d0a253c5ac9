//! The compressed protocol (zlib, `CLIENT_COMPRESS`): after the login, each
//! direction is a sequence of compressed packets, each a 7-byte header
//! (payload length, its own sequence id, the length before compression or
//! 0 for a payload sent as is) and a payload that, inflated, is a slice of
//! the ordinary packet stream. An ordinary packet may span compressed
//! packets, and one compressed packet may carry several.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::packet::MAX_PAYLOAD_LEN;
use crate::ProtocolError;

/// Length of a compressed packet's header.
pub const HEADER_LEN: usize = 7;

/// Payloads shorter than this go uncompressed, as MariaDB sends them
/// (`MIN_COMPRESS_LENGTH`): deflating them would cost more than it saves.
pub const MIN_COMPRESS_LEN: usize = 50;

/// The header of one compressed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Length of the payload on the wire.
    pub payload_len: usize,
    /// The compressed packet's sequence id (its own count, not that of
    /// the packets it carries).
    pub seq: u8,
    /// Length of the payload once inflated; 0 when it was sent as is.
    pub inflated_len: usize,
}

impl Header {
    /// Reads a header from the first [`HEADER_LEN`] bytes, if there are
    /// that many.
    pub fn parse(bytes: &[u8]) -> Option<Header> {
        let b = bytes.get(..HEADER_LEN)?;
        Some(Header {
            payload_len: usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16,
            seq: b[3],
            inflated_len: usize::from(b[4]) | usize::from(b[5]) << 8 | usize::from(b[6]) << 16,
        })
    }

    /// Header and payload together.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }
}

fn put_u24(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
}

/// Appends one compressed packet carrying `data` (at most
/// [`MAX_PAYLOAD_LEN`] bytes, the most one header can announce) to `out`.
/// Short payloads, and those that do not shrink, go as they are.
pub fn encode(out: &mut Vec<u8>, seq: u8, data: &[u8]) {
    debug_assert!(data.len() <= MAX_PAYLOAD_LEN);
    let start = out.len();
    if data.len() >= MIN_COMPRESS_LEN {
        out.extend_from_slice(&[0; HEADER_LEN]);
        // Deflate writes into spare room only: with no more room than the
        // input, output that does not shrink never finishes, and goes raw.
        out.reserve_exact(data.len());
        let mut deflater = Compress::new(Compression::default(), true);
        let finished = deflater.compress_vec(data, out, FlushCompress::Finish);
        let deflated_len = out.len() - start - HEADER_LEN;
        if matches!(finished, Ok(Status::StreamEnd)) && deflated_len < data.len() {
            let mut header = Vec::with_capacity(HEADER_LEN);
            put_u24(&mut header, deflated_len);
            header.push(seq);
            put_u24(&mut header, data.len());
            out[start..start + HEADER_LEN].copy_from_slice(&header);
            return;
        }
        out.truncate(start);
    }
    put_u24(out, data.len());
    out.push(seq);
    put_u24(out, 0);
    out.extend_from_slice(data);
}

/// Appends the ordinary bytes one compressed packet carries to `out`,
/// given its header and its payload. A payload that does not inflate to
/// exactly the announced length is refused, so a peer can make Sluice
/// hold no more than the 16 MiB a header can announce.
pub fn decode(header: &Header, payload: &[u8], out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    if header.inflated_len == 0 {
        out.extend_from_slice(payload);
        return Ok(());
    }
    let malformed = |detail: String| ProtocolError::Malformed {
        what: "compressed packet",
        detail,
    };
    let start = out.len();
    let len = header.inflated_len;
    out.resize(start + len, 0);
    let mut inflater = Decompress::new(true);
    let result = loop {
        let read = inflater.total_in() as usize;
        let written = inflater.total_out() as usize;
        let status = inflater.decompress(
            &payload[read..],
            &mut out[start + written..],
            FlushDecompress::Finish,
        );
        let now_written = inflater.total_out() as usize;
        match status {
            Err(e) => break Err(malformed(e.to_string())),
            Ok(Status::StreamEnd) if now_written == len => break Ok(()),
            Ok(Status::StreamEnd) => {
                break Err(malformed(format!(
                    "inflates to {now_written} bytes, {len} announced"
                )))
            }
            Ok(_) if read == inflater.total_in() as usize && written == now_written => {
                break Err(malformed(if now_written == len {
                    format!("inflates to more than the {len} bytes announced")
                } else {
                    "the deflate stream is cut short".to_string()
                }))
            }
            Ok(_) => {}
        }
    };
    if result.is_err() {
        out.truncate(start);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(data: &[u8]) -> (Header, Vec<u8>) {
        let mut wire = Vec::new();
        encode(&mut wire, 3, data);
        let header = Header::parse(&wire).unwrap();
        assert_eq!(header.seq, 3);
        assert_eq!(header.wire_len(), wire.len());
        let mut plain = b"kept".to_vec();
        decode(&header, &wire[HEADER_LEN..], &mut plain).unwrap();
        assert_eq!(&plain[..4], b"kept");
        assert_eq!(&plain[4..], data);
        (header, wire)
    }

    #[test]
    fn short_and_incompressible_payloads_go_as_they_are() {
        let (header, _) = round_trip(b"\x03SELECT 1");
        assert_eq!(header.inflated_len, 0);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let (header, _) = round_trip(&noise);
        assert_eq!(header.inflated_len, 0);
        assert_eq!(header.payload_len, noise.len());
        round_trip(b"");
    }

    #[test]
    fn repetitive_payloads_shrink() {
        let rows = b"INSERT INTO t (v) VALUES ('a'),".repeat(1000);
        let (header, wire) = round_trip(&rows);
        assert_eq!(header.inflated_len, rows.len());
        assert!(wire.len() < rows.len() / 10);
    }

    #[test]
    fn lying_headers_are_refused() {
        let rows = b"0123456789".repeat(100);
        let mut wire = Vec::new();
        encode(&mut wire, 0, &rows);
        let header = Header::parse(&wire).unwrap();
        let payload = &wire[HEADER_LEN..];
        for inflated_len in [1, 999, 1001, 1 << 20] {
            let lie = Header {
                inflated_len,
                ..header
            };
            let mut out = b"kept".to_vec();
            assert!(decode(&lie, payload, &mut out).is_err(), "{inflated_len}");
            assert_eq!(out, b"kept");
        }
        for cut in 0..payload.len() {
            let mut out = Vec::new();
            assert!(decode(&header, &payload[..cut], &mut out).is_err(), "{cut}");
        }
        let mut garbage = payload.to_vec();
        garbage[0] ^= 0xff;
        assert!(decode(&header, &garbage, &mut Vec::new()).is_err());
        assert_eq!(Header::parse(&wire[..6]), None);
    }
}
