//! How the model plans `kubectl wait` (waiting for a condition): what to watch for, and worked examples.

use super::blocks::PlanExample;
use super::verbs::Guide;

pub const GUIDE: Guide = Guide {
    verb: "wait",
    purpose: "waiting for a condition",
    focus: "Always give a `--timeout` (60s when the request names none) so the command \
        cannot wait forever, and a `--for` condition that the resource has \
        (`condition=Available` for deployments, `condition=Ready` for pods, `delete`).",
    summary: "Say whether each resource met the condition or the wait timed out, and what that means for the next step.",
    examples: &[
        PlanExample {
            memory: "",
            request: "until the web deployment is available",
            commands: &[
                "wait",
                "deployment/web",
                "--for=condition=Available",
                "--timeout=60s",
            ],
            explanation: "Waits for the Available condition, bounded by a timeout.",
        },
        PlanExample {
            memory: "",
            request: "for pod cache-0 to be ready, at most five minutes",
            commands: &[
                "wait",
                "pod/cache-0",
                "--for=condition=Ready",
                "--timeout=5m",
            ],
            explanation: "Waits for the Ready condition with the five-minute bound asked for.",
        },
    ],
};
