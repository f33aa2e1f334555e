//! Running external processes from tests with a bound on their run time: [`run`] waits for a
//! command and kills it when it takes too long, [`KillOnDrop`] kills a long-running child when
//! the test lets go of it.

use std::fmt;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::wait;

/// How long to wait for a killed process's pipes to close before giving up on its output.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// What a finished command left behind.
pub struct Output {
    /// The command line, for messages.
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panic with everything the command printed unless it exited 0.
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "command failed\n{self}");
        self
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "$ {}\n[{}]\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

/// The command line of `cmd`, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

/// Run `cmd` to completion (stdin closed, stdout and stderr captured); kill it and panic, with
/// what it printed so far, if it runs longer than `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Output {
    let command = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{command}`: {e}"));
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let status = wait::poll_blocking(limit, || match child.try_wait() {
        Ok(Some(status)) => Ok(status),
        Ok(None) => Err(()),
        Err(e) => panic!("waiting for `{command}`: {e}"),
    });
    let Ok(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        let out = stdout.recv_timeout(PIPE_GRACE).unwrap_or_default();
        let err = stderr.recv_timeout(PIPE_GRACE).unwrap_or_default();
        panic!(
            "`{command}` did not finish within {limit:?} and was killed\n--- stdout ---\n{out}\n--- stderr ---\n{err}"
        );
    };
    Output {
        command,
        status,
        // A grandchild holding a pipe open must not hang the test.
        stdout: stdout.recv_timeout(PIPE_GRACE).unwrap_or_default(),
        stderr: stderr.recv_timeout(PIPE_GRACE).unwrap_or_default(),
    }
}

/// A child process that is killed (and reaped) when this is dropped.
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    /// Whether the child is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }

    /// Wait up to `limit` for the child to exit by itself; kill it after that.
    pub fn wait_or_kill(&mut self, limit: Duration) {
        let _ = wait::poll_blocking(limit, || if self.running() { Err(()) } else { Ok(()) });
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
