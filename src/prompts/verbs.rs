//! Planning prompts of the kubectl verbs that take `vibe "REQUEST"` (`create`, `delete`,
//! `scale`, `wait`, `diff`, `cluster-info`, `rollout`, and the reading verbs): the shared plan
//! prompt with what to watch for with this verb and a few worked examples.

use super::{Context, plan as base_plan};
use crate::llm::adapter::LlmRequest;

/// One worked example: a request and the `commands` that answer it.
struct Example {
    request: &'static str,
    commands: &'static [&'static str],
}

/// What the model is told about a verb: the points to keep in mind and examples.
struct Guide {
    verb: &'static str,
    focus: &'static str,
    examples: &'static [Example],
}

const GUIDES: &[Guide] = &[
    Guide {
        verb: "create",
        focus: "Create only what was asked for. Prefer the generator forms \
            (`create deployment NAME --image=IMAGE`, `create configmap NAME --from-literal=K=V`) \
            and name the namespace when the request gives one.",
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
    },
    Guide {
        verb: "delete",
        focus: "Deleting cannot be undone: target exactly the resources named, never use \
            `--all` or a broad label selector unless the request says so, and keep the \
            namespace explicit.",
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
    },
    Guide {
        verb: "scale",
        focus: "Give the replica count as `--replicas=N` and the resource as KIND/NAME; \
            scaling to zero stops the workload, so only do it when asked.",
        examples: &[
            Example {
                request: "run three copies of the api deployment",
                commands: &["scale", "deployment/api", "--replicas=3"],
            },
            Example {
                request: "stop the batch statefulset in etl for now",
                commands: &["scale", "statefulset/batch", "--replicas=0", "-n", "etl"],
            },
        ],
    },
    Guide {
        verb: "wait",
        focus: "Always give a `--timeout` (60s when the request names none) so the command \
            cannot wait forever, and a `--for` condition that the resource has \
            (`condition=Available` for deployments, `condition=Ready` for pods, `delete`).",
        examples: &[
            Example {
                request: "until the web deployment is available",
                commands: &[
                    "wait",
                    "deployment/web",
                    "--for=condition=Available",
                    "--timeout=60s",
                ],
            },
            Example {
                request: "for pod cache-0 to be ready, at most five minutes",
                commands: &[
                    "wait",
                    "pod/cache-0",
                    "--for=condition=Ready",
                    "--timeout=5m",
                ],
            },
        ],
    },
    Guide {
        verb: "diff",
        focus: "`diff` compares manifests with what the cluster has; it needs `-f FILE` or \
            `-k DIR`. It exits 1 when there are differences, which is not an error.",
        examples: &[
            Example {
                request: "what would change if I applied web.yaml",
                commands: &["diff", "-f", "web.yaml"],
            },
            Example {
                request: "compare the overlay in deploy/prod with the cluster",
                commands: &["diff", "-k", "deploy/prod"],
            },
        ],
    },
    Guide {
        verb: "cluster-info",
        focus: "`cluster-info` shows where the control plane and the cluster services run; \
            `cluster-info dump` prints a very large amount of data, so use it only when asked \
            and then with `--output-directory`.",
        examples: &[Example {
            request: "where is the control plane",
            commands: &["cluster-info"],
        }],
    },
    Guide {
        verb: "rollout",
        focus: "Use the subcommand that fits: `status` (give `--timeout=60s` so it ends), \
            `history`, `undo` (with `--to-revision=N` when a revision is named), `restart`, \
            `pause`, `resume`; the resource is KIND/NAME.",
        examples: &[
            Example {
                request: "is the web deployment done rolling out",
                commands: &["rollout", "status", "deployment/web", "--timeout=60s"],
            },
            Example {
                request: "go back to the previous version of api in shop",
                commands: &["rollout", "undo", "deployment/api", "-n", "shop"],
            },
            Example {
                request: "restart the workers so they pick up the new secret",
                commands: &["rollout", "restart", "deployment/workers"],
            },
        ],
    },
];

/// The plan request for `VERB vibe REQUEST`: the shared plan prompt, with the verb's guide
/// when it has one.
pub fn plan(request: &str, verb: &str, ctx: &Context<'_>) -> LlmRequest {
    let mut req = base_plan(request, Some(verb), ctx);
    if let Some(g) = GUIDES.iter().find(|g| g.verb == verb) {
        req.system.push(guide_text(g));
    }
    req
}

fn guide_text(g: &Guide) -> String {
    let mut s = format!("About `kubectl {}`: {}\nExamples:\n", g.verb, g.focus);
    for e in g.examples {
        let commands = serde_json::to_string(e.commands).unwrap_or_default();
        s.push_str(&format!(
            "- request \"{}\" -> {{\"commands\": {commands}, ...}}\n",
            e.request
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_guide_example_uses_its_verb_and_plans_carry_the_guide() {
        for g in GUIDES {
            assert!(!g.examples.is_empty(), "{}", g.verb);
            for e in g.examples {
                assert_eq!(e.commands[0], g.verb, "{}", e.request);
            }
            let req = plan("x", g.verb, &Context::default());
            assert!(req.system.iter().any(|s| s.contains(g.focus)), "{}", g.verb);
        }
        let get = plan("x", "get", &Context::default());
        assert_eq!(
            get.system.len(),
            2,
            "no guide for get: the shared prompt only"
        );
    }
}
