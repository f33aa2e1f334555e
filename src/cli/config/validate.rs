//! `config validate [FILE]`: every problem of a config file, with its key and line.

use std::path::PathBuf;

use clap::Args;

use super::Ctx;
use crate::cli::{CmdResult, out};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The file to check; the config file when left out
    pub file: Option<PathBuf>,
}

pub fn run(ctx: &Ctx<'_>, args: &ValidateArgs) -> CmdResult {
    let path = args.file.clone().unwrap_or_else(|| ctx.file.clone());
    let loaded = ctx.engine.load(&path)?;
    if loaded.text.is_none() && args.file.is_some() {
        return Err(crate::cli::CmdError::new(format!(
            "{} does not exist",
            path.display()
        )));
    }
    ctx.engine.validate(&loaded)?;
    if std::ptr::eq(ctx.engine, &crate::config::SERVER) {
        server_checks(&loaded)?;
    }
    out(&format!("{} is valid\n", path.display()));
    Ok(())
}

/// The checks across keys that `serve` and a reload also make (the routing of models over
/// deployments and fallbacks), each problem with its key and line.
fn server_checks(loaded: &crate::config::Loaded) -> CmdResult {
    let cfg: crate::config::ServerConfig = crate::config::SERVER.typed(&loaded.file)?;
    let text = loaded.text.as_deref().unwrap_or_default();
    let problems: Vec<crate::config::Problem> = crate::server::routing::check(&cfg)
        .into_iter()
        .map(|(key, message)| crate::config::Problem {
            line: crate::config::KeyPath::parse(&key)
                .ok()
                .and_then(|p| crate::config::document::line_of(text, &p)),
            key,
            message,
        })
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(crate::config::ConfigError::Invalid {
        file: loaded.path.clone(),
        problems,
    }
    .into())
}
