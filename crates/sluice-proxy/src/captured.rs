//! Helpers for the unit tests that replay bytes captured from MariaDB
//! 10.11 over in-memory streams.

use sluice_protocol::caps::SessionCaps;
use sluice_protocol::{CapabilityFlags, MariadbCapabilities};

/// Bytes from their hex dump (as captured).
pub(crate) fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The capabilities the captures were made with: protocol 41, secure
/// connection, transactions, multi-statements and multi-results (so EOF
/// packets and no session tracking).
pub(crate) fn basic_caps() -> SessionCaps {
    SessionCaps {
        flags: CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_TRANSACTIONS
            | CapabilityFlags::CLIENT_MULTI_STATEMENTS
            | CapabilityFlags::CLIENT_MULTI_RESULTS,
        mariadb: MariadbCapabilities::empty(),
    }
}
