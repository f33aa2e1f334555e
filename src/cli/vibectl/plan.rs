//! What the commands that plan with the model share, in one leaf module that both `vibe` and
//! the kubectl verbs use: asking for a plan (one corrective retry), refusing plans vibectl
//! must not run (another program, shell syntax, another context or cluster), carrying a plan
//! out (read-only mode, confirmation, the run) and summarizing what kubectl printed.

use super::kubectl;
use super::safety;
use super::session::{Answer, Session};
use crate::cli::{CmdError, CmdResult, out, warn};
use crate::config::generated::client::key;
use crate::llm::adapter::LlmRequest;
use crate::prompts::{self, Plan};

/// kubectl flags that point a command at another cluster, context or identity than the
/// current context of the kubeconfig vibectl uses.
const ELSEWHERE_FLAGS: &[&str] = &[
    "--context",
    "--kubeconfig",
    "--cluster",
    "--server",
    "-s",
    "--user",
    "--token",
    "--as",
    "--as-group",
    "--as-uid",
];

/// Ask for a plan; an answer that is not a valid plan gets one corrective retry, then fails.
pub async fn ask(session: &Session, req: LlmRequest) -> Result<Plan, CmdError> {
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

/// Why vibectl will not run the planned `args` (kubectl arguments), if it will not: a first
/// word that is not a kubectl verb (another program), shell syntax (vibectl never runs a
/// shell, so it would reach kubectl as text), or a flag that targets another context.
pub fn refusal(args: &[String]) -> Option<String> {
    for a in args {
        let shell = [";", "|", "&&", "`", "$("]
            .iter()
            .find(|m| a.contains(**m))
            .map(|m| m.to_string())
            .or_else(|| {
                ["<", ">", "&"]
                    .iter()
                    .find(|m| a.starts_with(**m))
                    .map(|m| m.to_string())
            });
        if let Some(m) = shell {
            return Some(format!(
                "the argument `{a}` has shell syntax (`{m}`); vibectl runs kubectl without a shell"
            ));
        }
        let name = a.split('=').next().unwrap_or(a);
        if ELSEWHERE_FLAGS.contains(&name) {
            return Some(format!(
                "`{name}` points the command at another context, cluster or user; planned commands run only against the current context"
            ));
        }
    }
    match safety::verb(args) {
        Some(v) if !safety::is_kubectl_verb(v) => Some(format!(
            "`{v}` is not a kubectl command; vibectl only runs kubectl"
        )),
        _ => None,
    }
}

/// Show the plan, refuse what must not run, check it against read-only mode, confirm when the
/// policy asks for it, run it and summarize. With `verb`, the command must use that verb (it
/// is put first when the model left it out).
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
        let why = crate::cli::markup::for_stdout(plan.explanation.trim());
        out(&format!("  {why}\n"));
    }
    if let Some(why) = refusal(&plan.commands) {
        session.guard.audit_run(&line, true, false, None)?;
        return Err(
            CmdError::new(format!("not running the planned command: {why}"))
                .with_hint("rephrase the request, or run the command yourself with `vibectl just`"),
        );
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
    if !approve(session, &line, &session.confirm(&line, &class)?).await? {
        return Ok(());
    }
    // Commands that keep running get the live display (and port-forward its relay).
    if real.first().map(String::as_str) == Some("port-forward") {
        return super::port_forward::forward(session, &line, &real, request, true).await;
    }
    if kubectl::keeps_running(&real) {
        return super::live::watch(session, &line, &real, request, true).await;
    }
    match session.try_kubectl(&plan.commands, &real, true)? {
        Ok(output) => summarize(session, &line, &output, request, false).await,
        Err(failed) => {
            let why = Some(plan.explanation.as_str()).filter(|e| !e.trim().is_empty());
            session.recover(&line, failed, why).await
        }
    }
}

/// Act on the user's answer about `line`: a note is remembered, a no is audited and printed.
/// Whether to go on.
pub async fn approve(session: &Session, line: &str, answer: &Answer) -> Result<bool, CmdError> {
    if !answer.approved() {
        session.guard.audit_run(line, true, false, None)?;
    }
    match answer {
        Answer::Yes => Ok(true),
        Answer::YesAnd(note) => {
            session
                .remember(&format!("The user approved `{line}` and said: {note}"))
                .await;
            Ok(true)
        }
        Answer::No | Answer::Exit => {
            eprintln!("cancelled: nothing was run");
            Ok(false)
        }
        Answer::NoBut(why) => {
            eprintln!("cancelled: nothing was run");
            session
                .remember(&format!("The user declined `{line}` because: {why}"))
                .await;
            Ok(false)
        }
    }
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
        let words: Vec<String> = line.split_whitespace().skip(1).map(str::to_owned).collect();
        let verb = safety::verb(&words);
        let req = prompts::verbs::summary(line, verb, output, request, &session.context());
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

/// `--yes` taken back from the trailing words of `VERB vibe ...` (where flags end up, as in
/// `get vibe "..." --yes`), and the request the other words make.
pub fn split_request(words: &[String]) -> (bool, String) {
    let (flags, words): (Vec<&String>, Vec<&String>) = words
        .iter()
        .partition(|w| matches!(w.as_str(), "--yes" | "-y"));
    let request = words
        .iter()
        .map(|w| w.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    (!flags.is_empty(), request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn other_programs_shell_syntax_and_other_contexts_are_refused() {
        assert!(refusal(&words("get pods -n shop")).is_none());
        assert!(refusal(&words("get pods -l app!=web")).is_none());
        let r = refusal(&words("helm install x")).expect("refused");
        assert!(r.contains("`helm` is not a kubectl command"), "{r}");
        let r = refusal(&words("get pods ; rm -rf /")).expect("refused");
        assert!(r.contains("shell syntax"), "{r}");
        assert!(refusal(&words("get pods >out.txt")).is_some());
        assert!(refusal(&words("get pods $(whoami)")).is_some());
        let r = refusal(&words("--context prod delete pod x")).expect("refused");
        assert!(r.contains("`--context`"), "{r}");
        assert!(refusal(&words("get pods --kubeconfig=/tmp/other")).is_some());
    }
}
