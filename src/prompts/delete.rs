//! How the model plans `kubectl delete` (deleting resources): what to watch for, and worked examples.

use super::blocks::PlanExample;
use super::verbs::Guide;

pub const GUIDE: Guide = Guide {
    verb: "delete",
    purpose: "deleting resources",
    focus: "Deleting cannot be undone: target exactly the resources named, never use \
        `--all` or a broad label selector unless the request says so, and keep the \
        namespace explicit.",
    summary: "Say what was deleted, in which namespace, and what was not found or is still terminating.",
    examples: &[
        PlanExample {
            memory: "",
            request: "the crashing pod worker-7 in jobs",
            commands: &["delete", "pod", "worker-7", "-n", "jobs"],
            explanation: "Deletes the one pod named, in its namespace.",
        },
        PlanExample {
            memory: "",
            request: "the configmap old-settings",
            commands: &["delete", "configmap", "old-settings"],
            explanation: "Deletes the one configmap named.",
        },
    ],
};
