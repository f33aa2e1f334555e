//! The prompts of `apply vibe`: writing a manifest from a description when the request names
//! no file, and correcting a manifest that kubectl's dry run rejected. Both answer with raw
//! YAML; an empty answer or a lone comment means the model cannot help.

use super::{Context, clip};
use crate::llm::adapter::LlmRequest;

/// Longest manifest put in a correction prompt, in characters.
pub const MAX_MANIFEST_CHARS: usize = 20_000;

const YAML_RULES: &str = "Answer with the YAML manifest only: no prose, no code fences. Keep \
what the user wrote unless it is wrong; do not add a namespace the request does not ask for. \
When no valid manifest can be produced with confidence, answer with a single comment line \
starting with `#` that says why.";

const GENERATE_TASK: &str = "Write the Kubernetes manifest(s) the user describes, ready for \
`kubectl apply -f`. Separate several objects with `---`. Use stable API versions \
(apps/v1 for Deployments, v1 for ConfigMaps, Services, Pods) and give every workload a \
`selector` that matches its pod template labels.";

const CORRECT_TASK: &str = "A manifest that the user wants to apply was rejected by \
`kubectl apply --dry-run`. Correct it so the API server accepts it, changing as little as \
possible. Typical fixes: a required field that is missing (a Deployment's `spec.selector` \
must match `spec.template.metadata.labels`), a field under the wrong parent, a wrong \
apiVersion for the kind, a value of the wrong type (numbers vs strings).\n\
Example: kubectl said `spec.selector: Required value` for a Deployment whose template has the \
labels `app: web`; the answer is the same manifest with `selector: {matchLabels: {app: web}}` \
added under `spec`.";

/// Ask for manifests that fulfil `request` (the user named no file).
pub fn generate(request: &str, ctx: &Context<'_>) -> LlmRequest {
    LlmRequest {
        system: ctx.system(vec![format!("{GENERATE_TASK}\n{YAML_RULES}")]),
        user: ctx.user(vec![format!(
            "What the user wants applied:\n<request>\n{}\n</request>",
            request.trim()
        )]),
        model: None,
        response_schema: None,
        request_id: None,
    }
}

/// Ask for `manifest` (from `source`) corrected, given kubectl's `error`.
pub fn correct(
    source: &str,
    manifest: &str,
    error: &str,
    request: &str,
    ctx: &Context<'_>,
) -> LlmRequest {
    LlmRequest {
        system: ctx.system(vec![format!("{CORRECT_TASK}\n{YAML_RULES}")]),
        user: ctx.user(vec![
            format!(
                "What the user asked for:\n<request>\n{}\n</request>",
                request.trim()
            ),
            format!(
                "What kubectl said:\n<error>\n{}\n</error>",
                clip(error.trim(), 4_000)
            ),
            format!(
                "The manifest, from {source}:\n<manifest>\n{}\n</manifest>",
                clip(manifest, MAX_MANIFEST_CHARS)
            ),
        ]),
        model: None,
        response_schema: None,
        request_id: None,
    }
}

/// The YAML in an answer: code fences removed; `None` when it is empty or only comments.
pub fn manifest(answer: &str) -> Option<String> {
    let text = answer.trim();
    let text = text
        .strip_prefix("```yaml")
        .or_else(|| text.strip_prefix("```yml"))
        .or_else(|| text.strip_prefix("```"))
        .and_then(|t| t.trim_end().strip_suffix("```"))
        .unwrap_or(text)
        .trim();
    let useful = text
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#') && l.trim() != "---");
    useful.then(|| format!("{text}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_lose_their_fences_and_comment_only_answers_are_refusals() {
        assert_eq!(
            manifest("```yaml\nkind: ConfigMap\n```").as_deref(),
            Some("kind: ConfigMap\n")
        );
        assert_eq!(manifest("# cannot fix this"), None);
        assert_eq!(manifest("  \n"), None);
        let req = correct(
            "web.yaml",
            "kind: Deployment",
            "spec.selector: Required value",
            "apply it",
            &Context::default(),
        );
        let last = req.user.last().expect("manifest last");
        assert!(last.contains("kind: Deployment") && last.contains("web.yaml"));
        assert!(req.user.iter().any(|u| u.contains("Required value")));
    }
}
