//! The error type of this crate and where a bad value came from.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from, for error messages.
///
/// Its `Display` renders as a suffix to a key name: empty for built-in
/// defaults, otherwise ` (from environment variable SLUICE_X__Y)` and so on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// The INI file at this path.
    File(PathBuf),
    /// The named environment variable.
    Env(String),
    /// A command-line flag such as `--listen`.
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => Ok(()),
            Origin::File(path) => write!(f, " (in {})", path.display()),
            Origin::Env(var) => write!(f, " (from environment variable {var})"),
            Origin::Flag(flag) => write!(f, " (from command-line flag {flag})"),
        }
    }
}

/// Why a configuration could not be loaded.
///
/// Every message names the file, or the key as `section.key`, and says what
/// is accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The configuration file is not valid INI.
    #[error("cannot parse config file {} as INI: {message}", path.display())]
    Syntax { path: PathBuf, message: String },

    /// A section that Sluice does not know.
    #[error("unknown section [{section}]{origin} (known sections: {expected})")]
    UnknownSection {
        section: String,
        origin: Origin,
        expected: String,
    },

    /// A key that its section does not have.
    #[error("unknown key {section}.{key}{origin} (keys of [{section}]: {expected})")]
    UnknownKey {
        section: String,
        key: String,
        origin: Origin,
        expected: String,
    },

    /// A key before any `[section]` header.
    #[error("key {key}{origin} is outside any section (put it under a header such as [proxy])")]
    OutsideSection { key: String, origin: Origin },

    /// A `SLUICE_` variable with `__` that is not `SLUICE_<SECTION>__<KEY>`.
    #[error("environment variable {0} is not of the form SLUICE_<SECTION>__<KEY> (e.g. SLUICE_BACKEND__ADDRESS)")]
    MalformedEnv(String),

    /// A value that does not parse or is out of range.
    #[error("invalid value for {key}{origin}: {message}")]
    InvalidValue {
        /// `section.key`
        key: String,
        origin: Origin,
        message: String,
    },

    /// Values that are each valid but contradict one another.
    #[error("{0}")]
    Inconsistent(String),

    /// Any other failure while layering the sources.
    #[error("cannot assemble configuration: {0}")]
    Layering(String),
}
