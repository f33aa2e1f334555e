//! Planning prompts of the kubectl verbs that take `vibe "REQUEST"`: the shared plan prompt,
//! with the verb's guide (what to watch for, worked examples) when it has one; each guide lives
//! in its command's module (`create`, `delete`, `scale`, `wait`, `diff`, `cluster_info`,
//! `rollout`, `patch`, `port_forward`).

use super::blocks::PlanExample;
use super::plan::VerbPlan;
use super::{Context, plan as base_plan, plan_with, summary as base_summary};
use crate::llm::adapter::LlmRequest;

/// What the model is told about a verb: what it is for, the points to keep in mind, what a
/// summary of its output should say, and worked examples (in the shared example format).
pub struct Guide {
    pub verb: &'static str,
    /// What the verb is for, completing "`kubectl VERB` ... used for ...".
    pub purpose: &'static str,
    pub focus: &'static str,
    /// What a summary of this verb's output should say.
    pub summary: &'static str,
    pub examples: &'static [PlanExample],
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
    &super::patch::GUIDE,
    &super::port_forward::GUIDE,
];

/// The plan request for `VERB vibe REQUEST`: the shared plan prompt of a verb with the verb's
/// purpose, points and examples when it has a guide (the shared prompt alone otherwise).
pub fn plan(request: &str, verb: &str, ctx: &Context<'_>) -> LlmRequest {
    let Some(g) = GUIDES.iter().find(|g| g.verb == verb) else {
        return base_plan(request, Some(verb), ctx);
    };
    let spec = VerbPlan {
        verb: g.verb,
        purpose: g.purpose,
        examples: g.examples,
    };
    let mut req = plan_with(request, &spec, ctx);
    // Right after the task line (identity, time, task), before the answer's shape.
    let at = req.system.len().min(3);
    req.system
        .insert(at, format!("About `kubectl {}`: {}", g.verb, g.focus));
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
        assert!(
            !get.system.iter().any(|s| s.starts_with("About `kubectl")),
            "no guide for get: the shared prompt only"
        );
    }
}
