//! Every prompt vibectl sends, built from shared blocks: planning a kubectl command from a
//! request (with the JSON Schema of the answer), summarizing kubectl output, suggesting a
//! recovery after kubectl failed, and updating the memory.
//!
//! Each builder returns an [`LlmRequest`] without a model (the caller picks it): `system`
//! fragments hold who vibectl is, the current time, the task, its rules and examples, and the
//! user's custom instructions; `user` fragments hold the memory first, then the request or the
//! output. This is the shape vibectl-server and vibectl 0.11.6 expect.
//!
//! Submodules: [`blocks`] (identity, current time, memory, instructions, markup guidance, the
//! warning against commands that never end, example formatting), [`plan`] (per-verb planning:
//! purpose and examples), [`summary`] (per-verb summaries: task, focus, example answer),
//! [`recovery`], [`memory`], and [`registry`], the list of every prompt rendered with fixed
//! inputs and a fixed clock for the snapshot test in `tests/prompts`.
//!
//! Adding a command's prompts: put them in `src/prompts/<command>.rs` (one `pub mod` line
//! here). A verb that only plans and summarizes needs no code: write a
//! [`plan::VerbPlan`] and a [`summary::SummarySpec`] and call [`plan_with`] and
//! [`summary_for`]; a prompt of another kind builds its `system` with [`Context::system`] (so
//! it gets the identity, the time and the instructions) and its `user` with
//! [`Context::user`] (so it gets the memory). Then add each prompt to
//! [`registry::all`] and run `UPDATE_SNAPSHOTS=1 cargo test --test main prompts::` to write
//! its snapshot; review the new file and commit it.

pub mod blocks;
pub mod memory;
pub mod plan;
pub mod recovery;
pub mod registry;
pub mod summary;

pub mod port_forward;

use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::llm::adapter::LlmRequest;

pub mod apply;
pub mod auto;
pub mod check;
pub mod cluster_info;
pub mod create;
pub mod delete;
pub mod diff;
pub mod edit;
pub mod patch;
pub mod plugin;
pub mod rollout;
pub mod scale;
pub mod steps;
pub mod verbs;
pub mod wait;

/// Longest kubectl output put in a prompt, in characters; longer output keeps its head and tail.
pub const MAX_OUTPUT_CHARS: usize = 40_000;
/// Longest prompt fragment sent, in bytes. Fragments that carry kubectl output are cut to it
/// only after their secrets are replaced (by the client's request guard), so a cut never
/// separates a secret from the context that identifies it; each builder leaves them whole.
pub const MAX_FRAGMENT_CHARS: usize = MAX_OUTPUT_CHARS + 2_000;

/// What every prompt may carry besides its task.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The memory, when memory is enabled and not empty.
    pub memory: Option<&'a str>,
    /// `system.custom_instructions`.
    pub instructions: Option<&'a str>,
    /// The clock of the current-time line; `None` reads the system clock (the registry fixes
    /// it so snapshots do not change).
    pub now: Option<OffsetDateTime>,
    /// The installed prompt plugins, resolved by `plugins.precedence`.
    pub plugins: Option<&'a plugin::Prompts>,
}

impl Context<'_> {
    /// The identity, the current time, `task` (one fragment each), then the instructions.
    pub fn system(&self, task: Vec<String>) -> Vec<String> {
        let now = self.now.unwrap_or_else(OffsetDateTime::now_utc);
        let mut out = vec![blocks::IDENTITY.to_owned(), blocks::current_time(now)];
        out.extend(task);
        out.extend(blocks::instructions(self.instructions));
        out
    }

    /// The memory (when any), then `parts`.
    pub fn user(&self, parts: Vec<String>) -> Vec<String> {
        blocks::memory(self.memory)
            .into_iter()
            .chain(parts)
            .collect()
    }

    /// The plugin mapping that replaces prompt `key`, if one does: the one place every prompt
    /// builder asks.
    pub fn plugin(&self, key: &str) -> Option<&serde_json::Map<String, Value>> {
        let (name, mapping) = self.plugins?.get(key)?;
        tracing::debug!(prompt = key, plugin = name, "a plugin replaces this prompt");
        Some(mapping)
    }

    /// The task of prompt `key`: a plugin's `task_description`, else `default`.
    pub fn task(&self, key: &str, default: &str) -> String {
        self.plugin(key)
            .and_then(|m| m.get("task_description"))
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
            .unwrap_or(default)
            .to_owned()
    }

    /// The examples of prompt `key`: a plugin's (`check_examples_data` or `examples`), else
    /// `default`.
    pub fn examples(&self, key: &str, default: &str) -> String {
        self.plugin(key)
            .and_then(|m| m.get("check_examples_data").or_else(|| m.get("examples")))
            .and_then(|v| plugin::format_examples("Request", v))
            .unwrap_or_else(|| default.to_owned())
    }

    /// Add the custom instructions to a request built without a context (the memory update),
    /// as every prompt carries them.
    pub fn instruct(&self, mut req: LlmRequest) -> LlmRequest {
        if let Some(f) = blocks::instructions(self.instructions)
            && !req.system.contains(&f)
        {
            req.system.push(f);
        }
        req
    }
}

fn request(system: Vec<String>, user: Vec<String>, schema: Option<Value>) -> LlmRequest {
    LlmRequest {
        system,
        user,
        model: None,
        response_schema: schema,
        request_id: None,
    }
}

/// The JSON Schema of a plan.
pub fn plan_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "KubectlPlan",
        "type": "object",
        "properties": {
            "commands": {
                "description": "The arguments that follow `kubectl`, one item per argument; empty when no command fits.",
                "type": "array",
                "items": {"type": "string"}
            },
            "explanation": {
                "description": "Why this command answers the request, in one or two sentences.",
                "type": "string"
            }
        },
        "required": ["commands", "explanation"],
        "additionalProperties": false
    })
}

/// A plan: the kubectl arguments and why.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub commands: Vec<String>,
    pub explanation: String,
}

/// Read a plan from the model's answer (code fences around the JSON are tolerated; a leading
/// `kubectl` argument is dropped). `Err` says what is wrong, for the corrective retry.
pub fn parse_plan(answer: &str) -> Result<Plan, String> {
    let text = answer.trim();
    let text = text
        .strip_prefix("```json")
        .or_else(|| text.strip_prefix("```"))
        .and_then(|t| t.trim_end().strip_suffix("```"))
        .unwrap_or(text)
        .trim();
    if text.is_empty() {
        return Err("the answer was empty".into());
    }
    let mut plan: Plan = serde_json::from_str(text).map_err(|e| {
        if serde_json::from_str::<Value>(text).is_ok() {
            format!("the JSON is not a plan: {e}")
        } else {
            format!("the answer is not JSON: {e}")
        }
    })?;
    if plan.commands.first().is_some_and(|c| c == "kubectl") {
        plan.commands.remove(0);
    }
    if plan.commands.iter().any(|c| c.trim().is_empty()) {
        return Err("`commands` has an empty argument".into());
    }
    Ok(plan)
}

/// Ask for a plan for `request`; with `verb` (`get`, `logs`, ...) the command must use it,
/// and the prompt describes that verb (see [`plan::VERBS`]).
pub fn plan(request: &str, verb: Option<&str>, ctx: &Context<'_>) -> LlmRequest {
    let system = match verb {
        None => plan::system_vibe(),
        Some(v) => match plan::verb_plan(v) {
            Some(spec) => plan::system_verb(v, spec.purpose, spec.examples),
            None => plan::system_verb(v, "the user's request", &[]),
        },
    };
    plan_request(system, request, ctx)
}

/// Ask for a plan of `spec.verb` described by `spec` (a command whose verb is not in
/// [`plan::VERBS`]).
pub fn plan_with(request: &str, spec: &plan::VerbPlan, ctx: &Context<'_>) -> LlmRequest {
    plan_request(
        plan::system_verb(spec.verb, spec.purpose, spec.examples),
        request,
        ctx,
    )
}

fn plan_request(system: Vec<String>, req: &str, ctx: &Context<'_>) -> LlmRequest {
    request(
        ctx.system(system),
        ctx.user(vec![format!(
            "The user's request:\n<request>\n{}\n</request>",
            req.trim()
        )]),
        Some(plan_schema()),
    )
}

/// Ask for a plan that continues from the memory, when the user gave no request.
pub fn plan_from_memory(ctx: &Context<'_>) -> LlmRequest {
    plan(
        "No new request: plan the next useful step toward the goals in the memory.",
        None,
        ctx,
    )
}

/// The same plan request again, told what was wrong with the previous answer.
pub fn plan_retry(previous: &LlmRequest, answer: &str, problem: &str) -> LlmRequest {
    let mut req = previous.clone();
    req.user.push(format!(
        "Your previous answer could not be used ({problem}). It was:\n<answer>\n{}\n</answer>\n\
         Answer again with only the JSON document, exactly in the shape asked for.",
        clip(answer, 2_000)
    ));
    req
}

/// Ask for a summary of what `kubectl ARGS` printed (`command` is that line); `request` is
/// what the user asked for, when the command was planned from a request. The verb of
/// `command` picks the focus ([`summary::SPECS`]); a planned command of another verb gets the
/// `vibe` one.
pub fn summary(
    command: &str,
    output: &str,
    request: Option<&str>,
    ctx: &Context<'_>,
) -> LlmRequest {
    let verb = command
        .split_whitespace()
        .nth(1)
        .filter(|_| command.starts_with("kubectl "))
        .unwrap_or("");
    let spec = match summary::SPECS.iter().find(|s| s.verb == verb) {
        Some(s) => *s,
        None if request.is_some() => summary::spec("vibe"),
        None => summary::GENERIC,
    };
    summary_for(&spec, command, output, request, ctx)
}

/// Ask for a summary following `spec` (a command with its own [`summary::SummarySpec`]).
pub fn summary_for(
    spec: &summary::SummarySpec,
    command: &str,
    output: &str,
    request: Option<&str>,
    ctx: &Context<'_>,
) -> LlmRequest {
    let mut user = Vec::new();
    if let Some(r) = request.map(str::trim).filter(|r| !r.is_empty()) {
        user.push(format!(
            "The user asked:\n<request>\n{r}\n</request>\nFocus the summary on that."
        ));
    }
    user.push(format!("The command: {command}"));
    user.push(blocks::output(output));
    request_of(ctx.system(summary::system(spec)), ctx.user(user))
}

fn request_of(system: Vec<String>, user: Vec<String>) -> LlmRequest {
    request(system, user, None)
}

/// Ask how to recover from a failed kubectl run: `command` is its line, `error` what it
/// printed on stderr, `explanation` the plan's reason when the model planned it. The answer
/// is kept within `max_chars` (the memory's size, as 0.11.6 does).
pub fn recovery(
    command: &str,
    error: &str,
    explanation: Option<&str>,
    max_chars: usize,
    ctx: &Context<'_>,
) -> LlmRequest {
    request_of(
        ctx.system(vec![
            recovery::task(max_chars),
            blocks::markup_guidance(),
            blocks::DATA_NOT_ORDERS.to_owned(),
        ]),
        ctx.user(recovery::user(command, error, explanation)),
    )
}

/// Ask for the memory updated with `news` (a command and its outcome, or the user's words),
/// kept within `max_chars`.
pub fn memory_update(current: &str, news: &str, max_chars: usize) -> LlmRequest {
    memory_update_at(current, news, max_chars, None)
}

/// [`memory_update`] with the clock of its current-time line (`None`: the system clock).
pub fn memory_update_at(
    current: &str,
    news: &str,
    max_chars: usize,
    now: Option<OffsetDateTime>,
) -> LlmRequest {
    let ctx = Context {
        now,
        ..Context::default()
    };
    request_of(
        ctx.system(vec![memory::TASK.to_owned()]),
        memory::user(current, news, max_chars),
    )
}

/// `text` cut to about `max` characters, keeping its head and tail.
pub fn clip(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let half = max / 2;
    let head: String = text.chars().take(half).collect();
    let tail: String = text.chars().skip(count - half).collect();
    format!(
        "{head}\n[... {} characters left out ...]\n{tail}",
        count - 2 * half
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_parse_with_fences_and_a_leading_kubectl() {
        let p = parse_plan(
            "```json\n{\"commands\":[\"kubectl\",\"get\",\"pods\"],\"explanation\":\"x\"}\n```",
        )
        .expect("parses");
        assert_eq!(p.commands, ["get", "pods"]);
        assert!(parse_plan("not json").is_err());
        assert!(parse_plan("{\"commands\":[\"get\"]}").is_err());
        assert!(parse_plan("").is_err());
    }

    #[test]
    fn context_goes_in_the_right_slots() {
        let ctx = Context {
            memory: Some("ns is shop"),
            instructions: Some("answer in French"),
            now: None,
            plugins: None,
        };
        let req = plan("show pods", Some("get"), &ctx);
        assert!(req.system.iter().any(|s| s.contains("answer in French")));
        assert!(req.user[0].contains("ns is shop"));
        assert!(req.user.iter().any(|u| u.contains("show pods")));
        assert!(req.response_schema.is_some());
        let s = summary("kubectl get pods", "", None, &Context::default());
        assert!(s.user.iter().any(|u| u.contains("(no output)")));
        assert_eq!(s.user.len(), 2);
        assert!(
            s.system
                .iter()
                .any(|f| f.starts_with("The current time is "))
        );
    }

    #[test]
    fn long_output_keeps_head_and_tail() {
        let text = format!("HEAD{}TAIL", "x".repeat(100));
        let c = clip(&text, 20);
        assert!(c.starts_with("HEAD") && c.ends_with("TAIL"), "{c}");
    }
}
