//! `ca init|create-server-cert|status|check-expiry`: a private CA for the server's TLS.

mod check_expiry;
mod create_server_cert;
mod init;
mod status;

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::cli::{CmdError, CmdResult};
use crate::server::ca::CaError;

#[derive(Debug, Args)]
pub struct CaArgs {
    /// The CA directory (default: ca/ beside the server config file)
    #[arg(long, global = true, value_name = "DIR")]
    pub ca_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: CaCommand,
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create a root and an intermediate CA, and ca-bundle.crt for clients
    ///
    /// Example: `vibectl-server ca init`
    Init(init::InitArgs),
    /// Issue a server certificate signed by the intermediate
    ///
    /// Example: `vibectl-server ca create-server-cert llm.example.com --san 10.0.0.5`
    CreateServerCert(create_server_cert::CreateArgs),
    /// List the CA's certificates and when they expire
    Status,
    /// Exit non-zero when a certificate expires within N days
    ///
    /// Example: `vibectl-server ca check-expiry --days 30`
    CheckExpiry(check_expiry::CheckArgs),
}

impl From<CaError> for CmdError {
    fn from(e: CaError) -> CmdError {
        let hint = match &e {
            CaError::Exists { .. } => Some("pass --force to overwrite it"),
            CaError::NoCa { .. } => Some("create one with `vibectl-server ca init`"),
            CaError::BadName(_) => Some("use a host name like llm.example.com or an IP address"),
            _ => None,
        };
        let err = CmdError::new(e.to_string());
        match hint {
            Some(h) => err.with_hint(h),
            None => err,
        }
    }
}

/// The CA directory: `--ca-dir`, else `ca/` beside the config file.
pub fn ca_dir(config_file: &Path, args: &CaArgs) -> PathBuf {
    args.ca_dir
        .clone()
        .unwrap_or_else(|| config_file.parent().unwrap_or(Path::new(".")).join("ca"))
}

pub fn run(config_file: &Path, args: &CaArgs) -> CmdResult {
    let dir = ca_dir(config_file, args);
    match &args.command {
        CaCommand::Init(a) => init::run(&dir, a),
        CaCommand::CreateServerCert(a) => create_server_cert::run(&dir, a),
        CaCommand::Status => status::run(&dir),
        CaCommand::CheckExpiry(a) => check_expiry::run(&dir, a),
    }
}
