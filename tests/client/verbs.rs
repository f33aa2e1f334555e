//! The kubectl verbs that summarize (`create`, `delete`, `scale`, `wait`, `diff`,
//! `cluster-info`, `patch`, `rollout SUB`), each typed and as `VERB vibe`, in direct mode and
//! through our server, with the real kubectl against the stub API server where it matters.

use base64::Engine;
use serde_json::json;

use super::{Client, plan_json};
use crate::support::kube_api::KubeApi;
use crate::support::mock::MockProvider;

use super::scripted::Mode;
pub(super) use super::scripted::connect;

/// Direct first, then through a fresh server of ours holding the key.
pub(super) const BOTH: [Mode; 2] = [Mode::Direct, Mode::Proxy];

/// A marker making the mock answer `reply` (which may hold `,` and `]]`).
pub(super) fn reply_marker(reply: &str) -> String {
    format!(
        "[[mock:reply_b64={}]]",
        base64::engine::general_purpose::STANDARD.encode(reply)
    )
}

/// A valid deployment `name` with `replicas`, as the stub stores it.
pub(super) fn deployment(name: &str, replicas: i64) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": "nginx:1.27"}]}
            }
        }
    })
}

const MEMORY_OFF: &str = "memory:\n  enabled: false\n";

#[tokio::test]
async fn typed_verbs_run_the_real_kubectl_and_print_the_summary() {
    for via in BOTH {
        let api = KubeApi::start();
        api.seed(deployment("web", 1));
        let mock = MockProvider::start(&["--reply", "Done."]);
        let client = Client::with_pods();
        let _server = connect(via, &client, &mock, MEMORY_OFF);
        client.use_real_kubectl(&api);
        // The stub speaks JSON only, so objects are created from files (kubectl's generator
        // forms send protobuf); the fake kubectl covers those forms elsewhere.
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "settings"}, "data": {"mode": "fast"}});
        std::fs::write(client.path().join("cm.json"), cm.to_string()).expect("write");
        for args in [
            &["create", "-f", "cm.json"][..],
            &["scale", "deployment/web", "--replicas=3"],
            &["rollout", "status", "deployment/web", "--timeout=20s"],
            &["cluster-info"],
            &["delete", "configmap", "settings"],
        ] {
            let out = client.run(args);
            out.assert_success();
            assert_eq!(out.stdout, "Done.\n", "{via:?}\n{out}");
        }
        assert_eq!(
            api.object("deployments", "default", "web").expect("web")["spec"]["replicas"],
            3,
            "{via:?}"
        );
        assert!(api.object("configmaps", "default", "settings").is_none());
        let reqs = mock.requests().await;
        assert_eq!(reqs.len(), 5, "{via:?}: one summary per command");
        let text = reqs[0]["body"].to_string();
        assert!(text.contains("configmap/settings created"), "{text}");
        let text = reqs[2]["body"].to_string();
        assert!(text.contains("successfully rolled out"), "{text}");
    }
}

/// `wait` keeps running until its condition holds: it gets the live display (plain lines when
/// stdout is not a terminal, then how it ended, then the summary), typed and planned; a `wait`
/// that times out is kubectl's failure, with vibectl's exit non-zero and no summary.
#[tokio::test]
async fn wait_runs_in_the_live_display_and_its_timeout_is_a_failure() {
    for via in BOTH {
        let api = KubeApi::start();
        api.seed(deployment("web", 1));
        let plan = plan_json(
            &[
                "deployment/web",
                "--for=condition=Available",
                "--timeout=20s",
            ],
            "until web is available",
        );
        let mock = MockProvider::start(&["--reply", "Done."]);
        let client = Client::with_pods();
        let _server = connect(via, &client, &mock, MEMORY_OFF);
        client.use_real_kubectl(&api);
        let out = client.run(&[
            "wait",
            "deployment/web",
            "--for=condition=Available",
            "--timeout=20s",
        ]);
        out.assert_success();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{via:?}\n{out}");
        assert_eq!(lines[0], "deployment.apps/web condition met", "{out}");
        assert!(
            lines[1].starts_with("Ended (kubectl exited) after ")
                && lines[1].ends_with(": 1 lines streamed"),
            "{out}"
        );
        assert_eq!(lines[2], "Done.", "{out}");
        let text = mock.requests().await[0]["body"].to_string();
        assert!(text.contains("condition met"), "{text}");

        let request = format!("wait for web {}", reply_marker(&plan));
        let out = client.run(&["wait", "vibe", &request]);
        out.assert_success();
        assert!(
            out.stdout.starts_with(
                "$ kubectl wait deployment/web --for=condition=Available --timeout=20s\n"
            ),
            "{via:?}\n{out}"
        );
        assert!(
            out.stdout
                .contains("\ndeployment.apps/web condition met\nEnded (kubectl exited) after "),
            "planned wait in the live display: {out}"
        );
        assert_eq!(mock.requests().await.len(), 3, "plan and two summaries");

        // A condition the stub never reports: kubectl's own timeout ends the wait, a failure.
        let out = client.run(&[
            "wait",
            "deployment/web",
            "--for=condition=Frozen",
            "--timeout=1s",
        ]);
        assert_eq!(out.status.code(), Some(1), "{via:?}\n{out}");
        assert!(out.stderr.contains("timed out waiting"), "{out}");
        assert!(
            out.stderr.contains(
                "`kubectl wait deployment/web --for=condition=Frozen --timeout=1s` failed with exit status 1"
            ),
            "{out}"
        );
        assert!(
            !out.stdout.contains("Done."),
            "no summary of a failure: {out}"
        );
        assert_eq!(mock.requests().await.len(), 3, "{via:?}");
    }
}

#[tokio::test]
async fn diff_with_differences_is_not_a_failure_but_a_diff_error_is() {
    for via in BOTH {
        let api = KubeApi::start();
        api.seed(deployment("web", 1));
        let mock = MockProvider::start(&["--reply", "Replicas go from 1 to 4."]);
        let client = Client::with_pods();
        let _server = connect(via, &client, &mock, MEMORY_OFF);
        client.use_real_kubectl(&api);
        let changed = serde_json::to_string(&deployment("web", 4)).expect("json");
        std::fs::write(client.path().join("web.json"), changed).expect("write");
        let out = client.run(&["diff", "-f", "web.json"]);
        out.assert_success();
        assert_eq!(out.stdout, "Replicas go from 1 to 4.\n", "{via:?}\n{out}");
        let reqs = mock.requests().await;
        let text = reqs[0]["body"].to_string();
        assert!(
            text.contains("replicas: 4"),
            "the diff reached the model: {text}"
        );
        assert!(
            text.contains("object by object"),
            "the diff summary guide: {text}"
        );
        // Nothing was changed: kubectl's diff is a dry run.
        assert_eq!(
            api.object("deployments", "default", "web").expect("web")["spec"]["replicas"],
            1
        );
        // A file that does not exist: kubectl diff exits above 1, which is a failure.
        let out = client.fails(&["diff", "-f", "missing.yaml"]);
        assert!(
            out.stderr.contains("`kubectl diff -f missing.yaml` failed"),
            "{out}"
        );
        // A failure is not summarized; the model is asked how to recover from kubectl's error.
        let reqs = mock.requests().await;
        assert_eq!(reqs.len(), 2, "one recovery call after the failure");
        let text = reqs[1]["body"].to_string();
        assert!(
            text.contains("missing.yaml"),
            "kubectl's error reached the recovery call: {text}"
        );
    }
}

#[tokio::test]
async fn verb_vibe_plans_a_command_of_that_verb_with_its_guide() {
    for via in BOTH {
        let api = KubeApi::start();
        api.seed(deployment("web", 1));
        let plan = plan_json(&["deployment/web", "--replicas=2"], "two copies");
        let mock = MockProvider::start(&["--reply", &plan]);
        let client = Client::with_pods();
        let _server = connect(via, &client, &mock, MEMORY_OFF);
        client.use_real_kubectl(&api);
        let out = client.run(&["scale", "vibe", "run two copies of web", "--yes"]);
        out.assert_success();
        assert!(
            out.stdout
                .starts_with("$ kubectl scale deployment/web --replicas=2\n  two copies\n"),
            "{via:?}\n{out}"
        );
        assert_eq!(
            api.object("deployments", "default", "web").expect("web")["spec"]["replicas"],
            2
        );
        let reqs = mock.requests().await;
        let system = reqs[0]["body"]["messages"][0]["content"].to_string();
        assert!(system.contains("About `kubectl scale`"), "{system}");
        assert!(
            client
                .kubectl_runs()
                .iter()
                .any(|r| r == "scale deployment/web --replicas=2")
        );
    }
}

#[tokio::test]
async fn rollout_subcommands_run_their_kubectl_subcommand_and_undo_asks_first() {
    let mock = MockProvider::start(&["--reply", "Rolled."]);
    for via in BOTH {
        let client = Client::new("deployment.apps/web restarted\n", "", 0);
        let _server = connect(via, &client, &mock, MEMORY_OFF);
        for sub in ["status", "history", "restart", "pause", "resume"] {
            let out = client.run(&["rollout", sub, "deployment/web"]);
            out.assert_success();
            assert_eq!(out.stdout, "Rolled.\n", "{out}");
        }
        // Undo is confirmed even when typed; stdin is not a terminal, so it is refused.
        let out = client.fails(&["rollout", "undo", "deployment/web"]);
        assert!(out.stderr.contains("hint: pass --yes"), "{out}");
        client
            .run(&["--yes", "rollout", "undo", "deployment/web"])
            .assert_success();
        let runs = client.kubectl_runs();
        assert_eq!(
            runs,
            [
                "rollout status deployment/web",
                "rollout history deployment/web",
                "rollout restart deployment/web",
                "rollout pause deployment/web",
                "rollout resume deployment/web",
                "rollout undo deployment/web",
            ],
            "{via:?}"
        );
        let plan = plan_json(&["rollout", "restart", "deployment/web"], "restart it");
        let marker = super::verbs::reply_marker(&plan);
        let out = client.run(&["rollout", "vibe", &format!("restart web {marker}"), "--yes"]);
        out.assert_success();
        assert!(
            out.stdout
                .starts_with("$ kubectl rollout restart deployment/web\n"),
            "{out}"
        );
    }
}

#[tokio::test]
async fn plans_naming_another_program_shell_syntax_or_context_are_refused() {
    let cases: [(&[&str], &str); 3] = [
        (&["helm", "install", "x"], "`helm` is not a kubectl command"),
        (&["get", "pods", ";", "rm", "-rf", "/"], "shell syntax"),
        (&["--context", "prod", "delete", "pod", "x"], "`--context`"),
    ];
    for via in BOTH {
        for (commands, why) in cases {
            let plan = plan_json(commands, "as asked");
            let mock = MockProvider::start(&["--reply", &plan]);
            let client = Client::with_pods();
            let _server = connect(via, &client, &mock, MEMORY_OFF);
            let out = client.fails(&["vibe", "clean up", "--yes"]);
            assert!(
                out.stderr.contains("not running the planned command"),
                "{out}"
            );
            assert!(out.stderr.contains(why), "{via:?} {why}\n{out}");
            assert!(client.kubectl_runs().is_empty(), "nothing ran");
        }
    }
}

#[tokio::test]
async fn patch_typed_and_planned_changes_the_object_and_summarizes() {
    for via in BOTH {
        let api = KubeApi::start();
        api.seed(deployment("web", 1));
        let plan = plan_json(
            &[
                "deployment",
                "web",
                "--type",
                "merge",
                "-p",
                r#"{"spec":{"replicas":4}}"#,
            ],
            "four replicas",
        );
        let mock = MockProvider::start(&["--reply", "Patched."]);
        let client = Client::with_pods();
        let _server = connect(via, &client, &mock, MEMORY_OFF);
        client.use_real_kubectl(&api);
        let out = client.run(&[
            "patch",
            "deployment",
            "web",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"replicas":2}}"#,
        ]);
        out.assert_success();
        assert_eq!(out.stdout, "Patched.\n", "{via:?}\n{out}");
        let web = || api.object("deployments", "default", "web").expect("web");
        assert_eq!(web()["spec"]["replicas"], 2);
        let text = mock.requests().await[0]["body"].to_string();
        assert!(text.contains("deployment.apps/web patched"), "{text}");

        let request = format!("four replicas for web {}", reply_marker(&plan));
        let out = client.run(&["patch", "vibe", &request, "--yes"]);
        out.assert_success();
        assert!(
            out.stdout.starts_with(
                "$ kubectl patch deployment web --type merge -p '{\"spec\":{\"replicas\":4}}'\n"
            ),
            "{out}"
        );
        assert_eq!(web()["spec"]["replicas"], 4, "{via:?}");
    }
}

#[tokio::test]
async fn a_kubectl_that_hangs_is_stopped_after_core_kubectl_timeout_seconds() {
    for via in BOTH {
        let mock = MockProvider::start(&[]);
        let mut client = Client::with_pods();
        client.env = vec![("VIBECTL_CORE_KUBECTL_TIMEOUT_SECONDS".into(), "1".into())];
        let _server = connect(via, &client, &mock, MEMORY_OFF);
        // A kubectl that never answers (a cluster that accepts the connection and says nothing).
        super::write_executable(&client.kubectl(), "#!/bin/sh\nexec sleep 300\n");
        let out = client.fails(&["wait", "deployment/web", "--for=condition=Available"]);
        assert!(
            out.stderr.contains(
                "`kubectl wait deployment/web --for=condition=Available` did not finish within 1 seconds (core.kubectl_timeout_seconds)"
            ),
            "{via:?}\n{out}"
        );
        assert!(out.stderr.contains("hint: "), "{out}");
        assert!(
            mock.requests().await.is_empty(),
            "no summary of a run that never ended"
        );
    }
}
