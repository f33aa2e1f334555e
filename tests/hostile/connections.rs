//! Clients that try to exhaust a real `vibectl-server serve` process with connections and
//! streams: hundreds of sockets that never send the HTTP/2 preface (the server starting with
//! a 512-file soft limit, as in the review that found the problem), HTTP/2 streams past the
//! per-connection limit from a hand-written client that ignores SETTINGS_MAX_CONCURRENT_STREAMS,
//! connections left open without a call, and health `Watch` streams without a token. Throughout, a well-behaved client's calls succeed.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::Command;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use vibectl::config::generated::server::{KEYS, key};
use vibectl::proto::GetServerInfoRequest;
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;
use vibectl::server::conn::raise_open_files_limit;

use crate::support::mock::MockProvider;
use crate::support::server::{authorized, config_pairs, set, within};
use crate::support::spawned::Spawned;
use crate::support::yaml;

/// The JWT secret of the test server.
const SECRET: &str = "hostile-connections-secret-0123456789";
/// `server.connections.max` of the test server.
const MAX_CONNECTIONS: usize = 32;
/// `server.connections.max_streams` of the test server.
const MAX_STREAMS: usize = 8;
/// `server.connections.preface_timeout_seconds` of the test server.
const PREFACE_TIMEOUT_SECONDS: u64 = 2;
/// The server's soft open-file limit when it starts (it raises it to the hard limit).
const SERVER_SOFT_FILES: u64 = 512;
/// Sockets that connect and never send a byte: more than the server's soft file limit.
const IDLE_SOCKETS: usize = 600;
/// Files the test process needs besides its idle sockets.
const TEST_FILES: u64 = 256;
/// Connections that each open [`STREAMS_PER_CONNECTION`] Watch streams at once.
const FLOOD_CONNECTIONS: usize = 10;
const STREAMS_PER_CONNECTION: usize = 300;
/// How much the server's resident memory may grow while the flood's streams are open.
const RSS_GROWTH_CEILING_KB: u64 = 16 * 1024;

/// `server.connections.idle_timeout_seconds` of the idle-timeout test's server.
const IDLE_TIMEOUT_SECONDS: u64 = 1;

/// A server with small connection limits; its soft open-file limit starts at
/// [`SERVER_SOFT_FILES`] (or the hard limit, if lower).
fn serve(mock: &MockProvider) -> Spawned {
    serve_with(mock, None)
}

/// [`serve`], with `server.connections.idle_timeout_seconds` set when given.
fn serve_with(mock: &MockProvider, idle_timeout_seconds: Option<u64>) -> Spawned {
    let env = |k: &str| {
        KEYS.iter()
            .find(|s| s.path == k)
            .and_then(|s| s.env)
            .unwrap_or_else(|| panic!("{k} has no environment variable"))
    };
    let mut pairs = config_pairs(mock);
    set(&mut pairs, key::JWT_ENABLED, "true");
    set(&mut pairs, key::JWT_SECRET_KEY, SECRET);
    Spawned::start_custom(&yaml::config(&pairs), &[], |cmd: &mut Command| {
        cmd.env(
            env(key::SERVER_CONNECTIONS_MAX),
            MAX_CONNECTIONS.to_string(),
        )
        .env(
            env(key::SERVER_CONNECTIONS_MAX_STREAMS),
            MAX_STREAMS.to_string(),
        )
        .env(
            env(key::SERVER_CONNECTIONS_PREFACE_TIMEOUT_SECONDS),
            PREFACE_TIMEOUT_SECONDS.to_string(),
        );
        if let Some(idle) = idle_timeout_seconds {
            cmd.env(
                env(key::SERVER_CONNECTIONS_IDLE_TIMEOUT_SECONDS),
                idle.to_string(),
            );
        }
        // SAFETY: between fork and exec only getrlimit and setrlimit run, both async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                let mut lim = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                lim.rlim_cur = lim.rlim_max.min(SERVER_SOFT_FILES);
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    })
}

fn addr(server: &Spawned) -> SocketAddr {
    server.addr
}

/// A well-behaved client on a connection of its own: GetServerInfo with a token succeeds.
async fn assert_good_call(server: &Spawned, token: &str) {
    let channel = within(
        "a well-behaved client connecting",
        Endpoint::from_shared(format!("http://{}", server.addr))
            .expect("endpoint")
            .connect(),
    )
    .await
    .expect("a well-behaved client connects");
    let mut client = VibectlLlmProxyClient::new(channel);
    let header = format!("Bearer {token}");
    within(
        "GetServerInfo",
        client.get_server_info(authorized(GetServerInfoRequest {}, Some(&header))),
    )
    .await
    .expect("a well-behaved call succeeds");
}

/// The resident memory of process `pid`, in kB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_are_closed_after_the_preface_timeout_while_real_calls_succeed() {
    let files = raise_open_files_limit().expect("raise the test's open-file limit");
    let idle = IDLE_SOCKETS.min(usize::try_from(files.saturating_sub(TEST_FILES)).unwrap_or(0));
    assert!(
        idle > 4 * MAX_CONNECTIONS,
        "the open-file limit {files} leaves room for {idle} sockets only"
    );
    let mock = MockProvider::start(&[]);
    let server = serve(&mock);
    let token = server.token("hostile");
    let target = addr(&server);
    let mut sockets = Vec::with_capacity(idle);
    for _ in 0..idle {
        sockets.push(
            within("connecting an idle socket", TcpStream::connect(target))
                .await
                .expect("connect"),
        );
    }
    // The idle sockets are far past the connection limit and the server's first file limit.
    assert_good_call(&server, &token).await;
    let reads = sockets.iter_mut().map(|s| async move {
        let mut byte = [0u8; 1];
        s.read(&mut byte).await
    });
    let ends = within(
        "the server closing every silent socket",
        futures_util::future::join_all(reads),
    )
    .await;
    for (n, end) in ends.into_iter().enumerate() {
        match end {
            Ok(0) => {}
            other => panic!("idle socket {n}: expected the server to close it, got {other:?}"),
        }
    }
    assert_good_call(&server, &token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_past_the_limit_are_refused_and_the_server_memory_stays_bounded() {
    raise_open_files_limit().expect("raise the test's open-file limit");
    let mock = MockProvider::start(&[]);
    let server = serve(&mock);
    let token = server.token("hostile");
    let target = addr(&server);
    assert_good_call(&server, &token).await;
    let before = rss_kb(server.pid());
    let mut flood = Vec::with_capacity(FLOOD_CONNECTIONS);
    for _ in 0..FLOOD_CONNECTIONS {
        let mut conn = RawH2::connect(target).await;
        let ids = conn
            .send_watch_headers(STREAMS_PER_CONNECTION, &token)
            .await;
        let refused = conn
            .await_refusals(STREAMS_PER_CONNECTION - MAX_STREAMS)
            .await;
        let live: Vec<u32> = ids.into_iter().filter(|i| !refused.contains(i)).collect();
        assert_eq!(live.len(), MAX_STREAMS, "streams the server kept: {live:?}");
        conn.start_watches(&live).await;
        flood.push(conn);
    }
    assert_good_call(&server, &token).await;
    let during = rss_kb(server.pid());
    assert!(
        during <= before + RSS_GROWTH_CEILING_KB,
        "the server grew from {before} kB to {during} kB with {} streams open",
        FLOOD_CONNECTIONS * MAX_STREAMS
    );
    drop(flood);
    assert_good_call(&server, &token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_without_calls_is_closed_after_the_idle_timeout_and_one_with_a_watch_is_not() {
    let mock = MockProvider::start(&[]);
    let server = serve_with(&mock, Some(IDLE_TIMEOUT_SECONDS));
    let token = server.token("hostile");
    let target = addr(&server);
    let mut watching = RawH2::connect(target).await;
    let ids = watching.send_watch_headers(1, &token).await;
    watching.start_watches(&ids).await;
    // Opened after the Watch started, so by the time it is closed, `watching` has gone longer
    // than the idle timeout with its Watch open.
    let mut silent = RawH2::connect(target).await;
    silent.await_close().await;
    watching.ping().await;
    assert_good_call(&server, &token).await;
}

#[tokio::test]
async fn health_watch_needs_a_token_when_auth_is_on_and_check_does_not() {
    let mock = MockProvider::start(&[]);
    let server = serve(&mock);
    let token = server.token("hostile");
    let channel: Channel = within(
        "connecting",
        Endpoint::from_shared(format!("http://{}", server.addr))
            .expect("endpoint")
            .connect(),
    )
    .await
    .expect("connect");
    let mut health = HealthClient::new(channel);
    within("Check", health.check(HealthCheckRequest::default()))
        .await
        .expect("Check needs no token, for probes");
    let refused = within("Watch", health.watch(HealthCheckRequest::default()))
        .await
        .expect_err("Watch without a token is refused");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let header = format!("Bearer {token}");
    let mut stream = within(
        "Watch",
        health.watch(authorized(HealthCheckRequest::default(), Some(&header))),
    )
    .await
    .expect("Watch with a token")
    .into_inner();
    let first = within("the first Watch message", stream.message())
        .await
        .expect("a status")
        .expect("a message");
    assert_eq!(first.status, ServingStatus::Serving as i32, "{first:?}");
}

/// HTTP/2 frame types and flags this client uses (RFC 9113, section 6).
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;
const REFUSED_STREAM: u32 = 0x7;
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty gRPC message (a HealthCheckRequest for the whole server): uncompressed, length 0.
const EMPTY_MESSAGE: [u8; 5] = [0, 0, 0, 0, 0];

/// A hostile HTTP/2 client: it opens streams regardless of the server's
/// SETTINGS_MAX_CONCURRENT_STREAMS.
struct RawH2 {
    tcp: TcpStream,
    target: SocketAddr,
}

fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a small frame");
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.extend([ty, flags]);
    out.extend(stream.to_be_bytes());
    out.extend(payload);
    out
}

/// An HPACK string literal, not Huffman-coded (RFC 7541, section 5.2).
fn hpack_string(out: &mut Vec<u8>, s: &str) {
    let mut len = s.len();
    if len < 127 {
        out.push(u8::try_from(len).expect("under 127"));
    } else {
        out.push(127);
        len -= 127;
        while len >= 128 {
            out.push(u8::try_from(len % 128).expect("under 128") | 0x80);
            len /= 128;
        }
        out.push(u8::try_from(len).expect("under 128"));
    }
    out.extend(s.as_bytes());
}

/// A header block of literal fields without indexing (RFC 7541, section 6.2.2).
fn header_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0);
        hpack_string(&mut out, name);
        hpack_string(&mut out, value);
    }
    out
}

impl RawH2 {
    /// Connect, exchange SETTINGS and acknowledge the server's.
    async fn connect(target: SocketAddr) -> RawH2 {
        let tcp = within("connecting", TcpStream::connect(target))
            .await
            .expect("connect");
        let mut conn = RawH2 { tcp, target };
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        conn.write(&hello).await;
        loop {
            let (ty, flags, _, _) = conn.read_frame().await;
            if ty == SETTINGS && flags & ACK == 0 {
                conn.write(&frame(SETTINGS, ACK, 0, &[])).await;
                return conn;
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
        within("writing", self.tcp.write_all(bytes))
            .await
            .expect("write");
    }

    /// The next frame: type, flags, stream and payload. A GOAWAY fails the test; a PING is
    /// answered.
    async fn read_frame(&mut self) -> (u8, u8, u32, Vec<u8>) {
        loop {
            let mut head = [0u8; 9];
            within("a frame", self.tcp.read_exact(&mut head))
                .await
                .expect("read a frame header");
            let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
            let mut payload = vec![0u8; len];
            within("a frame", self.tcp.read_exact(&mut payload))
                .await
                .expect("read a frame payload");
            match head[3] {
                GOAWAY => panic!("the server sent GOAWAY: {payload:?}"),
                PING if head[4] & ACK == 0 => {
                    self.write(&frame(PING, ACK, 0, &payload)).await;
                }
                ty => return (ty, head[4], stream, payload),
            }
        }
    }

    /// Read until the server closes the connection (end of stream, or a reset).
    async fn await_close(&mut self) {
        let mut buf = [0u8; 1024];
        loop {
            match within("the server closing the connection", self.tcp.read(&mut buf)).await {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
                Err(e) => panic!("reading until the server closes: {e}"),
            }
        }
    }

    /// Send a PING and read until its acknowledgement: the connection is open and served.
    async fn ping(&mut self) {
        let payload = *b"still-up";
        self.write(&frame(PING, 0, 0, &payload)).await;
        loop {
            let (ty, flags, _, body) = self.read_frame().await;
            if ty == PING && flags & ACK != 0 && body == payload {
                return;
            }
        }
    }

    /// Open `n` health Watch streams at once (HEADERS only; the request message comes later).
    async fn send_watch_headers(&mut self, n: usize, token: &str) -> Vec<u32> {
        let authority = self.target.to_string();
        let bearer = format!("Bearer {token}");
        let block = header_block(&[
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/grpc.health.v1.Health/Watch"),
            (":authority", &authority),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("authorization", &bearer),
        ]);
        let ids: Vec<u32> = (0..n)
            .map(|i| 1 + 2 * u32::try_from(i).expect("few streams"))
            .collect();
        let mut out = Vec::new();
        for id in &ids {
            out.extend(frame(HEADERS, END_HEADERS, *id, &block));
        }
        self.write(&out).await;
        ids
    }

    /// Read until `n` streams are refused with REFUSED_STREAM; their ids.
    async fn await_refusals(&mut self, n: usize) -> Vec<u32> {
        let mut refused = Vec::with_capacity(n);
        while refused.len() < n {
            let (ty, _, stream, payload) = self.read_frame().await;
            if ty == RST_STREAM {
                let code = u32::from_be_bytes(payload[..4].try_into().expect("4 bytes"));
                assert_eq!(code, REFUSED_STREAM, "stream {stream} reset with {code}");
                refused.push(stream);
            }
        }
        refused
    }

    /// Send the request message on each of `ids` and read until each has its first message.
    async fn start_watches(&mut self, ids: &[u32]) {
        let mut out = Vec::new();
        for id in ids {
            out.extend(frame(DATA, END_STREAM, *id, &EMPTY_MESSAGE));
        }
        self.write(&out).await;
        let mut waiting: Vec<u32> = ids.to_vec();
        while !waiting.is_empty() {
            let (ty, flags, stream, payload) = self.read_frame().await;
            match ty {
                HEADERS if flags & END_STREAM != 0 => {
                    panic!("Watch stream {stream} ended at once (trailers only)")
                }
                RST_STREAM => panic!("Watch stream {stream} reset: {payload:?}"),
                DATA if !payload.is_empty() => waiting.retain(|s| *s != stream),
                _ => {}
            }
        }
    }
}
