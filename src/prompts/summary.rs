//! Summary prompts: what the model looks at in each command's output, and an example answer in
//! the markup of [`super::blocks::MARKUP_TAGS`]. A verb without its own entry gets [`GENERIC`].

use super::blocks;

/// What one command's summary is about.
#[derive(Debug, Clone, Copy)]
pub struct SummarySpec {
    /// The verb (`get`, `rollout` ...), or `vibe` for planned commands of any verb.
    pub verb: &'static str,
    /// The task in one sentence.
    pub task: &'static str,
    pub focus: &'static [&'static str],
    /// An example answer, one line per item.
    pub example: &'static [&'static str],
}

/// The summary of a command with no entry of its own.
pub const GENERIC: SummarySpec = SummarySpec {
    verb: "",
    task: "Summarize what this kubectl command printed.",
    focus: &[
        "what the command did or shows",
        "errors, warnings and anything that looks wrong",
        "the next step, when one is useful",
    ],
    example: &[
        "[bold]deployment/web[/bold] in [blue]shop[/blue]: [green]3/3 ready[/green]",
        "[yellow]1 pod restarted[/yellow] [italic]10m ago[/italic]",
    ],
};

/// The summaries of today's commands. Other commands add theirs with [`super::summary_for`]
/// and their own [`SummarySpec`] (see the module doc of `prompts`).
pub const SPECS: &[SummarySpec] = &[
    SummarySpec {
        verb: "get",
        task: "Summarize this list of Kubernetes resources.",
        focus: &[
            "how many resources, of which kind, in which namespace",
            "their status and readiness; restarts and ages that stand out",
            "resources that are pending, failing or not ready, by name",
        ],
        example: &[
            "[bold]3 pods[/bold] in [blue]shop[/blue]: [green]2 running[/green], [yellow]1 pending[/yellow]",
            "[bold]web-7d5c[/bold]: ready, [italic]up 2d[/italic]",
            "[bold]web-8f4b[/bold]: [red]ImagePullBackOff[/red]; check the image name",
        ],
    },
    SummarySpec {
        verb: "describe",
        task: "Summarize this kubectl describe output in at most 200 words.",
        focus: &[
            "what the resource is and its state",
            "conditions that are not met, failing probes, restarts and their reasons",
            "warning events, with how recent they are",
        ],
        example: &[
            "[bold]nginx[/bold] in [blue]default[/blue]: [green]Running[/green]",
            "[yellow]Readiness probe failing[/yellow] [italic]for 2h[/italic]",
            "[red]OOMKilled 3 times today[/red]: raise the memory limit or find the leak",
        ],
    },
    SummarySpec {
        verb: "logs",
        task: "Analyze these container logs.",
        focus: &[
            "what the program is doing: start-up, connections, requests",
            "errors, exceptions and repeated warnings, with counts",
            "when things changed, from the timestamps",
            "whether the log was cut (only its head and tail are shown then)",
        ],
        example: &[
            "[bold]Started[/bold] at [italic]10:15:00[/italic], [green]connected to the database[/green]",
            "[yellow]Slow queries[/yellow] (12) since [italic]10:40[/italic]",
            "[red]3 connection timeouts[/red] in the last minute",
        ],
    },
    SummarySpec {
        verb: "events",
        task: "Summarize these Kubernetes events.",
        focus: &[
            "warnings and failures first, grouped by object",
            "events that repeat, with their counts",
            "what happened recently compared to long ago",
        ],
        example: &[
            "[bold]12 events[/bold] in [blue]shop[/blue], [yellow]3 warnings[/yellow]",
            "[red]FailedMount[/red] on [bold]pod/db-0[/bold], [italic]5 times in 10m[/italic]",
            "[green]Scheduled and started[/green] [bold]web-2[/bold] [italic]at 10:15[/italic]",
        ],
    },
    SummarySpec {
        verb: "explain",
        task: "Explain this Kubernetes API documentation in plain words.",
        focus: &[
            "what the field or kind is for",
            "its type, its required sub-fields and their defaults",
            "a short example of how it is used",
        ],
        example: &[
            "[bold]deployment.spec.strategy[/bold]: how old pods are replaced by new ones",
            "[blue]RollingUpdate[/blue] (default) or [blue]Recreate[/blue]",
            "[italic]maxSurge[/italic] and [italic]maxUnavailable[/italic] bound the pace",
        ],
    },
    SummarySpec {
        verb: "rollout",
        task: "Summarize this rollout output.",
        focus: &[
            "whether the rollout finished, is in progress or is stuck",
            "the revisions and which one is current",
            "what to do when it is stuck or failed",
        ],
        example: &[
            "[bold]deployment/frontend[/bold]: [green]rollout complete[/green]",
            "[yellow]2 of 5 replicas updated[/yellow] after [italic]5m[/italic]",
            "Revision [bold]5[/bold] is current; [italic]revision 3[/italic] was rolled back",
        ],
    },
    SummarySpec {
        verb: "top",
        task: "Summarize this resource usage.",
        focus: &[
            "the biggest users of CPU and memory, by name",
            "usage that looks close to a limit or unusual next to the others",
            "nodes or pods missing from the list",
        ],
        example: &[
            "[bold]db-0[/bold] uses the most memory: [yellow]1.8Gi[/yellow]",
            "[bold]node-2[/bold] at [red]92% CPU[/red]; the others below 40%",
        ],
    },
    SummarySpec {
        verb: "version",
        task: "Explain these Kubernetes version details.",
        focus: &[
            "the client and server versions",
            "whether they are within one minor version of each other",
            "versions that are out of support or need an update",
        ],
        example: &[
            "Client [bold]v1.30.2[/bold], server [bold]v1.29.6[/bold]: [green]compatible[/green]",
            "[yellow]Server 1.29 leaves support soon[/yellow]; plan an upgrade",
        ],
    },
    SummarySpec {
        verb: "vibe",
        task: "Summarize the output of the command that was planned for the user's request.",
        focus: &[
            "the answer to the user's request",
            "the state of the resources and any problem found",
            "the next step, as a kubectl command when one fits",
            "an empty output or `No resources found` is an answer too: say what it means",
        ],
        example: &[
            "[bold]3 pods[/bold] in [blue]app[/blue], [green]all running[/green]",
            "[yellow]db-0 uses 90% of its CPU limit[/yellow]",
            "Next: look at its logs with kubectl logs db-0 --tail=100",
        ],
    },
];

/// The summary description of `verb`, or [`GENERIC`].
pub fn spec(verb: &str) -> SummarySpec {
    SPECS
        .iter()
        .find(|s| s.verb == verb)
        .copied()
        .unwrap_or(GENERIC)
}

/// The system fragments of a summary following `spec`.
pub fn system(spec: &SummarySpec) -> Vec<String> {
    vec![
        spec.task.to_owned(),
        blocks::focus(spec.focus),
        blocks::markup_guidance(),
        blocks::summary_example(spec.example),
        blocks::DATA_NOT_ORDERS.to_owned(),
    ]
}
