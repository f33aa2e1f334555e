//! The confirmation before a planned command runs (`security.confirmation_mode`): by default
//! only commands that can change the cluster are asked about, answered on a real terminal (a
//! pty made by util-linux `script`, which `scripts/ci-deps` installs) with 0.11.6's choices.

use std::io::Write;
use std::process::Stdio;
use std::sync::mpsc;

use vibectl::config::generated::client::key;

use super::{Client, LIMIT, plan_json};
use crate::support::mock::MockProvider;

/// Run `vibectl ARGS` on a pty, typing `input`; returns what the terminal showed.
pub(super) fn on_a_terminal(client: &Client, args: &[&str], input: &str) -> String {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("util-linux `script` is needed to make a terminal (scripts/ci-deps installs it)");
    let line = std::iter::once(env!("CARGO_BIN_EXE_vibectl"))
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = std::process::Command::new(script);
    client.environment(&mut cmd);
    let mut child = cmd
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {script} (scripts/ci-deps installs it): {e}"));
    // Typed ahead, the answer waits in the terminal until the prompt reads it; closing our end
    // lets `script` finish once the command does.
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())
        .expect("type the answer");
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
        let _ = tx.send((out, err));
    });
    let Ok((out, err)) = rx.recv_timeout(LIMIT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("`{line}` on a terminal did not finish within {LIMIT:?}");
    };
    let status = child.wait().expect("wait for script");
    // vibectl's own stderr goes to the terminal, so anything here is `script` failing by itself
    // (no pty, a bad option): not an answer of vibectl's, so fail loudly.
    assert!(
        err.trim().is_empty(),
        "`script` could not run `{line}` on a terminal ({status}): {err}"
    );
    assert!(
        !out.is_empty(),
        "`{line}` on a terminal showed nothing ({status})\n--- script's stderr ---\n{err}"
    );
    out
}

#[tokio::test]
async fn yes_runs_the_plan_and_anything_else_runs_nothing() {
    let plan = plan_json(&["delete", "pod", "web-1"], "remove the pod");
    let mock = MockProvider::start(&["--reply", &plan]);
    let client = Client::with_pods();
    client.configure(&mock, true, "memory:\n  enabled: false\n");

    let shown = on_a_terminal(&client, &["vibe", "delete web-1"], "n\n");
    assert!(
        shown.contains(
            "Run `kubectl delete pod web-1`? [Y]es, [N]o, yes [A]nd, no [B]ut, or [M]emory?"
        ),
        "{shown}"
    );
    assert!(shown.contains("cancelled: nothing was run"), "{shown}");
    assert!(client.kubectl_runs().is_empty());

    // Enter alone is no; an unknown answer asks again.
    let shown = on_a_terminal(&client, &["vibe", "delete web-1"], "\n");
    assert!(shown.contains("cancelled: nothing was run"), "{shown}");
    let shown = on_a_terminal(&client, &["vibe", "delete web-1"], "what\ny\n");
    assert!(shown.contains("`what` is not an answer"), "{shown}");
    assert_eq!(client.kubectl_runs(), ["delete pod web-1"]);
}

#[tokio::test]
async fn no_but_and_yes_and_fold_the_note_into_the_memory() {
    let plan = plan_json(&["delete", "pod", "web-1"], "remove the pod");
    let mock = MockProvider::start(&["--reply", &plan]);
    let client = Client::with_pods();
    client.configure(&mock, true, "");

    let shown = on_a_terminal(
        &client,
        &["vibe", "delete web-1"],
        "b\nweb-1 serves the checkout\n",
    );
    assert!(shown.contains("cancelled: nothing was run"), "{shown}");
    assert!(client.kubectl_runs().is_empty());
    let memory_call = mock.last_request().await.to_string();
    assert!(
        memory_call
            .contains("declined `kubectl delete pod web-1` because: web-1 serves the checkout"),
        "{memory_call}"
    );

    let shown = on_a_terminal(&client, &["vibe", "delete web-1"], "a\nit is a canary\n");
    assert!(!shown.contains("cancelled"), "{shown}");
    assert_eq!(client.kubectl_runs(), ["delete pod web-1"]);
    let calls = mock.requests().await;
    assert!(
        calls
            .iter()
            .any(|c| c.to_string().contains("and said: it is a canary")),
        "no memory call holds the note"
    );
}

#[tokio::test]
async fn read_only_plans_run_without_asking_by_default_and_changes_need_a_terminal() {
    let get = plan_json(&["get", "pods"], "list the pods");
    let mock = MockProvider::start(&["--reply", &get]);
    let client = Client::with_pods();
    client.configure(&mock, true, "memory:\n  enabled: false\n");
    // No terminal and no --yes: a read-only plan runs, as 0.11.6 runs it.
    client.run(&["vibe", "show pods"]).assert_success();
    assert_eq!(client.kubectl_runs(), ["get pods"]);

    let del = plan_json(&["delete", "pod", "web-1"], "remove the pod");
    let mock = MockProvider::start(&["--reply", &del]);
    client.configure(&mock, true, "memory:\n  enabled: false\n");
    let out = client.fails(&["vibe", "delete web-1"]);
    assert!(out.stderr.contains("stdin is not a terminal"), "{out}");
    assert!(
        out.stderr.contains(key::SECURITY_CONFIRMATION_MODE),
        "{out}"
    );
    assert_eq!(
        client.kubectl_runs(),
        ["get pods"],
        "the delete did not run"
    );
}

#[tokio::test]
async fn confirmation_mode_per_command_asks_for_reads_and_none_never_asks() {
    let get = plan_json(&["get", "pods"], "list the pods");
    let mock = MockProvider::start(&["--reply", &get]);
    let client = Client::with_pods();
    let per_command = "memory:\n  enabled: false\nsecurity:\n  confirmation_mode: per-command\n";
    client.configure(&mock, true, per_command);
    let out = client.fails(&["vibe", "show pods"]);
    assert!(out.stderr.contains("without confirmation"), "{out}");
    assert!(client.kubectl_runs().is_empty());
    let shown = on_a_terminal(&client, &["vibe", "show pods"], "y\n");
    assert!(shown.contains("Run `kubectl get pods`?"), "{shown}");
    assert_eq!(client.kubectl_runs(), ["get pods"]);

    let del = plan_json(&["delete", "pod", "web-1"], "remove the pod");
    let mock = MockProvider::start(&["--reply", &del]);
    client.configure(
        &mock,
        true,
        "memory:\n  enabled: false\nsecurity:\n  confirmation_mode: none\n",
    );
    client.run(&["vibe", "delete web-1"]).assert_success();
    assert_eq!(client.kubectl_runs(), ["get pods", "delete pod web-1"]);

    // An unknown mode is refused, naming the allowed values.
    let out = client.fails(&[
        "config",
        "set",
        key::SECURITY_CONFIRMATION_MODE,
        "sometimes",
    ]);
    assert!(out.stderr.contains("per-command"), "{out}");
}
