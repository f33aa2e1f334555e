//! The kubectl verbs that run kubectl and summarize the output with the model (`get`,
//! `describe`, `create`, `delete`, `scale`, `wait`, `diff`, `cluster-info`, `rollout SUB`, ...).
//! `VERB vibe "<request>"` plans the arguments instead, and carries the plan out like `vibe`.

use clap::Args;

use super::kubectl;
use super::plan;
use super::safety::Class;
use super::session::{Ctx, Session};
use crate::cli::vibectl::setup_proxy::block_on;
use crate::cli::{CmdError, CmdResult, out};
use crate::prompts;

#[derive(Debug, Args)]
pub struct KubeArgs {
    /// Arguments passed to kubectl after the verb (or `vibe "<request>"` to plan them).
    /// Everything after the verb goes to kubectl: put vibectl's own flags before the verb
    #[arg(allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Verbs whose typed form is confirmed too (as 0.11.6 confirms `rollout undo`).
const CONFIRM_TYPED: &[&str] = &["rollout undo"];

/// `kubectl VERB ARGS` (VERB may be two words: `rollout status`), summarized; or, when ARGS
/// start with `vibe`, the command planned from the request that follows.
pub fn run(ctx: &Ctx, verb: &str, args: &KubeArgs) -> CmdResult {
    block_on(async {
        let mut session = Session::open(ctx)?;
        if args.args.first().map(String::as_str) == Some("vibe") {
            return planned(&mut session, verb, &args.args[1..]).await;
        }
        let mut full: Vec<String> = verb.split_whitespace().map(str::to_owned).collect();
        full.extend(args.args.iter().cloned());
        let line = kubectl::display(&full);
        session.policy.allow(&full)?;
        if CONFIRM_TYPED.contains(&verb) {
            let class = Class::Changes {
                verb: verb.to_owned(),
            };
            let answer = session.confirm(&line, &class)?;
            if !plan::approve(&session, &line, &answer).await? {
                return Ok(());
            }
        }
        if session.cfg.display.show_kubectl {
            out(&crate::cli::style::command_line(&line));
        }
        if kubectl::keeps_running(&full) {
            // `logs -f`, `get -w`, `wait`: show the output as it comes; summarize when it ends.
            return super::live::watch(&session, &line, &full, None, false).await;
        }
        match session.try_kubectl(&full, &full, false)? {
            Ok(output) => plan::summarize(&session, &line, &output, None, false).await,
            Err(failed) => session.recover(&line, failed, None).await,
        }
    })?
}

/// `VERB vibe REQUEST...`: plan a `kubectl VERB` command and carry it out.
pub async fn planned(session: &mut Session, verb: &str, words: &[String]) -> CmdResult {
    let (yes, request) = plan::split_request(words);
    if request.trim().is_empty() {
        return Err(CmdError::new(format!("`{verb} vibe` needs a request"))
            .with_hint(format!("vibectl {verb} vibe \"what to do\"")));
    }
    let req = prompts::verbs::plan(&request, verb, &session.context());
    let plan = plan::ask(session, req).await?;
    if yes {
        session.policy.yes = true;
    }
    plan::carry_out(session, plan, Some(&request), Some(verb)).await
}
