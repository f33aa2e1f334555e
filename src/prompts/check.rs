//! The prompt of `check PREDICATE`: decide whether a statement about the cluster holds, using
//! read-only kubectl commands, answering one [`steps::Action`] per step and ending with DONE
//! and an exit code (0 true, 1 false, 2 poorly posed, 3 cannot determine).

use serde_json::json;

use super::Context;
use super::steps::{self, Observation};
use crate::llm::adapter::LlmRequest;

/// The key a prompt plugin uses to replace this prompt (0.11.6's name).
pub const KEY: &str = "check_plan";

const TASK: &str = "Decide whether a statement (the predicate) about the user's Kubernetes \
cluster is true. Gather facts only with commands that read: get, describe, logs, events, top, \
explain, api-resources, version, auth can-i. Never plan a command that changes anything; \
vibectl refuses it and the check fails.\n\n\
Answer with one JSON document, no prose and no code fences, holding one action:\n\
- COMMAND with `commands` (the arguments after `kubectl`, verb first) when a fact is missing. \
Never plan a command that keeps running (`-w`, `--watch`, `logs -f`): it would hang.\n\
- DONE with `exit_code` and an `explanation` once you can decide: 0 when the predicate is \
true, 1 when it is false, 2 when it is ambiguous or makes no sense for a Kubernetes cluster, \
3 when the facts cannot settle it.\n\
- THOUGHT with `text` to note reasoning between commands, WAIT with `duration_seconds` when \
the state needs time to settle, ERROR with `message` when the predicate asks for an action \
rather than a judgement.\n\
Judge the predicate exactly as written. Each command's output comes back to you in the next \
step; decide as soon as the facts allow, in few steps.";

fn examples() -> String {
    steps::examples(
        "Predicate",
        &[
            (
                "Namespace shop has pods cart-1 (Running) and cart-2 (Running).",
                "every pod in namespace shop is running",
                json!({"action_type": "DONE", "exit_code": 0,
                       "explanation": "Both pods of shop, cart-1 and cart-2, are Running."}),
            ),
            (
                "In kube-system: coredns-1 Running, proxy-x CrashLoopBackOff.",
                "kube-system is healthy",
                json!({"action_type": "DONE", "exit_code": 1,
                       "explanation": "proxy-x in kube-system is in CrashLoopBackOff."}),
            ),
            (
                "",
                "the deployment api in namespace prod has 3 ready replicas",
                json!({"action_type": "COMMAND",
                       "commands": ["get", "deployment", "api", "-n", "prod"],
                       "explanation": "Nothing is known about prod/api yet."}),
            ),
            (
                "",
                "the cluster is in a good mood",
                json!({"action_type": "DONE", "exit_code": 2,
                       "explanation": "A mood is not something a cluster has."}),
            ),
            (
                "",
                "scale web to zero and confirm it worked",
                json!({"action_type": "ERROR",
                       "message": "check only judges predicates; it does not scale anything."}),
            ),
        ],
    )
}

/// Ask for the next step of checking `predicate`, given the steps taken so far.
pub fn step(predicate: &str, history: &[Observation], ctx: &Context<'_>) -> LlmRequest {
    let first = format!(
        "The predicate:\n<predicate>\n{}\n</predicate>",
        predicate.trim()
    );
    steps::request(KEY, TASK, &examples(), first, history, ctx)
}
