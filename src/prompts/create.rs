//! How the model plans `kubectl create` (creating resources): what to watch for, and worked examples.

use super::blocks::PlanExample;
use super::verbs::Guide;

pub const GUIDE: Guide = Guide {
    verb: "create",
    purpose: "creating resources",
    focus: "Create only what was asked for. Prefer the generator forms \
        (`create deployment NAME --image=IMAGE`, `create configmap NAME --from-literal=K=V`) \
        and name the namespace when the request gives one.",
    summary: "Say what was created (kind, name, namespace) and anything kubectl refused or warned about.",
    examples: &[
        PlanExample {
            memory: "",
            request: "an nginx deployment called front with 2 replicas",
            commands: &[
                "create",
                "deployment",
                "front",
                "--image=nginx",
                "--replicas=2",
            ],
            explanation: "A deployment from the nginx image with the replicas asked for.",
        },
        PlanExample {
            memory: "",
            request: "a namespace for the billing team",
            commands: &["create", "namespace", "billing"],
            explanation: "A namespace named after the team.",
        },
    ],
};
