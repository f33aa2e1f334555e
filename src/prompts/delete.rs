//! How the model plans `kubectl delete` (deleting resources): what to watch for, and worked examples.

use super::verbs::{Example, Guide};

pub const GUIDE: Guide = Guide {
    verb: "delete",
    focus: "Deleting cannot be undone: target exactly the resources named, never use \
        `--all` or a broad label selector unless the request says so, and keep the \
        namespace explicit.",
    summary: "Say what was deleted, in which namespace, and what was not found or is still terminating.",
    examples: &[
        Example {
            request: "the crashing pod worker-7 in jobs",
            commands: &["delete", "pod", "worker-7", "-n", "jobs"],
        },
        Example {
            request: "the configmap old-settings",
            commands: &["delete", "configmap", "old-settings"],
        },
    ],
};
