//! `config get KEY`: one effective value, raw, for scripts.

use clap::Args;

use super::{Ctx, KeyArg};
use crate::cli::{CmdError, CmdResult, out};
use crate::config::{document, value};

#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub key: KeyArg,
    /// Print a secret instead of **REDACTED**
    #[arg(long)]
    pub show_secrets: bool,
}

pub fn run(ctx: &Ctx<'_>, args: &GetArgs) -> CmdResult {
    ctx.engine.resolve(&args.key.key)?;
    let key = &ctx.current_name(&args.key.key);
    let loaded = ctx.load()?;
    ctx.engine.validate(&loaded)?;
    let effective = ctx.engine.effective(&loaded, ctx.env, &ctx.overrides)?;
    let v =
        document::get(&effective, key).ok_or_else(|| CmdError::new(format!("{key} is not set")))?;
    let v = if args.show_secrets {
        v.clone()
    } else {
        ctx.engine.redact(v, key)
    };
    out(&format!("{}\n", value::display(&v)));
    Ok(())
}
