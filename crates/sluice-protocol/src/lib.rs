//! Sans-I/O pieces of the MySQL/MariaDB client/server protocol that the
//! Sluice proxy needs: packet framing, the handshake (read on one side,
//! re-offered on the other), the response tracker that tells where a
//! server's answer to a command ends, and the few packets Sluice writes
//! itself (ERR, OK).
//!
//! Nothing here performs I/O; every function takes bytes and returns
//! typed results, so each piece is tested (and fuzzed) on its own.
//!
//! ```
//! use sluice_protocol::packet::{encode_packet, PacketHeader};
//!
//! let mut out = Vec::new();
//! encode_packet(&mut out, 0, b"\x0eping");
//! let header = PacketHeader::parse(&out).expect("a full header");
//! assert_eq!(header.payload_len, 5);
//! assert_eq!(header.seq, 0);
//! ```
#![deny(missing_docs)]

pub mod caps;
pub mod command;
pub mod compress;
pub mod connect;
pub mod error;
pub mod handshake;
pub mod lenenc;
pub mod ok;
pub mod packet;
pub mod response;
pub mod resultset;
pub mod stmt;

pub use error::ProtocolError;
pub use mysql_common::constants::{CapabilityFlags, MariadbCapabilities, StatusFlags};
