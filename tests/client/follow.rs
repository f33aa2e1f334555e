//! `logs -f` and `get -w`: kubectl's output is shown as it arrives, and Ctrl-C stops kubectl and
//! summarizes what was seen, instead of waiting for a command that never ends.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use super::{Client, write_executable};
use crate::support::mock::MockProvider;

/// Longest wait for any one step of the test.
const STEP: Duration = Duration::from_secs(20);

#[tokio::test]
async fn logs_follow_prints_live_and_ctrl_c_summarizes_what_was_seen() {
    let mock = MockProvider::start(&["--reply", "The pod logs a tick every 100 ms."]);
    let client = Client::new("", "", 0);
    // A kubectl that logs forever (bounded: 600 lines, one each 100 ms) and records its pid.
    let script = format!(
        "#!/bin/sh\n\
         printf '%s\\n' \"$*\" >> '{dir}/kubectl-args'\n\
         echo $$ > '{dir}/kubectl-pid'\n\
         i=0\n\
         while [ $i -lt 600 ]; do echo \"tick $i\"; i=$((i+1)); sleep 0.1; done\n",
        dir = client.path().display()
    );
    write_executable(&client.kubectl(), &script);
    client.configure(&mock, true, "memory:\n  enabled: false\n");

    let mut child = client
        .command(&["logs", "-f", "web-1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vibectl");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Lines arrive while kubectl is still running.
    let first = rx
        .recv_timeout(STEP)
        .expect("a first line while kubectl runs");
    assert_eq!(first, "tick 0");
    let second = rx.recv_timeout(STEP).expect("a second line");
    assert_eq!(second, "tick 1");
    assert!(
        child.try_wait().expect("status").is_none(),
        "still following"
    );

    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(kill.success());
    let status =
        crate::support::wait::until_blocking("vibectl stopping after Ctrl-C", STEP, || {
            child.try_wait().expect("status").ok_or("still running")
        });
    let mut rest = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
        rest.push(line);
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).ok();
    assert!(status.success(), "exit {status:?}; stderr: {stderr}");
    assert_eq!(
        rest.last().map(String::as_str),
        Some("The pod logs a tick every 100 ms."),
        "the summary comes last: {rest:?}"
    );
    assert_eq!(client.kubectl_runs(), ["logs -f web-1"]);

    // kubectl was stopped with vibectl.
    let pid = std::fs::read_to_string(client.path().join("kubectl-pid")).expect("kubectl pid");
    let gone = std::process::Command::new("kill")
        .args(["-0", pid.trim()])
        .stderr(Stdio::null())
        .status()
        .expect("kill -0");
    assert!(!gone.success(), "kubectl {pid} still runs");

    // The summary was asked about what was seen.
    let reqs = mock.requests().await;
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let prompt: String = reqs[0]["body"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert!(prompt.contains("tick 0\ntick 1"), "{prompt}");
    assert!(prompt.contains("kubectl logs -f web-1"), "{prompt}");
}
