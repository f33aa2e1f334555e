//! Every prompt vibectl sends, each built from fixed sample inputs and a fixed clock, so the
//! snapshot test (`tests/prompts`) shows any change to any prompt as a diff to review. A
//! command with new prompts adds them to [`all`].

use time::OffsetDateTime;
use time::macros::datetime;

use super::{Context, plan, summary};
use crate::llm::adapter::LlmRequest;

/// The clock of every sample.
pub const NOW: OffsetDateTime = datetime!(2026-01-02 03:04:05 UTC);
/// The sample memory.
pub const MEMORY: &str = "We work in namespace shop. web-2 restarted 3 times yesterday.";
/// The sample custom instructions.
pub const INSTRUCTIONS: &str = "Always name the namespace.";
/// The sample memory size.
pub const MAX_CHARS: usize = 500;

/// The context of every sample: memory, instructions, the fixed clock.
pub fn sample_context() -> Context<'static> {
    Context {
        memory: Some(MEMORY),
        instructions: Some(INSTRUCTIONS),
        now: Some(NOW),
        plugins: None,
    }
}

/// A sample kubectl output for `verb`.
fn sample_output(verb: &str) -> &'static str {
    match verb {
        "logs" => "2026-01-02T03:00:00Z starting\n2026-01-02T03:00:01Z error: db timeout\n",
        "events" => {
            "LAST SEEN   TYPE      REASON    OBJECT      MESSAGE\n2m          Warning   BackOff   pod/web-2   Back-off restarting failed container\n"
        }
        "top" => {
            "NAME    CPU(cores)   MEMORY(bytes)\nweb-1   5m           40Mi\nweb-2   250m         900Mi\n"
        }
        _ => {
            "NAME    READY   STATUS    RESTARTS   AGE\nweb-1   1/1     Running   0          5m\nweb-2   0/1     CrashLoopBackOff   3   5m\n"
        }
    }
}

/// One prompt: a stable name (also its snapshot file name) and the request it builds.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub request: LlmRequest,
}

/// Every prompt, in a stable order.
pub fn all() -> Vec<Entry> {
    let ctx = sample_context();
    let mut out = Vec::new();
    let mut add = |name: String, request: LlmRequest| out.push(Entry { name, request });

    add(
        "plan-vibe".into(),
        super::plan("why does web-2 keep restarting?", None, &ctx),
    );
    add(
        "plan-vibe-from-memory".into(),
        super::plan_from_memory(&ctx),
    );
    add(
        "plan-vibe-retry".into(),
        super::plan_retry(
            &super::plan("show the pods", None, &ctx),
            "kubectl get pods",
            "the answer is not JSON: expected value at line 1 column 1",
        ),
    );
    for v in plan::VERBS {
        add(
            format!("plan-{}", v.verb),
            super::plan("the pods of namespace shop", Some(v.verb), &ctx),
        );
    }
    for s in summary::SPECS {
        let (line, request) = match s.verb {
            "vibe" => ("kubectl get pods -n shop", Some("are my pods healthy?")),
            v => (
                match v {
                    "get" => "kubectl get pods -n shop",
                    "describe" => "kubectl describe pod web-2 -n shop",
                    "logs" => "kubectl logs web-2 -n shop --tail=100",
                    "events" => "kubectl events -n shop",
                    "explain" => "kubectl explain deployment.spec.strategy",
                    "rollout" => "kubectl rollout status deployment/web -n shop",
                    "top" => "kubectl top pods -n shop",
                    "version" => "kubectl version",
                    _ => "kubectl get pods",
                },
                None,
            ),
        };
        let req = if s.verb == "vibe" {
            super::summary_for(s, line, sample_output(s.verb), request, &ctx)
        } else {
            super::summary(line, sample_output(s.verb), request, &ctx)
        };
        add(format!("summary-{}", s.verb), req);
    }
    add(
        "summary-generic".into(),
        super::summary(
            "kubectl api-resources",
            "NAME   SHORTNAMES   KIND\npods   po           Pod\n",
            None,
            &ctx,
        ),
    );
    add(
        "summary-empty-output".into(),
        super::summary("kubectl get pods -n shop", "", None, &ctx),
    );
    // The verbs with a guide: their planning and summary prompts.
    for (verb, line) in [
        ("create", "kubectl create -f web.yaml -n shop"),
        ("delete", "kubectl delete pod web-2 -n shop"),
        ("scale", "kubectl scale deployment/web --replicas=3 -n shop"),
        (
            "wait",
            "kubectl wait deployment/web --for=condition=Available -n shop",
        ),
        ("diff", "kubectl diff -f web.yaml"),
        ("cluster-info", "kubectl cluster-info"),
        ("rollout", "kubectl rollout history deployment/web -n shop"),
        (
            "patch",
            "kubectl patch deployment web -n shop -p {\"spec\":{\"replicas\":2}}",
        ),
    ] {
        add(
            format!("plan-verb-{verb}"),
            super::verbs::plan("the web deployment of namespace shop", verb, &ctx),
        );
        add(
            format!("summary-verb-{verb}"),
            super::verbs::summary(line, Some(verb), sample_output(verb), None, &ctx),
        );
    }
    add(
        "apply-generate".into(),
        super::apply::generate("an nginx deployment called web with 2 replicas", &ctx),
    );
    add(
        "apply-correct".into(),
        super::apply::correct(
            "web.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n",
            "The Deployment \"web\" is invalid: spec.selector: Required value",
            "apply web.yaml",
            &ctx,
        ),
    );
    add(
        "edit-target".into(),
        super::edit::target("give the web deployment 3 replicas", &ctx),
    );
    add(
        "edit-patch".into(),
        super::edit::patch(
            "give the web deployment 3 replicas",
            "deployment/web -n shop",
            "{\"spec\":{\"replicas\":1}}",
            &ctx,
        ),
    );
    add(
        "plan-port-forward".into(),
        super::port_forward::plan_request("the web service on my port 8080", &ctx),
    );
    add(
        "summary-port-forward".into(),
        super::port_forward::summary(
            "ports: 8080 -> 80\nconnections: 3\nbytes in: 1200\nbytes out: 5400\nended: Ctrl-C after 42 s",
            "Forwarding from 127.0.0.1:8080 -> 80\nHandling connection for 8080\n",
            None,
            &ctx,
        ),
    );
    let history = [super::steps::Observation {
        what: "Ran: kubectl get pods -n shop".to_owned(),
        output: sample_output("get").to_owned(),
    }];
    add(
        "auto-step-first".into(),
        super::auto::step(Some("find out why web-2 restarts"), &[], &ctx),
    );
    add(
        "auto-step-later".into(),
        super::auto::step(Some("find out why web-2 restarts"), &history, &ctx),
    );
    add(
        "check-step-first".into(),
        super::check::step("every pod in namespace shop is running", &[], &ctx),
    );
    add(
        "check-step-later".into(),
        super::check::step("every pod in namespace shop is running", &history, &ctx),
    );
    add(
        "recovery".into(),
        super::recovery(
            "kubectl get pod web-3 -n shop",
            "Error from server (NotFound): pods \"web-3\" not found\n",
            Some("The user asked for web-3."),
            MAX_CHARS,
            &ctx,
        ),
    );
    add(
        "memory-update".into(),
        super::memory_update_at(
            MEMORY,
            "Ran: kubectl get pods -n shop\nResult: web-2 is in CrashLoopBackOff.",
            MAX_CHARS,
            Some(NOW),
        ),
    );
    out
}

/// `req` as text: each system and user fragment under its own heading, then the schema.
pub fn render(req: &LlmRequest) -> String {
    let mut s = String::new();
    for (i, f) in req.system.iter().enumerate() {
        s.push_str(&format!("=== system {} ===\n{f}\n", i + 1));
    }
    for (i, f) in req.user.iter().enumerate() {
        s.push_str(&format!("=== user {} ===\n{f}\n", i + 1));
    }
    if let Some(schema) = &req.response_schema {
        let pretty = serde_json::to_string_pretty(schema).unwrap_or_default();
        s.push_str(&format!("=== response schema ===\n{pretty}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_file_safe() {
        let entries = all();
        let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        for n in &names {
            assert!(n.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{n}");
        }
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "duplicate prompt names");
    }

    #[test]
    fn every_summary_uses_its_own_spec() {
        for e in all().iter().filter(|e| e.name.starts_with("summary-")) {
            let verb = e.name.trim_start_matches("summary-");
            if let Some(spec) = summary::SPECS.iter().find(|s| s.verb == verb) {
                assert!(
                    e.request.system.contains(&spec.task.to_owned()),
                    "{}",
                    e.name
                );
            }
        }
    }
}
