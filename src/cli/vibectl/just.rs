//! `just ARGS`: run `kubectl ARGS` with the terminal attached; no model is called. Read-only
//! mode and the audit log apply to it as to every command.

use clap::Args;

use super::guard::Guard;
use super::kubectl;
use super::session::Ctx;
use crate::cli::CmdResult;
use crate::llm::choose;

#[derive(Debug, Args)]
pub struct JustArgs {
    /// Arguments passed to kubectl as they are
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub args: Vec<String>,
}

pub fn run(ctx: &Ctx, args: &JustArgs) -> CmdResult {
    let (_, cfg) = ctx.load()?;
    let guard = Guard::open(&cfg, &choose::mode(&cfg), &ctx.file, ctx.dir_flag)?;
    let line = kubectl::display(&args.args);
    if let Err(e) = ctx.policy(&cfg).allow(&args.args) {
        guard.audit_run(&line, false, false, None)?;
        return Err(e);
    }
    let status = kubectl::passthrough(&cfg, &args.args)?;
    guard.audit_run(&line, false, true, status.code())?;
    if status.success() {
        Ok(())
    } else {
        Err(kubectl::failed(&args.args, status))
    }
}
