//! `generate-certs`: quick TLS: a CA and a leaf for one host (never a self-signed leaf that is
//! its own CA, which clients refuse), under certs/ beside the config file.

use std::path::Path;

use clap::Args;

use crate::cli::{CmdResult, out};
use crate::server::ca;

#[derive(Debug, Args)]
pub struct GenerateCertsArgs {
    /// The host name clients connect to
    #[arg(long, default_value = "localhost")]
    pub hostname: String,
    /// Replace existing files
    #[arg(long)]
    pub force: bool,
}

pub fn run(config_file: &Path, args: &GenerateCertsArgs) -> CmdResult {
    let dir = config_file.parent().unwrap_or(Path::new(".")).join("certs");
    ca::init(&dir, args.force)?;
    let sans: Vec<String> = if args.hostname == "localhost" {
        vec!["127.0.0.1".into(), "::1".into()]
    } else {
        Vec::new()
    };
    let (cert, key) = ca::server_cert(&dir, &args.hostname, &sans, ca::SERVER_DAYS, true)?;
    out(&format!(
        "certificate: {}\nkey:         {}\nclients trust: {} (pass it to `vibectl setup-proxy configure ... --ca-bundle`)\n",
        cert.display(),
        key.display(),
        dir.join(ca::BUNDLE).display()
    ));
    Ok(())
}
