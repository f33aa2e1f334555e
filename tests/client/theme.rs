//! `display.theme` colours vibectl's own labels and lines when colour is on (a terminal, or
//! `CLICOLOR_FORCE`), and `NO_COLOR` or `display.colored_output: false` turn colour off
//! whatever the theme.

use super::Client;
use crate::support::mock::MockProvider;
use crate::support::process::{self, Output};

fn run(client: &Client, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = client.command(args);
    cmd.env_remove("NO_COLOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    process::run(&mut cmd, super::LIMIT)
}

#[tokio::test]
async fn the_theme_colours_errors_commands_and_metrics() {
    let mock = MockProvider::start(&["--reply", "Two pods."]);
    // kubectl fails, so vibectl prints an error line after the config is loaded.
    let failing = Client::new("", "boom\n", 3);
    failing.configure(&mock, true, "display:\n  theme: accessible\n");
    let out = run(&failing, &["get", "pods"], &[("CLICOLOR_FORCE", "1")]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr
            .contains("\x1b[1;4;34merror:\x1b[0m `kubectl get pods` failed"),
        "the accessible error colour\n{out}"
    );
    let dark = Client::new("", "boom\n", 3);
    dark.configure(&mock, true, "display:\n  theme: dark\n");
    let out = run(&dark, &["get", "pods"], &[("CLICOLOR_FORCE", "1")]);
    assert!(out.stderr.contains("\x1b[1;91merror:\x1b[0m"), "{out}");
    let plain = run(
        &dark,
        &["get", "pods"],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
    );
    assert!(
        plain.stderr.contains("error: `kubectl get pods` failed") && !plain.stderr.contains('\x1b'),
        "NO_COLOR wins\n{plain}"
    );

    let ok = Client::with_pods();
    ok.configure(
        &mock,
        true,
        "display:\n  theme: light\n  show_kubectl: true\n  show_metrics: total\nmemory:\n  enabled: false\n",
    );
    let out = run(&ok, &["get", "pods"], &[("CLICOLOR_FORCE", "1")]);
    out.assert_success();
    assert!(
        out.stdout
            .starts_with("\x1b[1;34m$ kubectl get pods\x1b[0m\n"),
        "{out}"
    );
    assert!(
        out.stdout.contains("Two pods."),
        "the answer itself is plain\n{out}"
    );
    assert!(
        out.stderr.contains("\x1b[2m[metrics] total: 1 model call"),
        "{out}"
    );
    // Not a terminal and nothing forced: no colour.
    let out = run(&ok, &["get", "pods"], &[]);
    assert!(
        !out.stdout.contains('\x1b') && !out.stderr.contains('\x1b'),
        "{out}"
    );
}

#[tokio::test]
async fn colored_output_off_wins_over_clicolor_force() {
    let mock = MockProvider::start(&["--reply", "Two pods."]);
    let client = Client::new("", "boom\n", 3);
    client.configure(&mock, true, "display:\n  theme: dark\n");
    let out = run(&client, &["get", "pods"], &[("CLICOLOR_FORCE", "1")]);
    assert!(out.stderr.contains("\x1b[1;91merror:\x1b[0m"), "{out}");
    let out = run(
        &client,
        &[
            "config",
            "set",
            vibectl::config::generated::client::key::DISPLAY_COLORED_OUTPUT,
            "false",
        ],
        &[],
    );
    out.assert_success();
    let out = run(&client, &["get", "pods"], &[("CLICOLOR_FORCE", "1")]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains("error: `kubectl get pods` failed") && !out.stderr.contains('\x1b'),
        "display.colored_output false: no colour\n{out}"
    );
}
