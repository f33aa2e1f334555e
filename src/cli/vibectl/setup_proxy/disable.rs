//! `setup-proxy disable`: clear proxy.active so models are called directly.

use super::Ctx;
use crate::cli::{CmdResult, out};
use crate::config::KeyPath;
use crate::config::generated::client::key;

pub fn run(ctx: &Ctx) -> CmdResult {
    let (loaded, _) = ctx.load()?;
    ctx.edit(&loaded, &[(KeyPath::template(key::PROXY_ACTIVE), None)])?;
    out("proxy disabled; models are called directly\n");
    Ok(())
}
