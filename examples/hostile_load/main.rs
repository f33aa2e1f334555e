//! Hostile load against a running vibectl-server, for `scripts/bench-hostile`: sockets that
//! never send a byte, then health Watch streams held open, each phase with a well-behaved
//! client making calls on fresh connections, and the server's resident memory read from
//! `/proc/<pid>/status`. Prints one JSON object.
//!
//! ```text
//! hostile_load --addr 127.0.0.1:50051 --pid 1234 --token JWT [--idle 10000] [--streams 1000]
//!              [--per-connection 100] [--calls 20]
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use vibectl::proto::GetServerInfoRequest;
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;

/// The longest any one connect, call or first Watch message may take.
const STEP_LIMIT: Duration = Duration::from_secs(30);

struct Args {
    addr: SocketAddr,
    pid: u32,
    token: String,
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
         \"idle_sockets\": {idle_open}, \"idle_connect_failed\": {idle_failed}, \"rss_idle_kb\": {idle_kb}, \
         \"idle_calls_ok\": {idle_calls_ok}, \"streams_open\": {streams_open}, \
         \"streams_failed\": {streams_failed}, \"rss_streams_kb\": {streams_kb}, \
         \"streams_calls_ok\": {streams_calls_ok}, \"calls\": {}}}",
        a.calls
    );
    Ok(())
}
