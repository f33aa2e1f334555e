//! The live display of commands that keep running (`live_display.*`): plain lines through the
//! filter when stdout is not a terminal, a bounded buffer behind the summary, and on a terminal
//! (a pty made by util-linux `script`) the view of the last lines with its keys.

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use vibectl::config::generated::client::key;

use super::proxy::Server;
use super::{API_KEY, Client, LIMIT, write_executable};
use crate::support::mock::MockProvider;
use crate::support::yaml;

/// A fake kubectl that prints `lines` and then exits 0 (`block` false) or waits until it is
/// stopped (`block` true).
fn printing_kubectl(client: &Client, lines: &[&str], block: bool) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(client.path().join("kubectl-lines"), text).expect("write");
    let script = format!(
        "#!/bin/sh\n\
         printf '%s\\n' \"$*\" >> '{dir}/kubectl-args'\n\
         echo $$ > '{dir}/kubectl-pid'\n\
         cat '{dir}/kubectl-lines'\n\
         {tail}\n",
        dir = client.path().display(),
        tail = if block { "exec sleep 600" } else { "exit 0" }
    );
    write_executable(&client.kubectl(), &script);
}

/// The text of every message the model was sent, per request.
async fn prompts(mock: &MockProvider) -> Vec<String> {
    mock.requests()
        .await
        .iter()
        .map(|r| {
            r["body"]["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .filter_map(|m| m["content"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

fn live_config(pairs: &[(&str, &str)]) -> String {
    format!("memory:\n  enabled: false\n{}", yaml::config(pairs))
}

#[tokio::test]
async fn the_filter_regex_shows_and_summarizes_only_matching_lines_direct_and_through_our_server() {
    // The mock checks the key: only the client's env (direct) or the server (proxied) has it.
    let mock = MockProvider::start(&["--reply", "Two errors.", "--api-key", API_KEY]);
    let mut client = Client::new("", "", 0);
    printing_kubectl(&client, &["ok 1", "error 2", "ok 3", "error 4"], false);
    client.env = vec![("VIBECTL_OPENAI_API_KEY".into(), API_KEY.into())];
    client.configure(
        &mock,
        false,
        &live_config(&[(key::LIVE_DISPLAY_DEFAULT_FILTER_REGEX, "'^error'")]),
    );
    let out = client.run(&["logs", "-f", "web-1"]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[..2], ["error 2", "error 4"], "{out}");
    assert!(
        lines[2].starts_with("Ended (kubectl exited) after "),
        "{out}"
    );
    assert!(
        lines[2].ends_with(": 4 lines streamed, 2 kept that match '^error'"),
        "{out}"
    );
    assert_eq!(lines[3..], ["Two errors."], "{out}");
    let sent = prompts(&mock).await;
    assert_eq!(sent.len(), 1);
    assert!(sent[0].contains("error 2\nerror 4"), "{}", sent[0]);
    assert!(!sent[0].contains("ok 1"), "{}", sent[0]);

    // The same through our server: the server has the key, the client none.
    let server = Server::start(&mock);
    let url = format!(
        "vibectl-server-insecure://{}@{}",
        server.token(),
        server.addr
    );
    client.env.clear();
    client
        .run(&["setup-proxy", "configure", "prod", &url])
        .assert_success();
    let out = client.run(&["get", "pods", "-w"]);
    out.assert_success();
    let proxied: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(proxied[..2], lines[..2], "{out}");
    assert_eq!(proxied[3..], lines[3..], "{out}");
    let sent = prompts(&mock).await;
    assert_eq!(sent.len(), 2);
    assert!(sent[1].contains("error 2\nerror 4"), "{}", sent[1]);
    assert!(sent[1].contains("kubectl get pods -w"), "{}", sent[1]);
    assert!(!sent[1].contains("ok 3"), "{}", sent[1]);
    assert_eq!(client.kubectl_runs(), ["logs -f web-1", "get pods -w"]);
}

#[tokio::test]
async fn the_stream_buffer_keeps_only_the_newest_lines_for_the_summary() {
    let mock = MockProvider::start(&["--reply", "Five lines."]);
    let client = Client::new("", "", 0);
    printing_kubectl(
        &client,
        &["line 1", "line 2", "line 3", "line 4", "line 5"],
        false,
    );
    client.configure(
        &mock,
        true,
        &live_config(&[(key::LIVE_DISPLAY_STREAM_BUFFER_MAX_LINES, "2")]),
    );
    let out = client.run(&["events", "--watch"]);
    out.assert_success();
    // Printed as they came, every one; kept, only the last two.
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[..5],
        ["line 1", "line 2", "line 3", "line 4", "line 5"],
        "{out}"
    );
    assert!(
        lines[5].ends_with(&format!(
            ": 5 lines streamed, the oldest 3 dropped ({})",
            key::LIVE_DISPLAY_STREAM_BUFFER_MAX_LINES
        )),
        "{out}"
    );
    assert_eq!(lines[6..], ["Five lines."], "{out}");
    let sent = prompts(&mock).await;
    assert!(sent[0].contains("line 4\nline 5"), "{}", sent[0]);
    assert!(!sent[0].contains("line 3"), "{}", sent[0]);
}

#[tokio::test]
async fn a_bad_filter_regex_is_refused_naming_the_key_before_kubectl_runs() {
    let mock = MockProvider::start(&["--reply", "unused"]);
    let client = Client::new("", "", 0);
    printing_kubectl(&client, &["x"], false);
    client.configure(
        &mock,
        true,
        &live_config(&[(key::LIVE_DISPLAY_DEFAULT_FILTER_REGEX, "'(unclosed'")]),
    );
    let out = client.fails(&["logs", "-f", "web-1"]);
    assert!(
        out.stderr.contains(&format!(
            "{} is not a valid regular expression",
            key::LIVE_DISPLAY_DEFAULT_FILTER_REGEX
        )),
        "{out}"
    );
    assert!(out.stderr.contains("hint:"), "{out}");
    assert!(client.kubectl_runs().is_empty());
    assert!(prompts(&mock).await.is_empty());
}

/// `vibectl ARGS` on a pty of 40 columns and 30 rows (util-linux `script`), with what it shows
/// collected as it comes and keys typed on demand.
struct Terminal {
    child: Child,
    keys: std::process::ChildStdin,
    shown: mpsc::Receiver<Vec<u8>>,
    text: String,
}

impl Terminal {
    fn start(client: &Client, args: &[&str]) -> Terminal {
        let script = ["/usr/bin/script", "/bin/script"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect(
                "util-linux `script` is needed to make a terminal (scripts/ci-deps installs it)",
            );
        let line = std::iter::once(env!("CARGO_BIN_EXE_vibectl"))
            .chain(args.iter().copied())
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let mut cmd = std::process::Command::new(script);
        client.environment(&mut cmd);
        let mut child = cmd
            .args([
                "-qfec",
                &format!("stty cols 40 rows 30; exec {line}"),
                "/dev/null",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start script");
        let keys = child.stdin.take().expect("piped");
        let mut stdout = child.stdout.take().expect("piped");
        let (tx, shown) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal {
            child,
            keys,
            shown,
            text: String::new(),
        }
    }

    /// Wait until the last whole frame of the view satisfies `ok`; that frame.
    fn frame_where(&mut self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(f) = last_frame(&self.text)
                && ok(&f)
            {
                return f;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.shown.recv_timeout(left) {
                Ok(bytes) => self.text.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => panic!(
                    "no frame with {what} within {LIMIT:?}; the terminal showed:\n{:?}",
                    self.text
                ),
            }
        }
    }

    fn type_keys(&mut self, keys: &str) {
        self.keys.write_all(keys.as_bytes()).expect("type");
        self.keys.flush().expect("flush");
    }

    /// Wait for vibectl to end; everything the terminal showed.
    fn finish(mut self) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.shown.recv_timeout(left) {
                Ok(bytes) => self.text.push_str(&String::from_utf8_lossy(&bytes)),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!("vibectl did not end within {LIMIT:?}:\n{:?}", self.text);
                }
            }
        }
        let status = self.child.wait().expect("wait");
        (status, self.text)
    }
}

/// The text after the last clear of the view, once its key line is there, with the
/// terminal's line ends made `\n`.
fn last_frame(text: &str) -> Option<String> {
    let start = text.rfind("\x1b[J")? + 3;
    let frame = text[start..].replace("\r\n", "\n");
    (frame.contains("[E]xit") && frame.ends_with('\n')).then_some(frame)
}

/// The numbered lines `prefix 1`..`prefix n`.
fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix} {i}")).collect()
}

#[tokio::test]
async fn on_a_terminal_the_view_shows_max_lines_and_s_saves_to_save_dir() {
    let mock = MockProvider::start(&["--reply", "Thirty lines seen."]);
    let client = Client::new("", "", 0);
    let lines = numbered("line", 30);
    printing_kubectl(
        &client,
        &lines.iter().map(String::as_str).collect::<Vec<_>>(),
        true,
    );
    let saves = client.path().join("saved-output");
    client.configure(
        &mock,
        true,
        &live_config(&[
            (key::LIVE_DISPLAY_MAX_LINES, "5"),
            (key::LIVE_DISPLAY_SAVE_DIR, &saves.display().to_string()),
        ]),
    );
    let mut term = Terminal::start(&client, &["logs", "-f", "web-1"]);
    let frame = term.frame_where("line 30", |f| f.contains("line 30\n"));
    let rows: Vec<&str> = frame.split('\n').collect();
    assert_eq!(
        &rows[..5],
        ["line 26", "line 27", "line 28", "line 29", "line 30"],
        "{frame:?}"
    );
    assert!(rows[5].starts_with("[E]xit | [W]rap: on"), "{frame:?}");
    assert!(!frame.contains("line 25"), "{frame:?}");

    // S asks for a name; Enter alone takes the suggested one.
    term.type_keys("s");
    term.frame_where("the save prompt", |f| {
        f.replace('\n', "")
            .contains("Save as (empty: vibectl_logs_web-1_TIME.log): ")
    });
    term.type_keys("\r");
    // The whole line, name included: a frame may be caught half drawn.
    let frame = term.frame_where("a saved file", |f| {
        let f = f.replace('\n', "");
        f.match_indices("saved to ").any(|(i, _)| {
            f[i..]
                .chars()
                .take(400)
                .collect::<String>()
                .contains(".log")
        })
    });
    let files: Vec<_> = std::fs::read_dir(&saves)
        .expect("save_dir was created")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with("vibectl_logs_web-1_") && name.ends_with(".log"),
        "{name}"
    );
    assert!(frame.replace('\n', "").contains(&name), "{frame:?}");
    let saved = std::fs::read_to_string(&files[0]).expect("read");
    assert_eq!(
        saved,
        lines.join("\n") + "\n",
        "every kept line, not only the view"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0])
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A typed name is used as is, never overwritten, and must stay in save_dir.
    term.type_keys("smine.log\r");
    // Saved, not merely typed: the name echoed at the prompt is not enough.
    term.frame_where("mine.log saved", |f| {
        let f = f.replace('\n', "");
        f.match_indices("saved to ").any(|(i, _)| {
            f[i..]
                .chars()
                .take(400)
                .collect::<String>()
                .contains("mine.log")
        })
    });
    assert_eq!(
        std::fs::read_to_string(saves.join("mine.log")).expect("mine.log"),
        lines.join("\n") + "\n"
    );
    term.type_keys("smine.log\r");
    term.frame_where("no overwrite", |f| {
        f.replace('\n', "").contains("it was not overwritten")
    });
    term.type_keys("s../out.log\r");
    term.frame_where("a refused name", |f| {
        f.replace('\n', "").contains("is not a plain file name")
    });
    assert_eq!(std::fs::read_dir(&saves).expect("dir").count(), 2);
    assert!(!client.path().join("out.log").exists());

    term.type_keys("e");
    let (status, shown) = term.finish();
    assert!(status.success(), "{shown:?}");
    assert!(shown.contains("Thirty lines seen."), "{shown:?}");
    let sent = prompts(&mock).await;
    assert!(sent[0].contains("line 1\nline 2"), "{}", sent[0]);
    assert!(sent[0].contains("line 30"), "{}", sent[0]);
}

#[tokio::test]
async fn on_a_terminal_wrap_text_and_the_w_and_f_keys_change_the_view() {
    let mock = MockProvider::start(&["--reply", "One error."]);
    let client = Client::new("", "", 0);
    // 40 characters, then more: the terminal is 40 columns wide.
    let long = format!("L{}tail-end", "x".repeat(39));
    printing_kubectl(&client, &["ok 1", "error 2", &long], true);
    client.configure(
        &mock,
        true,
        &live_config(&[(key::LIVE_DISPLAY_WRAP_TEXT, "false")]),
    );
    let mut term = Terminal::start(&client, &["get", "pods", "-w"]);
    let frame = term.frame_where("the long line", |f| f.contains("Lxxx"));
    assert!(frame.contains("[W]rap: off"), "{frame:?}");
    assert!(!frame.contains("tail-end"), "cut at 40 columns: {frame:?}");
    assert!(
        frame.contains(&format!("L{}\n", "x".repeat(39))),
        "{frame:?}"
    );

    term.type_keys("w");
    let frame = term.frame_where("wrap on", |f| f.contains("[W]rap: on"));
    assert!(frame.contains("\ntail-end\n"), "wrapped: {frame:?}");

    term.type_keys("f");
    term.frame_where("the filter prompt", |f| f.contains("Filter (empty clears"));
    term.type_keys("^err\r");
    let frame = term.frame_where("the filter", |f| f.contains("[F]ilter: '^err'"));
    assert!(frame.contains("error 2"), "{frame:?}");
    assert!(!frame.contains("ok 1"), "{frame:?}");
    assert!(!frame.contains("tail-end"), "{frame:?}");

    // Ctrl-C typed on the terminal stops kubectl and summarizes what passed the filter.
    term.type_keys("\x03");
    let (status, shown) = term.finish();
    assert!(status.success(), "{shown:?}");
    assert!(shown.contains("One error."), "{shown:?}");
    let sent = prompts(&mock).await;
    assert!(sent[0].contains("error 2"), "{}", sent[0]);
    assert!(!sent[0].contains("ok 1"), "{}", sent[0]);
    assert_eq!(client.kubectl_runs(), ["get pods -w"]);
}

#[tokio::test]
async fn on_a_terminal_p_pauses_the_view_while_lines_keep_coming_and_stderr_shows_in_it() {
    let mock = MockProvider::start(&["--reply", "Two lines."]);
    let client = Client::new("", "", 0);
    // Prints a line on stderr and one on stdout, a second once the test creates `go`, then
    // waits until stopped.
    let script = format!(
        "#!/bin/sh\n\
         printf '%s\\n' \"$*\" >> '{dir}/kubectl-args'\n\
         echo 'oops 0' >&2\n\
         echo 'first 1'\n\
         i=0\n\
         while [ ! -f '{dir}/go' ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\n\
         echo 'second 2'\n\
         exec sleep 600\n",
        dir = client.path().display()
    );
    write_executable(&client.kubectl(), &script);
    client.configure(&mock, true, &live_config(&[]));
    let mut term = Terminal::start(&client, &["logs", "-f", "web-1"]);
    term.frame_where("the first line", |f| f.contains("first 1"));
    term.type_keys("p");
    term.frame_where("the pause", |f| f.contains("[P]ause: paused, 0 new"));
    std::fs::write(client.path().join("go"), "").expect("go");
    term.frame_where("a line counted", |f| f.contains("[P]ause: paused, 1 new"));
    assert!(
        !term.text.contains("second 2"),
        "shown while paused: {:?}",
        term.text
    );
    term.type_keys("p");
    let frame = term.frame_where("the view running", |f| f.contains("[P]ause: running"));
    // kubectl's stderr shows inside the view, not over it (in whatever order the two pipes
    // were read).
    let body = frame.split("[E]xit").next().expect("body");
    let mut rows: Vec<&str> = body.lines().collect();
    rows.sort_unstable();
    assert_eq!(rows, ["first 1", "oops 0", "second 2"], "{frame:?}");
    term.type_keys("e");
    let (status, shown) = term.finish();
    assert!(status.success(), "{shown:?}");
}

#[tokio::test]
async fn a_terminate_signal_stops_kubectl_too() {
    let mock = MockProvider::start(&["--reply", "unused"]);
    let client = Client::new("", "", 0);
    printing_kubectl(&client, &["ready"], true);
    client.configure(&mock, true, &live_config(&[]));
    let mut child = client
        .command(&["logs", "-f", "web-1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vibectl");
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut first,
    )
    .expect("a line");
    assert_eq!(first, "ready\n");
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(kill.success());
    let status = crate::support::wait::until_blocking("vibectl ending", LIMIT, || {
        child.try_wait().expect("status").ok_or("still running")
    });
    assert!(!status.success());
    // kubectl runs in its own process group; vibectl stopped it before leaving.
    let pid = std::fs::read_to_string(client.path().join("kubectl-pid")).expect("kubectl pid");
    let alive = std::process::Command::new("kill")
        .args(["-0", pid.trim()])
        .stderr(Stdio::null())
        .status()
        .expect("kill -0");
    assert!(!alive.success(), "kubectl {pid} still runs");
    assert!(prompts(&mock).await.is_empty(), "no summary after a kill");
}
