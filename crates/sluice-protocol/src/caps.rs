//! Which capabilities Sluice passes between client and backend.
//!
//! Sluice relays the bytes of every command and response, so it can offer
//! a client only the capabilities whose framing it understands. The rest
//! are removed from the greeting it re-offers, and a client that sets one
//! anyway has it ignored, as MariaDB ignores a bit it did not offer.
//! Compression is offered when the backend offers it, and carried on the
//! client's leg only: the backend leg stays uncompressed.

use mysql_common::constants::{CapabilityFlags, MariadbCapabilities};

/// Capabilities that change the framing in ways the relay does not follow
/// (zstd compression; TLS, which Sluice offers on its own terms through
/// [`crate::handshake::Greeting::offer_tls`]; MySQL 8 extensions that
/// reshape commands or result sets).
pub const FRAMING_CHANGES: CapabilityFlags = CapabilityFlags::CLIENT_SSL
    .union(CapabilityFlags::CLIENT_ZSTD_COMPRESSION_ALGORITHM)
    .union(CapabilityFlags::CLIENT_QUERY_ATTRIBUTES)
    .union(CapabilityFlags::CLIENT_OPTIONAL_RESULTSET_METADATA);

/// MariaDB extended capabilities the relay follows: progress reports
/// (tracked as non-final ERR packets), bulk execution, extended column
/// metadata (only the column definitions' contents change). Metadata
/// caching is left out: it lets COM_STMT_EXECUTE skip column definitions,
/// which the response tracker would then have to remember per statement.
pub const MARIADB_SUPPORTED: MariadbCapabilities = MariadbCapabilities::MARIADB_CLIENT_PROGRESS
    .union(MariadbCapabilities::MARIADB_CLIENT_STMT_BULK_OPERATIONS)
    .union(MariadbCapabilities::MARIADB_CLIENT_EXTENDED_METADATA);

/// What Sluice offers a client, given what the backend offered.
pub fn offer_to_client(backend: CapabilityFlags) -> CapabilityFlags {
    backend.difference(FRAMING_CHANGES)
}

/// MariaDB extended capabilities offered to a client.
pub fn offer_mariadb_to_client(backend: MariadbCapabilities) -> MariadbCapabilities {
    backend.intersection(MARIADB_SUPPORTED)
}

/// The capabilities in force for a session: what the client asked for and
/// the server offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCaps {
    /// Standard capability flags in force.
    pub flags: CapabilityFlags,
    /// MariaDB extended capabilities in force (empty unless the client
    /// cleared the `CLIENT_MYSQL` bit and the server has them).
    pub mariadb: MariadbCapabilities,
}

impl SessionCaps {
    /// Capabilities in force given the client's request and the offer.
    pub fn negotiate(
        client: CapabilityFlags,
        client_mariadb: MariadbCapabilities,
        offered: CapabilityFlags,
        offered_mariadb: MariadbCapabilities,
    ) -> SessionCaps {
        // Bit 0 is CLIENT_MYSQL in MariaDB: a client that sets it is a
        // MySQL client and gets no extended capabilities.
        let mariadb = if client.contains(CapabilityFlags::CLIENT_LONG_PASSWORD) {
            MariadbCapabilities::empty()
        } else {
            client_mariadb.intersection(offered_mariadb)
        };
        SessionCaps {
            flags: client.intersection(offered),
            mariadb,
        }
    }

    /// The client's leg speaks the compressed protocol.
    pub fn compressed(&self) -> bool {
        self.flags.contains(CapabilityFlags::CLIENT_COMPRESS)
    }

    /// Result sets end with an OK packet instead of EOF packets.
    pub fn deprecate_eof(&self) -> bool {
        self.flags.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
    }

    /// OK packets carry session state change information.
    pub fn session_track(&self) -> bool {
        self.flags.contains(CapabilityFlags::CLIENT_SESSION_TRACK)
    }

    /// The server may send progress reports in the middle of a response.
    pub fn progress(&self) -> bool {
        self.mariadb
            .contains(MariadbCapabilities::MARIADB_CLIENT_PROGRESS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_removes_framing_changes_only() {
        let backend = CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_SSL
            | CapabilityFlags::CLIENT_COMPRESS
            | CapabilityFlags::CLIENT_DEPRECATE_EOF;
        let offer = offer_to_client(backend);
        assert!(offer.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF));
        assert!(offer.contains(CapabilityFlags::CLIENT_COMPRESS));
        assert!(!offer.contains(CapabilityFlags::CLIENT_SSL));
    }

    #[test]
    fn mysql_clients_get_no_mariadb_extensions() {
        let caps = SessionCaps::negotiate(
            CapabilityFlags::CLIENT_LONG_PASSWORD | CapabilityFlags::CLIENT_PROTOCOL_41,
            MariadbCapabilities::MARIADB_CLIENT_PROGRESS,
            CapabilityFlags::CLIENT_PROTOCOL_41,
            MARIADB_SUPPORTED,
        );
        assert!(!caps.progress());
        assert!(!caps.flags.contains(CapabilityFlags::CLIENT_LONG_PASSWORD));
    }
}
