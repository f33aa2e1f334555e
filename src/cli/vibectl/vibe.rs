//! `vibe [REQUEST]`: plan a kubectl command with the model (a JSON answer following
//! [`prompts::plan_schema`]), show it, confirm unless `--yes`, run it, summarize the output.
//! With no REQUEST the plan continues from the memory.

use clap::Args;

use super::plan;
use super::session::{Ctx, Session};
use crate::cli::vibectl::setup_proxy::block_on;
use crate::cli::{CmdError, CmdResult};
use crate::prompts;

#[derive(Debug, Args)]
pub struct VibeArgs {
    /// What to do, in plain words (none: continue from the memory)
    pub request: Vec<String>,
}

pub fn run(ctx: &Ctx, args: &VibeArgs) -> CmdResult {
    let request = args.request.join(" ");
    block_on(async {
        let session = Session::open(ctx)?;
        let pctx = session.context();
        let req = if request.trim().is_empty() {
            if pctx.memory.is_none() {
                return Err(
                    CmdError::new("no request given and no memory to continue from").with_hint(
                        "say what to do: vibectl vibe \"show the pods that keep restarting\"",
                    ),
                );
            }
            prompts::plan_from_memory(&pctx)
        } else {
            prompts::plan(&request, None, &pctx)
        };
        let plan = plan::ask(&session, req).await?;
        let request = Some(request.as_str()).filter(|r| !r.trim().is_empty());
        plan::carry_out(&session, plan, request, None).await
    })?
}
