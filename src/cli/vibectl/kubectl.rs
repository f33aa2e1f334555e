//! Running kubectl: the configured `core.kubectl_command` (with `--kubeconfig` when
//! `core.kubeconfig` is set), its output captured for a summary or passed straight through.

use std::io::ErrorKind;
use std::process::{Command, Stdio};

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

/// Run kubectl and return what it printed on stdout and how it exited (non-UTF-8 output is
/// converted lossily); its stderr is passed on to ours. Only a kubectl that cannot be
/// started is an error.
pub fn capture_status(
    cfg: &ClientConfig,
    args: &[String],
) -> Result<(String, std::process::ExitStatus), CmdError> {
    let output = command(cfg, args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| not_started(cfg, &e))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !stderr.is_empty() {
        eprint!("{stderr}");
        if !stderr.ends_with('\n') {
            eprintln!();
        }
    }
    Ok((
        String::from_utf8_lossy(&output.stdout).into_owned(),
        output.status,
    ))
}

/// How a loop step's kubectl run ended: its stdout, its stderr (also passed on to ours) and
/// its exit status.
pub struct Captured {
    pub stdout: String,
    pub stderr: String,
    pub status: std::process::ExitStatus,
}

/// Run kubectl as [`capture_status`] does, but as a future: dropping it (when the user
/// presses Ctrl-C during a loop step) kills kubectl.
pub async fn capture_async(cfg: &ClientConfig, args: &[String]) -> Result<Captured, CmdError> {
    let output = tokio::process::Command::from(command(cfg, args))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| not_started(cfg, &e))?;
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

/// Most of a followed run's output kept for the summary, in bytes (the newest part).
const FOLLOW_TAIL: usize = 64 * 1024;

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

/// What a followed run printed, whether the user stopped it, and its exit code.
pub struct Followed {
    /// The newest [`FOLLOW_TAIL`] bytes of kubectl's stdout.
    pub tail: String,
    pub interrupted: bool,
    pub code: Option<i32>,
}

/// Run kubectl, copying its stdout to ours as it arrives, until it exits or the user presses
/// Ctrl-C (which stops kubectl). Its stderr is ours. A run that fails on its own is an error;
/// one the user stopped is not.
pub async fn follow(cfg: &ClientConfig, args: &[String]) -> Result<Followed, CmdError> {
    use std::io::Write;
    use tokio::io::AsyncReadExt;

    let mut child = tokio::process::Command::from(command(cfg, args))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| not_started(cfg, &e))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut tail: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 8192];
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    let mut interrupted = false;
    loop {
        tokio::select! {
            read = stdout.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                    tail.extend_from_slice(&buf[..n]);
                    if tail.len() > 2 * FOLLOW_TAIL {
                        tail.drain(..tail.len() - FOLLOW_TAIL);
                    }
                }
            },
            _ = &mut interrupt => {
                interrupted = true;
                break;
            }
        }
    }
    if interrupted {
        let _ = child.start_kill();
    }
    let status = child.wait().await.map_err(|e| not_started(cfg, &e))?;
    if !interrupted && !status.success() {
        return Err(failed(args, status));
    }
    if tail.len() > FOLLOW_TAIL {
        tail.drain(..tail.len() - FOLLOW_TAIL);
    }
    Ok(Followed {
        tail: String::from_utf8_lossy(&tail).into_owned(),
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
