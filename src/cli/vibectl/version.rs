//! `version [ARGS]`: the client's version, the server's when a proxy is active, then
//! `kubectl version ARGS` summarized.

use super::kube::KubeArgs;
use super::kubectl;
use super::plan;
use super::session::{Ctx, Session};
use crate::cli::vibectl::setup_proxy::block_on;
use crate::cli::{CmdResult, out};
use crate::llm::choose::Mode;

pub fn run(ctx: &Ctx, args: &KubeArgs) -> CmdResult {
    block_on(async {
        let session = Session::open(ctx)?;
        out(&format!("vibectl {}\n", env!("CARGO_PKG_VERSION")));
        if let Mode::Proxy { profile } = &session.mode
            && let Some(info) = session.adapter().server_info().await?
        {
            let name = if info.name.is_empty() {
                "vibectl-server"
            } else {
                &info.name
            };
            out(&format!(
                "server: {name} {} (proxy profile {profile})\n",
                info.version
            ));
        }
        let mut full = vec!["version".to_owned()];
        full.extend(args.args.iter().cloned());
        let line = kubectl::display(&full);
        if session.cfg.display.show_kubectl {
            out(&crate::cli::style::command_line(&line));
        }
        match session.try_kubectl(&full, &full, false)? {
            Ok(output) => plan::summarize(&session, &line, &output, None, false).await,
            Err(failed) => session.recover(&line, failed, None).await,
        }
    })?
}
