//! What the loop tests share: the mock provider scripted with reply sequences by rule (its
//! `--script` flag), and a run of the same scenario in direct mode and through our
//! vibectl-server, each with its own mock (so each sees the sequence from its start) and its own
//! fake kubectl.

use serde_json::{Value, json};
use tempfile::TempDir;

use super::proxy::Server;
use super::{API_KEY, Client};
use crate::support::mock::MockProvider;

/// Marks the memory update prompt (its task sentence).
pub const MEMORY: &str = "Maintain the memory";
/// Marks the summary prompt.
pub const SUMMARY: &str = "The command: kubectl";
/// Marks a `check` step prompt.
pub const CHECK: &str = "<predicate>";
/// Marks an `auto`/`semiauto` step prompt.
pub const AUTO: &str = "Work toward the user's goal";

/// A step answer in the shape the loop prompts ask for.
pub fn step(action: Value) -> String {
    json!({ "action": action }).to_string()
}

pub fn command(args: &[&str]) -> String {
    step(json!({"action_type": "COMMAND", "commands": args, "explanation": "look"}))
}

pub fn done(code: Option<i64>, why: &str) -> String {
    match code {
        Some(c) => step(json!({"action_type": "DONE", "exit_code": c, "explanation": why})),
        None => step(json!({"action_type": "DONE", "explanation": why})),
    }
}

/// A mock whose replies follow `rules`: (marker, replies in order; the last repeats).
pub struct Scripted {
    _dir: TempDir,
    pub mock: MockProvider,
}

impl Scripted {
    pub fn start(rules: &[(&str, &[String])]) -> Scripted {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("script.json");
        let doc: Vec<Value> = rules
            .iter()
            .map(|(when, replies)| json!({"when": when, "replies": replies}))
            .collect();
        std::fs::write(&path, Value::from(doc).to_string()).expect("write the script");
        let mock = MockProvider::start(&[
            "--script",
            path.to_str().expect("utf-8 path"),
            "--api-key",
            API_KEY,
        ]);
        Scripted { _dir: dir, mock }
    }
}

/// How the client reaches the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Direct,
    Proxy,
}

/// A fresh scripted mock and client (fake kubectl listing pods, config `extra` appended) for
/// each mode, direct first, then through our server (which holds the key); `f` gets each.
pub fn in_both_modes(
    rules: &[(&str, &[String])],
    extra: &str,
    f: impl Fn(Mode, &Client, &MockProvider),
) {
    for mode in [Mode::Direct, Mode::Proxy] {
        let scripted = Scripted::start(rules);
        let client = Client::with_pods();
        let _server = connect(mode, &client, &scripted.mock, extra);
        f(mode, &client, &scripted.mock);
    }
}

/// Configure `client` for `mode`; through the server, the server is returned (keep it).
pub fn connect(mode: Mode, client: &Client, mock: &MockProvider, extra: &str) -> Option<Server> {
    match mode {
        Mode::Direct => {
            client.configure(mock, true, extra);
            None
        }
        Mode::Proxy => {
            client.configure(mock, false, extra);
            let server = Server::start(mock);
            let url = format!(
                "vibectl-server-insecure://{}@{}",
                server.token(),
                server.addr
            );
            client
                .run(&["setup-proxy", "configure", "prod", &url])
                .assert_success();
            Some(server)
        }
    }
}

/// The user text of every request the mock received whose text holds `marker`.
pub async fn prompts_with(mock: &MockProvider, marker: &str) -> Vec<String> {
    mock.requests()
        .await
        .iter()
        .map(|r| r["body"].to_string())
        .filter(|b| b.contains(marker))
        .collect()
}
