//! `get|describe|logs|events|explain|rollout|top ARGS`: run `kubectl VERB ARGS`, then
//! summarize the output with the model. `VERB vibe "<request>"` plans the arguments instead.

use clap::Args;

use super::kubectl;
use super::session::{Ctx, Session};
use super::vibe;
use crate::cli::vibectl::setup_proxy::block_on;
use crate::cli::{CmdError, CmdResult, out, warn};
use crate::config::generated::client::key;
use crate::prompts;

#[derive(Debug, Args)]
pub struct KubeArgs {
    /// Arguments passed to kubectl after the verb (or `vibe "<request>"` to plan them).
    /// Everything after the verb goes to kubectl: put vibectl's own flags before the verb
    #[arg(allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn run(ctx: &Ctx, verb: &str, args: &KubeArgs) -> CmdResult {
    block_on(async {
        let mut session = Session::open(ctx)?;
        if args.args.first().map(String::as_str) == Some("vibe") {
            // Flags end up among the trailing words (`get vibe "..." --yes`); take --yes back.
            let (flags, words): (Vec<&String>, Vec<&String>) = args.args[1..]
                .iter()
                .partition(|w| matches!(w.as_str(), "--yes" | "-y"));
            let request = words
                .iter()
                .map(|w| w.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            if request.trim().is_empty() {
                return Err(CmdError::new(format!("`{verb} vibe` needs a request"))
                    .with_hint(format!("vibectl {verb} vibe \"what to look at\"")));
            }
            let req = prompts::plan(&request, Some(verb), &session.context());
            let plan = vibe::plan(&session, req).await?;
            if !flags.is_empty() {
                session.policy.yes = true;
            }
            return vibe::carry_out(&session, plan, Some(&request), Some(verb)).await;
        }
        let mut full = vec![verb.to_owned()];
        full.extend(args.args.iter().cloned());
        let line = kubectl::display(&full);
        session.policy.allow(&full)?;
        if session.cfg.display.show_kubectl {
            out(&crate::cli::style::command_line(&line));
        }
        if kubectl::is_streaming(&full) {
            // `logs -f`, `get -w`: show the output as it comes; summarize when it ends.
            let tail = session.follow_kubectl(&full, &full, false).await?;
            return summarize(&session, &line, &tail, None, true).await;
        }
        match session.try_kubectl(&full, &full, false)? {
            Ok(output) => summarize(&session, &line, &output, None, false).await,
            Err(failed) => session.recover(&line, failed, None).await,
        }
    })?
}

/// Print the raw output and/or the model's summary of it, per `display.*`; then update the
/// memory and print the total metrics. `shown` says the output was already printed live.
pub async fn summarize(
    session: &Session,
    line: &str,
    output: &str,
    request: Option<&str>,
    shown: bool,
) -> CmdResult {
    let d = &session.cfg.display;
    if d.show_raw_output && !shown {
        super::session::print_answer(output);
    }
    let summary = if d.show_vibe {
        let req = prompts::summary(line, output, request, &session.context());
        match session.show("summary", req).await {
            Ok(s) => Some(s),
            Err(e) => {
                // kubectl did its part: its output is still shown, as 0.11.6 shows it.
                if !d.show_raw_output && !shown {
                    super::session::print_answer(output);
                }
                warn("the model could not summarize the output; it is shown as kubectl printed it");
                session.finish();
                return Err(e);
            }
        }
    } else {
        if !d.show_raw_output && !shown && session.cfg.warnings.warn_no_output {
            warn(&format!(
                "neither the raw output nor the summary is shown ({} and {} are off)",
                key::DISPLAY_SHOW_RAW_OUTPUT,
                key::DISPLAY_SHOW_VIBE
            ));
        }
        None
    };
    let mut news = String::new();
    if let Some(r) = request {
        news.push_str(&format!("The user asked: {r}\n"));
    }
    news.push_str(&format!("Ran: {line}\n"));
    match &summary {
        Some(s) => news.push_str(&format!("Result: {}", s.trim())),
        None => news.push_str(&format!("Output:\n{}", output.trim())),
    }
    session.remember(&news).await;
    session.finish();
    Ok(())
}
