//! The prompts of `edit vibe`: naming the resource to change (a `get` plan) and turning the
//! plain-language change into a JSON merge patch of the live resource.

use super::{Context, clip, plan as base_plan};
use crate::llm::adapter::LlmRequest;

/// Longest live resource put in the patch prompt, in characters.
pub const MAX_RESOURCE_CHARS: usize = 20_000;

const TARGET_TASK: &str = "The user wants to change ONE existing resource. Plan the \
`kubectl get` command that names exactly that resource: `commands` is [\"get\", KIND, NAME] \
plus `-n NAMESPACE` when the request or the memory gives one. Do not add `-o` or other \
output flags.\nExamples:\n\
- request \"give the web deployment 3 replicas\" -> {\"commands\": [\"get\", \"deployment\", \"web\"], ...}\n\
- request \"raise the memory limit of api in shop to 1Gi\" -> {\"commands\": [\"get\", \"deployment\", \"api\", \"-n\", \"shop\"], ...}";

const PATCH_TASK: &str = "Turn the user's change into a JSON merge patch (RFC 7386) of the \
live resource shown. Answer with the JSON object only, no prose and no code fences. Include \
only the fields that change; set a field to null to remove it. Lists are replaced whole, so \
a changed list (containers, env, ports) must be given complete, as it should end up. Never \
touch `status`, `metadata.resourceVersion`, `metadata.uid` or `metadata.managedFields`.\n\
Example: for \"give it 3 replicas\" the answer is {\"spec\": {\"replicas\": 3}}.";

/// Ask which resource the change is about (answered as a plan).
pub fn target(request: &str, ctx: &Context<'_>) -> LlmRequest {
    let mut req = base_plan(request, Some("get"), ctx);
    req.system.push(TARGET_TASK.to_owned());
    req
}

/// Ask for the merge patch that makes `request` true of `live` (its YAML).
pub fn patch(request: &str, resource: &str, live: &str, ctx: &Context<'_>) -> LlmRequest {
    LlmRequest {
        system: ctx.system(vec![PATCH_TASK.to_owned()]),
        user: ctx.user(vec![
            format!("The change:\n<request>\n{}\n</request>", request.trim()),
            format!(
                "The live resource ({resource}):\n<resource>\n{}\n</resource>",
                clip(live, MAX_RESOURCE_CHARS)
            ),
        ]),
        model: None,
        response_schema: None,
        request_id: None,
    }
}

/// The merge patch in an answer: a JSON object (code fences tolerated); `Err` says what is
/// wrong.
pub fn parse_patch(answer: &str) -> Result<serde_json::Value, String> {
    let text = answer.trim();
    let text = text
        .strip_prefix("```json")
        .or_else(|| text.strip_prefix("```"))
        .and_then(|t| t.trim_end().strip_suffix("```"))
        .unwrap_or(text)
        .trim();
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) if v.as_object().is_some_and(|o| !o.is_empty()) => Ok(v),
        Ok(_) => Err("the patch is not a non-empty JSON object".into()),
        Err(e) => Err(format!("the answer is not JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_are_non_empty_objects() {
        assert!(parse_patch("```json\n{\"spec\":{\"replicas\":3}}\n```").is_ok());
        assert!(parse_patch("{}").is_err());
        assert!(parse_patch("[1]").is_err());
        assert!(parse_patch("set replicas to 3").is_err());
        let req = patch(
            "3 replicas",
            "deployment web",
            "kind: Deployment",
            &Context::default(),
        );
        assert!(req.user[1].contains("kind: Deployment"));
    }
}
