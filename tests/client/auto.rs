//! `auto` and `semiauto`: plan, run, look, repeat, with the memory updated each step, until
//! the model says done, `--limit` steps ran (at most 50 without it), the user exits (semiauto)
//! or presses Ctrl-C (kubectl ended, memory saved, exit 130); in direct mode and through our
//! server. Every run goes through the same guard and read-only rules as `vibe`.

use std::process::Stdio;
use std::time::Instant;

use vibectl::config::generated::client::key;

use super::confirm::on_a_terminal;
use super::scripted::{
    AUTO, MEMORY, Mode, SUMMARY, Scripted, command, connect, done, in_both_modes, prompts_with,
};
use super::{Client, write_executable};
use crate::support::process::KillOnDrop;
use crate::support::{wait, yaml};

const QUIET: &str = "memory:\n  enabled: false\ndisplay:\n  show_vibe: false\n";

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

#[test]
fn limit_3_stops_after_three_steps() {
    let replies = [command(&["get", "pods"])];
    in_both_modes(&[(AUTO, &replies)], QUIET, |mode, client, _| {
        let out = client.run(&["auto", "--limit", "3", "--interval", "0", "watch the pods"]);
        out.assert_success();
        assert_eq!(client.kubectl_runs(), ["get pods"; 3], "{mode:?}\n{out}");
        assert!(out.stderr.contains("Completed 3 steps"), "{out}");
        assert_eq!(out.stdout.matches("$ kubectl get pods").count(), 3, "{out}");
    });
}

#[test]
fn done_ends_the_session_and_each_step_sees_the_last_output() {
    let replies = [
        command(&["get", "pods"]),
        done(None, "web-2 restarted 3 times"),
    ];
    let summary = ["Two pods, web-2 restarts.".to_owned()];
    let memory = ["web-2 in shop restarts".to_owned()];
    let rules: [(&str, &[String]); 3] = [(MEMORY, &memory), (SUMMARY, &summary), (AUTO, &replies)];
    in_both_modes(&rules, "", |mode, client, mock| {
        let out = client.run(&["auto", "--interval", "0", "why does web-2 restart"]);
        out.assert_success();
        assert_eq!(client.kubectl_runs(), ["get pods"], "{mode:?}");
        assert_eq!(
            out.stdout,
            "$ kubectl get pods\n  look\nTwo pods, web-2 restarts.\nDone: web-2 restarted 3 times\n",
            "{mode:?}\n{out}"
        );
        let steps = block_on(prompts_with(mock, AUTO));
        assert_eq!(steps.len(), 2, "{mode:?}");
        assert!(steps[1].contains("web-2   1/1"), "{}", steps[1]);
        // The memory was updated after the step and carried into the next one.
        assert!(steps[1].contains("web-2 in shop restarts"), "{}", steps[1]);
        assert!(
            client.text().contains("web-2 in shop restarts"),
            "memory saved"
        );
        assert!(out.stderr.contains("Iteration 2"), "{out}");
    });
}

#[test]
fn a_model_that_never_says_done_is_bounded() {
    let replies = [command(&["get", "pods"])];
    in_both_modes(&[(AUTO, &replies)], QUIET, |mode, client, _| {
        let out = client.run(&["auto", "--interval", "0", "watch forever"]);
        out.assert_success();
        assert_eq!(client.kubectl_runs().len(), 50, "{mode:?}");
        assert!(out.stderr.contains("the most without --limit"), "{out}");
    });
}

#[test]
fn read_only_refusals_and_never_ending_commands_become_observations() {
    let replies = [
        command(&["delete", "pod", "web-1"]),
        command(&["get", "pods", "-w"]),
        done(None, "cannot delete in read-only mode"),
    ];
    in_both_modes(&[(AUTO, &replies)], QUIET, |mode, client, mock| {
        let out = client.run(&["--read-only", "auto", "--interval", "0", "delete web-1"]);
        out.assert_success();
        assert!(client.kubectl_runs().is_empty(), "{mode:?}: nothing ran");
        let steps = block_on(prompts_with(mock, AUTO));
        assert!(
            steps[1].contains("read-only mode (--read-only) refuses"),
            "{}",
            steps[1]
        );
        assert!(
            steps[2].contains("keeps running until stopped"),
            "{}",
            steps[2]
        );
    });
}

#[test]
fn interval_pauses_between_steps() {
    let replies = [command(&["get", "pods"])];
    in_both_modes(&[(AUTO, &replies)], QUIET, |mode, client, _| {
        let out = client.run(&["auto", "--limit", "2", "--interval", "1", "watch"]);
        out.assert_success();
        assert_eq!(
            out.stderr
                .matches("Waiting 1 s before the next step")
                .count(),
            1,
            "{mode:?}: one pause between two steps\n{out}"
        );
    });
}

#[test]
fn ctrl_c_mid_step_ends_kubectl_saves_the_memory_and_exits_130() {
    // auto in both modes; check, which shares the loop machinery, directly.
    let runs: [(Mode, &[&str], &str); 3] = [
        (
            Mode::Direct,
            &["auto", "--interval", "0", "list pods"],
            AUTO,
        ),
        (Mode::Proxy, &["auto", "--interval", "0", "list pods"], AUTO),
        (Mode::Direct, &["check", "pods run"], super::scripted::CHECK),
    ];
    for (mode, args, marker) in runs {
        let replies = [command(&["get", "pods"])];
        let memory = ["stopped while listing pods".to_owned()];
        let scripted = Scripted::start(&[(MEMORY, &memory), (marker, &replies)]);
        let client = Client::new("", "", 0);
        // A kubectl that records its pid and then hangs.
        let script = format!(
            "#!/bin/sh\n\
             printf '%s\\n' \"$*\" >> '{dir}/kubectl-args'\n\
             echo $$ > '{dir}/kubectl-pid.tmp'\n\
             mv '{dir}/kubectl-pid.tmp' '{dir}/kubectl-pid'\n\
             exec sleep 300\n",
            dir = client.path().display()
        );
        write_executable(&client.kubectl(), &script);
        let _server = connect(mode, &client, &scripted.mock, "");
        let mut guard = KillOnDrop(
            client
                .command(args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start vibectl"),
        );
        let pid_file = client.path().join("kubectl-pid");
        wait::until_blocking(&format!("{mode:?}: kubectl started"), super::LIMIT, || {
            if pid_file.exists() {
                Ok(())
            } else {
                Err("no pid file")
            }
        });
        let kubectl_pid = std::fs::read_to_string(&pid_file).expect("pid");
        let kill = std::process::Command::new("kill")
            .args(["-INT", &guard.0.id().to_string()])
            .status()
            .expect("kill -INT");
        assert!(kill.success());
        guard.wait_or_kill(super::LIMIT);
        let status = guard.0.wait().expect("status");
        let mut stderr = String::new();
        if let Some(mut e) = guard.0.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut stderr).ok();
        }
        assert_eq!(status.code(), Some(130), "{mode:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "interrupted: vibectl {} stopped during `kubectl get pods`",
                args[0]
            )),
            "{stderr}"
        );
        assert!(
            client.text().contains("stopped while listing pods"),
            "{mode:?}: the memory was saved"
        );
        // kubectl was ended with the step.
        wait::until_blocking(
            &format!("kubectl {kubectl_pid} ended"),
            super::LIMIT,
            || {
                let alive = std::process::Command::new("kill")
                    .args(["-0", kubectl_pid.trim()])
                    .stderr(Stdio::null())
                    .status()
                    .expect("kill -0")
                    .success();
                if alive { Err("still running") } else { Ok(()) }
            },
        );
    }
}

#[test]
fn semiauto_confirms_every_step_and_exit_ends_the_session() {
    let replies = [
        command(&["get", "pods"]),
        command(&["delete", "pod", "web-1"]),
        command(&["get", "events"]),
        command(&["get", "nodes"]),
    ];
    let memory = ["noted".to_owned()];
    let rules: [(&str, &[String]); 2] = [(MEMORY, &memory), (AUTO, &replies)];
    in_both_modes(
        &rules,
        "display:\n  show_vibe: false\n",
        |mode, client, mock| {
            // yes, no but (why), yes and (note), exit.
            let shown = on_a_terminal(
                client,
                &["semiauto", "tidy up"],
                "y\nb\nweb-1 is the canary\na\nlook at events\ne\n",
            );
            assert!(
                shown.contains(
                    "Run `kubectl get pods`? [Y]es, [N]o, yes [A]nd, no [B]ut, [M]emory, or [E]xit?"
                ),
                "{mode:?}: {shown}"
            );
            assert!(shown.contains("Exiting the semiauto session"), "{shown}");
            // A read-only command is asked about too; the declined delete did not run.
            assert_eq!(
                client.kubectl_runs(),
                ["get pods", "get events"],
                "{mode:?}\n{shown}"
            );
            let memory_calls = block_on(prompts_with(mock, MEMORY));
            assert!(
                memory_calls
                    .iter()
                    .any(|c| c.contains("because: web-1 is the canary")),
                "{memory_calls:?}"
            );
            assert!(
                memory_calls
                    .iter()
                    .any(|c| c.contains("and said: look at events"))
            );
            let steps = block_on(prompts_with(mock, AUTO));
            assert!(steps[2].contains("the user declined it"), "{}", steps[2]);
        },
    );
}

#[test]
fn show_iterations_and_show_memory_shape_the_lines_before_each_step() {
    let replies = [command(&["get", "pods"])];
    let on = format!(
        "memory_content: pods live in shop\n{}",
        yaml::config(&[(key::DISPLAY_SHOW_VIBE, "false")])
    );
    let memory = ["pods live in shop, 2 of them".to_owned()];
    let rules: [(&str, &[String]); 2] = [(MEMORY, &memory), (AUTO, &replies)];
    in_both_modes(&rules, &on, |mode, client, _| {
        let out = client.run(&["auto", "-l", "2", "-i", "0", "count pods"]);
        out.assert_success();
        assert!(
            out.stderr
                .contains("Iteration 1/2\nMemory:\npods live in shop\n"),
            "{mode:?}\n{out}"
        );
        assert!(
            out.stderr
                .contains("Iteration 2/2\nMemory:\npods live in shop, 2 of them\n"),
            "{out}"
        );
    });
    let off = format!(
        "memory_content: pods live in shop\n{}",
        yaml::config(&[
            (key::DISPLAY_SHOW_VIBE, "false"),
            (key::DISPLAY_SHOW_ITERATIONS, "false"),
            (key::DISPLAY_SHOW_MEMORY, "false"),
        ])
    );
    in_both_modes(&rules, &off, |mode, client, _| {
        let out = client.run(&["auto", "-l", "2", "-i", "0", "count pods"]);
        out.assert_success();
        assert!(!out.stderr.contains("Iteration"), "{mode:?}\n{out}");
        assert!(!out.stderr.contains("Memory:"), "{out}");
    });
}

#[test]
fn ctrl_c_at_the_semiauto_prompt_saves_the_memory_and_exits_130() {
    use std::io::{Read, Write};
    let replies = [command(&["get", "pods"])];
    let memory = ["left at the prompt".to_owned()];
    let scripted = Scripted::start(&[(MEMORY, &memory), (AUTO, &replies)]);
    let client = Client::with_pods();
    let _server = connect(Mode::Direct, &client, &scripted.mock, "");
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("util-linux `script` is needed to make a terminal (scripts/ci-deps installs it)");
    let line = format!("'{}' semiauto 'tidy up'", env!("CARGO_BIN_EXE_vibectl"));
    let mut cmd = std::process::Command::new(script);
    client.environment(&mut cmd);
    let mut guard = KillOnDrop(
        cmd.args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start script"),
    );
    let mut stdin = guard.0.stdin.take().expect("piped");
    let mut stdout = guard.0.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut shown = String::new();
    let deadline = Instant::now() + super::LIMIT;
    // Wait for the question, then press Ctrl-C on the terminal.
    while !shown.contains("(y/n/a/b/m/e)") {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no prompt: {shown}"));
        shown.push_str(&String::from_utf8_lossy(&chunk));
    }
    stdin.write_all(b"\x03").expect("press Ctrl-C");
    stdin.flush().expect("flush");
    while let Ok(chunk) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        shown.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(stdin);
    guard.wait_or_kill(super::LIMIT);
    let status = guard.0.wait().expect("status");
    assert_eq!(status.code(), Some(130), "{shown}");
    assert!(
        shown.contains("interrupted: vibectl semiauto stopped during the confirmation"),
        "{shown}"
    );
    assert!(client.text().contains("left at the prompt"), "memory saved");
    assert!(client.kubectl_runs().is_empty());
}
