//! The prompt of `auto` and `semiauto`: one step toward the user's goal at a time, answering
//! one [`steps::Action`]: a kubectl command to run, a thought, a wait, a question, or DONE
//! when the goal is reached.

use serde_json::json;

use super::Context;
use super::steps::{self, Observation};
use crate::llm::adapter::LlmRequest;

/// The key a prompt plugin uses to replace this prompt (0.11.6's name).
pub const KEY: &str = "vibe_plan";

const TASK: &str = "Work toward the user's goal in their Kubernetes cluster one step at a \
time. Each step you answer with one JSON document, no prose and no code fences, holding one \
action:\n\
- COMMAND with `commands` (the arguments after `kubectl`, verb first, one item per argument, \
no shell syntax) and an `explanation`: the one command that best moves the goal forward or \
removes doubt about it. Prefer reading before changing. Never plan a command that keeps \
running (`-w`, `--watch`, `logs -f`, `port-forward`): it would hang the session.\n\
- DONE with an `explanation` once the goal is reached, or nothing useful is left to do.\n\
- THOUGHT with `text` to record reasoning worth keeping.\n\
- WAIT with `duration_seconds` when a change needs time to take effect.\n\
- FEEDBACK with `message` when only the user can resolve a doubt; ERROR with `message` when \
the goal cannot or must not be carried out.\n\
The result of each command comes back in the next step. Do not repeat a command whose \
output you already have unless the state may have changed.";

fn examples() -> String {
    steps::examples(
        "Goal",
        &[
            (
                "",
                "find out why the checkout pods restart",
                json!({"action_type": "COMMAND",
                       "commands": ["get", "pods", "-l", "app=checkout", "-A"],
                       "explanation": "Locate the checkout pods and their restart counts."}),
            ),
            (
                "checkout-7f9 in shop restarts; its last state is OOMKilled with a 128Mi limit.",
                "find out why the checkout pods restart",
                json!({"action_type": "DONE",
                       "explanation": "checkout-7f9 is killed for memory: the 128Mi limit is too low."}),
            ),
            (
                "Deployment web in shop was scaled to 4 a moment ago; 2 of 4 replicas ready.",
                "scale web to 4 and make sure it is healthy",
                json!({"action_type": "WAIT", "duration_seconds": 10}),
            ),
            (
                "",
                "make it faster",
                json!({"action_type": "FEEDBACK",
                       "message": "Which workload should be faster, and in which namespace?"}),
            ),
        ],
    )
}

/// Ask for the next step toward `goal` (none: the goals in the memory), given the steps
/// taken so far.
pub fn step(goal: Option<&str>, history: &[Observation], ctx: &Context<'_>) -> LlmRequest {
    let first = match goal.map(str::trim).filter(|g| !g.is_empty()) {
        Some(g) => format!("The user's goal:\n<goal>\n{g}\n</goal>"),
        None => "No goal was given: continue toward the goals in the memory.".to_owned(),
    };
    steps::request(KEY, TASK, &examples(), first, history, ctx)
}
