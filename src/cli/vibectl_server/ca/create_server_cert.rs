//! `ca create-server-cert HOSTNAME`: a serverAuth certificate with DNS and IP SANs.

use std::path::Path;

use clap::Args;

use crate::cli::{CmdResult, out};
use crate::config::generated::server::key;
use crate::server::ca;

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The host name clients connect to
    pub hostname: String,
    /// More names or IP addresses the certificate is valid for
    #[arg(long = "san", value_name = "NAME")]
    pub sans: Vec<String>,
    /// Lifetime in days
    #[arg(long, default_value_t = ca::SERVER_DAYS, value_parser = clap::value_parser!(i64).range(1..=825))]
    pub days: i64,
    /// Replace an existing certificate for this host
    #[arg(long)]
    pub force: bool,
}

pub fn run(dir: &Path, args: &CreateArgs) -> CmdResult {
    let (cert, key) = ca::server_cert(dir, &args.hostname, &args.sans, args.days, args.force)?;
    out(&format!(
        "certificate: {}\nkey:         {}\nserve with:  vibectl-server config set {} {} && vibectl-server config set {} {} && vibectl-server config set {} true\n",
        cert.display(),
        key.display(),
        key::TLS_CERT_FILE,
        cert.display(),
        key::TLS_KEY_FILE,
        key.display(),
        key::TLS_ENABLED
    ));
    Ok(())
}
