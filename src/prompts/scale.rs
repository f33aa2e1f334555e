//! How the model plans `kubectl scale` (scaling workloads): what to watch for, and worked examples.

use super::blocks::PlanExample;
use super::verbs::Guide;

pub const GUIDE: Guide = Guide {
    verb: "scale",
    purpose: "scaling workloads",
    focus: "Give the replica count as `--replicas=N` and the resource as KIND/NAME; \
        scaling to zero stops the workload, so only do it when asked.",
    summary: "Say which workload now asks for how many replicas; the pods follow over the next moments.",
    examples: &[
        PlanExample {
            memory: "",
            request: "run three copies of the api deployment",
            commands: &["scale", "deployment/api", "--replicas=3"],
            explanation: "Sets the deployment's replica count to three.",
        },
        PlanExample {
            memory: "",
            request: "stop the batch statefulset in etl for now",
            commands: &["scale", "statefulset/batch", "--replicas=0", "-n", "etl"],
            explanation: "Scales the statefulset to zero, as asked.",
        },
    ],
};
