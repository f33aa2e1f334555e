//! `instructions show|set|edit|clear` over `system.custom_instructions`: written through the
//! config engine (comments kept), bounded, unchanged when the editor fails; and the
//! instructions reach the prompts of the loops and the commands that summarize, in direct mode
//! and through our server.

use std::io::Write;
use std::process::Stdio;

use vibectl::config::generated::client::key;

use super::scripted::{AUTO, CHECK, MEMORY, SUMMARY, command, done, in_both_modes, prompts_with};
use super::{COMMENT, Client, LIMIT, write_executable};
use crate::support::process;

const TEXT: &str = "Always use namespace staging.";

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

#[test]
fn set_show_clear_keep_the_comments() {
    let client = Client::with_pods();
    client.write(&format!("{COMMENT}\n"));
    let out = client.run(&["instructions", "show"]);
    assert_eq!(out.assert_success().stdout, "");
    assert!(
        out.stderr.contains("no custom instructions are set"),
        "{out}"
    );

    client.run(&["instructions", "set", TEXT]).assert_success();
    let text = client.text();
    assert!(text.starts_with(COMMENT) && text.contains(TEXT), "{text}");
    let shown = client.run(&["config", "get", key::SYSTEM_CUSTOM_INSTRUCTIONS]);
    assert!(shown.assert_success().stdout.contains(TEXT));
    assert_eq!(
        client
            .run(&["instructions", "show"])
            .assert_success()
            .stdout,
        format!("{TEXT}\n")
    );

    client.run(&["instructions", "clear"]).assert_success();
    assert_eq!(client.text(), format!("{COMMENT}\n"));
    client.run(&["instructions", "clear"]).assert_success();
}

#[test]
fn set_reads_stdin_and_refuses_empty_or_too_long_text() {
    let client = Client::with_pods();
    client.write("");
    let mut cmd = client.command(&["instructions", "set"]);
    let mut child = process::KillOnDrop(
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start"),
    );
    child
        .0
        .stdin
        .take()
        .expect("piped")
        .write_all(b"Prefer kubectl get over describe.\n")
        .expect("write");
    child.wait_or_kill(LIMIT);
    assert!(child.0.wait().expect("status").success());
    assert!(client.text().contains("Prefer kubectl get over describe."));

    let before = client.text();
    let out = client.fails(&["instructions", "set", "   "]);
    assert!(out.stderr.contains("the instructions are empty"), "{out}");
    let long = "x".repeat(16 * 1024 + 1);
    let out = client.fails(&["instructions", "set", &long]);
    assert!(
        out.stderr.contains(key::SYSTEM_CUSTOM_INSTRUCTIONS),
        "{out}"
    );
    assert!(out.stderr.contains("at most 16384"), "{out}");
    assert_eq!(client.text(), before);
}

#[test]
fn edit_uses_the_editor_and_a_failing_editor_changes_nothing() {
    let mut client = Client::with_pods();
    client.write(&format!(
        "{COMMENT}\nsystem:\n  custom_instructions: old words\n"
    ));
    // An editor that checks it got the current text, then replaces it.
    let editor = client.path().join("editor");
    write_executable(
        &editor,
        "#!/bin/sh\ngrep -q 'old words' \"$1\" || exit 9\nprintf 'new words\\n' > \"$1\"\n",
    );
    client.env = vec![("EDITOR".into(), editor.display().to_string())];
    let out = client.run(&["instructions", "edit"]);
    out.assert_success();
    assert!(
        client.text().contains("custom_instructions: new words"),
        "{}",
        client.text()
    );
    assert!(client.text().starts_with(COMMENT));

    // The same editor fails now ("old words" are gone): nothing changes.
    let out = client.fails(&["instructions", "edit"]);
    assert!(out.stderr.contains("failed"), "{out}");
    assert!(out.stderr.contains("not changed"), "{out}");

    client.env = vec![("EDITOR".into(), "/nonexistent/editor".into())];
    let out = client.fails(&["instructions", "edit"]);
    assert!(out.stderr.contains("cannot run the editor"), "{out}");
}

#[test]
fn the_instructions_reach_every_loop_and_summary_prompt() {
    let check = [command(&["get", "pods"]), done(Some(0), "ok")];
    let auto = [done(None, "nothing to do")];
    let summary = ["Two pods.".to_owned()];
    let rules: [(&str, &[String]); 3] = [(SUMMARY, &summary), (CHECK, &check), (AUTO, &auto)];
    let extra = format!("memory:\n  enabled: false\nsystem:\n  custom_instructions: {TEXT}\n");
    in_both_modes(&rules, &extra, |mode, client, mock| {
        assert_eq!(client.run(&["check", "pods run"]).status.code(), Some(0));
        client.run(&["auto", "-i", "0", "look"]).assert_success();
        client.run(&["get", "pods"]).assert_success();
        let requests = block_on(mock.requests());
        assert_eq!(
            requests.len(),
            4,
            "{mode:?}: two check steps, one auto step, one summary"
        );
        for r in requests {
            let body = r["body"].to_string();
            assert!(body.contains(TEXT), "{mode:?}: {body}");
        }
    });
}

#[test]
fn the_instructions_reach_the_memory_prompt() {
    let memory = ["db in data".to_owned()];
    let summary = ["Two pods.".to_owned()];
    let rules: [(&str, &[String]); 2] = [(MEMORY, &memory), (SUMMARY, &summary)];
    let extra = format!("system:\n  custom_instructions: {TEXT}\n");
    in_both_modes(&rules, &extra, |mode, client, mock| {
        client
            .run(&["memory", "update", "the db moved"])
            .assert_success();
        client.run(&["get", "pods"]).assert_success();
        let calls = block_on(prompts_with(mock, MEMORY));
        assert_eq!(calls.len(), 2, "{mode:?}: memory update, then after get");
        for c in calls {
            assert!(c.contains(TEXT), "{mode:?}: {c}");
        }
    });
}
