//! The flags every command takes: listed under their own heading in `--help`, and the display
//! and memory flags of 0.11.6 (`--show-raw-output`, `--show-kubectl`, `--show-vibe`,
//! `--show-streaming`, `--show-metrics`, `--mode`, `--freeze-memory`, `--unfreeze-memory` and
//! the `--no-` forms), each setting its key for one run, direct and through our server; and
//! every command, subcommand and `--help` flag of 0.11.6 being one of ours.

use vibectl::config::generated::client::key;

use super::proxy::Server;
use super::{API_KEY, Client, PODS, plan_json};
use crate::support::mock::MockProvider;
use crate::support::yaml;

const SUMMARY: &str = "Two pods.";

/// The lines of the `heading:` section of a help text.
fn section<'a>(help: &'a str, heading: &str) -> Vec<&'a str> {
    help.lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect()
}

#[test]
fn help_lists_the_global_flags_under_their_own_heading() {
    let client = Client::with_pods();
    for args in [&["--help"][..], &["get", "--help"], &["vibe", "--help"]] {
        let out = client.run(args);
        out.assert_success();
        let global = section(&out.stdout, "Global options:").join("\n");
        for flag in [
            "--model <NAME>",
            "--proxy <PROFILE>",
            "--log-level <LEVEL>",
            "--show-raw-output",
            "--no-show-raw-output",
            "--show-kubectl",
            "--show-vibe",
            "--show-streaming",
            "--show-metrics <WHICH>",
            "--mode <MODE>",
            "--freeze-memory",
            "--unfreeze-memory",
            "--yes",
        ] {
            assert!(
                global.contains(flag),
                "{args:?}: {flag} not under Global options\n{out}"
            );
        }
        let own = section(&out.stdout, "Options:").join("\n");
        assert!(!own.contains("--model"), "{args:?}\n{out}");
    }
}

/// A client with the fake kubectl listing pods and summaries answered [`SUMMARY`].
fn client(mock: &MockProvider, key: bool, extra: &str) -> Client {
    let client = Client::with_pods();
    client.configure(mock, key, extra);
    client
}

fn no_memory() -> String {
    yaml::config(&[(key::MEMORY_ENABLED, "false")])
}

/// The display flags' effects, the same direct and through the server.
async fn check_display_flags(client: &Client, mock: &MockProvider) {
    let seen = mock.requests().await.len();
    let out = client.run(&["--show-raw-output", "--show-kubectl", "get", "pods"]);
    out.assert_success();
    assert_eq!(
        out.stdout,
        format!("$ kubectl get pods\n{PODS}{SUMMARY}\n"),
        "{out}"
    );
    let out = client.run(&["get", "pods"]);
    assert_eq!(
        out.stdout,
        format!("{SUMMARY}\n"),
        "the flags last one run\n{out}"
    );

    let out = client.run(&["--show-metrics", "total", "get", "pods"]);
    assert!(
        out.stderr.contains("[metrics] total: 1 model call, "),
        "{out}"
    );
    assert!(!out.stderr.contains("[metrics] summary"), "{out}");
    let out = client.run(&["--show-metrics", "sub", "get", "pods"]);
    assert!(out.stderr.contains("[metrics] summary: "), "{out}");
    assert!(!out.stderr.contains("[metrics] total"), "{out}");

    let out = client.run(&["--no-show-streaming", "get", "pods"]);
    assert_eq!(out.stdout, format!("{SUMMARY}\n"), "{out}");
    let reqs = mock.requests().await;
    assert_eq!(reqs.len(), seen + 5, "one summary per run");
    assert_eq!(reqs[seen]["body"]["stream"], true);
    assert_eq!(
        reqs[seen + 4]["body"]["stream"],
        false,
        "--no-show-streaming"
    );

    let out = client.run(&["--no-show-vibe", "--show-raw-output", "get", "pods"]);
    assert_eq!(out.stdout, PODS, "{out}");
    assert_eq!(
        mock.requests().await.len(),
        seen + 5,
        "--no-show-vibe calls no model"
    );
}

#[tokio::test]
async fn display_flags_set_their_keys_for_one_run_direct_and_through_our_server() {
    let mock = MockProvider::start(&["--reply", SUMMARY, "--api-key", API_KEY]);
    let mut direct = client(&mock, false, &no_memory());
    direct.env = vec![("VIBECTL_OPENAI_API_KEY".into(), API_KEY.into())];
    check_display_flags(&direct, &mock).await;

    // The config says the opposite; the --no- forms win for the run.
    let opposite = format!(
        "{}display:\n  show_raw_output: true\n  show_kubectl: true\n  show_streaming: false\n",
        no_memory()
    );
    let c = client(&mock, false, &opposite);
    let out = direct_run(
        &c,
        &["--no-show-raw-output", "--no-show-kubectl", "get", "pods"],
    );
    assert_eq!(out, format!("{SUMMARY}\n"));
    let before = mock.requests().await.len();
    direct_run(&c, &["--show-streaming", "get", "pods"]);
    assert_eq!(mock.requests().await[before]["body"]["stream"], true);

    let proxied = client(&mock, false, &no_memory());
    let server = Server::start(&mock);
    server.connect(&proxied);
    check_display_flags(&proxied, &mock).await;
}

fn direct_run(c: &Client, args: &[&str]) -> String {
    let mut cmd = c.command(args);
    cmd.env("VIBECTL_OPENAI_API_KEY", API_KEY);
    let out = crate::support::process::run(&mut cmd, super::LIMIT);
    out.assert_success();
    out.stdout.clone()
}

#[tokio::test]
async fn freeze_memory_leaves_the_memory_alone_for_one_run_and_unfreeze_uses_it() {
    let mock = MockProvider::start(&["--reply", SUMMARY]);
    let extra = yaml::config(&[(key::MEMORY_CONTENT, "namespace shop")]);
    let c = client(&mock, true, &extra);
    let before = c.text();
    c.run(&["--freeze-memory", "get", "pods"]).assert_success();
    assert_eq!(c.text(), before, "frozen: the memory is not updated");
    let reqs = mock.requests().await;
    assert_eq!(reqs.len(), 1, "no memory call");
    assert!(!reqs[0].to_string().contains("namespace shop"), "nor sent");

    c.run(&["get", "pods"]).assert_success();
    assert_ne!(c.text(), before, "without the flag the memory is updated");
    assert_eq!(mock.requests().await.len(), 3);

    let frozen = client(
        &mock,
        true,
        &yaml::config(&[
            (key::MEMORY_ENABLED, "false"),
            (key::MEMORY_CONTENT, "namespace shop"),
        ]),
    );
    let before = frozen.text();
    frozen
        .run(&["--unfreeze-memory", "get", "pods"])
        .assert_success();
    let reqs = mock.requests().await;
    assert_eq!(reqs.len(), 5, "summary and memory update");
    assert!(
        reqs[3].to_string().contains("namespace shop"),
        "memory sent"
    );
    assert_ne!(frozen.text(), before, "memory updated");

    let out = frozen.run(&["--freeze-memory", "--unfreeze-memory", "get", "pods"]);
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("--freeze-memory"), "{out}");
}

#[tokio::test]
async fn mode_auto_runs_a_planned_change_without_asking_and_manual_asks() {
    let plan = plan_json(&["delete", "pod", "web-1"], "The user wants web-1 gone.");
    let mock = MockProvider::start(&["--reply", &plan]);
    let c = Client::new(
        &format!("pod \"web-1\" deleted\n[[mock:reply={SUMMARY}]]\n"),
        "",
        0,
    );
    c.configure(&mock, true, &no_memory());
    // stdin is not a terminal: a command that must be confirmed cannot run.
    let out = c.run(&["vibe", "delete web-1"]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("without confirmation"), "{out}");
    assert!(c.kubectl_runs().is_empty());

    let out = c.run(&["--mode", "auto", "vibe", "delete web-1"]);
    out.assert_success();
    assert_eq!(c.kubectl_runs(), ["delete pod web-1"]);

    // manual asks before changes even when the config says never.
    let never = yaml::config(&[
        (key::MEMORY_ENABLED, "false"),
        (key::SECURITY_CONFIRMATION_MODE, "none"),
    ]);
    c.configure(&mock, true, &never);
    let out = c.run(&["--mode", "manual", "vibe", "delete web-1"]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("without confirmation"), "{out}");
    c.run(&["vibe", "delete web-1"]).assert_success();
    assert_eq!(c.kubectl_runs().len(), 2);
}

/// Lines logged by the crates that carry the wire (their targets lead the line).
fn wire_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            [
                "h2::",
                "hyper::",
                "hyper_util::",
                "tonic::",
                "tower::",
                "rustls::",
            ]
            .iter()
            .any(|t| l.contains(t))
        })
        .collect()
}

#[test]
fn log_level_debug_logs_vibectls_steps_and_not_the_wire() {
    let mock = MockProvider::start(&["--reply", SUMMARY, "--api-key", API_KEY]);
    // Longer than a prompt fragment may be: the debug log says it was cut.
    let long = format!(
        "{PODS}{}\n",
        "x".repeat(vibectl::prompts::MAX_FRAGMENT_CHARS + 100)
    );
    let c = Client::new(&long, "", 0);
    c.configure(&mock, false, &no_memory());
    let server = Server::start(&mock);
    server.connect(&c);
    let out = c.run(&["--log-level", "debug", "get", "pods"]);
    out.assert_success();
    for step in [
        "vibectl session",
        "command=--log-level debug get pods",
        "running kubectl",
        "command=kubectl get pods",
        "kubectl ended",
        "asking the model",
        "call=\"summary\"",
        "prompt_bytes=",
        "truncated a prompt fragment",
    ] {
        assert!(
            out.stderr.contains(step),
            "no `{step}` in the debug log\n{}",
            out.stderr
        );
    }
    assert_eq!(
        wire_lines(&out.stderr),
        Vec::<&str>::new(),
        "wire frames logged"
    );

    // Asked for with RUST_LOG, the wire's own logs are shown.
    let mut cmd = c.command(&["get", "pods"]);
    cmd.env("RUST_LOG", "debug");
    let out = crate::support::process::run(&mut cmd, super::LIMIT);
    out.assert_success();
    assert!(!wire_lines(&out.stderr).is_empty(), "{}", out.stderr);

    // The default level logs none of it.
    let out = c.run(&["get", "pods"]);
    assert!(!out.stderr.contains("asking the model"), "{out}");
}

/// The `--flags` of a help text's option lines (those that start with spaces and a dash).
fn flags_of(help: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for line in help.lines().filter(|l| l.trim_start().starts_with('-')) {
        for word in line.split(|c: char| c.is_whitespace() || c == ',' || c == '/') {
            let name: String = word
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if name.starts_with("--") && name.len() > 2 {
                out.insert(name);
            }
        }
    }
    out
}

/// The stdout of 0.11.6's `vibectl ARGS` (from the Python peer venv), run with a scrubbed
/// environment and an empty HOME so no config of the machine's shapes it.
fn peer_help(args: &[&str]) -> String {
    let home = tempfile::tempdir().expect("temp dir");
    let mut cmd = std::process::Command::new(crate::support::python::venv_bin("vibectl"));
    cmd.args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home.path());
    let out = crate::support::process::run(&mut cmd, super::LIMIT);
    out.assert_success();
    out.stdout.clone()
}

#[test]
fn every_flag_of_0_11_6s_help_is_one_of_ours() {
    let mut theirs = std::collections::BTreeSet::new();
    for args in [&["--help"][..], &["get", "--help"]] {
        theirs.extend(flags_of(&peer_help(args)));
    }
    assert!(theirs.contains("--show-raw-output"), "{theirs:?}");
    let client = Client::with_pods();
    let ours = flags_of(&client.run(&["get", "--help"]).assert_success().stdout);
    let missing: Vec<&String> = theirs.difference(&ours).collect();
    assert!(
        missing.is_empty(),
        "0.11.6 flags we lack: {missing:?}\nours: {ours:?}"
    );
}

/// The command names of a help text's `Commands:` section (its lines indented by two spaces;
/// deeper lines continue a description).
fn commands_of(help: &str) -> std::collections::BTreeSet<String> {
    section(help, "Commands:")
        .into_iter()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Every command path (`["plugin", "precedence"]`) 0.11.6 has under `path`, with the
/// subcommands its help lists, found by walking its `--help` texts (the siblings in parallel).
fn peer_commands(path: Vec<String>) -> Vec<(Vec<String>, std::collections::BTreeSet<String>)> {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let subs = commands_of(&peer_help(&args));
    if subs.is_empty() {
        return Vec::new();
    }
    let mut all = vec![(path.clone(), subs.clone())];
    std::thread::scope(|s| {
        let walks: Vec<_> = subs
            .iter()
            .map(|sub| {
                let mut p = path.clone();
                p.push(sub.clone());
                s.spawn(move || peer_commands(p))
            })
            .collect();
        for w in walks {
            all.extend(w.join().expect("walk"));
        }
    });
    all
}

#[test]
fn every_command_and_subcommand_of_0_11_6s_help_is_one_of_ours() {
    let theirs = peer_commands(Vec::new());
    let top = &theirs[0].1;
    assert!(
        top.contains("wait") && top.contains("plugin"),
        "0.11.6's commands: {top:?}"
    );
    assert!(
        theirs
            .iter()
            .any(|(p, subs)| p == &["plugin", "precedence"] && subs.contains("add")),
        "the walk reaches nested groups: {theirs:?}"
    );
    let client = Client::with_pods();
    let mut missing = Vec::new();
    for (path, subs) in &theirs {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = client.run(&args);
        out.assert_success();
        let ours = commands_of(&out.stdout);
        for sub in subs.difference(&ours) {
            missing.push(format!("vibectl {} {sub}", path.join(" ")).replace("  ", " "));
        }
    }
    assert!(missing.is_empty(), "0.11.6 commands we lack: {missing:?}");
}
