//! `setup-proxy set-active NAME`: make a profile the active one.

use clap::Args;

use super::Ctx;
use crate::cli::{CmdError, CmdResult, out};
use crate::config::KeyPath;
use crate::config::generated::client::key;

#[derive(Debug, Args)]
pub struct SetActiveArgs {
    pub name: String,
}

pub fn run(ctx: &Ctx, args: &SetActiveArgs) -> CmdResult {
    let (loaded, cfg) = ctx.load()?;
    if !cfg.proxy.profiles.contains_key(&args.name) {
        let known: Vec<&str> = cfg.proxy.profiles.keys().map(String::as_str).collect();
        return Err(
            CmdError::new(format!("there is no proxy profile `{}`", args.name)).with_hint(format!(
                "known profiles: {}",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )),
        );
    }
    ctx.edit(
        &loaded,
        &[(
            KeyPath::template(key::PROXY_ACTIVE),
            Some(args.name.clone()),
        )],
    )?;
    out(&format!("active profile: {}\n", args.name));
    Ok(())
}
