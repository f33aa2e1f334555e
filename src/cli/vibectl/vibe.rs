//! `vibe [REQUEST]`: plan a kubectl command with the model (a JSON answer following
//! [`prompts::plan_schema`]), show it, confirm unless `--yes`, run it, summarize the output.
//! With no REQUEST the plan continues from the memory.

use clap::Args;

use super::kubectl;
use super::session::{Answer, Ctx, Session};
use crate::cli::vibectl::setup_proxy::block_on;
use crate::cli::{CmdError, CmdResult, out};
use crate::llm::adapter::LlmRequest;
use crate::prompts::{self, Plan};

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
        let plan = plan(&session, req).await?;
        let request = Some(request.as_str()).filter(|r| !r.trim().is_empty());
        carry_out(&session, plan, request, None).await
    })?
}

/// Ask for a plan; an answer that is not a valid plan gets one corrective retry, then fails.
pub async fn plan(session: &Session, req: LlmRequest) -> Result<Plan, CmdError> {
    let answer = session.ask("plan", req.clone()).await?;
    let problem = match prompts::parse_plan(&answer) {
        Ok(p) => return Ok(p),
        Err(problem) => problem,
    };
    tracing::debug!(%problem, "the plan was not valid; asking again");
    let retry = prompts::plan_retry(&req, &answer, &problem);
    let answer = session.ask("plan (retry)", retry).await?;
    prompts::parse_plan(&answer).map_err(|problem| {
        CmdError::new(format!(
            "the model did not answer with a valid plan, even after a retry: {problem}"
        ))
        .with_hint("try again, rephrase the request, or pick another model with --model")
    })
}

/// Show the plan, check it against read-only mode, confirm when the policy asks for it, run it
/// and summarize. With `verb`, the command must use that verb (it is put first when the model
/// left it out).
pub async fn carry_out(
    session: &Session,
    mut plan: Plan,
    request: Option<&str>,
    verb: Option<&str>,
) -> CmdResult {
    if plan.commands.is_empty() {
        out(&format!(
            "No kubectl command fits: {}\n",
            plan.explanation.trim()
        ));
        return Ok(());
    }
    if let Some(v) = verb
        && plan.commands.first().map(String::as_str) != Some(v)
    {
        plan.commands.insert(0, v.to_owned());
    }
    let line = kubectl::display(&plan.commands);
    out(&crate::cli::style::command_line(&line));
    if !plan.explanation.trim().is_empty() {
        out(&format!("  {}\n", plan.explanation.trim()));
    }
    // The model sees placeholders; kubectl gets the values (never shown or logged).
    let real = session.guard.restore(&plan.commands)?;
    let class = match session.policy.allow(&real) {
        Ok(class) => class,
        Err(e) => {
            session.guard.audit_run(&line, true, false, None)?;
            return Err(e);
        }
    };
    let answer = session.confirm(&line, &class)?;
    if !answer.approved() {
        session.guard.audit_run(&line, true, false, None)?;
    }
    match answer {
        Answer::Yes => {}
        Answer::YesAnd(note) => {
            session
                .remember(&format!("The user approved `{line}` and said: {note}"))
                .await;
        }
        Answer::No | Answer::Exit => {
            eprintln!("cancelled: nothing was run");
            return Ok(());
        }
        Answer::NoBut(why) => {
            eprintln!("cancelled: nothing was run");
            session
                .remember(&format!("The user declined `{line}` because: {why}"))
                .await;
            return Ok(());
        }
    }
    let output = session.run_kubectl(&plan.commands, &real, true)?;
    super::kube::summarize(session, &line, &output, request, false).await
}
