//! `semiauto [REQUEST]`: the loop of `auto`, with the user confirming every step (yes, no,
//! yes and remember, no but remember, show the memory, or exit the session).

use super::auto::{self, SemiautoArgs};
use super::session::Ctx;
use crate::cli::CmdResult;

pub fn run(ctx: &Ctx, args: &SemiautoArgs) -> CmdResult {
    auto::run_loop(ctx, &args.request.join(" "), args.limit, 0, true)
}
