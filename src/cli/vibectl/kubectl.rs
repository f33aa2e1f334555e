//! Running kubectl: the configured `core.kubectl_command` (with `--kubeconfig` when
//! `core.kubeconfig` is set), its output captured for a summary or passed straight through.

use std::io::ErrorKind;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::CmdError;
use crate::config::ClientConfig;
use crate::config::generated::client::key;

/// `kubectl ARGS` as shown to the user (arguments with spaces or quotes are quoted).
pub fn display(args: &[String]) -> String {
    let mut s = String::from("kubectl");
    for a in args {
        s.push(' ');
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"\\$`|&;<>()*?".contains(c))
        {
            s.push('\'');
            s.push_str(&a.replace('\'', r"'\''"));
            s.push('\'');
        } else {
            s.push_str(a);
        }
    }
    s
}

fn command(cfg: &ClientConfig, args: &[String]) -> Command {
    let mut cmd = Command::new(&cfg.core.kubectl_command);
    if let Some(k) = &cfg.core.kubeconfig {
        cmd.arg("--kubeconfig").arg(k);
    }
    cmd.args(args);
    cmd
}

/// Why kubectl could not be started.
fn not_started(cfg: &ClientConfig, e: &std::io::Error) -> CmdError {
    let what = match e.kind() {
        ErrorKind::NotFound => "was not found".to_owned(),
        ErrorKind::PermissionDenied => "is not executable".to_owned(),
        _ => format!("could not be started: {e}"),
    };
    CmdError::new(format!(
        "cannot run kubectl: `{}` ({}) {what}",
        cfg.core.kubectl_command,
        key::CORE_KUBECTL_COMMAND
    ))
    .with_hint(format!(
        "install kubectl, or point vibectl at it: vibectl config set {} /path/to/kubectl",
        key::CORE_KUBECTL_COMMAND
    ))
}

/// Run kubectl and return what it printed and how it exited (non-UTF-8 output is converted
/// lossily); its stderr is passed on to ours, and kept (for the recovery prompt). A kubectl
/// that cannot be started, or that runs longer than `core.kubectl_timeout_seconds`, is an
/// error.
pub fn capture(cfg: &ClientConfig, args: &[String]) -> Result<Captured, CmdError> {
    let c = capture_all(cfg, args)?;
    if !c.stderr.is_empty() {
        eprint!("{}", c.stderr);
        if !c.stderr.ends_with('\n') {
            eprintln!();
        }
    }
    tracing::debug!(
        code = ?c.status.code(),
        stdout_bytes = c.stdout.len(),
        stderr_bytes = c.stderr.len(),
        "kubectl ended"
    );
    Ok(c)
}

/// What a kubectl run printed on stdout and stderr, and how it exited.
pub struct Captured {
    pub stdout: String,
    pub stderr: String,
    pub status: std::process::ExitStatus,
}

/// Run kubectl and keep both of its outputs (for the model to read). A kubectl that cannot
/// be started, or that runs longer than `core.kubectl_timeout_seconds` (it is then killed),
/// is an error.
pub fn capture_all(cfg: &ClientConfig, args: &[String]) -> Result<Captured, CmdError> {
    use std::io::Read;
    let mut child = command(cfg, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| not_started(cfg, &e))?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let limit = Duration::from_secs(u64::try_from(cfg.core.kubectl_timeout_seconds).unwrap_or(1));
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(timed_out(args, limit));
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => return Err(not_started(cfg, &e)),
        }
    };
    Ok(Captured {
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        status,
    })
}

/// Whether kubectl exiting with `code` for `args` is a normal outcome: any success, and
/// `diff`'s exit status 1, which says the objects differ (2 and above are errors).
pub fn succeeded(args: &[String], code: Option<i32>) -> bool {
    match code {
        Some(0) => true,
        Some(1) => super::safety::verb(args) == Some("diff"),
        _ => false,
    }
}

/// How often a running kubectl is checked for having exited.
const POLL: Duration = Duration::from_millis(20);

/// [`capture`] as a future: dropping it (when the user presses Ctrl-C during a loop step)
/// kills kubectl. Bounded by `core.kubectl_timeout_seconds` as [`capture_all`] is.
pub async fn capture_async(cfg: &ClientConfig, args: &[String]) -> Result<Captured, CmdError> {
    let run = tokio::process::Command::from(command(cfg, args))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let limit = Duration::from_secs(u64::try_from(cfg.core.kubectl_timeout_seconds).unwrap_or(1));
    let output = match tokio::time::timeout(limit, run).await {
        Ok(r) => r.map_err(|e| not_started(cfg, &e))?,
        Err(_) => return Err(timed_out(args, limit)),
    };
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !stderr.is_empty() {
        eprint!("{stderr}");
        if !stderr.ends_with('\n') {
            eprintln!();
        }
    }
    Ok(Captured {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr,
        status: output.status,
    })
}

/// The error of a kubectl stopped after `limit` (`core.kubectl_timeout_seconds`).
fn timed_out(args: &[String], limit: Duration) -> CmdError {
    CmdError::new(format!(
        "`{}` did not finish within {} seconds ({}); vibectl stopped it",
        display(args),
        limit.as_secs(),
        key::CORE_KUBECTL_TIMEOUT_SECONDS
    ))
    .with_hint(format!(
        "check that the cluster answers (kubectl cluster-info), or allow more time: vibectl config set {} SECONDS",
        key::CORE_KUBECTL_TIMEOUT_SECONDS
    ))
}

/// Whether `args` (verb first) keep kubectl running to print things as they happen:
/// `logs -f`, `get -w`, `events -w` and their long and `=true` forms.
pub fn is_streaming(args: &[String]) -> bool {
    let Some(verb) = args.first() else {
        return false;
    };
    let flags: &[&str] = match verb.as_str() {
        "logs" => &["-f", "--follow", "--follow=true"],
        "get" | "events" => &[
            "-w",
            "--watch",
            "--watch=true",
            "--watch-only",
            "--watch-only=true",
        ],
        _ => return false,
    };
    args[1..]
        .iter()
        .take_while(|a| a.as_str() != "--")
        .any(|a| flags.contains(&a.as_str()))
}

/// Whether `args` (verb first) get the live display: the streaming commands, and `wait`, which
/// keeps running until its condition is met or its `--timeout` passes.
pub fn keeps_running(args: &[String]) -> bool {
    is_streaming(args) || waits(args)
}

/// Whether `args` are a `wait`: it ends on its own, so a followed `wait` is still bounded by
/// `core.kubectl_timeout_seconds`, as a captured one is.
fn waits(args: &[String]) -> bool {
    args.first().is_some_and(|v| v == "wait")
}

/// Most of kubectl's stderr read after it ended, in bytes.
const STDERR_REST: usize = 64 * 1024;

/// How a followed run ended: whether the user stopped it, and its exit code.
pub struct Followed {
    pub interrupted: bool,
    pub code: Option<i32>,
}

/// Run kubectl, giving its stdout to the live display as it arrives, until it exits or the user
/// stops it (Ctrl-C, or the exit key of the view), which stops kubectl. Its stderr is ours.
/// kubectl runs in its own process group, so a Ctrl-C typed on the terminal reaches vibectl
/// only, and vibectl stops kubectl. A run that fails on its own is an error; one the user
/// stopped is not.
pub async fn follow(
    cfg: &ClientConfig,
    args: &[String],
    live: &mut super::live::Live,
) -> Result<Followed, CmdError> {
    use tokio::io::AsyncReadExt;

    let mut cmd = command(cfg, args);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let err = if live.takes_stderr() {
        Stdio::piped()
    } else {
        Stdio::inherit()
    };
    let mut child = tokio::process::Command::from(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| not_started(cfg, &e))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take();
    let mut buf = vec![0u8; 8192];
    let mut ebuf = vec![0u8; 4096];
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    // kubectl is out of the terminal's process group: a hang-up or a kill of vibectl must
    // still stop it.
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup()).ok();
    let mut terminate = signal(SignalKind::terminate()).ok();
    let mut ended = false;
    let mut interrupted = false;
    let limit = Duration::from_secs(u64::try_from(cfg.core.kubectl_timeout_seconds).unwrap_or(1));
    let deadline = waits(args).then(|| tokio::time::Instant::now() + limit);
    loop {
        let overdue = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let other = async {
            match (&mut hangup, &mut terminate) {
                (Some(h), Some(t)) => tokio::select! { _ = h.recv() => {}, _ = t.recv() => {} },
                _ => std::future::pending().await,
            }
        };
        let key = async {
            match live.keys() {
                Some(keys) => keys.recv().await,
                None => std::future::pending().await,
            }
        };
        let err_read = async {
            match &mut stderr {
                Some(e) => e.read(&mut ebuf).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            read = stdout.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => live.feed(&buf[..n]),
            },
            read = err_read => match read {
                Ok(0) | Err(_) => stderr = None,
                Ok(n) => live.feed_stderr(&ebuf[..n]),
            },
            Some(k) = key => {
                if live.key(k) == super::live::KeyAction::Exit {
                    interrupted = true;
                    break;
                }
            }
            _ = &mut interrupt => {
                interrupted = true;
                break;
            }
            _ = other => {
                ended = true;
                break;
            }
            _ = overdue => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(timed_out(args, limit));
            }
        }
    }
    if ended {
        // Hung up or told to end: stop kubectl and leave as those signals would.
        let _ = child.start_kill();
        let _ = child.wait().await;
        return Err(CmdError::new(format!(
            "`{}` was stopped: vibectl was told to end",
            display(args)
        )));
    }
    if interrupted {
        let _ = child.start_kill();
    }
    let status = child.wait().await.map_err(|e| not_started(cfg, &e))?;
    if let Some(e) = stderr {
        // What kubectl said last on stderr (bounded, and not waiting on a process it left).
        let mut rest = Vec::new();
        let mut e = e.take(STDERR_REST as u64);
        let drain = e.read_to_end(&mut rest);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
        live.feed_stderr(&rest);
    }
    if !interrupted && !status.success() {
        return Err(failed(args, status));
    }
    Ok(Followed {
        interrupted,
        code: status.code(),
    })
}

/// Run kubectl with our stdin, stdout and stderr; how it exited.
pub fn passthrough(
    cfg: &ClientConfig,
    args: &[String],
) -> Result<std::process::ExitStatus, CmdError> {
    command(cfg, args)
        .status()
        .map_err(|e| not_started(cfg, &e))
}

/// The error of a kubectl run that exited with `status`.
pub fn failed(args: &[String], status: std::process::ExitStatus) -> CmdError {
    let how = match status.code() {
        Some(c) => format!("exit status {c}"),
        None => "a signal".to_owned(),
    };
    CmdError::new(format!("`{}` failed with {how}", display(args)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_and_watch_flags_are_streaming() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(is_streaming(&v(&["logs", "-f", "web-1"])));
        assert!(is_streaming(&v(&["logs", "web-1", "--follow"])));
        assert!(is_streaming(&v(&["get", "pods", "-w"])));
        assert!(is_streaming(&v(&["events", "--watch=true"])));
        assert!(!is_streaming(&v(&["logs", "web-1"])));
        assert!(!is_streaming(&v(&["describe", "pod", "-w"])));
        assert!(!is_streaming(&v(&["logs", "--", "-f"])));
        assert!(!is_streaming(&v(&["get", "pods", "--watch=false"])));
        assert!(keeps_running(&v(&[
            "wait",
            "deploy/web",
            "--for=condition=Available"
        ])));
        assert!(keeps_running(&v(&["logs", "-f", "web-1"])));
        assert!(!keeps_running(&v(&["get", "pods"])));
    }

    #[test]
    fn display_quotes_what_a_shell_would_split() {
        let args: Vec<String> = ["get", "pods", "-l", "app in (a, b)", "it's"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            display(&args),
            r"kubectl get pods -l 'app in (a, b)' 'it'\''s'"
        );
    }
}
