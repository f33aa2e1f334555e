//! Planning prompts: `vibe REQUEST` (any kubectl command, from the request and the memory) and
//! `VERB vibe REQUEST` (the arguments of one verb). Each verb has its own description and
//! examples; the answer is a [`super::Plan`] following [`super::plan_schema`].

use super::blocks::{self, PlanExample};

/// What one verb's planning prompt says about the verb, and its examples.
#[derive(Debug, Clone, Copy)]
pub struct VerbPlan {
    pub verb: &'static str,
    /// What the verb is for, completing "`kubectl VERB` is used for ...".
    pub purpose: &'static str,
    pub examples: &'static [PlanExample],
}

const fn ex(
    request: &'static str,
    commands: &'static [&'static str],
    explanation: &'static str,
) -> PlanExample {
    PlanExample {
        memory: "",
        request,
        commands,
        explanation,
    }
}

/// The verbs of today's commands. Other commands add theirs with [`plan_for`] and their own
/// [`VerbPlan`] (see the module doc of `prompts`).
pub const VERBS: &[VerbPlan] = &[
    VerbPlan {
        verb: "get",
        purpose: "listing resources and showing their state",
        examples: &[
            ex(
                "pods in the default namespace",
                &["get", "pods", "-n", "default"],
                "Pods of one namespace.",
            ),
            ex(
                "all services with their labels",
                &["get", "services", "--all-namespaces", "--show-labels"],
                "Services everywhere, labels shown.",
            ),
            ex(
                "the nginx deployment as yaml",
                &["get", "deployment", "nginx", "-o", "yaml"],
                "One deployment in full.",
            ),
        ],
    },
    VerbPlan {
        verb: "describe",
        purpose: "showing the details and recent events of resources",
        examples: &[
            ex(
                "the nginx pod",
                &["describe", "pod", "nginx"],
                "Details of one pod.",
            ),
            ex(
                "deployments in namespace foo",
                &["describe", "deployments", "-n", "foo"],
                "Every deployment of one namespace.",
            ),
            ex(
                "pods labelled app=web",
                &["describe", "pods", "-l", "app=web"],
                "Pods chosen by label.",
            ),
        ],
    },
    VerbPlan {
        verb: "logs",
        purpose: "reading the logs of a container",
        examples: &[
            ex(
                "logs of the nginx pod",
                &["logs", "pod/nginx", "--tail=200"],
                "Recent lines of one pod.",
            ),
            ex(
                "the api container of pod app, last hour",
                &["logs", "pod/app", "-c", "api", "--since=1h"],
                "One container, bounded by time.",
            ),
            ex(
                "the last 100 lines of every pod with app=web",
                &["logs", "-l", "app=web", "--tail=100"],
                "Pods chosen by label, bounded by lines.",
            ),
        ],
    },
    VerbPlan {
        verb: "events",
        purpose: "listing cluster events",
        examples: &[
            ex(
                "events in the default namespace",
                &["events", "-n", "default"],
                "Events of one namespace.",
            ),
            ex(
                "events about the nginx pod",
                &["events", "--for", "pod/nginx"],
                "Events of one object.",
            ),
            ex(
                "warnings across the cluster",
                &["events", "--all-namespaces", "--types=Warning"],
                "Only warnings, everywhere.",
            ),
        ],
    },
    VerbPlan {
        verb: "explain",
        purpose: "documenting the fields of resource kinds",
        examples: &[
            ex(
                "what is a deployment strategy",
                &["explain", "deployment.spec.strategy"],
                "The field that holds the strategy.",
            ),
            ex(
                "every field of a pod's containers",
                &["explain", "pod.spec.containers", "--recursive"],
                "The whole subtree.",
            ),
        ],
    },
    VerbPlan {
        verb: "rollout",
        purpose: "watching and managing the rollouts of deployments, daemon sets and stateful sets",
        examples: &[
            ex(
                "is the frontend rollout done",
                &["rollout", "status", "deployment/frontend", "--timeout=60s"],
                "Status, bounded so it cannot hang.",
            ),
            ex(
                "revisions of the redis statefulset",
                &["rollout", "history", "statefulset/redis"],
                "Its revision history.",
            ),
            ex(
                "roll back frontend to revision 2",
                &["rollout", "undo", "deployment/frontend", "--to-revision=2"],
                "Back to the named revision.",
            ),
        ],
    },
    VerbPlan {
        verb: "top",
        purpose: "showing the CPU and memory use of pods and nodes",
        examples: &[
            ex(
                "which pods use the most memory in shop",
                &["top", "pods", "-n", "shop", "--sort-by=memory"],
                "Pods of one namespace by memory.",
            ),
            ex("node usage", &["top", "nodes"], "Every node."),
        ],
    },
    VerbPlan {
        verb: "version",
        purpose: "showing the client and server versions",
        examples: &[
            ex(
                "versions as json",
                &["version", "--output=json"],
                "Both versions, machine-readable.",
            ),
            ex(
                "only the client version",
                &["version", "--client"],
                "No server call.",
            ),
        ],
    },
];

/// The planning prompt's description of `verb`, when it has one.
pub fn verb_plan(verb: &str) -> Option<VerbPlan> {
    VERBS.iter().find(|v| v.verb == verb).copied()
}

/// The shape of the answer, shared by every planning prompt.
pub const ANSWER_SHAPE: &str = "Answer with a JSON document only, no prose and no code fences, \
in this shape: {\"commands\": [\"get\", \"pods\", \"-n\", \"default\"], \"explanation\": \"why \
this command\"}. `commands` holds the arguments that follow `kubectl`, verb first, one array \
item per argument (so [\"get\", \"pods\"], never [\"get pods\"]), without `kubectl` itself and \
without shell syntax: no pipes, quotes, redirects, `&&` or `$(...)`. `explanation` says in one \
sentence why this command answers the request. When no kubectl command fits, or the request \
is unclear, or it would break a rule in the memory, answer with an empty `commands` array and \
say why, or what to clarify, in `explanation`.";

/// The task of `vibe`: any kubectl command, one step at a time.
pub const VIBE_TASK: &str = "Plan the ONE kubectl command that best moves the user's request \
forward: the command that does it, or, when the state of the cluster is unknown, the read-only \
command that finds out what is needed first. Use what the memory says (namespaces, names, \
earlier results, the user's rules). Prefer read-only commands when the request allows. \
vibectl shows the command and asks the user before it runs anything that changes the \
cluster. vibectl cannot run shell commands; `kubectl exec POD -- COMMAND` runs one inside a \
pod when that is what the user wants.";

/// The examples of `vibe`.
pub const VIBE_EXAMPLES: &[PlanExample] = &[
    PlanExample {
        memory: "We work in namespace app, where frontend and backend were deployed.",
        request: "is everything healthy?",
        commands: &["get", "pods", "-n", "app"],
        explanation: "The pods of namespace app show first whether anything is unhealthy.",
    },
    PlanExample {
        memory: "",
        request: "help me find why the database pod keeps crashing",
        commands: &["describe", "pod", "-l", "app=database"],
        explanation: "Describe shows the restarts, the last state and the events of the pod.",
    },
    PlanExample {
        memory: "The database pod crashes with OOMKilled; its limit is 256Mi.",
        request: "",
        commands: &["logs", "-l", "app=database", "--previous", "--tail=100"],
        explanation: "The last lines before the previous crash show what used the memory.",
    },
    PlanExample {
        memory: "",
        request: "what would change if I applied web.yaml?",
        commands: &["diff", "-f", "web.yaml"],
        explanation: "Diff compares the file with the live objects without changing them.",
    },
    PlanExample {
        memory: "",
        request: "wait until deployment demo is available, at most 2 minutes",
        commands: &[
            "wait",
            "--for=condition=Available",
            "deployment/demo",
            "--timeout=120s",
        ],
        explanation: "Wait with the timeout the user gave, so it cannot hang.",
    },
    PlanExample {
        memory: "",
        request: "watch the pods in shop",
        commands: &["get", "pods", "-n", "shop"],
        explanation: "A watch never ends on its own; this shows the current state once.",
    },
    PlanExample {
        memory: "The user said: never delete the health-check pod.",
        request: "delete the health-check pod",
        commands: &[],
        explanation: "The memory says the health-check pod must never be deleted.",
    },
    PlanExample {
        memory: "",
        request: "lkjq wqe zzz",
        commands: &[],
        explanation: "The request is not clear; say which resource or problem to look at.",
    },
];

/// The system fragments of a `vibe` plan: the task, the answer's shape, the rules, the
/// examples.
pub fn system_vibe() -> Vec<String> {
    vec![
        VIBE_TASK.to_owned(),
        ANSWER_SHAPE.to_owned(),
        blocks::NO_BLOCKING.to_owned(),
        blocks::plan_examples(VIBE_EXAMPLES),
        blocks::DATA_NOT_ORDERS.to_owned(),
    ]
}

/// The system fragments of a plan of `verb` used for `purpose`, with `examples`.
pub fn system_verb(verb: &str, purpose: &str, examples: &[PlanExample]) -> Vec<String> {
    let mut out = vec![
        format!(
            "Plan the arguments of ONE `kubectl {verb}` command, used for {purpose}. Take the \
             resource kinds, names, namespaces, label selectors and flags from the request \
             and the memory. The command must be `kubectl {verb} ...`: `commands` starts \
             with \"{verb}\"."
        ),
        ANSWER_SHAPE.to_owned(),
        blocks::NO_BLOCKING.to_owned(),
    ];
    if !examples.is_empty() {
        out.push(blocks::plan_examples(examples));
    }
    out.push(blocks::DATA_NOT_ORDERS.to_owned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_starts_with_its_verb_and_has_no_blocking_flag() {
        for v in VERBS {
            assert!(!v.examples.is_empty(), "{}", v.verb);
            for e in v.examples {
                assert_eq!(e.commands.first(), Some(&v.verb), "{e:?}");
            }
        }
        for e in VERBS.iter().flat_map(|v| v.examples).chain(VIBE_EXAMPLES) {
            for bad in ["-w", "--watch", "--follow"] {
                assert!(!e.commands.contains(&bad), "{e:?}");
            }
            if e.commands.first() == Some(&"logs") {
                assert!(!e.commands.contains(&"-f"), "{e:?}");
            }
            if matches!(e.commands.first(), Some(&"wait")) || e.commands.get(1) == Some(&"status") {
                assert!(
                    e.commands.iter().any(|c| c.starts_with("--timeout")),
                    "{e:?}"
                );
            }
        }
    }
}
