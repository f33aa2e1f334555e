//! Hostile load against a running vibectl-server, for `scripts/bench-hostile`: a flood of calls
//! each naming a new model (the label attack), then sockets that never send a byte, then health
//! Watch streams held open, each phase with a well-behaved client making calls on fresh
//! connections, and the server's resident memory read from `/proc/<pid>/status`. Prints one
//! JSON object.
//!
//! ```text
//! hostile_load --addr 127.0.0.1:50051 --pid 1234 --token JWT [--metrics URL] [--labels 1000]
//!              [--idle 10000] [--streams 1000] [--per-connection 100] [--calls 20]
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;
use vibectl::proto::{ExecuteRequest, GetServerInfoRequest, execute_response};

/// The longest any one connect, call or first Watch message may take.
const STEP_LIMIT: Duration = Duration::from_secs(30);

struct Args {
    addr: SocketAddr,
    pid: u32,
    token: String,
    metrics: Option<String>,
    labels: usize,
    idle: usize,
    streams: usize,
    per_connection: usize,
    calls: usize,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        addr: "127.0.0.1:50051".parse().map_err(|e| format!("{e}"))?,
        pid: 0,
        token: String::new(),
        metrics: None,
        labels: 1_000,
        idle: 10_000,
        streams: 1_000,
        per_connection: 100,
        calls: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = || value.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--addr" => a.addr = value.parse().map_err(|e| format!("--addr: {e}"))?,
            "--pid" => a.pid = value.parse().map_err(|e| format!("--pid: {e}"))?,
            "--token" => a.token = value,
            "--metrics" => a.metrics = Some(value),
            "--labels" => a.labels = num()?,
            "--idle" => a.idle = num()?,
            "--streams" => a.streams = num()?,
            "--per-connection" => a.per_connection = num()?.max(1),
            "--calls" => a.calls = num()?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.pid == 0 || a.token.is_empty() {
        return Err("--pid and --token are required".to_owned());
    }
    Ok(a)
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

async fn channel(addr: SocketAddr) -> Result<Channel, String> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).map_err(|e| e.to_string())?;
    match tokio::time::timeout(STEP_LIMIT, endpoint.connect()).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("connect timed out".to_owned()),
    }
}

fn bearer(token: &str) -> MetadataValue<tonic::metadata::Ascii> {
    format!("Bearer {token}").parse().expect("a token is ASCII")
}

/// `n` GetServerInfo calls, each on a fresh connection; how many succeeded.
async fn good_calls(addr: SocketAddr, token: &str, n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        let Ok(ch) = channel(addr).await else {
            continue;
        };
        let mut client = VibectlLlmProxyClient::new(ch);
        let mut req = tonic::Request::new(GetServerInfoRequest {});
        req.metadata_mut().insert("authorization", bearer(token));
        if let Ok(Ok(_)) = tokio::time::timeout(STEP_LIMIT, client.get_server_info(req)).await {
            ok += 1;
        }
    }
    ok
}

/// The longest model name the server takes (`governance::fields::MAX_MODEL_NAME_BYTES`).
const NAME_BYTES: usize = 256;

/// `n` Execute calls on one connection, each naming a model never seen before, as long as the
/// server allows (`mock/flood-<i>-xxx...`: with no models configured, each is routed to the
/// provider `mock`). Returns how many calls the model answered (an in-band error is not
/// counted).
async fn label_flood(addr: SocketAddr, token: &str, n: usize) -> usize {
    let Ok(ch) = channel(addr).await else {
        return 0;
    };
    let mut client = VibectlLlmProxyClient::new(ch);
    let mut answered = 0;
    for i in 0..n {
        let mut name = format!("mock/flood-{i:06}-");
        name.extend(std::iter::repeat_n('x', NAME_BYTES - name.len()));
        let mut req = tonic::Request::new(ExecuteRequest {
            system_fragments: vec!["You are a test.".to_owned()],
            user_fragments: vec!["hello".to_owned()],
            model_name: Some(name),
            response_model_schema: None,
            request_id: String::new(),
        });
        req.metadata_mut().insert("authorization", bearer(token));
        if let Ok(Ok(resp)) = tokio::time::timeout(STEP_LIMIT, client.execute(req)).await
            && let Some(execute_response::Result::Success(_)) = resp.into_inner().result
        {
            answered += 1;
        }
    }
    answered
}

/// The size in bytes of one scrape of the metrics endpoint (0 when it cannot be read).
async fn scrape_bytes(url: Option<&str>) -> usize {
    let Some(url) = url else {
        return 0;
    };
    let get = async { reqwest::get(url).await?.bytes().await };
    match tokio::time::timeout(STEP_LIMIT, get).await {
        Ok(Ok(b)) => b.len(),
        _ => 0,
    }
}

/// Open `n` sockets that send nothing; returns them (and how many failed to connect).
async fn idle_sockets(addr: SocketAddr, n: usize) -> (Vec<TcpStream>, usize) {
    let mut open = Vec::with_capacity(n);
    let mut failed = 0;
    for _ in 0..n {
        match tokio::time::timeout(STEP_LIMIT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => open.push(s),
            _ => failed += 1,
        }
    }
    (open, failed)
}

/// Open `n` Watch streams, `per` on each connection, each read up to its first message.
async fn watch_streams(
    addr: SocketAddr,
    token: &str,
    n: usize,
    per: usize,
) -> (
    Vec<tonic::Streaming<tonic_health::pb::HealthCheckResponse>>,
    usize,
) {
    let mut open = Vec::with_capacity(n);
    let mut failed = 0;
    let mut client = None;
    for i in 0..n {
        if i % per == 0 {
            client = channel(addr).await.ok().map(HealthClient::new);
        }
        let Some(c) = client.as_mut() else {
            failed += 1;
            continue;
        };
        let mut req = tonic::Request::new(HealthCheckRequest::default());
        req.metadata_mut().insert("authorization", bearer(token));
        match tokio::time::timeout(STEP_LIMIT, c.watch(req)).await {
            Ok(Ok(resp)) => {
                let mut s = resp.into_inner();
                match tokio::time::timeout(STEP_LIMIT, s.message()).await {
                    Ok(Ok(Some(_))) => open.push(s),
                    _ => failed += 1,
                }
            }
            _ => failed += 1,
        }
    }
    (open, failed)
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let a = parse()?;
    let files = vibectl::server::conn::raise_open_files_limit().map_err(|e| e.to_string())?;
    let start_kb = rss_kb(a.pid);
    let labels_answered = label_flood(a.addr, &a.token, a.labels).await;
    let labels_scrape = scrape_bytes(a.metrics.as_deref()).await;
    let labels_kb = rss_kb(a.pid);
    let labels_calls_ok = good_calls(a.addr, &a.token, a.calls).await;
    let (sockets, idle_failed) = idle_sockets(a.addr, a.idle).await;
    let idle_kb = rss_kb(a.pid);
    let idle_calls_ok = good_calls(a.addr, &a.token, a.calls).await;
    let idle_open = sockets.len();
    drop(sockets);
    let (streams, streams_failed) =
        watch_streams(a.addr, &a.token, a.streams, a.per_connection).await;
    let streams_kb = rss_kb(a.pid);
    let streams_calls_ok = good_calls(a.addr, &a.token, a.calls).await;
    let streams_open = streams.len();
    drop(streams);
    println!(
        "{{\"open_files_limit\": {files}, \"rss_start_kb\": {start_kb}, \
         \"labels\": {}, \"labels_answered\": {labels_answered}, \"rss_labels_kb\": {labels_kb}, \
         \"labels_scrape_bytes\": {labels_scrape}, \"labels_calls_ok\": {labels_calls_ok}, \
         \"idle_sockets\": {idle_open}, \"idle_connect_failed\": {idle_failed}, \"rss_idle_kb\": {idle_kb}, \
         \"idle_calls_ok\": {idle_calls_ok}, \"streams_open\": {streams_open}, \
         \"streams_failed\": {streams_failed}, \"rss_streams_kb\": {streams_kb}, \
         \"streams_calls_ok\": {streams_calls_ok}, \"calls\": {}}}",
        a.labels, a.calls
    );
    Ok(())
}
