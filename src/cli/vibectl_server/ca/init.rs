//! `ca init`: a root and an intermediate CA (keys 0600) and the client bundle.

use std::path::Path;

use clap::Args;

use crate::cli::{CmdResult, out};
use crate::server::ca;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Replace an existing CA
    #[arg(long)]
    pub force: bool,
}

pub fn run(dir: &Path, args: &InitArgs) -> CmdResult {
    ca::init(dir, args.force)?;
    out(&format!(
        "created a CA in {}\nclients trust {}\nnext: vibectl-server ca create-server-cert HOSTNAME\n",
        dir.display(),
        dir.join(ca::BUNDLE).display()
    ));
    Ok(())
}
