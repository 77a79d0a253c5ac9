//! Typed, validated configuration for Sluice.
//!
//! Sources, lowest precedence first: built-in defaults, an INI file,
//! `SLUICE_<SECTION>__<KEY>` environment variables, command-line flags
//! ([`Overrides`]). [`load`] layers them with the `config` crate, rejects
//! unknown sections and keys, and validates every value into a [`Config`];
//! every error names the key as `section.key`.
//!
//! Every key is documented once, in [`KEYS`]; `docs/configuration.md` and
//! `config/sluice.ini` are rendered from it ([`render_markdown`],
//! [`render_ini`]) and tests keep them in step.
//!
//! This crate does no I/O besides reading the file and has no runtime
//! dependencies.

mod error;
mod keys;
mod load;
mod parse;
mod types;

#[cfg(test)]
mod tests;

pub use error::{ConfigError, Origin};
pub use keys::{key_doc, reloadable_keys, render_ini, render_markdown, KeyDoc, KEYS, SECTIONS};
pub use load::{load, load_from_env_iter, Overrides};
pub use types::{
    BackendConfig, BackendTlsMode, BatchMode, ClusterMode, Config, LogConfig, LogFormat,
    MetricsConfig, ProxyConfig, Secret, WriteBatchConfig,
};
