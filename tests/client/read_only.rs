//! Read-only mode (`--read-only`, `security.read_only`, a profile's `security.read_only`):
//! every typed or planned kubectl command that can change the cluster or reach into it, and
//! every verb vibectl does not know, is refused before anything runs; reads go through.

use vibectl::config::generated::client::key;

use super::{Client, PODS, plan_json};
use crate::support::mock::MockProvider;

/// Commands that must be refused, with the verb the error must name.
const REFUSED: &[(&str, &str)] = &[
    ("apply -f web.yaml", "apply"),
    ("create deployment web --image=nginx", "create"),
    ("delete pod web-1", "delete"),
    ("edit deployment/web", "edit"),
    ("patch deployment web -p {}", "patch"),
    ("replace -f web.yaml", "replace"),
    ("scale deployment/web --replicas=2", "scale"),
    ("autoscale deployment web --max=3", "autoscale"),
    ("rollout restart deployment/web", "rollout restart"),
    ("rollout undo deployment/web", "rollout undo"),
    ("rollout pause deployment/web", "rollout pause"),
    ("rollout resume deployment/web", "rollout resume"),
    ("label pod web-1 tier=web", "label"),
    ("annotate pod web-1 note=x", "annotate"),
    ("set image deployment/web web=nginx:2", "set"),
    ("taint nodes node-1 dedicated=db:NoSchedule", "taint"),
    ("cordon node-1", "cordon"),
    ("uncordon node-1", "uncordon"),
    ("drain node-1", "drain"),
    ("exec web-1 -- sh", "exec"),
    ("cp web-1:/etc/passwd ./passwd", "cp"),
    ("attach web-1", "attach"),
    ("port-forward web-1 8080:80", "port-forward"),
    ("proxy", "proxy"),
    ("debug web-1 --image=busybox", "debug"),
    ("run tmp --image=busybox", "run"),
    ("expose deployment web --port=80", "expose"),
    ("certificate approve csr-1", "certificate approve"),
    ("certificate deny csr-1", "certificate deny"),
    ("-n shop delete pod web-1", "delete"),
    // Verbs and flags vibectl does not know fail closed.
    ("frobnicate pods", "frobnicate"),
    ("--mystery get pods", "--mystery"),
];

fn args(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[tokio::test]
async fn every_changing_or_unknown_verb_is_refused_before_kubectl_runs() {
    let client = Client::with_pods();
    client.write(&format!(
        "core:\n  kubectl_command: {}\n",
        client.kubectl().display()
    ));
    for (line, verb) in REFUSED {
        let mut a = vec!["--read-only", "--yes", "just"];
        a.extend(args(line));
        let out = client.fails(&a);
        assert!(
            out.stderr.contains(&format!("`{verb}`")),
            "`{line}`: the error does not name `{verb}`\n{out}"
        );
        assert!(
            out.stderr.contains("read-only mode (--read-only)"),
            "`{line}`: the error does not name the flag\n{out}"
        );
    }
    assert!(
        client.kubectl_runs().is_empty(),
        "{:?}",
        client.kubectl_runs()
    );
    // The same commands run when read-only mode is off: the refusal was read-only mode's.
    client
        .run(&["just", "delete", "pod", "web-1"])
        .assert_success();
    assert_eq!(client.kubectl_runs(), ["delete pod web-1"]);
}

#[tokio::test]
async fn reads_go_through_and_the_key_names_itself() {
    let mock = MockProvider::start(&["--reply", "All is well."]);
    let client = Client::with_pods();
    client.configure(
        &mock,
        true,
        "memory:\n  enabled: false\nsecurity:\n  read_only: true\n",
    );
    let reads: [&[&str]; 6] = [
        &["get", "pods"],
        &["describe", "pod", "web-1"],
        &["logs", "web-1"],
        &["events"],
        &["top", "pods"],
        &["explain", "pods"],
    ];
    for a in reads {
        let out = client.run(a);
        out.assert_success();
        assert_eq!(out.stdout, "All is well.\n", "{out}");
    }
    assert_eq!(
        client.kubectl_runs(),
        [
            "get pods",
            "describe pod web-1",
            "logs web-1",
            "events",
            "top pods",
            "explain pods"
        ]
    );
    let out = client.fails(&["rollout", "restart", "deployment/web"]);
    assert!(
        out.stderr
            .contains(&format!("read-only mode ({})", key::SECURITY_READ_ONLY)),
        "{out}"
    );
    assert!(out.stderr.contains("`rollout restart`"), "{out}");
    assert_eq!(client.kubectl_runs().len(), 6, "the restart did not run");
}

#[tokio::test]
async fn a_planned_change_is_refused_even_with_yes() {
    let plan = plan_json(&["delete", "pod", "web-1"], "remove the pod");
    let mock = MockProvider::start(&["--reply", &plan]);
    let client = Client::new(PODS, "", 0);
    client.configure(&mock, true, "memory:\n  enabled: false\n");
    let out = client.fails(&["--read-only", "--yes", "vibe", "delete web-1"]);
    assert!(out.stderr.contains("`delete`"), "{out}");
    assert!(out.stderr.contains("--read-only"), "{out}");
    assert!(client.kubectl_runs().is_empty());
    // The planned command was shown, so the user sees what was refused.
    assert!(out.stdout.contains("kubectl delete pod web-1"), "{out}");
}
