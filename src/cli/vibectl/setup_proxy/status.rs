//! `setup-proxy status`: the proxy settings in effect, tokens redacted.

use super::Ctx;
use crate::cli::{CmdResult, out, process_env};
use crate::llm::select::{self, Overrides};

pub fn run(ctx: &Ctx) -> CmdResult {
    let (_, cfg) = ctx.load()?;
    let Some(name) = cfg.proxy.active.clone() else {
        out("proxy: disabled (models are called directly)\n");
        return Ok(());
    };
    let mut text = format!("proxy:    enabled\nprofile:  {name}\n");
    match select::profile_settings(&cfg, &name, &Overrides::default(), &process_env) {
        Ok((s, source)) => {
            text.push_str(&format!("url:      {}\n", s.url));
            text.push_str(&format!(
                "timeout:  {} s\nretries:  {}\n",
                s.timeout.as_secs(),
                s.retry_attempts
            ));
            let ca = s
                .ca_bundle
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "system trust store".into());
            if let Some(id) = &s.client_identity {
                text.push_str(&format!("cert:     {}\n", id.cert.display()));
            }
            text.push_str(&format!(
                "ca:       {}\ntoken:    {source}\n",
                if s.url.tls {
                    ca.as_str()
                } else {
                    "(plaintext)"
                }
            ));
        }
        Err(e) => text.push_str(&format!("problem:  {e}\n")),
    }
    out(&text);
    Ok(())
}
