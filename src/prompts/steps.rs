//! The answer of a loop step (`auto`, `semiauto`, `check`): one action in the JSON shape of
//! vibectl 0.11.6's planner, `{"action": {"action_type": "COMMAND", ...}}`, its JSON Schema,
//! the parser, and the formatting of worked examples shared by the loop prompts.

use serde::Deserialize;
use serde_json::{Value, json};

use super::Context;
use crate::llm::adapter::LlmRequest;

/// Longest wait a step may ask for, in seconds; longer waits are cut to it.
pub const MAX_WAIT_SECONDS: u64 = 300;

/// One action of a loop step.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action_type", rename_all = "UPPERCASE")]
pub enum Action {
    /// Run `kubectl COMMANDS`.
    Command {
        #[serde(default)]
        commands: Vec<String>,
        #[serde(default)]
        explanation: Option<String>,
    },
    /// The goal is reached (auto) or the predicate decided (check, with `exit_code`).
    Done {
        #[serde(default)]
        exit_code: Option<i64>,
        #[serde(default)]
        explanation: Option<String>,
    },
    /// A reasoning step, kept in the memory.
    Thought { text: String },
    /// Pause before the next step.
    Wait { duration_seconds: u64 },
    /// The request cannot be carried out.
    Error { message: String },
    /// A question or remark for the user.
    Feedback {
        message: String,
        #[serde(default)]
        explanation: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    action: Action,
    #[serde(default)]
    #[allow(dead_code)]
    presentation_hints: Option<String>,
}

/// The JSON Schema of a step answer.
pub fn schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "LoopStep",
        "type": "object",
        "properties": {
            "action": {
                "description": "The single action vibectl performs next.",
                "type": "object",
                "properties": {
                    "action_type": {
                        "type": "string",
                        "enum": ["COMMAND", "DONE", "THOUGHT", "WAIT", "ERROR", "FEEDBACK"]
                    },
                    "commands": {
                        "description": "COMMAND: the arguments after `kubectl`, verb first, one item per argument.",
                        "type": "array",
                        "items": {"type": "string"}
                    },
                    "explanation": {
                        "description": "COMMAND, DONE, FEEDBACK: why, in a sentence or two.",
                        "type": "string"
                    },
                    "exit_code": {
                        "description": "DONE in check: 0 true, 1 false, 2 poorly posed, 3 cannot determine.",
                        "type": "integer"
                    },
                    "text": {"description": "THOUGHT: the thought.", "type": "string"},
                    "duration_seconds": {
                        "description": "WAIT: how long to pause, in seconds.",
                        "type": "integer"
                    },
                    "message": {"description": "ERROR, FEEDBACK: the message.", "type": "string"}
                },
                "required": ["action_type"]
            }
        },
        "required": ["action"]
    })
}

/// Read a step from the model's answer (code fences tolerated, a leading `kubectl` dropped).
/// `Err` says what is wrong, for the corrective retry.
pub fn parse(answer: &str) -> Result<Action, String> {
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
    let parsed: Answer = serde_json::from_str(text).map_err(|e| {
        if serde_json::from_str::<Value>(text).is_ok() {
            format!("the JSON is not a step action: {e}")
        } else {
            format!("the answer is not JSON: {e}")
        }
    })?;
    let mut action = parsed.action;
    if let Action::Command { commands, .. } = &mut action {
        if commands.first().is_some_and(|c| c == "kubectl") {
            commands.remove(0);
        }
        if commands.is_empty() {
            return Err("a COMMAND action needs `commands`".into());
        }
        if commands.iter().any(|c| c.trim().is_empty()) {
            return Err("`commands` has an empty argument".into());
        }
    }
    Ok(action)
}

/// Most earlier steps a loop prompt shows (the newest ones).
pub const MAX_SHOWN_STEPS: usize = 8;
/// Longest output of one earlier step shown, in characters (head and tail kept).
pub const MAX_STEP_OUTPUT_CHARS: usize = 4_000;

/// What one earlier step of this loop did and saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// What was done: `Ran: kubectl get pods`, `Thought: ...`.
    pub what: String,
    /// What came of it (kubectl's output, an error); may be empty.
    pub output: String,
}

/// The earlier steps of this loop as a prompt fragment, or `None` before the first.
pub fn history(steps: &[Observation]) -> Option<String> {
    if steps.is_empty() {
        return None;
    }
    let skip = steps.len().saturating_sub(MAX_SHOWN_STEPS);
    let mut out = String::from("The steps taken so far in this session, oldest first:\n<steps>\n");
    if skip > 0 {
        out.push_str(&format!("({skip} earlier steps left out)\n"));
    }
    for (i, s) in steps.iter().enumerate().skip(skip) {
        out.push_str(&format!("Step {}: {}\n", i + 1, s.what.trim()));
        if !s.output.trim().is_empty() {
            out.push_str(&format!(
                "<output>\n{}\n</output>\n",
                super::clip(s.output.trim(), MAX_STEP_OUTPUT_CHARS)
            ));
        }
    }
    out.push_str("</steps>");
    Some(out)
}

/// Worked examples as the loop prompts show them: memory, request, and the answer.
pub fn examples(label: &str, items: &[(&str, &str, Value)]) -> String {
    let mut out = String::new();
    for (memory, request, action) in items {
        let memory = if memory.is_empty() { "(empty)" } else { memory };
        out.push_str(&format!(
            "Memory: {memory}\n{label}: {request}\nAnswer: {}\n\n",
            json!({ "action": action })
        ));
    }
    out.trim_end().to_owned()
}

/// The request of one loop step (`auto`, `semiauto`, `check`): the prompt `key`'s task and
/// examples (a plugin's when one replaces them, else `task` and `examples`), then `first` (the
/// goal or the predicate), the steps so far, and the ask for the next action.
pub fn request(
    key: &str,
    task: &str,
    examples: &str,
    first: String,
    history: &[Observation],
    ctx: &Context<'_>,
) -> LlmRequest {
    let mut user = vec![first];
    user.extend(self::history(history));
    user.push("Answer with the next action.".to_owned());
    let mut system = ctx.system(vec![ctx.task(key, task)]);
    system.push(format!("Examples:\n{}", ctx.examples(key, examples)));
    LlmRequest {
        system,
        user: ctx.user(user),
        model: None,
        response_schema: Some(schema()),
        request_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_action_type_parses_and_bad_ones_say_why() {
        let a =
            parse(r#"{"action":{"action_type":"COMMAND","commands":["kubectl","get","pods"]}}"#);
        assert_eq!(
            a,
            Ok(Action::Command {
                commands: vec!["get".into(), "pods".into()],
                explanation: None
            })
        );
        let d = parse("```json\n{\"action\":{\"action_type\":\"DONE\",\"exit_code\":1}}\n```");
        assert!(matches!(
            d,
            Ok(Action::Done {
                exit_code: Some(1),
                ..
            })
        ));
        assert!(
            parse(r#"{"action":{"action_type":"COMMAND"}}"#)
                .unwrap_err()
                .contains("commands")
        );
        assert!(parse(r#"{"action":{"action_type":"DANCE"}}"#).is_err());
        assert!(parse("no").unwrap_err().contains("not JSON"));
        assert!(parse(r#"{"action":{"action_type":"DONE"},"extra":1}"#).is_err());
    }
}
