//! The one error type of the protocol crate.

/// A peer sent bytes that do not form the packet the protocol expects at
/// this point. The proxy answers such input by closing the connection.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    /// A packet (or field) ended before a field it announced.
    #[error("truncated {what}: needed {needed} more byte(s)")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// How many bytes were missing.
        needed: usize,
    },
    /// A field held a value the protocol forbids here.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// Why it is not acceptable.
        detail: String,
    },
    /// A packet carried a sequence id other than the expected one.
    #[error("packet out of order: expected sequence id {expected}, got {got}")]
    OutOfOrder {
        /// The sequence id the exchange is at.
        expected: u8,
        /// The sequence id the packet carried.
        got: u8,
    },
    /// A packet or logical payload larger than the configured limit.
    #[error("packet of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// Limit in force.
        limit: usize,
    },
    /// The peer speaks a protocol variant Sluice does not carry.
    #[error("unsupported protocol variant: {0}")]
    Unsupported(&'static str),
}

impl ProtocolError {
    pub(crate) fn malformed(what: &'static str, detail: impl Into<String>) -> Self {
        ProtocolError::Malformed {
            what,
            detail: detail.into(),
        }
    }
}
