//! The model's markup (`[bold]`, `[red]...[/red]`) becomes colours of `display.theme` when
//! stdout gets colour (`CLICOLOR_FORCE` here, a terminal in use) and is removed otherwise
//! (`NO_COLOR`, `display.colored_output: false`, a pipe); other brackets stay. Streamed or
//! whole, direct or through our server, the printed text is the same.

use super::proxy::Server;
use super::{API_KEY, Client, PODS};
use crate::support::mock::MockProvider;
use crate::support::process::{self, Output};

const REPLY: &str = "[bold]web-2[/bold] is [red]failing[/red] [0]";
const PLAIN: &str = "web-2 is failing [0]\n";
const DEFAULT_COLOURS: &str = "\x1b[0m\x1b[1mweb-2\x1b[0m is \x1b[0m\x1b[31mfailing\x1b[0m [0]\n";

fn run(client: &Client, args: &[&str], force: bool) -> Output {
    let mut cmd = client.command(args);
    if force {
        cmd.env_remove("NO_COLOR").env("CLICOLOR_FORCE", "1");
    }
    process::run(&mut cmd, super::LIMIT)
}

/// A client whose summaries are [`REPLY`], cut into pieces that split its tags.
fn client(mock: &MockProvider, key: bool, extra: &str) -> Client {
    let client = Client::new(&format!("{PODS}[[mock:chunks=9]]\n"), "", 0);
    client.configure(mock, key, &format!("memory:\n  enabled: false\n{extra}"));
    client
}

#[test]
fn markup_is_coloured_on_request_and_removed_otherwise() {
    let mock = MockProvider::start(&["--reply", REPLY]);
    let c = client(&mock, true, "");
    let plain = run(&c, &["get", "pods"], false);
    plain.assert_success();
    assert_eq!(plain.stdout, PLAIN, "{plain}");
    let coloured = run(&c, &["get", "pods"], true);
    coloured.assert_success();
    assert_eq!(coloured.stdout, DEFAULT_COLOURS, "{coloured}");
    let whole = run(&c, &["--no-show-streaming", "get", "pods"], true);
    assert_eq!(whole.stdout, DEFAULT_COLOURS, "{whole}");

    let accessible = client(&mock, true, "display:\n  theme: accessible\n");
    let out = run(&accessible, &["get", "pods"], true);
    assert!(
        out.stdout.contains("\x1b[0m\x1b[1;4;35mfailing\x1b[0m"),
        "{:?}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("[31m"),
        "no red in the accessible theme\n{out}"
    );

    let off = client(&mock, true, "display:\n  colored_output: false\n");
    let out = run(&off, &["get", "pods"], true);
    assert_eq!(out.stdout, PLAIN, "colored_output false wins\n{out}");
}

#[tokio::test]
async fn through_our_server_the_markup_prints_the_same() {
    let mock = MockProvider::start(&["--reply", REPLY, "--api-key", API_KEY]);
    // No key: only the server can reach the mock.
    let c = client(&mock, false, "");
    let server = Server::start(&mock);
    server.connect(&c);
    assert_eq!(run(&c, &["get", "pods"], false).stdout, PLAIN);
    let out = run(&c, &["get", "pods"], true);
    out.assert_success();
    assert_eq!(out.stdout, DEFAULT_COLOURS, "{out}");
    assert_eq!(
        mock.requests().await.len(),
        2,
        "both answers came from the mock"
    );
}
