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
    out(&format!("{} is valid\n", path.display()));
    Ok(())
}
