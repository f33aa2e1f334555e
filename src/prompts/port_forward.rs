//! The prompts of `port-forward`: planning the forward from a request (resource first, then
//! ports, with examples) and summarizing a forwarding session from its statistics.

use super::Context;
use super::blocks::PlanExample;
use super::verbs::{self, Guide};
use crate::llm::adapter::LlmRequest;

/// How the model plans `kubectl port-forward`: what to watch for, and worked examples.
pub const GUIDE: Guide = Guide {
    verb: "port-forward",
    purpose: "forwarding local ports to a pod, service or deployment",
    focus: "`commands` is [\"port-forward\", RESOURCE, LOCAL:REMOTE, flags...]: the resource \
        (pod/NAME, service/NAME or deployment/NAME) first, then one or more port mappings, then \
        flags such as --namespace. The user asked for a forward, so it may keep running: it \
        runs until the user stops it with Ctrl-C, and vibectl then summarizes it.",
    summary: "Say what was forwarded where, how long it ran and how it ended.",
    examples: &[
        PlanExample {
            memory: "",
            request: "port 8080 of pod nginx to my local 8080",
            commands: &["port-forward", "pod/nginx", "8080:8080"],
            explanation: "Forwards the local port to the same port of the pod.",
        },
        PlanExample {
            memory: "",
            request: "the redis service port 6379 on local port 6380",
            commands: &["port-forward", "service/redis", "6380:6379"],
            explanation: "A different local port, mapped to the service's port.",
        },
        PlanExample {
            memory: "",
            request: "my local 5000 to port 5000 on the api pod in namespace test",
            commands: &[
                "port-forward",
                "pod/api",
                "5000:5000",
                "--namespace",
                "test",
            ],
            explanation: "The pod in the namespace the request names.",
        },
    ],
};

const SUMMARY_TASK: &str = "Summarize a kubectl port-forward session for the user from its \
statistics: what was forwarded where, how long it ran, how it ended, the connections and bytes \
that went through (when traffic was watched), and any errors with a next step when one is \
useful, in a few short lines, no code fences.";

/// Ask for a port-forward plan for `request`.
pub fn plan_request(request: &str, ctx: &Context<'_>) -> LlmRequest {
    verbs::plan(request, "port-forward", ctx)
}

/// Ask for a summary of a session described by `session` (one `name: value` line each) and
/// what kubectl printed; `request` is what the user asked for, when the model planned it.
pub fn summary(
    session: &str,
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
    user.push(format!(
        "The session:\n<session>\n{}\n</session>",
        session.trim()
    ));
    let output = if output.trim().is_empty() {
        "(no output)"
    } else {
        output
    };
    user.push(format!(
        "What kubectl printed:\n<output>\n{output}\n</output>"
    ));
    LlmRequest {
        system: ctx.system(vec![
            SUMMARY_TASK.to_owned(),
            super::blocks::markup_guidance(),
            super::blocks::DATA_NOT_ORDERS.to_owned(),
        ]),
        user: ctx.user(user),
        model: None,
        response_schema: None,
        request_id: None,
    }
}
