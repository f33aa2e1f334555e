//! `vibectl-server serve` as an operator runs it: `--max-rpm` enforced, metrics at
//! `--metrics-addr`, the usage log in the config directory, and a config edit applied on SIGHUP
//! with the flags still over it.

use tonic::transport::Channel;
use vibectl::proto::GetServerInfoRequest;
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;
use vibectl::server::governance::{USAGE_FILE, usage};

use super::{config_text, refusal};
use crate::support::mock::MockProvider;
use crate::support::server::{LIMIT, request, within};
use crate::support::spawned::{METRICS, Spawned};
use crate::support::wait;

/// The `limits` of the running server as GetServerInfo reports them.
async fn reported(client: &mut VibectlLlmProxyClient<Channel>) -> vibectl::proto::ServerLimits {
    within(
        "GetServerInfo",
        client.get_server_info(GetServerInfoRequest {}),
    )
    .await
    .expect("GetServerInfo")
    .into_inner()
    .limits
    .expect("limits")
}

#[tokio::test]
async fn serve_enforces_its_flags_serves_metrics_and_reloads_on_sighup() {
    let mock = MockProvider::start(&[]);
    let mut server = Spawned::start(
        &config_text(&mock, "global:\n  max_input_length: 1000", ""),
        &["--max-rpm", "2", "--metrics-addr", "127.0.0.1:0"],
    );
    let metrics = server.address_after(METRICS);
    let file = server.file.clone();
    let mut client = server.client().await;

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
    // The server writes its buffered records in the background.
    let log = server.dir.join(USAGE_FILE);
    wait::until(
        "two records in the usage log",
        LIMIT,
        async || match usage::read(&log).expect("usage log").len() {
            2 => Ok(()),
            n => Err(n),
        },
    )
    .await;

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

    // An edit of the same size with the old modification time, which the watcher's poll cannot
    // tell from the old file (it compares both), so only SIGHUP can make the server read it;
    // --max-rpm stays over the file.
    let fingerprint = |f: &std::path::Path| {
        let m = std::fs::metadata(f).expect("metadata");
        (m.modified().expect("mtime"), m.len())
    };
    let before = fingerprint(&file);
    let mtime = before.0;
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
    assert_eq!(fingerprint(&file), before, "the poll could see this edit");
    assert_eq!(reported(&mut client).await.max_input_length, Some(1000));
    server.signal("HUP");
    let limits = wait::until("the edit applied after SIGHUP", LIMIT, async || {
        let limits = reported(&mut client).await;
        match limits.max_input_length {
            Some(2000) => Ok(limits),
            _ => Err(format!("{limits:?}")),
        }
    })
    .await;
    assert_eq!(
        limits.max_requests_per_minute,
        Some(2),
        "the flag survives the reload"
    );
    server.signal("TERM");
    assert!(
        server.wait_exit().await.success(),
        "serve exits 0 on SIGTERM"
    );
}
