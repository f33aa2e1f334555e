//! Dynamic completion in a real interactive bash: a private tmux server runs `bash -i` with the
//! built `vibectl` on PATH, the test types a command line and <TAB><TAB>, and reads the screen.
//! Keys, sections, enum values and the profile names in the config file must all be offered.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::wait;

/// The longest wait for the screen to show what is expected.
const WAIT: Duration = Duration::from_secs(15);

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A tmux server of its own (`-L` socket) running one interactive bash; killed on drop.
struct Shell {
    socket: String,
    /// The socket file, removed after the server is killed.
    socket_path: Option<std::path::PathBuf>,
    _home: tempfile::TempDir,
}

const PROMPT: &str = "READY$ ";

impl Shell {
    /// Start bash with an empty environment but for PATH (the built binary first), HOME and
    /// the client config dir, and `setup` sourced.
    fn start(setup: &str) -> Shell {
        let home = tempfile::Builder::new()
            .prefix("vibectl-complete-")
            .tempdir()
            .unwrap();
        let bin_dir = home.path().join("bin");
        std::fs::create_dir_all(&bin_dir).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_vibectl"), bin_dir.join("vibectl")).unwrap();
        let config_dir = home.path().join("client");
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::write(
            config_dir.join("config.yaml"),
            "proxy:\n  profiles:\n    staging:\n      server_url: vibectl-server://s:443\n    prod-eu:\n      server_url: vibectl-server://p:443\n",
        )
        .unwrap();
        // The prompt is set last: a system bashrc may set its own first.
        std::fs::write(home.path().join("rc"), format!("{setup}\nPS1='{PROMPT}'\n")).unwrap();
        let socket = format!(
            "vibectl-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir.display());
        let mut shell = Shell {
            socket,
            socket_path: None,
            _home: home,
        };
        let home = shell._home.path();
        let bash = format!(
            "env -i HOME={home} PATH={path} TERM=xterm INPUTRC=/dev/null \
             VIBECTL_CLIENT_CONFIG_DIR={cfg} bash --noprofile --rcfile {home}/rc -i",
            home = home.display(),
            cfg = home.join("client").display(),
        );
        let out = shell.tmux(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "200",
            "-y",
            "50",
            &bash,
        ]);
        assert!(
            out.status.success(),
            "tmux did not start (is it installed? scripts/ci-deps installs it): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = shell
            .tmux(&["display-message", "-p", "#{socket_path}"])
            .stdout;
        shell.socket_path = Some(String::from_utf8_lossy(&path).trim().into());
        // capture-pane drops trailing spaces, the prompt's included.
        shell.wait_for("the first prompt", |s| s.contains(PROMPT.trim_end()));
        shell
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs (scripts/ci-deps installs it)")
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        assert!(self.tmux(&args).status.success());
    }

    /// Type text literally.
    fn type_text(&self, text: &str) {
        assert!(
            self.tmux(&["send-keys", "-t", "t", "-l", text])
                .status
                .success()
        );
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    /// Poll the screen until `done` holds; the screen as it then is.
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        wait::until_blocking(what, WAIT, || {
            let screen = self.screen();
            if done(&screen) {
                Ok(screen)
            } else {
                Err(format!("the screen:\n{screen}"))
            }
        })
    }

    /// An empty line on a cleared screen: readline's own keys (end of line, kill to its start,
    /// clear screen), no signal that could race with a running completion.
    fn clear(&self) {
        self.keys(&["C-e", "C-u", "C-l"]);
        self.wait_for("a clear screen", |s| s.trim() == PROMPT.trim());
    }

    /// Clear the screen and the line, then type `line` and press TAB twice; the screen once
    /// `expected` all show, checked to list none of `absent`.
    fn complete(&self, line: &str, expected: &[&str], absent: &[&str]) -> String {
        self.clear();
        self.type_text(line);
        self.wait_for("the typed line", |s| s.contains(line.trim_end()));
        // Both at once: the terminal holds the second until readline has done the first.
        self.keys(&["Tab", "Tab"]);
        let screen = self.wait_for(&format!("the candidates of `{line}`"), |s| {
            expected
                .iter()
                .all(|e| words(s, line).iter().any(|w| w == e))
        });
        let listed = words(&screen, line);
        for a in absent {
            assert!(
                !listed.iter().any(|w| w == a),
                "`{line}<TAB><TAB>` offers {a}; the screen:\n{screen}"
            );
        }
        screen
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
        if let Some(p) = &self.socket_path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The words bash listed below the command line (the lines after the first prompt line).
fn words(screen: &str, line: &str) -> Vec<String> {
    let mut lines = screen.lines().skip_while(|l| !l.contains(line.trim_end()));
    lines.next();
    lines
        .take_while(|l| !l.starts_with(PROMPT.trim_end()))
        .flat_map(|l| l.split_whitespace())
        .map(str::to_owned)
        .collect()
}

fn dynamic() -> Shell {
    Shell::start("source <(COMPLETE=bash vibectl)\n")
}

#[test]
fn keys_of_a_section() {
    let sh = dynamic();
    sh.complete(
        "vibectl config set llm.",
        &["llm.model", "llm.max_retries", "llm.retry_delay_seconds"],
        &["display.theme", "llm"],
    );
}

#[test]
fn values_of_an_enum_key() {
    let sh = dynamic();
    sh.complete(
        "vibectl config set display.theme ",
        &["default", "dark", "light", "accessible"],
        &["display.theme", "llm"],
    );
    // An old name (0.9's flat `theme`) completes its values too.
    sh.complete(
        "vibectl config set theme ",
        &["default", "dark", "light", "accessible"],
        &["display.theme"],
    );
    sh.complete(
        "vibectl config set display.show_vibe ",
        &["true", "false"],
        &["dark"],
    );
}

#[test]
fn sections_for_show() {
    let sh = dynamic();
    sh.complete(
        "vibectl config show ",
        &[
            "core",
            "display",
            "llm",
            "providers",
            "memory",
            "warnings",
            "proxy",
            "system",
        ],
        &["llm.model", "display.theme"],
    );
}

#[test]
fn profile_names_from_the_file_and_a_single_match_inline() {
    let sh = dynamic();
    sh.complete(
        "vibectl config set proxy.profiles.",
        &["proxy.profiles.staging", "proxy.profiles.prod-eu"],
        &["proxy.active"],
    );
    sh.complete(
        "vibectl config set proxy.profiles.staging.",
        &[
            "proxy.profiles.staging.server_url",
            "proxy.profiles.staging.security",
        ],
        &["proxy.profiles.prod-eu.server_url"],
    );
    // A single candidate is completed on the line itself.
    sh.clear();
    sh.type_text("vibectl config set display.th");
    sh.keys(&["Tab"]);
    sh.wait_for("display.theme on the line", |s| {
        s.contains("vibectl config set display.theme")
    });
}

#[test]
fn the_checked_in_script_completes_the_same() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/vibectl.bash");
    let sh = Shell::start(&format!("source {}\n", script.display()));
    sh.complete(
        "vibectl config set llm.",
        &["llm.model", "llm.max_retries"],
        &["display.theme"],
    );
    let sh2 = Shell::start("source <(vibectl completions bash)\n");
    sh2.complete(
        "vibectl config show ",
        &["core", "llm", "proxy"],
        &["llm.model"],
    );
}
