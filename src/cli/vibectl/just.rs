//! `just ARGS`: run `kubectl ARGS` with the terminal attached; no model is called. Read-only
//! mode applies to it as to every command.

use clap::Args;

use super::kubectl;
use super::session::Ctx;
use crate::cli::CmdResult;

#[derive(Debug, Args)]
pub struct JustArgs {
    /// Arguments passed to kubectl as they are
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub args: Vec<String>,
}

pub fn run(ctx: &Ctx, args: &JustArgs) -> CmdResult {
    let (_, cfg) = ctx.load()?;
    ctx.policy(&cfg).allow(&args.args)?;
    kubectl::passthrough(&cfg, &args.args)
}
