//! `setup-proxy list`: the profiles, the active one marked.

use super::Ctx;
use crate::cli::{CmdResult, out};
use crate::config::engine::redact_url;

pub fn run(ctx: &Ctx) -> CmdResult {
    let (_, cfg) = ctx.load()?;
    if cfg.proxy.profiles.is_empty() {
        out("no profiles; add one with `vibectl setup-proxy configure NAME URL`\n");
        return Ok(());
    }
    let mut text = String::new();
    for (name, p) in &cfg.proxy.profiles {
        let mark = if cfg.proxy.active.as_deref() == Some(name) {
            "*"
        } else {
            " "
        };
        let url = p
            .server_url
            .as_deref()
            .map(redact_url)
            .unwrap_or_else(|| "(no URL)".into());
        text.push_str(&format!("{mark} {name}  {url}\n"));
    }
    out(&text);
    Ok(())
}
