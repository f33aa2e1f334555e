//! README.md's walkthrough ("From zero to a first answer", between its `walkthrough: begin` and
//! `walkthrough: end` comments) run as written, so the doc cannot drift from the programs.
//!
//! The `sh` blocks of the section are run by bash in a fresh HOME, with what a test must change
//! said here and nowhere else:
//! - the install lines (`cargo install`, `pip install`) are skipped: the binaries under test and
//!   the Python peer venv's `openai` are what `PATH` finds;
//! - the provider's base URL is pointed at the mock provider first, by the README's own
//!   `vibectl-server config set providers.openai.base_url` command;
//! - port 50051 becomes a free port (`VIBECTL_SERVER_PORT` for the server, the text of the
//!   client commands), so the test does not depend on 50051 being free;
//! - the server line (`... &`) runs as a process of the test, with the lines before it, and the
//!   rest waits for its `listening on` line instead of racing it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::mock::MockProvider;
use crate::support::process::{self, KillOnDrop};
use crate::support::python;
use crate::support::server::LIMIT;
use vibectl::llm::ProviderKind;

const BEGIN: &str = "<!-- walkthrough: begin";
const END: &str = "<!-- walkthrough: end -->";
/// The lines a test does not run, and why: it installs nothing.
const INSTALLS: [&str; 2] = ["cargo install --locked --path .", "pip install openai"];
/// The README's command that points the server at another OpenAI-compatible endpoint.
const BASE_URL_COMMAND: &str = "vibectl-server config set providers.openai.base_url";
/// The port the README uses, the server's default.
const README_PORT: &str = "50051";

/// The mock's replies: a plan for `vibe` (any request no rule matches), the summary of the
/// kubectl output it runs, and the answer to "Say hello".
const PLAN: &str =
    r#"{"commands": ["version", "--client"], "explanation": "show the kubectl version"}"#;
const SCRIPT: &str = r#"[
  {"when": "Client Version", "replies": ["You run kubectl 1.32."]},
  {"when": "Say hello", "replies": ["Hello from your server."]}
]"#;

/// The `sh` blocks of the walkthrough section, as lines.
fn walkthrough_lines(readme: &str) -> Vec<String> {
    let start = readme
        .find(BEGIN)
        .expect("README.md has no walkthrough: begin comment");
    let end = readme[start..]
        .find(END)
        .map(|e| start + e)
        .expect("README.md has no walkthrough: end comment");
    let mut lines = vec![];
    let mut inside = false;
    for line in readme[start..end].lines() {
        match (inside, line.trim_end()) {
            (false, "```sh") => inside = true,
            (true, "```") => inside = false,
            (true, l) => lines.push(l.to_owned()),
            _ => {}
        }
    }
    assert!(!inside, "an sh block of the walkthrough is not closed");
    lines
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `bash -c SCRIPT` in `home` with only the environment a new user's shell would have here.
fn bash(home: &Path, bin: &Path, port: u16, script: &str) -> Command {
    let mut cmd = Command::new("bash");
    cmd.args(["-c", script])
        .current_dir(home)
        .env_clear()
        .env("HOME", home)
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("LANG", "C.UTF-8")
        .env("NO_COLOR", "1")
        .env("NO_PROXY", "*")
        .env("VIBECTL_SERVER_PORT", port.to_string())
        .stdin(Stdio::null());
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walkthrough_runs_as_written() {
    let readme = std::fs::read_to_string(python::repo().join("README.md")).expect("README.md");
    let lines = walkthrough_lines(&readme);
    for install in INSTALLS {
        assert!(
            lines.iter().any(|l| l == install),
            "the walkthrough lost `{install}`"
        );
    }
    assert!(readme.contains(BASE_URL_COMMAND), "{BASE_URL_COMMAND}");

    let tmp = tempfile::tempdir().expect("temp dir");
    let script = tmp.path().join("script.json");
    std::fs::write(&script, SCRIPT).expect("write the mock script");
    let script = script.display().to_string();
    let mock = MockProvider::start(&["--script", &script, "--reply", PLAN]);
    let home = tmp.path().join("home");
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&home).expect("home");
    std::fs::create_dir_all(&bin).expect("bin");
    for (name, target) in [
        ("vibectl", env!("CARGO_BIN_EXE_vibectl")),
        ("vibectl-server", env!("CARGO_BIN_EXE_vibectl-server")),
    ] {
        std::os::unix::fs::symlink(target, bin.join(name)).expect("link a program into PATH");
    }
    // The venv's python by its own path (a symlink elsewhere would lose the venv).
    let py = bin.join("python3");
    let wrapper = format!("#!/bin/sh\nexec '{}' \"$@\"\n", python::python().display());
    std::fs::write(&py, wrapper).expect("write python3");
    std::fs::set_permissions(&py, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("make python3 executable");
    let port = free_port();
    let ours = |l: &str| l.replace(&format!(":{README_PORT}"), &format!(":{port}"));

    let base = format!("{BASE_URL_COMMAND} {}", mock.base_url(ProviderKind::OpenAi));
    process::run(&mut bash(&home, &bin, port, &base), LIMIT).assert_success();

    let run: Vec<String> = lines
        .iter()
        .filter(|l| !INSTALLS.contains(&l.as_str()))
        .map(|l| ours(l))
        .collect();
    let at = run
        .iter()
        .position(|l| l.ends_with(" &"))
        .expect("the walkthrough starts the server in the background (a line ending in &)");
    let mut server_script = run[..at].join("\n");
    let serve = run[at].trim_end_matches('&').trim_end();
    server_script.push_str(&format!("\nexec {serve}"));
    let child = bash(&home, &bin, port, &server_script)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the server lines");
    let mut server = KillOnDrop(child);
    let stdout = server.0.stdout.take().expect("its stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let listening = format!("vibectl-server listening on 127.0.0.1:{port}");
    loop {
        let line = rx
            .recv_timeout(LIMIT)
            .unwrap_or_else(|e| panic!("the server did not print `{listening}`: {e}"));
        if line.starts_with(&listening) {
            break;
        }
    }

    let rest = format!("set -eu\n{}", run[at + 1..].join("\n"));
    let mut cmd = bash(&home, &bin, port, &rest);
    let out = tokio::task::block_in_place(|| process::run(&mut cmd, python::DRIVER_LIMIT));
    out.assert_success();
    let stdout = &out.stdout;
    for wanted in [
        "$ kubectl version --client",
        "You run kubectl 1.32.",
        r#""content":"Hello from your server.""#,
    ] {
        assert!(stdout.contains(wanted), "no {wanted:?} in\n{out}");
    }
    // The SDK's answer, printed last.
    assert!(stdout.ends_with("}Hello from your server.\n"), "{out}");

    // Every call went upstream with the key from the environment, for the README's model.
    let reqs = mock.requests().await;
    assert!(reqs.len() >= 4, "{reqs:?}");
    for r in &reqs {
        assert_eq!(r["headers"]["authorization"], "Bearer sk-...", "{r}");
        assert_eq!(r["body"]["model"], "gpt-4o", "{r}");
    }
    drop(server);
}
