//! How the model plans `kubectl patch` (changing fields of a live object): what to watch for,
//! and worked examples.

use super::blocks::PlanExample;
use super::verbs::Guide;

pub const GUIDE: Guide = Guide {
    verb: "patch",
    purpose: "changing a few fields of one live object",
    focus: "Name the object as KIND/NAME (or KIND NAME) and its namespace; give the change as \
        one JSON document in a single `-p` argument, with `--type=merge` for a plain change of \
        fields and `--type=json` only to remove or insert list items. Change only the fields \
        the request names.",
    summary: "Say which object changed and which fields now hold what; `(no change)` means the \
        object already had those values.",
    examples: &[
        PlanExample {
            memory: "",
            request: "give the web deployment in shop 4 replicas",
            commands: &[
                "patch",
                "deployment/web",
                "-n",
                "shop",
                "--type=merge",
                "-p",
                "{\"spec\":{\"replicas\":4}}",
            ],
            explanation: "A merge patch of the one field asked for.",
        },
        PlanExample {
            memory: "",
            request: "label node worker-2 as disk=ssd",
            commands: &[
                "patch",
                "node",
                "worker-2",
                "--type=merge",
                "-p",
                "{\"metadata\":{\"labels\":{\"disk\":\"ssd\"}}}",
            ],
            explanation: "Adds the label by merging it into the node's labels.",
        },
    ],
};
