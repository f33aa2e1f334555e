//! `setup-proxy remove NAME`: delete a profile (and the token file configure wrote for it).

use clap::Args;

use super::Ctx;
use crate::cli::{CmdError, CmdResult, out};
use crate::config::KeyPath;
use crate::config::generated::client::{key, section};

#[derive(Debug, Args)]
pub struct RemoveArgs {
    pub name: String,
}

pub fn run(ctx: &Ctx, args: &RemoveArgs) -> CmdResult {
    let (loaded, cfg) = ctx.load()?;
    let Some(profile) = cfg.proxy.profiles.get(&args.name) else {
        return Err(CmdError::new(format!(
            "there is no proxy profile `{}`",
            args.name
        )));
    };
    let mut edits = vec![(
        KeyPath::fill(section::PROXY_PROFILES_PROFILE, &[&args.name]),
        None,
    )];
    if cfg.proxy.active.as_deref() == Some(args.name.as_str()) {
        edits.push((KeyPath::template(key::PROXY_ACTIVE), None));
    }
    ctx.edit(&loaded, &edits)?;
    let ours = ctx.file.parent().map(|d| d.join("tokens"));
    if let (Some(jwt), Some(dir)) = (&profile.jwt_path, ours)
        && jwt.starts_with(&dir)
    {
        let _ = std::fs::remove_file(jwt);
    }
    out(&format!("removed profile {}\n", args.name));
    Ok(())
}
