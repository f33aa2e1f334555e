//! `config unset KEY`: remove a key from the file so its default applies again.

use clap::Args;

use super::{Ctx, KeyArg};
use crate::cli::{CmdResult, out};

#[derive(Debug, Args)]
pub struct UnsetArgs {
    #[command(flatten)]
    pub key: KeyArg,
}

pub fn run(ctx: &Ctx<'_>, args: &UnsetArgs) -> CmdResult {
    ctx.engine.resolve(&args.key.key)?;
    let key = &ctx.current_name(&args.key.key);
    let loaded = ctx.load()?;
    let text = ctx.engine.unset(&loaded, key)?;
    ctx.engine.write(&loaded, &text)?;
    out(&format!("unset {key}\n"));
    Ok(())
}
