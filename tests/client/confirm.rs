//! The confirmation before a planned command runs, answered on a real terminal (a pty made by
//! util-linux `script`; the test is skipped where it is missing).

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{Client, LIMIT, plan_json};
use crate::support::mock::MockProvider;

/// Run `vibectl ARGS` on a pty, typing `input`; returns what the terminal showed.
fn on_a_terminal(client: &Client, args: &[&str], input: &str) -> Option<String> {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
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
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    // Typed ahead, the answer waits in the terminal until the prompt reads it; closing our end
    // lets `script` finish once the command does.
    child.stdin.take()?.write_all(input.as_bytes()).ok()?;
    let deadline = Instant::now() + LIMIT;
    while child.try_wait().ok()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{line}` on a terminal did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut out).ok()?;
    Some(out)
}

#[tokio::test]
async fn yes_runs_the_plan_and_anything_else_runs_nothing() {
    let plan = plan_json(&["delete", "pod", "web-1"], "remove the pod");
    let mock = MockProvider::start(&["--reply", &plan]);
    let client = Client::with_pods();
    client.configure(&mock, true, "memory:\n  enabled: false\n");

    let Some(shown) = on_a_terminal(&client, &["vibe", "delete web-1"], "n\n") else {
        eprintln!("skipped: no `script` to make a terminal");
        return;
    };
    assert!(
        shown.contains("Run `kubectl delete pod web-1`? [y/N]"),
        "{shown}"
    );
    assert!(shown.contains("cancelled: nothing was run"), "{shown}");
    assert!(client.kubectl_runs().is_empty());

    let shown = on_a_terminal(&client, &["vibe", "delete web-1"], "y\n").expect("ran before");
    assert!(shown.contains("[y/N]"), "{shown}");
    assert_eq!(client.kubectl_runs(), ["delete pod web-1"]);
}
