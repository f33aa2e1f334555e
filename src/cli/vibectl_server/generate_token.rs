//! `generate-token SUBJECT`: mint a JWT signed with the server's secret.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::cli::{CmdError, CmdResult, out, process_env};
use crate::config::{SERVER, ServerConfig, store};
use crate::server::auth;

#[derive(Debug, Args)]
pub struct GenerateTokenArgs {
    /// Who the token is for (its `sub` claim; limits and usage are kept per subject)
    pub subject: String,
    /// Lifetime: 30d, 12h, 2w, 6m (180 days), 1y (365 days), or a number of days (default: jwt.expiration_days)
    #[arg(long, value_name = "DURATION")]
    pub expires_in: Option<String>,
    /// Write the token to FILE (0600) instead of printing it
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(file: &Path, args: &GenerateTokenArgs) -> CmdResult {
    if args.subject.trim().is_empty() || args.subject.chars().any(char::is_whitespace) {
        return Err(CmdError::new(format!(
            "the subject {:?} must be non-empty and have no spaces",
            args.subject
        )));
    }
    let loaded = SERVER.load(file)?;
    SERVER.validate(&loaded)?;
    let effective = SERVER.effective(&loaded, &process_env, &[])?;
    let cfg: ServerConfig = SERVER.typed(&effective)?;
    let ttl = match &args.expires_in {
        Some(text) => {
            auth::parse_duration(text).map_err(|e| CmdError::new(format!("--expires-in: {e}")))?
        }
        None => Duration::from_secs(u64::try_from(cfg.jwt.expiration_days).unwrap_or(30) * 86_400),
    };
    let dir = file.parent().unwrap_or(Path::new("."));
    let (secret, _) = auth::resolve_secret(&cfg.jwt, dir, &process_env)
        .map_err(|e| CmdError::new(e.to_string()))?;
    let token = auth::mint(&secret, &cfg.jwt.issuer, &args.subject, Some(ttl))
        .map_err(|e| CmdError::new(e.to_string()))?;
    match &args.output {
        Some(path) => {
            store::write_atomic(path, &format!("{token}\n"), true)?;
            eprintln!(
                "wrote a token for {} to {} (expires in {} days)",
                args.subject,
                path.display(),
                ttl.as_secs() / 86_400
            );
        }
        None => out(&format!("{token}\n")),
    }
    Ok(())
}
