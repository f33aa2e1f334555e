//! Starts the mock provider process (`examples/mock_provider`) on 127.0.0.1 for a test, and
//! reads its counters. The process is killed when the handle is dropped, and exits on its own
//! if the test binary dies (it watches its stdin).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use vibectl::llm::ProviderKind;

use super::process::KillOnDrop;
use super::wait;

/// Longest wait for the mock to print its `LISTENING` line.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait for `cargo build --example mock_provider` (it may queue behind other builds).
const BUILD_TIMEOUT: Duration = Duration::from_secs(900);
/// Longest wait for one `/mock/*` call.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Set to a path to use a prebuilt mock instead of building it.
const BIN_ENV: &str = "VIBECTL_MOCK_PROVIDER_BIN";

/// A running mock provider.
pub struct MockProvider {
    child: Child,
    addr: SocketAddr,
    http: reqwest::Client,
}

impl MockProvider {
    /// Start the mock with these command-line flags (`--port 0` is implied).
    pub fn start(args: &[&str]) -> MockProvider {
        let bin = mock_binary();
        let mut child = Command::new(bin)
            .args(["--port", "0", "--exit-on-stdin-eof"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the mock provider {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let _ = tx.send(first);
            // Keep draining so the mock never blocks on a full pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the mock provider printed no LISTENING line within {START_TIMEOUT:?}");
            }
        };
        let addr = line
            .trim()
            .strip_prefix("LISTENING ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the mock: {line:?}"));
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(HTTP_TIMEOUT)
            .build()
            .expect("reqwest client");
        MockProvider { child, addr, http }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base URL a client of `kind` is configured with (OpenAI's includes `/v1`).
    pub fn base_url(&self, kind: ProviderKind) -> String {
        match kind {
            ProviderKind::OpenAi => format!("{}/v1", self.url()),
            ProviderKind::Anthropic | ProviderKind::Ollama => self.url(),
        }
    }

    async fn get(&self, path: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}{path}", self.url()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} on the mock: {e}"));
        resp.json()
            .await
            .unwrap_or_else(|e| panic!("GET {path} on the mock: {e}"))
    }

    /// `GET /mock/stats`: `requests` (by path), `requests_total`, `streams_started`,
    /// `streams_completed`, `streams_cancelled`.
    pub async fn stats(&self) -> Value {
        self.get("/mock/stats").await
    }

    /// The requests the mock received, oldest first: `{path, headers, body}`.
    pub async fn requests(&self) -> Vec<Value> {
        match self.get("/mock/requests").await {
            Value::Array(items) => items,
            other => panic!("unexpected /mock/requests answer: {other}"),
        }
    }

    /// The most recent request the mock received.
    pub async fn last_request(&self) -> Value {
        self.requests()
            .await
            .pop()
            .expect("the mock received no request")
    }

    /// Poll `/mock/stats` until `counter` reaches `at_least`; panics after `limit`.
    pub async fn wait_for_stat(&self, counter: &str, at_least: u64, limit: Duration) -> Value {
        let what = format!("{counter} reaching {at_least}");
        wait::until(&what, limit, async || {
            let stats = self.stats().await;
            if stats[counter].as_u64().unwrap_or(0) >= at_least {
                Ok(stats)
            } else {
                Err(stats)
            }
        })
        .await
    }

    /// Open the gate of every stream requested so far with `[[mock:gate=N]]`.
    pub async fn release(&self) {
        let resp = self
            .http
            .post(format!("{}/mock/release", self.url()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /mock/release on the mock: {e}"));
        assert!(resp.status().is_success(), "POST /mock/release: {resp:?}");
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The mock binary, built once per test run so it is never stale (`cargo test --test main`
/// does not build examples by itself).
fn mock_binary() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os(BIN_ENV) {
            return PathBuf::from(bin);
        }
        example_binary("mock_provider")
    })
}

/// The example program `name` (`examples/NAME`), built with the test binary's profile.
pub fn example_binary(name: &str) -> PathBuf {
    // current_exe is target/<profile>/deps/main-<hash>.
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps");
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    build_example(profile_dir, name);
    assert!(
        bin.exists(),
        "built {name} but {} is missing",
        bin.display()
    );
    bin
}

fn build_example(profile_dir: &std::path::Path, name: &str) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "--example",
        name,
        "--manifest-path",
        manifest,
    ]);
    if let Some(target_dir) = profile_dir.parent() {
        cmd.arg("--target-dir").arg(target_dir);
    }
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the example {name}: {e}"));
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut child = KillOnDrop(child);
    let status = wait::until_blocking("building an example", BUILD_TIMEOUT, || {
        match child.0.try_wait().expect("waiting for cargo") {
            Some(status) => Ok(status),
            None => Err("cargo still running"),
        }
    });
    let errors = reader.join().unwrap_or_default();
    assert!(
        status.success(),
        "cargo build --example {name} failed:\n{errors}"
    );
}
