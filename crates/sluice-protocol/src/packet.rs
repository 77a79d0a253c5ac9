//! Packet framing: the 4-byte header (24-bit little-endian payload length,
//! 8-bit sequence id) and the split of payloads of 16 MiB and more into
//! several packets.

/// Largest payload one packet can carry; a packet of exactly this length
/// announces that the logical payload continues in the next packet.
pub const MAX_PAYLOAD_LEN: usize = 0x00FF_FFFF;

/// Size of a packet header.
pub const HEADER_LEN: usize = 4;

/// The header of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketHeader {
    /// Length of the payload that follows the header.
    pub payload_len: usize,
    /// Sequence id, incremented by each side per packet of an exchange.
    pub seq: u8,
}

impl PacketHeader {
    /// Reads a header from the start of `bytes`; `None` if fewer than four
    /// bytes are available.
    pub fn parse(bytes: &[u8]) -> Option<PacketHeader> {
        let head: &[u8; HEADER_LEN] = bytes.get(..HEADER_LEN)?.try_into().ok()?;
        Some(PacketHeader {
            payload_len: usize::from(head[0])
                | usize::from(head[1]) << 8
                | usize::from(head[2]) << 16,
            seq: head[3],
        })
    }

    /// Total size on the wire, header included.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Whether the logical payload continues in the next packet.
    pub fn continues(&self) -> bool {
        self.payload_len == MAX_PAYLOAD_LEN
    }
}

/// Writes a header for `payload_len` bytes with sequence id `seq`.
pub fn encode_header(out: &mut Vec<u8>, payload_len: usize, seq: u8) {
    debug_assert!(payload_len <= MAX_PAYLOAD_LEN);
    out.extend_from_slice(&[
        (payload_len & 0xFF) as u8,
        ((payload_len >> 8) & 0xFF) as u8,
        ((payload_len >> 16) & 0xFF) as u8,
        seq,
    ]);
}

/// Appends `payload` to `out` framed as one logical packet starting at
/// sequence id `seq`, split into 16 MiB pieces where needed (with the empty
/// trailing packet the protocol requires after an exact multiple).
/// Returns the sequence id that the next packet of the exchange must carry.
pub fn encode_packet(out: &mut Vec<u8>, mut seq: u8, payload: &[u8]) -> u8 {
    let mut rest = payload;
    loop {
        let take = rest.len().min(MAX_PAYLOAD_LEN);
        encode_header(out, take, seq);
        out.extend_from_slice(&rest[..take]);
        seq = seq.wrapping_add(1);
        rest = &rest[take..];
        if take < MAX_PAYLOAD_LEN {
            return seq;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let mut out = Vec::new();
        encode_header(&mut out, 0x12_3456, 7);
        assert_eq!(
            PacketHeader::parse(&out),
            Some(PacketHeader {
                payload_len: 0x12_3456,
                seq: 7
            })
        );
        assert_eq!(PacketHeader::parse(&out[..3]), None);
    }

    #[test]
    fn large_payload_is_split_with_trailing_empty_packet() {
        let payload = vec![7u8; MAX_PAYLOAD_LEN * 2];
        let mut out = Vec::new();
        let next = encode_packet(&mut out, 3, &payload);
        assert_eq!(next, 6);
        assert_eq!(out.len(), payload.len() + 3 * HEADER_LEN);
        let last = PacketHeader::parse(&out[out.len() - HEADER_LEN..]).unwrap();
        assert_eq!(last.payload_len, 0);
        assert_eq!(last.seq, 5);
    }

    #[test]
    fn sequence_wraps() {
        let mut out = Vec::new();
        assert_eq!(encode_packet(&mut out, 255, b"x"), 0);
    }
}
