//! `ca check-expiry [--days N]`: fail when a certificate expires within N days.

use std::path::Path;

use clap::Args;

use crate::cli::{CmdError, CmdResult, out};
use crate::server::ca;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Warn about certificates that expire within this many days
    #[arg(long, default_value_t = 30)]
    pub days: i64,
}

pub fn run(dir: &Path, args: &CheckArgs) -> CmdResult {
    let certs = ca::certificates(dir)?;
    let soon: Vec<_> = certs.iter().filter(|c| c.days_left() < args.days).collect();
    if soon.is_empty() {
        out(&format!(
            "all {} certificates are valid for at least {} more days\n",
            certs.len(),
            args.days
        ));
        return Ok(());
    }
    let list: Vec<String> = soon
        .iter()
        .map(|c| {
            format!(
                "  {} ({}) expires in {} days",
                c.path.display(),
                c.subject,
                c.days_left()
            )
        })
        .collect();
    Err(CmdError::new(format!(
        "{} certificate(s) expire within {} days:\n{}",
        soon.len(),
        args.days,
        list.join("\n")
    ))
    .with_hint("issue new ones with `vibectl-server ca create-server-cert HOSTNAME --force`"))
}
