use std::path::PathBuf;

use clap::Parser;

/// Sluice: a MySQL/MariaDB proxy that coalesces concurrent single-row
/// INSERTs into multi-row INSERTs and relays everything else unchanged.
#[derive(Debug, Parser)]
#[command(name = "sluice", version)]
pub struct Cli {
    /// Configuration file (INI). Without it, built-in defaults apply.
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        env = "SLUICE_CONFIG"
    )]
    pub config: Option<PathBuf>,

    /// Address to accept clients on (overrides [proxy] listen).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,

    /// MariaDB server address (overrides [backend] address).
    #[arg(long, value_name = "ADDR")]
    pub backend: Option<String>,

    /// Validate the configuration and exit.
    #[arg(long)]
    pub check_config: bool,
}

impl Cli {
    pub fn overrides(&self) -> sluice_config::Overrides {
        sluice_config::Overrides {
            listen: self.listen.clone(),
            backend: self.backend.clone(),
        }
    }
}
