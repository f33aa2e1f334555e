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

/// Run kubectl and return what it printed on stdout. Its stderr is passed on to ours; a
/// failure is an error naming the command and its exit status.
pub fn capture(cfg: &ClientConfig, args: &[String]) -> Result<String, CmdError> {
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
    if !output.status.success() {
        return Err(failed(args, output.status));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Run kubectl with our stdin, stdout and stderr.
pub fn passthrough(cfg: &ClientConfig, args: &[String]) -> Result<(), CmdError> {
    let status = command(cfg, args)
        .status()
        .map_err(|e| not_started(cfg, &e))?;
    if status.success() {
        Ok(())
    } else {
        Err(failed(args, status))
    }
}

fn failed(args: &[String], status: std::process::ExitStatus) -> CmdError {
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
