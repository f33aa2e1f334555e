//! How the model plans `kubectl cluster-info` (the cluster's endpoints): what to watch for, and worked examples.

use super::blocks::PlanExample;
use super::verbs::Guide;

pub const GUIDE: Guide = Guide {
    verb: "cluster-info",
    purpose: "the cluster's endpoints",
    focus: "`cluster-info` shows where the control plane and the cluster services run; \
        `cluster-info dump` prints a very large amount of data, so use it only when asked \
        and then with `--output-directory`.",
    summary: "Say where the control plane and the listed cluster services run, and whether anything looks unreachable.",
    examples: &[PlanExample {
        memory: "",
        request: "where is the control plane",
        commands: &["cluster-info"],
        explanation: "Prints the addresses of the control plane and core services.",
    }],
};
