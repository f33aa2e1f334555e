//! What `serve` reads once at startup, seen from outside the process: `server.max_workers` in
//! the listening line, `server.log_level` in its stderr, and the metrics endpoint at
//! `metrics.listen` only when `metrics.enabled`.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use tonic::transport::Endpoint;
use vibectl::config::generated::server::key;
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;

use super::config_text;
use super::serve::{BIN, Serve, address_after};
use crate::support::mock::MockProvider;
use crate::support::server::{LIMIT, MODEL, request, within};
use crate::support::yaml;

/// A port on 127.0.0.1 where nothing listens.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A `serve` run, its stdout lines as they come and its stderr read to the end in a thread.
struct Running {
    server: Serve,
    addr: String,
    listening: String,
    lines: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

/// Serve a config of `pairs` (server and metrics keys) routed to `mock`.
fn start(mock: &MockProvider, pairs: &[(&str, String)]) -> (tempfile::TempDir, Running) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("config.yaml");
    let base = config_text(mock, "", "");
    let (_, providers) = base.split_once("  limits:\n").expect("limits section");
    let mut all = vec![(key::SERVER_DEFAULT_MODEL, MODEL.to_owned())];
    all.extend(pairs.iter().cloned());
    std::fs::write(&file, format!("{}{providers}", yaml::config(&all))).expect("write");
    let mut child = Command::new(BIN)
        .env_clear()
        .env("HOME", dir.path())
        .env("NO_COLOR", "1")
        .arg("--config")
        .arg(&file)
        .args(["serve", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let stdout = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let server = Serve(child);
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let listening = lines.recv_timeout(LIMIT).expect("a listening line");
    let addr = listening
        .strip_prefix("vibectl-server listening on ")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("{listening}"))
        .to_owned();
    let running = Running {
        server,
        addr,
        listening,
        lines,
        stderr,
    };
    (dir, running)
}

impl Running {
    /// Wait for an answer to one call: startup, metrics endpoint included, is over.
    async fn answers(&self) {
        let channel = within(
            "connect",
            Endpoint::from_shared(format!("http://{}", self.addr))
                .expect("url")
                .connect(),
        )
        .await
        .expect("connect");
        within(
            "Execute",
            VibectlLlmProxyClient::new(channel).execute(request("hello", None)),
        )
        .await
        .expect("Execute");
    }

    /// Stop the server: the stdout lines not read yet and the whole stderr.
    fn stop(self) -> (Vec<String>, String) {
        drop(self.server);
        let later = self.lines.iter().collect();
        (later, self.stderr.join().expect("stderr reader"))
    }
}

/// The listening line's ending for `n` worker threads.
fn workers(n: usize) -> String {
    if n == 1 {
        ", 1 worker thread)".to_owned()
    } else {
        format!(", {n} worker threads)")
    }
}

#[tokio::test]
async fn serve_runs_max_workers_threads_logs_at_log_level_and_serves_metrics_when_enabled() {
    let mock = MockProvider::start(&[]);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let debug = |n: usize| format!("{} is {n}; running", key::SERVER_MAX_WORKERS);
    let listen = format!("127.0.0.1:{}", free_port());

    let (_dir, on) = start(
        &mock,
        &[
            (key::SERVER_MAX_WORKERS, "1".to_owned()),
            (key::SERVER_LOG_LEVEL, "DEBUG".to_owned()),
            (key::METRICS_ENABLED, "true".to_owned()),
            (key::METRICS_LISTEN, format!("\"{listen}\"")),
        ],
    );
    assert!(on.listening.ends_with(&workers(1)), "{}", on.listening);
    assert_eq!(address_after(&on.lines, "metrics on http://"), listen);
    on.answers().await;
    let metrics = reqwest::Client::builder()
        .no_proxy()
        .timeout(LIMIT)
        .build()
        .expect("client")
        .get(format!("http://{listen}/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(metrics.status().as_u16(), 200);
    let text = metrics.text().await.expect("body");
    assert!(
        text.contains(r#"vibectl_requests_total{sub="anonymous"} 1"#),
        "{text}"
    );
    let (_, stderr) = on.stop();
    assert!(
        stderr.contains(&debug(1)),
        "DEBUG shows debug lines\n{stderr}"
    );

    let listen = format!("127.0.0.1:{}", free_port());
    let (_dir, off) = start(
        &mock,
        &[
            (key::SERVER_MAX_WORKERS, "2".to_owned()),
            (key::METRICS_ENABLED, "false".to_owned()),
            (key::METRICS_LISTEN, format!("\"{listen}\"")),
        ],
    );
    // Two workers where the machine has two CPUs; one on a single CPU.
    assert!(
        off.listening.ends_with(&workers(2.min(cpus))),
        "{}",
        off.listening
    );
    off.answers().await;
    assert!(
        TcpStream::connect(&listen).is_err(),
        "nothing listens on {listen} with metrics off"
    );
    let (later, stderr) = off.stop();
    assert!(
        !later.iter().any(|l| l.starts_with("metrics on")),
        "{later:?}"
    );
    assert!(
        !stderr.contains(&debug(2)),
        "the default INFO hides debug lines\n{stderr}"
    );
}
