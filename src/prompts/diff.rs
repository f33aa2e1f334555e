//! How the model plans `kubectl diff` (comparing manifests with the cluster): what to watch for, and worked examples.

use super::blocks::PlanExample;
use super::verbs::Guide;

pub const GUIDE: Guide = Guide {
    verb: "diff",
    purpose: "comparing manifests with the cluster",
    focus: "`diff` compares manifests with what the cluster has; it needs `-f FILE` or \
        `-k DIR`. It exits 1 when there are differences, which is not an error.",
    summary: "Say what would change, object by object: lines starting with `+` are what the manifests would set, `-` what the cluster has now; call out changes that restart pods (image, env, resources) or remove things.",
    examples: &[
        PlanExample {
            memory: "",
            request: "what would change if I applied web.yaml",
            commands: &["diff", "-f", "web.yaml"],
            explanation: "Shows the changes applying the file would make, without making them.",
        },
        PlanExample {
            memory: "",
            request: "compare the overlay in deploy/prod with the cluster",
            commands: &["diff", "-k", "deploy/prod"],
            explanation: "Diffs the kustomize overlay against the live objects.",
        },
    ],
};
