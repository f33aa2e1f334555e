//! `config set KEY VALUE`: parse by the key's type, validate the whole file, write atomically.

use clap::Args;

use super::{Ctx, KeyArg};
use crate::cli::{CmdResult, complete, out};
use crate::config::{render, secret::REDACTED};

#[derive(Debug, Args)]
pub struct SetArgs {
    #[command(flatten)]
    pub key: KeyArg,
    /// The value: bools as true/false/yes/no/on/off/1/0, lists as `[a, b]` or `a,b`, null to clear
    #[arg(add = complete::value_completer(), allow_hyphen_values = true)]
    pub value: String,
}

pub fn run(ctx: &Ctx<'_>, args: &SetArgs) -> CmdResult {
    let spec = ctx.engine.leaf(&args.key.key)?;
    let key = &ctx.current_name(&args.key.key);
    let loaded = ctx.load()?;
    let (text, value) = ctx.engine.set(&loaded, key, &args.value)?;
    ctx.engine.write(&loaded, &text)?;
    let shown = if spec.sensitive {
        REDACTED.to_owned()
    } else {
        render::compact(&ctx.engine.redact(&value, key))
    };
    out(&format!("set {key} = {shown}\n"));
    Ok(())
}
