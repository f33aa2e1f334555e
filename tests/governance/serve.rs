//! `vibectl-server serve` as an operator runs it: `--max-rpm` enforced, metrics at
//! `--metrics-addr`, the usage log in the config directory, and a config edit applied on SIGHUP
//! with the flags still over it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tonic::transport::Endpoint;
use vibectl::proto::GetServerInfoRequest;
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;
use vibectl::server::governance::{USAGE_FILE, usage};

use super::{config_text, refusal};
use crate::support::mock::MockProvider;
use crate::support::server::{LIMIT, request, within};

pub(super) const BIN: &str = env!("CARGO_BIN_EXE_vibectl-server");

/// The serve process; killed when dropped.
pub(super) struct Serve(pub(super) Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(super) fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{name} failed");
}

/// The address after `prefix` on a line of `lines`, bounded.
pub(super) fn address_after(lines: &mpsc::Receiver<String>, prefix: &str) -> String {
    let deadline = Instant::now() + LIMIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("serve printed no `{prefix}` line"));
        if let Some(rest) = line.strip_prefix(prefix) {
            return rest
                .split([' ', '/'])
                .next()
                .expect("an address")
                .to_owned();
        }
    }
}

#[tokio::test]
async fn serve_enforces_its_flags_serves_metrics_and_reloads_on_sighup() {
    let mock = MockProvider::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("config.yaml");
    std::fs::write(
        &file,
        config_text(&mock, "global:\n  max_input_length: 1000", ""),
    )
    .expect("write");
    let mut child = Command::new(BIN)
        .env_clear()
        .env("HOME", dir.path())
        .arg("--config")
        .arg(&file)
        .args([
            "serve",
            "--port",
            "0",
            "--max-rpm",
            "2",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start serve");
    let stdout = child.stdout.take().expect("piped");
    let server = Serve(child);
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let addr = address_after(&lines, "vibectl-server listening on ");
    let metrics = address_after(&lines, "metrics on http://");
    let channel = within(
        "connect",
        Endpoint::from_shared(format!("http://{addr}"))
            .expect("url")
            .connect(),
    )
    .await
    .expect("connect");
    let mut client = VibectlLlmProxyClient::new(channel);

    let mut ok = 0;
    for i in 0..3 {
        match within(
            "Execute",
            client.execute(request(&format!("call {i}"), None)),
        )
        .await
        {
            Ok(_) => ok += 1,
            Err(status) => assert_eq!(refusal(&status).0, "rpm"),
        }
    }
    assert_eq!(ok, 2, "--max-rpm 2");
    // The server writes its buffered records every 200 ms.
    let log = dir.path().join(USAGE_FILE);
    let started = Instant::now();
    let mut records = usage::read(&log).expect("usage log");
    while records.len() < 2 && started.elapsed() < LIMIT {
        tokio::time::sleep(Duration::from_millis(20)).await;
        records = usage::read(&log).expect("usage log");
    }
    assert_eq!(records.len(), 2, "the usage log is in the config directory");

    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(LIMIT)
        .build()
        .expect("client");
    let text = http
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body");
    assert!(
        text.contains(r#"vibectl_requests_total{sub="anonymous"} 3"#),
        "{text}"
    );
    let ready = http
        .get(format!("http://{metrics}/readyz"))
        .send()
        .await
        .expect("GET /readyz");
    assert_eq!(ready.status().as_u16(), 200);

    // An edit of the same size with the old modification time, which only SIGHUP can make the
    // server read; --max-rpm stays over the file.
    let mtime = std::fs::metadata(&file)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::fs::write(
        &file,
        config_text(&mock, "global:\n  max_input_length: 2000", ""),
    )
    .expect("write");
    std::fs::File::options()
        .write(true)
        .open(&file)
        .and_then(|f| f.set_modified(mtime))
        .expect("restore mtime");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let info = client
        .get_server_info(GetServerInfoRequest {})
        .await
        .expect("info")
        .into_inner();
    assert_eq!(
        info.limits.and_then(|l| l.max_input_length),
        Some(1000),
        "the poll saw no change"
    );
    signal(&server.0, "HUP");
    let deadline = Instant::now() + LIMIT;
    loop {
        let limits = within(
            "GetServerInfo",
            client.get_server_info(GetServerInfoRequest {}),
        )
        .await
        .expect("GetServerInfo")
        .into_inner()
        .limits
        .expect("limits");
        if limits.max_input_length == Some(2000) {
            assert_eq!(
                limits.max_requests_per_minute,
                Some(2),
                "the flag survives the reload"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the edit was not applied: {limits:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal(&server.0, "TERM");
}
