//! The connection phase as Sluice's own clients see it (the backend probe,
//! a backend login Sluice gives up): reading a server's first packet,
//! taking the nonce a password is hashed with, and ending a handshake
//! politely. Only bytes in and out; the callers do the I/O.

use mysql_common::constants::CapabilityFlags;

use crate::command::code;
use crate::lenenc::Reader;
use crate::ok::{ErrInfo, ERR_HEADER, OK_HEADER};
use crate::packet::encode_packet;
use crate::ProtocolError;

/// The protocol version every supported server speaks.
const PROTOCOL_V10: u8 = 10;

/// Length of the nonce `mysql_native_password` hashes.
pub const NONCE_LEN: usize = 20;

/// What a server sends first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstPacket<'a> {
    /// A protocol 10 greeting.
    Greeting {
        /// The server version it announces.
        server_version: &'a [u8],
    },
    /// An error instead of a greeting (too many connections, host blocked).
    Refused {
        /// The MySQL error code.
        code: u16,
        /// The message.
        message: &'a [u8],
    },
}

impl<'a> FirstPacket<'a> {
    /// Reads a server's first packet; anything else is not a MySQL server.
    pub fn parse(payload: &'a [u8]) -> Result<FirstPacket<'a>, ProtocolError> {
        let not_mysql = |detail: &str| ProtocolError::malformed("first packet", detail);
        match payload.split_first() {
            Some((&PROTOCOL_V10, rest)) => {
                let end = rest
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or_else(|| not_mysql("a greeting without a terminated server version"))?;
                Ok(FirstPacket::Greeting {
                    server_version: &rest[..end],
                })
            }
            Some((&ERR_HEADER, _)) => {
                // Before the handshake an ERR usually has no SQLSTATE;
                // ErrInfo takes it either way.
                let err = ErrInfo::parse(payload).map_err(|_| not_mysql("a truncated error"))?;
                Ok(FirstPacket::Refused {
                    code: err.code,
                    message: err.message,
                })
            }
            Some(_) => Err(not_mysql("neither a protocol 10 greeting nor an error")),
            None => Err(not_mysql("empty")),
        }
    }
}

/// The capabilities a greeting offers and the nonce it carries for
/// `mysql_native_password`.
pub fn greeting_nonce(payload: &[u8]) -> Result<(CapabilityFlags, [u8; NONCE_LEN]), ProtocolError> {
    let mut r = Reader::new(payload, "server greeting");
    r.u8()?; // protocol version
    r.nul_bytes()?; // server version
    r.u32()?; // connection id
    let first = r.take(8)?;
    r.u8()?; // filler
    let caps_lower = r.u16()?;
    r.u8()?; // collation
    r.u16()?; // status
    let caps_upper = r.u16()?;
    let caps =
        CapabilityFlags::from_bits_retain(u32::from(caps_lower) | u32::from(caps_upper) << 16);
    let auth_len = r.u8()?;
    r.take(10)?; // reserved (MariaDB: its extended capabilities)
                 // The second part is at least 13 bytes and ends in a NUL.
    let second = r.take(usize::from(auth_len).saturating_sub(8).max(13))?;
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..8].copy_from_slice(first);
    let rest = second
        .get(..NONCE_LEN - 8)
        .ok_or_else(|| ProtocolError::malformed("server greeting", "a short nonce"))?;
    nonce[8..].copy_from_slice(rest);
    Ok((caps, nonce))
}

/// A handshake response logging in as `user` with an empty password, for
/// a connection Sluice will not use. Closing a connection in the middle
/// of its handshake counts toward the server's `max_connect_errors`,
/// which blocks the host after 100 of them; a refused login does not.
pub fn throwaway_login(user: &[u8]) -> Vec<u8> {
    let caps = CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_PLUGIN_AUTH;
    let mut payload = Vec::with_capacity(64 + user.len());
    payload.extend_from_slice(&caps.bits().to_le_bytes());
    payload.extend_from_slice(&(1u32 << 24).to_le_bytes());
    payload.push(45);
    payload.extend_from_slice(&[0u8; 23]);
    payload.extend_from_slice(user);
    payload.push(0);
    payload.push(0); // empty auth response
    payload.extend_from_slice(b"mysql_native_password\0");
    payload
}

/// The packet that gives up a handshake: [`throwaway_login`] for `user`
/// (an account that need not exist), numbered `seq` (the greeting's
/// sequence id plus one).
pub fn abandoning_login(seq: u8, user: &[u8]) -> Vec<u8> {
    let mut packet = Vec::with_capacity(64 + user.len());
    encode_packet(&mut packet, seq, &throwaway_login(user));
    packet
}

/// `COM_QUIT`, framed.
pub const QUIT_PACKET: [u8; 5] = [1, 0, 0, 0, code::QUIT];

/// What to send after the server's verdict on [`abandoning_login`]: the
/// account exists without a password and the login went through, so the
/// connection is left with a `COM_QUIT`; otherwise nothing.
pub fn after_abandoning(verdict: &[u8]) -> Option<[u8; 5]> {
    (verdict.first() == Some(&OK_HEADER)).then_some(QUIT_PACKET)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::{mask_capabilities, ClientHello};
    use crate::packet::PacketHeader;
    use mysql_common::constants::MariadbCapabilities;

    #[test]
    fn reads_a_greeting_or_an_error() {
        let mut greeting = vec![10];
        greeting.extend_from_slice(b"11.4.2-MariaDB\0");
        greeting.extend_from_slice(&[1, 0, 0, 0]);
        assert_eq!(
            FirstPacket::parse(&greeting),
            Ok(FirstPacket::Greeting {
                server_version: b"11.4.2-MariaDB"
            })
        );
        let mut blocked = vec![0xff, 0x69, 0x04];
        blocked.extend_from_slice(b"Host 'x' is blocked");
        assert_eq!(
            FirstPacket::parse(&blocked),
            Ok(FirstPacket::Refused {
                code: 1129,
                message: b"Host 'x' is blocked"
            })
        );
        let mut too_many = vec![0xff, 0x10, 0x04];
        too_many.extend_from_slice(b"#08004Too many connections");
        assert_eq!(
            FirstPacket::parse(&too_many),
            Ok(FirstPacket::Refused {
                code: 1040,
                message: b"Too many connections"
            })
        );
    }

    #[test]
    fn refuses_what_is_not_mysql() {
        assert!(FirstPacket::parse(b"").is_err());
        assert!(FirstPacket::parse(b"HTTP/1.1 400").is_err());
        assert!(FirstPacket::parse(&[10, b'a', b'b']).is_err(), "no NUL");
        assert!(FirstPacket::parse(&[0xff, 1]).is_err());
    }

    #[test]
    fn the_abandoning_login_is_a_login_and_an_ok_is_left_with_a_quit() {
        let packet = abandoning_login(1, b"nobody");
        let header = PacketHeader::parse(&packet).unwrap();
        assert_eq!((header.seq, header.wire_len()), (1, packet.len()));
        let mut payload = packet[4..].to_vec();
        let offered = CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_PLUGIN_AUTH;
        mask_capabilities(&mut payload, offered, MariadbCapabilities::empty());
        let hello = ClientHello::parse(&payload).unwrap();
        assert_eq!(hello.user, b"nobody");
        assert_eq!(
            after_abandoning(&[OK_HEADER, 0, 0, 2, 0]),
            Some(QUIT_PACKET)
        );
        assert_eq!(after_abandoning(&[ERR_HEADER, 0x15, 0x04]), None);
        assert_eq!(after_abandoning(&[]), None);
    }
}
