//! The connection phase: the backend's greeting, which Sluice re-offers to
//! the client with its own capability mask, and the client's handshake
//! response, which Sluice reads (to learn user, database and capabilities)
//! but relays as the client sent it.

use mysql_common::constants::{CapabilityFlags, MariadbCapabilities, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{HandshakePacket, HandshakeResponse};
use mysql_common::proto::MyDeserialize;

use crate::caps::{offer_mariadb_to_client, offer_to_client};
use crate::lenenc::Reader;
use crate::ProtocolError;

/// The protocol version every supported server speaks.
const PROTOCOL_V10: u8 = 10;

/// What Sluice needs to know of the backend's greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// Server version string, e.g. `11.4.2-MariaDB`.
    pub server_version: String,
    /// The backend's connection (thread) id.
    pub connection_id: u32,
    /// Capabilities the backend offered.
    pub capabilities: CapabilityFlags,
    /// MariaDB extended capabilities the backend offered.
    pub mariadb_capabilities: MariadbCapabilities,
    /// Default collation id.
    pub collation: u8,
    /// Initial status flags.
    pub status: StatusFlags,
    /// Name of the default authentication plugin.
    pub auth_plugin: Vec<u8>,
    /// Byte offset of the lower capability half in the payload.
    caps_lower_at: usize,
    /// Whether Sluice offers the client TLS (it terminates it itself).
    tls_offered: bool,
}

impl Greeting {
    /// Parses the backend's initial handshake packet payload.
    pub fn parse(payload: &[u8]) -> Result<Greeting, ProtocolError> {
        let mut r = Reader::new(payload, "server greeting");
        let version = r.u8()?;
        if version != PROTOCOL_V10 {
            return Err(ProtocolError::malformed(
                "server greeting",
                format!("protocol version {version}"),
            ));
        }
        let server_version = r.nul_bytes()?;
        // connection id (4), scramble part 1 (8), filler (1)
        let caps_lower_at = 1 + server_version.len() + 1 + 4 + 8 + 1;
        // mysql_common computes `len as i8 - 8` from this byte, which
        // overflows for values of 128 and above; no server sends them (the
        // nonce is 21 bytes).
        let auth_data_len_at = caps_lower_at + 2 + 1 + 2 + 2;
        if payload.get(auth_data_len_at).is_some_and(|&len| len >= 128) {
            return Err(ProtocolError::malformed(
                "server greeting",
                "auth plugin data length out of range",
            ));
        }
        let packet = HandshakePacket::deserialize((), &mut ParseBuf(payload))
            .map_err(|e| ProtocolError::malformed("server greeting", e.to_string()))?;
        // The reserved bytes (and MariaDB's extended capabilities) must be
        // present for the in-place rewrite in `for_client`.
        if payload.len() < caps_lower_at + 2 + 1 + 2 + 2 + 1 + 6 + 4 {
            return Err(ProtocolError::Truncated {
                what: "server greeting",
                needed: caps_lower_at + 18 - payload.len(),
            });
        }
        Ok(Greeting {
            server_version: String::from_utf8_lossy(server_version).into_owned(),
            connection_id: packet.connection_id(),
            capabilities: packet.capabilities(),
            mariadb_capabilities: packet.mariadb_ext_capabilities(),
            collation: packet.default_collation(),
            status: packet.status_flags(),
            auth_plugin: packet.auth_plugin_name_ref().unwrap_or_default().to_vec(),
            caps_lower_at,
            tls_offered: false,
        })
    }

    /// Makes the greeting offer TLS to the client (or not), whatever the
    /// backend offers: the two legs are encrypted independently.
    pub fn offer_tls(&mut self, on: bool) {
        self.tls_offered = on;
    }

    /// Capabilities Sluice offers the client.
    pub fn offered(&self) -> CapabilityFlags {
        let offered = offer_to_client(self.capabilities);
        if self.tls_offered {
            offered | CapabilityFlags::CLIENT_SSL
        } else {
            offered
        }
    }

    /// Whether the backend offers TLS.
    pub fn backend_offers_tls(&self) -> bool {
        self.capabilities.contains(CapabilityFlags::CLIENT_SSL)
    }

    /// MariaDB extended capabilities Sluice offers the client.
    pub fn offered_mariadb(&self) -> MariadbCapabilities {
        offer_mariadb_to_client(self.mariadb_capabilities)
    }

    /// The greeting to send the client: the backend's own bytes (nonce,
    /// version, connection id, collation, status), with the capability
    /// fields narrowed to what Sluice offers.
    pub fn for_client(&self, payload: &[u8]) -> Vec<u8> {
        let mut out = payload.to_vec();
        let offered = self.offered().bits().to_le_bytes();
        let at = self.caps_lower_at;
        out[at..at + 2].copy_from_slice(&offered[..2]);
        // collation (1) and status (2) sit between the two halves.
        out[at + 5..at + 7].copy_from_slice(&offered[2..]);
        // auth data length (1) and 6 reserved bytes precede MariaDB's field.
        let ext_at = at + 7 + 1 + 6;
        out[ext_at..ext_at + 4].copy_from_slice(&self.offered_mariadb().bits().to_le_bytes());
        out
    }

    /// Parsed `major.minor.patch` of the server version, if it has one.
    pub fn version_triple(&self) -> Option<(u16, u16, u16)> {
        // MariaDB 10.x used to prefix "5.5.5-" for old clients.
        let v = self
            .server_version
            .strip_prefix("5.5.5-")
            .unwrap_or(&self.server_version);
        let mut parts = v.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next()?.parse().ok()?;
        Some((major, minor, patch))
    }
}

/// What the client sent as its handshake response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// Capabilities the client asked for.
    pub capabilities: CapabilityFlags,
    /// MariaDB extended capabilities the client asked for.
    pub mariadb_capabilities: MariadbCapabilities,
    /// Collation id the client chose.
    pub collation: u8,
    /// User name.
    pub user: Vec<u8>,
    /// Initial database, if any.
    pub database: Option<Vec<u8>>,
    /// Authentication plugin the client used, if it named one.
    pub auth_plugin: Option<Vec<u8>>,
    /// Whether the client sent authentication data (a password).
    pub sent_password: bool,
}

/// Length of an SSL request: the fixed prefix of a handshake response.
const SSL_REQUEST_LEN: usize = 32;

/// Whether a client's first packet is an SSL request (the fixed prefix of
/// a handshake response, with `CLIENT_SSL`), after which TLS starts.
pub fn is_ssl_request(payload: &[u8]) -> bool {
    payload.len() == SSL_REQUEST_LEN
        && payload[..4]
            .try_into()
            .map(u32::from_le_bytes)
            .is_ok_and(|caps| caps & CapabilityFlags::CLIENT_SSL.bits() != 0)
}

/// The SSL request Sluice sends the backend on the client's behalf: the
/// fixed prefix of the client's own handshake response (capabilities,
/// packet size, collation, MariaDB's extended capabilities) with
/// `CLIENT_SSL` set. `None` if the response is too short to have one.
pub fn ssl_request_for(response: &[u8]) -> Option<[u8; SSL_REQUEST_LEN]> {
    let mut request: [u8; SSL_REQUEST_LEN] = response.get(..SSL_REQUEST_LEN)?.try_into().ok()?;
    set_client_ssl(&mut request, true);
    Some(request)
}

/// Sets or clears `CLIENT_SSL` in a handshake response (or SSL request)
/// payload, so that what the backend reads matches how its leg is carried.
pub fn set_client_ssl(payload: &mut [u8], on: bool) {
    set_capability(payload, CapabilityFlags::CLIENT_SSL, on);
}

/// Clears `CLIENT_COMPRESS` in a handshake response: compression ends at
/// Sluice, and the backend leg stays uncompressed.
pub fn clear_compression(payload: &mut [u8]) {
    set_capability(payload, CapabilityFlags::CLIENT_COMPRESS, false);
}

fn set_capability(payload: &mut [u8], flag: CapabilityFlags, on: bool) {
    if let Some(caps) = payload.get_mut(..4) {
        let mut bits = u32::from_le_bytes([caps[0], caps[1], caps[2], caps[3]]);
        if on {
            bits |= flag.bits();
        } else {
            bits &= !flag.bits();
        }
        caps.copy_from_slice(&bits.to_le_bytes());
    }
}

/// Narrows the capability fields of a handshake response (or SSL
/// request) to what was offered, in place, and returns the standard flags
/// now in force. MariaDB ANDs a client's flags with its own offer and
/// ignores the rest; Sluice does the same with its offer, so the backend
/// reads exactly the flags the session runs with. Bit 0 (`CLIENT_MYSQL`
/// to MariaDB) is left as sent: the server reads it, unmasked, to decide
/// whether the extended capabilities field is there at all.
pub fn mask_capabilities(
    payload: &mut [u8],
    offered: CapabilityFlags,
    offered_mariadb: MariadbCapabilities,
) -> CapabilityFlags {
    let Some(field) = payload.get_mut(..4) else {
        return CapabilityFlags::empty();
    };
    let sent = CapabilityFlags::from_bits_retain(u32::from_le_bytes([
        field[0], field[1], field[2], field[3],
    ]));
    let kept = offered | CapabilityFlags::CLIENT_LONG_PASSWORD;
    let masked = sent.intersection(kept);
    field.copy_from_slice(&masked.bits().to_le_bytes());
    let mariadb_field = MARIADB_CAPS_AT..MARIADB_CAPS_AT + 4;
    if !sent.contains(CapabilityFlags::CLIENT_LONG_PASSWORD) {
        if let Some(ext) = payload.get_mut(mariadb_field) {
            let sent_ext = u32::from_le_bytes([ext[0], ext[1], ext[2], ext[3]]);
            ext.copy_from_slice(&(sent_ext & offered_mariadb.bits()).to_le_bytes());
        }
    }
    masked
}

/// Where MariaDB's extended capabilities sit in a handshake response:
/// the last four of the 23 reserved bytes.
const MARIADB_CAPS_AT: usize = 28;

impl ClientHello {
    /// Reads a handshake response whose capabilities were already narrowed
    /// by [`mask_capabilities`]. Refuses pre-4.1 clients and an SSL
    /// request where a whole response must be.
    pub fn parse(payload: &[u8]) -> Result<ClientHello, ProtocolError> {
        let mut r = Reader::new(payload, "handshake response");
        let caps = CapabilityFlags::from_bits_retain(r.u32()?);
        if !caps.contains(CapabilityFlags::CLIENT_PROTOCOL_41) {
            return Err(ProtocolError::Unsupported("pre-4.1 protocol"));
        }
        if payload.len() == SSL_REQUEST_LEN {
            return Err(ProtocolError::Truncated {
                what: "handshake response (an SSL request where TLS was not offered)",
                needed: 1,
            });
        }
        let response = HandshakeResponse::deserialize((), &mut ParseBuf(payload))
            .map_err(|e| ProtocolError::malformed("handshake response", e.to_string()))?;
        Ok(ClientHello {
            capabilities: caps,
            mariadb_capabilities: response.mariadb_ext_capabilities(),
            collation: response.collation(),
            user: response.user().to_vec(),
            database: response.db_name().map(<[u8]>::to_vec),
            auth_plugin: response.auth_plugin().map(|p| p.as_bytes().to_vec()),
            sent_password: !response.scramble_buf().is_empty(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::proto::MySerialize;

    fn sample_greeting() -> Vec<u8> {
        let caps = CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_PLUGIN_AUTH
            | CapabilityFlags::CLIENT_SSL
            | CapabilityFlags::CLIENT_COMPRESS
            | CapabilityFlags::CLIENT_DEPRECATE_EOF
            | CapabilityFlags::CLIENT_SESSION_TRACK;
        let packet = HandshakePacket::new(
            10,
            &b"10.11.19-MariaDB"[..],
            42,
            *b"abcdefgh",
            Some(&b"ijklmnopqrst\0"[..]),
            caps,
            45,
            StatusFlags::SERVER_STATUS_AUTOCOMMIT,
            Some(&b"mysql_native_password"[..]),
        )
        .with_mariadb_ext_capabilities(
            MariadbCapabilities::MARIADB_CLIENT_CACHE_METADATA
                | MariadbCapabilities::MARIADB_CLIENT_STMT_BULK_OPERATIONS,
        );
        let mut out = Vec::new();
        packet.serialize(&mut out);
        out
    }

    #[test]
    fn tls_offer_is_sluice_own() {
        let bytes = sample_greeting();
        let mut g = Greeting::parse(&bytes).unwrap();
        assert!(g.backend_offers_tls());
        assert!(!g.offered().contains(CapabilityFlags::CLIENT_SSL));
        g.offer_tls(true);
        assert!(g.offered().contains(CapabilityFlags::CLIENT_SSL));
        let rewritten = Greeting::parse(&g.for_client(&bytes)).unwrap();
        assert!(rewritten.capabilities.contains(CapabilityFlags::CLIENT_SSL));
    }

    #[test]
    fn ssl_requests_are_recognised_and_built() {
        let caps =
            (CapabilityFlags::CLIENT_PROTOCOL_41 | CapabilityFlags::CLIENT_PLUGIN_AUTH).bits();
        let mut response = caps.to_le_bytes().to_vec();
        response.extend_from_slice(&[0u8; 28]);
        response.extend_from_slice(b"user\0");
        assert!(!is_ssl_request(&response));
        let request = ssl_request_for(&response).unwrap();
        assert!(is_ssl_request(&request));
        assert_eq!(request[4..], response[4..32]);
        let mut cleared = request;
        set_client_ssl(&mut cleared, false);
        assert!(!is_ssl_request(&cleared));
        assert_eq!(cleared[..], response[..32]);
        assert!(ssl_request_for(&response[..31]).is_none());
        assert!(!is_ssl_request(&[0xff; 3]));
    }

    #[test]
    fn greeting_keeps_everything_but_capabilities() {
        let bytes = sample_greeting();
        let g = Greeting::parse(&bytes).unwrap();
        assert_eq!(g.connection_id, 42);
        assert_eq!(g.version_triple(), Some((10, 11, 19)));
        let rewritten = g.for_client(&bytes);
        assert_eq!(rewritten.len(), bytes.len());
        let again = Greeting::parse(&rewritten).unwrap();
        assert_eq!(again.connection_id, 42);
        assert_eq!(again.collation, 45);
        assert_eq!(again.auth_plugin, b"mysql_native_password");
        assert!(!again.capabilities.contains(CapabilityFlags::CLIENT_SSL));
        assert!(again
            .capabilities
            .contains(CapabilityFlags::CLIENT_COMPRESS));
        assert!(again.capabilities.contains(
            CapabilityFlags::CLIENT_DEPRECATE_EOF | CapabilityFlags::CLIENT_SESSION_TRACK
        ));
        assert_eq!(
            again.mariadb_capabilities,
            MariadbCapabilities::MARIADB_CLIENT_STMT_BULK_OPERATIONS
        );
        let nonce_at = 1 + "10.11.19-MariaDB".len() + 1 + 4;
        assert_eq!(&rewritten[nonce_at..nonce_at + 8], b"abcdefgh");
    }

    #[test]
    fn truncated_greetings_fail_cleanly() {
        let bytes = sample_greeting();
        for len in 0..bytes.len() {
            let _ = Greeting::parse(&bytes[..len]);
        }
        assert!(Greeting::parse(&[9, 0]).is_err());
        // Found by fuzzing: an auth data length of 128+ made mysql_common
        // overflow an i8.
        let mut bad = bytes.clone();
        let at = 1 + "10.11.19-MariaDB".len() + 1 + 4 + 8 + 1 + 2 + 1 + 2 + 2;
        bad[at] = 200;
        assert!(Greeting::parse(&bad).is_err());
    }

    fn hello(caps: CapabilityFlags) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&caps.bits().to_le_bytes());
        p.extend_from_slice(&(16u32 << 20).to_le_bytes());
        p.push(45);
        p.extend_from_slice(&[0u8; 23]);
        p.extend_from_slice(b"app\0");
        p.push(0); // empty auth response (secure connection: length byte)
        p.extend_from_slice(b"shop\0");
        p.extend_from_slice(b"mysql_native_password\0");
        p
    }

    #[test]
    fn reads_client_hello() {
        let caps = CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_CONNECT_WITH_DB
            | CapabilityFlags::CLIENT_PLUGIN_AUTH;
        let h = ClientHello::parse(&hello(caps)).unwrap();
        assert_eq!(h.user, b"app");
        assert_eq!(h.database.as_deref(), Some(&b"shop"[..]));
        assert_eq!(h.collation, 45);
    }

    #[test]
    fn unoffered_capabilities_are_masked_not_refused() {
        let offered = CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_PLUGIN_AUTH
            | CapabilityFlags::CLIENT_CONNECT_WITH_DB;
        let offered_ext = MariadbCapabilities::MARIADB_CLIENT_PROGRESS;
        for bit in 0..32 {
            let extra = CapabilityFlags::from_bits_retain(1 << bit);
            let mut payload = hello(offered | extra);
            // A MariaDB client (bit 0 clear) asking for two extensions.
            payload[28] = 0b1_0001;
            let in_force = mask_capabilities(&mut payload, offered, offered_ext);
            let sent_now = u32::from_le_bytes(payload[..4].try_into().unwrap());
            assert_eq!(in_force.bits(), sent_now);
            let want = if bit == 0 || offered.contains(extra) {
                offered | extra
            } else {
                offered
            };
            assert_eq!(in_force, want, "bit {bit}");
            if bit != 0 {
                assert_eq!(payload[28..32], [1, 0, 0, 0], "bit {bit}: extended field");
            }
            let h = ClientHello::parse(&payload).unwrap();
            assert_eq!(h.user, b"app");
            assert_eq!(h.database.as_deref(), Some(&b"shop"[..]));
        }
    }

    #[test]
    fn refuses_ssl_requests_and_old_clients() {
        let caps = CapabilityFlags::CLIENT_PROTOCOL_41 | CapabilityFlags::CLIENT_SECURE_CONNECTION;
        let with_ssl = hello(caps | CapabilityFlags::CLIENT_SSL);
        assert!(ClientHello::parse(&with_ssl[..32]).is_err());
        let old = hello(CapabilityFlags::CLIENT_SECURE_CONNECTION);
        assert_eq!(
            ClientHello::parse(&old),
            Err(ProtocolError::Unsupported("pre-4.1 protocol"))
        );
        for len in 0..40 {
            let mut cut = hello(caps)[..len].to_vec();
            mask_capabilities(&mut cut, caps, MariadbCapabilities::all());
            let _ = ClientHello::parse(&cut);
        }
    }
}
