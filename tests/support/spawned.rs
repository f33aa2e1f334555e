//! The real `vibectl-server` binary for tests that need a process (signals, stdout and stderr,
//! process limits, a kill): [`command`] builds a clean command on a config directory, and
//! [`Spawned`] runs `serve --port 0` on a config file from the same builder as the in-process
//! [`super::server::TestServer`] and waits for its listening line.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tempfile::TempDir;
use tonic::transport::{Channel, Endpoint};
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;

use super::process::{self, KillOnDrop};
use super::server::{LIMIT, within};
use super::wait;

/// The server binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_vibectl-server");

/// The line `serve` prints once it listens, before the address.
pub const LISTENING: &str = "vibectl-server listening on ";
/// The line `serve` prints when the metrics endpoint listens, before the address.
pub const METRICS: &str = "metrics on http://";

/// `vibectl-server --config DIR/config.yaml ARGS`, run in `dir` with an environment that holds
/// only `HOME=DIR`, `PATH` and `NO_COLOR`, so no setting of the machine leaks in.
pub fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(dir.join("config.yaml"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir)
        .env("NO_COLOR", "1");
    cmd
}

/// A `vibectl-server serve` process, killed when dropped.
pub struct Spawned {
    /// Where clients connect (the address of the listening line).
    pub addr: SocketAddr,
    /// The config directory: `config.yaml`, the usage log, `server.log` (its stderr).
    pub dir: PathBuf,
    pub file: PathBuf,
    child: KillOnDrop,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    _tmp: Option<TempDir>,
}

impl Spawned {
    /// Serve the config file `text` with `serve --port 0 ARGS`.
    pub fn start(text: &str, args: &[&str]) -> Spawned {
        Spawned::start_custom(text, args, |_| {})
    }

    /// [`Spawned::start`], with `customize` applied to the command (environment, limits of the
    /// process) before it starts.
    pub fn start_custom(
        text: &str,
        args: &[&str],
        customize: impl FnOnce(&mut Command),
    ) -> Spawned {
        let dir = tempfile::Builder::new()
            .prefix("vibectl-serve-")
            .tempdir()
            .expect("temp dir");
        let file = dir.path().join("config.yaml");
        std::fs::write(&file, text).expect("write the config");
        let mut spawned = Spawned::start_in(dir.path(), args, customize);
        spawned._tmp = Some(dir);
        spawned
    }

    /// Serve `dir/config.yaml`, already written (with certificates or keys beside it); the
    /// caller keeps `dir`.
    pub fn start_in(dir: &Path, args: &[&str], customize: impl FnOnce(&mut Command)) -> Spawned {
        let file = dir.join("config.yaml");
        let log = std::fs::File::create(dir.join("server.log")).expect("server.log");
        let mut cmd = command(dir, &["serve", "--port", "0"]);
        cmd.args(args);
        customize(&mut cmd);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start vibectl-server serve");
        let mut child = KillOnDrop(child);
        let stdout = child.0.stdout.take().expect("stdout is piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                seen.lock().expect("lines").push(line);
            }
        });
        let mut spawned = Spawned {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir: dir.to_owned(),
            file,
            child,
            lines,
            reader: Some(reader),
            _tmp: None,
        };
        spawned.addr = spawned.address_after(LISTENING);
        spawned
    }

    /// The stdout line that starts with `prefix`, once printed; panics (with stderr) after
    /// [`LIMIT`] or when the process has exited without printing it.
    pub fn line(&mut self, prefix: &str) -> String {
        let lines = self.lines.clone();
        let what = format!("a `{prefix}` line from serve");
        let found = wait::poll_blocking(LIMIT, || {
            let seen = lines.lock().expect("lines");
            match seen.iter().find(|l| l.starts_with(prefix)) {
                Some(l) => Ok(l.clone()),
                None if !self.child.running() => Err(format!("serve exited: {seen:?}")),
                None => Err(format!("{seen:?}")),
            }
        });
        found.unwrap_or_else(|seen| {
            panic!(
                "{what}: not within {LIMIT:?}; seen {seen}\n--- stderr ---\n{}",
                self.stderr()
            )
        })
    }

    /// The address printed after `prefix` (`LISTENING` or `METRICS`).
    pub fn address_after(&mut self, prefix: &str) -> SocketAddr {
        let line = self.line(prefix);
        line[prefix.len()..]
            .split([' ', '/'])
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
    }

    /// Every stdout line so far.
    pub fn stdout(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Wait until stderr holds `needle`; panics with stderr after [`LIMIT`].
    pub fn wait_stderr(&self, needle: &str) -> String {
        wait::until_blocking(&format!("`{needle}` on serve's stderr"), LIMIT, || {
            let text = self.stderr();
            if text.contains(needle) {
                Ok(text)
            } else {
                Err(text)
            }
        })
    }

    /// Whether the process still runs, or how it exited, for failure messages.
    pub fn state(&mut self) -> String {
        match self.child.0.try_wait() {
            Ok(None) => "still running".to_owned(),
            Ok(Some(status)) => format!("EXITED: {status}"),
            Err(e) => format!("unknown: {e}"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Send signal `name` (`TERM`, `HUP`, `KILL`) to the process.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Wait (bounded) for the process to exit, and for the last of its stdout. Async, so the
    /// test's own connections keep being served (and closed) meanwhile.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        let log = self.dir.join("server.log");
        let child = &mut self.child.0;
        let status = wait::until("serve exiting", LIMIT, async || match child.try_wait() {
            Ok(Some(status)) => Ok(status),
            Ok(None) => Err(format!(
                "still running\n--- stderr ---\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )),
            Err(e) => panic!("waiting for serve: {e}"),
        })
        .await;
        // The pipe closed with the process (serve starts no children).
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the stdout reader");
        }
        status
    }

    /// A token for `sub` from this server's `generate-token`.
    pub fn token(&self, sub: &str) -> String {
        let out = process::run(&mut command(&self.dir, &["generate-token", sub]), LIMIT);
        out.assert_success();
        out.stdout.trim().to_owned()
    }

    /// A new client on a new plaintext connection.
    pub async fn client(&self) -> VibectlLlmProxyClient<Channel> {
        let channel = within(
            "connecting to serve",
            Endpoint::from_shared(format!("http://{}", self.addr))
                .expect("endpoint")
                .connect_timeout(Duration::from_secs(5))
                .connect(),
        )
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e:?}", self.addr));
        VibectlLlmProxyClient::new(channel)
    }
}
