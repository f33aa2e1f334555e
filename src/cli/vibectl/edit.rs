//! `edit ARGS`: `kubectl edit ARGS` with the terminal attached (the user's editor).
//! `edit vibe "CHANGE"` (with `features.intelligent_edit`): the model names the resource, reads
//! it live and writes a JSON merge patch; the server's dry run of the patch shows the
//! difference, the user confirms, the patch is applied and the result summarized.

use super::kube::{self, KubeArgs};
use super::kubectl;
use super::plan;
use super::session::{Ctx, Session};
use crate::cli::vibectl::setup_proxy::block_on;
use crate::cli::{CmdError, CmdResult, out};
use crate::prompts;

/// Most lines of each side that the difference is computed for.
const MAX_DIFF_LINES: usize = 1_500;

pub fn run(ctx: &Ctx, args: &KubeArgs) -> CmdResult {
    if args.args.first().map(String::as_str) != Some("vibe") {
        return typed(ctx, args);
    }
    block_on(async {
        let mut session = Session::open(ctx)?;
        if !session.cfg.features.intelligent_edit {
            return kube::planned(&mut session, "edit", &args.args[1..]).await;
        }
        let (yes, request) = super::plan::split_request(&args.args[1..]);
        if request.trim().is_empty() {
            return Err(CmdError::new("`edit vibe` needs a change to make")
                .with_hint("vibectl edit vibe \"give the web deployment 3 replicas\""));
        }
        session.policy.yes |= yes;
        intelligent(&session, &request).await
    })?
}

/// `kubectl edit ARGS` in the user's editor, under read-only mode and the audit log.
fn typed(ctx: &Ctx, args: &KubeArgs) -> CmdResult {
    let (_, cfg) = ctx.load()?;
    let mut full = vec!["edit".to_owned()];
    full.extend(args.args.iter().cloned());
    let guard = super::guard::Guard::open(
        &cfg,
        &crate::llm::choose::mode(&cfg),
        &ctx.file,
        ctx.dir_flag,
    )?;
    let line = kubectl::display(&full);
    if let Err(e) = ctx.policy(&cfg).allow(&full) {
        guard.audit_run(&line, false, false, None)?;
        return Err(e);
    }
    let status = kubectl::passthrough(&cfg, &full)?;
    guard.audit_run(&line, false, true, status.code())?;
    if status.success() {
        Ok(())
    } else {
        Err(kubectl::failed(&full, status))
    }
}

async fn intelligent(session: &Session, request: &str) -> CmdResult {
    session.policy.allow(&["patch".to_owned()])?;
    let target = plan::ask(session, prompts::edit::target(request, &session.context())).await?;
    let mut resource = target.commands.clone();
    if resource.first().map(String::as_str) == Some("get") {
        resource.remove(0);
    }
    let mut get = vec!["get".to_owned()];
    get.extend(resource.iter().cloned());
    if let Some(why) = plan::refusal(&get) {
        return Err(CmdError::new(format!("not editing: {why}"))
            .with_hint("name the resource in the request: KIND NAME and its namespace"));
    }
    if resource.is_empty()
        || resource
            .iter()
            .any(|a| a == "-o" || a.starts_with("--output") || a.starts_with("-o"))
    {
        return Err(CmdError::new(format!(
            "the model did not name one resource to edit: {}",
            kubectl::display(&get)
        ))
        .with_hint("name the resource in the request: KIND NAME and its namespace"));
    }
    let real = session.guard.restore(&resource)?;
    let mut live_args = vec!["get".to_owned()];
    live_args.extend(real.iter().cloned());
    live_args.extend(["-o".to_owned(), "yaml".to_owned()]);
    let mut shown_get = get.clone();
    shown_get.extend(["-o".to_owned(), "yaml".to_owned()]);
    let live = session.run_kubectl(&shown_get, &live_args, true)?;
    let what = resource.join(" ");
    let answer = session
        .ask(
            "patch",
            prompts::edit::patch(request, &what, &live, &session.context()),
        )
        .await?;
    let patch = match prompts::edit::parse_patch(&answer) {
        Ok(p) => p,
        Err(problem) => {
            let retry = prompts::plan_retry(
                &prompts::edit::patch(request, &what, &live, &session.context()),
                &answer,
                &problem,
            );
            let again = session.ask("patch (retry)", retry).await?;
            prompts::edit::parse_patch(&again).map_err(|problem| {
                CmdError::new(format!(
                    "the model did not answer with a valid patch, even after a retry: {problem}"
                ))
                .with_hint("rephrase the change, or pick another model with --model")
            })?
        }
    };
    let patch_text = patch.to_string();
    let mut shown = vec!["patch".to_owned()];
    shown.extend(resource.iter().cloned());
    shown.extend([
        "--type".to_owned(),
        "merge".to_owned(),
        "-p".to_owned(),
        patch_text.clone(),
    ]);
    let mut real_patch = vec!["patch".to_owned()];
    real_patch.extend(real.iter().cloned());
    real_patch.extend([
        "--type".to_owned(),
        "merge".to_owned(),
        "-p".to_owned(),
        session.guard.restore(&[patch_text])?.remove(0),
    ]);
    let mut dry = real_patch.clone();
    dry.extend([
        "--dry-run=server".to_owned(),
        "-o".to_owned(),
        "yaml".to_owned(),
    ]);
    let mut dry_shown = shown.clone();
    dry_shown.extend([
        "--dry-run=server".to_owned(),
        "-o".to_owned(),
        "yaml".to_owned(),
    ]);
    let after = session.run_kubectl(&dry_shown, &dry, true)?;
    out(&format!("Changes to {what}:\n"));
    out(&line_diff(&strip_volatile(&live), &strip_volatile(&after)));
    let line = kubectl::display(&shown);
    out(&crate::cli::style::command_line(&line));
    let class = session.policy.allow(&real_patch)?;
    let answer = session.confirm(&line, &class)?;
    if !plan::approve(session, &line, &answer).await? {
        return Ok(());
    }
    let output = session.run_kubectl(&shown, &real_patch, true)?;
    plan::summarize(session, &line, &output, Some(request), false).await
}

/// The YAML without the lines that change on every write (they would drown the difference).
fn strip_volatile(yaml: &str) -> String {
    yaml.lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("resourceVersion:") || t.starts_with("generation:"))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The lines removed (`- `) and added (`+ `) from `before` to `after`, in order (a longest
/// common subsequence of lines, over the first [`MAX_DIFF_LINES`] of each); `(no changes)`
/// when they are the same.
pub fn line_diff(before: &str, after: &str) -> String {
    let a: Vec<&str> = before.lines().take(MAX_DIFF_LINES).collect();
    let b: Vec<&str> = after.lines().take(MAX_DIFF_LINES).collect();
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut s) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] > lcs[i + 1][j]) {
            s.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        } else {
            s.push_str(&format!("- {}\n", a[i]));
            i += 1;
        }
    }
    if s.is_empty() {
        s.push_str("(no changes)\n");
    }
    if before.lines().count().max(after.lines().count()) > MAX_DIFF_LINES {
        s.push_str(&format!(
            "(only the first {MAX_DIFF_LINES} lines were compared)\n"
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_difference_shows_removed_and_added_lines_only() {
        let d = line_diff("a\nreplicas: 1\nc\n", "a\nreplicas: 3\nc\nd\n");
        assert_eq!(d, "- replicas: 1\n+ replicas: 3\n+ d\n");
        assert_eq!(line_diff("x\n", "x\n"), "(no changes)\n");
        let long = "x\n".repeat(MAX_DIFF_LINES + 5);
        assert!(line_diff(&long, &long).ends_with("lines were compared)\n"));
    }
}
