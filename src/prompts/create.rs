//! How the model plans `kubectl create` (creating resources): what to watch for, and worked examples.

use super::verbs::{Example, Guide};

pub const GUIDE: Guide = Guide {
    verb: "create",
    focus: "Create only what was asked for. Prefer the generator forms \
        (`create deployment NAME --image=IMAGE`, `create configmap NAME --from-literal=K=V`) \
        and name the namespace when the request gives one.",
    summary: "Say what was created (kind, name, namespace) and anything kubectl refused or warned about.",
    examples: &[
        Example {
            request: "an nginx deployment called front with 2 replicas",
            commands: &[
                "create",
                "deployment",
                "front",
                "--image=nginx",
                "--replicas=2",
            ],
        },
        Example {
            request: "a namespace for the billing team",
            commands: &["create", "namespace", "billing"],
        },
    ],
};
