//! What `serve` reads once at startup, seen from outside the process: `server.max_workers` in
//! the listening line, `server.log_level` in its stderr, and the metrics endpoint at
//! `metrics.listen` only when `metrics.enabled`.

use std::net::{TcpListener, TcpStream};

use vibectl::config::generated::server::key;

use super::config_text;
use crate::support::mock::MockProvider;
use crate::support::server::{LIMIT, MODEL, request, within};
use crate::support::spawned::{LISTENING, METRICS, Spawned};
use crate::support::yaml;

/// A port on 127.0.0.1 where nothing listens.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Serve a config of `pairs` (server and metrics keys) routed to `mock`; its listening line.
fn start(mock: &MockProvider, pairs: &[(&str, String)]) -> (Spawned, String) {
    let base = config_text(mock, "", "");
    let (_, providers) = base.split_once("  limits:\n").expect("limits section");
    let mut all = vec![(key::SERVER_DEFAULT_MODEL, MODEL.to_owned())];
    all.extend(pairs.iter().cloned());
    let mut server = Spawned::start(&format!("{}{providers}", yaml::config(&all)), &[]);
    let listening = server.line(LISTENING);
    (server, listening)
}

/// Wait for an answer to one call: startup, metrics endpoint included, is over.
async fn answers(server: &Spawned) {
    within(
        "Execute",
        server.client().await.execute(request("hello", None)),
    )
    .await
    .expect("Execute");
}

/// Stop the server: its stdout lines and its whole stderr.
async fn stop(mut server: Spawned) -> (Vec<String>, String) {
    server.signal("TERM");
    server.wait_exit().await;
    (server.stdout(), server.stderr())
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
    let (mut on, listening) = start(
        &mock,
        &[
            (key::SERVER_MAX_WORKERS, "1".to_owned()),
            (key::SERVER_LOG_LEVEL, "DEBUG".to_owned()),
            (key::METRICS_ENABLED, "true".to_owned()),
            (key::METRICS_LISTEN, "\"127.0.0.1:0\"".to_owned()),
        ],
    );
    assert!(listening.ends_with(&workers(1)), "{listening}");
    let listen = on.address_after(METRICS);
    answers(&on).await;
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
    let (_, stderr) = stop(on).await;
    assert!(
        stderr.contains(&debug(1)),
        "DEBUG shows debug lines\n{stderr}"
    );

    let listen = format!("127.0.0.1:{}", free_port());
    let (off, listening) = start(
        &mock,
        &[
            (key::SERVER_MAX_WORKERS, "2".to_owned()),
            (key::METRICS_ENABLED, "false".to_owned()),
            (key::METRICS_LISTEN, format!("\"{listen}\"")),
        ],
    );
    // Two workers where the machine has two CPUs; one on a single CPU.
    assert!(listening.ends_with(&workers(2.min(cpus))), "{listening}");
    answers(&off).await;
    assert!(
        TcpStream::connect(&listen).is_err(),
        "nothing listens on {listen} with metrics off"
    );
    let (later, stderr) = stop(off).await;
    assert!(
        !later.iter().any(|l| l.starts_with("metrics on")),
        "{later:?}"
    );
    assert!(
        !stderr.contains(&debug(2)),
        "the default INFO hides debug lines\n{stderr}"
    );
}
