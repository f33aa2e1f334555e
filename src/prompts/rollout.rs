//! How the model plans `kubectl rollout` (managing rollouts): what to watch for, and worked examples.

use super::blocks::PlanExample;
use super::verbs::Guide;

pub const GUIDE: Guide = Guide {
    verb: "rollout",
    purpose: "managing rollouts",
    focus: "Use the subcommand that fits: `status` (give `--timeout=60s` so it ends), \
        `history`, `undo` (with `--to-revision=N` when a revision is named), `restart`, \
        `pause`, `resume`; the resource is KIND/NAME.",
    summary: "Say whether the rollout finished, is still progressing or is stuck (and why), or what the history, undo, restart, pause or resume did.",
    examples: &[
        PlanExample {
            memory: "",
            request: "is the web deployment done rolling out",
            commands: &["rollout", "status", "deployment/web", "--timeout=60s"],
            explanation: "Reports the rollout's progress, bounded by a timeout.",
        },
        PlanExample {
            memory: "",
            request: "go back to the previous version of api in shop",
            commands: &["rollout", "undo", "deployment/api", "-n", "shop"],
            explanation: "Rolls the deployment back to its previous revision.",
        },
        PlanExample {
            memory: "",
            request: "restart the workers so they pick up the new secret",
            commands: &["rollout", "restart", "deployment/workers"],
            explanation: "Restarts the pods of the deployment one by one.",
        },
    ],
};
