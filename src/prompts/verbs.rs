//! Planning prompts of the kubectl verbs that take `vibe "REQUEST"`: the shared plan prompt,
//! with the verb's guide (what to watch for, worked examples) when it has one; each guide lives
//! in its command's module (`create`, `delete`, `scale`, `wait`, `diff`, `cluster_info`,
//! `rollout`).

use super::{Context, plan as base_plan, summary as base_summary};
use crate::llm::adapter::LlmRequest;

/// One worked example: a request and the `commands` that answer it.
pub struct Example {
    pub request: &'static str,
    pub commands: &'static [&'static str],
}

/// What the model is told about a verb: the points to keep in mind and examples.
pub struct Guide {
    pub verb: &'static str,
    pub focus: &'static str,
    /// What a summary of this verb's output should say.
    pub summary: &'static str,
    pub examples: &'static [Example],
}

/// The verbs with a guide, each in its own module.
const GUIDES: &[&Guide] = &[
    &super::create::GUIDE,
    &super::delete::GUIDE,
    &super::scale::GUIDE,
    &super::wait::GUIDE,
    &super::diff::GUIDE,
    &super::cluster_info::GUIDE,
    &super::rollout::GUIDE,
];

/// The plan request for `VERB vibe REQUEST`: the shared plan prompt, with the verb's guide
/// when it has one.
pub fn plan(request: &str, verb: &str, ctx: &Context<'_>) -> LlmRequest {
    let mut req = base_plan(request, Some(verb), ctx);
    if let Some(g) = GUIDES.iter().find(|g| g.verb == verb) {
        req.system.push(guide_text(g));
    }
    req
}

/// The summary request for what `command` (a `kubectl VERB ...` line) printed: the shared
/// summary prompt, with what to say about this verb's output when it has a guide.
pub fn summary(
    command: &str,
    verb: Option<&str>,
    output: &str,
    request: Option<&str>,
    ctx: &Context<'_>,
) -> LlmRequest {
    let mut req = base_summary(command, output, request, ctx);
    if let Some(g) = verb.and_then(|v| GUIDES.iter().find(|g| g.verb == v)) {
        req.system.push(format!(
            "About the output of `kubectl {}`: {}",
            g.verb, g.summary
        ));
    }
    req
}

fn guide_text(g: &Guide) -> String {
    let mut s = format!("About `kubectl {}`: {}\nExamples:\n", g.verb, g.focus);
    for e in g.examples {
        let commands = serde_json::to_string(e.commands).unwrap_or_default();
        s.push_str(&format!(
            "- request \"{}\" -> {{\"commands\": {commands}, ...}}\n",
            e.request
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_guide_example_uses_its_verb_and_plans_carry_the_guide() {
        for g in GUIDES {
            assert!(!g.examples.is_empty(), "{}", g.verb);
            for e in g.examples {
                assert_eq!(e.commands[0], g.verb, "{}", e.request);
            }
            let req = plan("x", g.verb, &Context::default());
            assert!(req.system.iter().any(|s| s.contains(g.focus)), "{}", g.verb);
        }
        let diff = summary(
            "kubectl diff -f a.yaml",
            Some("diff"),
            "",
            None,
            &Context::default(),
        );
        assert!(diff.system.iter().any(|s| s.contains("object by object")));
        let get = plan("x", "get", &Context::default());
        assert_eq!(
            get.system.len(),
            2,
            "no guide for get: the shared prompt only"
        );
    }
}
