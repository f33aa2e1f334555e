//! `server.limits.backend: redis`: replicas sharing one Redis (a real `redis-server` on a free
//! loopback port, stopped after the test) share their limits; a concurrency lease is renewed
//! while its call runs and lapses soon after its replica is killed; an unreachable Redis refuses
//! calls or lets them through, by `redis_failure_mode`.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tonic::Code;
use tonic::transport::Endpoint;
use vibectl::config::generated::server::key;
use vibectl::proto::execute_response;
use vibectl::proto::stream_chunk::ChunkType;
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;

use super::serve::{BIN, Serve, address_after, signal};
use super::{Served, config_text, refusal, slow};
use crate::support::mock::MockProvider;
use crate::support::server::{LIMIT, request, within};

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A throwaway `redis-server` on 127.0.0.1 without persistence.
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start redis-server (scripts/ci-deps installs it)");
        let server = RedisServer { child, port };
        let deadline = Instant::now() + LIMIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `limits` (YAML under `server.limits`) on the Redis backend at `url`, failing `mode`.
pub fn redis_limits(url: &str, limits: &str, mode: &str) -> String {
    let backend = super::limits(&[
        (key::SERVER_LIMITS_BACKEND, "redis"),
        (key::SERVER_LIMITS_REDIS_URL, url),
        (key::SERVER_LIMITS_REDIS_FAILURE_MODE, mode),
    ]);
    format!("{limits}\n{backend}")
}

#[tokio::test]
async fn three_replicas_sharing_redis_let_exactly_n_calls_through() {
    let redis = RedisServer::start();
    let mock = MockProvider::start(&[]);
    let limits = redis_limits(
        &redis.url(),
        "global:\n  max_requests_per_minute: 4",
        "closed",
    );
    let text = config_text(&mock, &limits, "");
    let replicas = [
        Served::start(&text).await,
        Served::start(&text).await,
        Served::start(&text).await,
    ];
    let mut clients = Vec::new();
    for r in &replicas {
        clients.push(r.client().await);
    }
    let (mut ok, mut refused) = (0, Vec::new());
    for i in 0..9 {
        let client = &mut clients[i % 3];
        match within(
            "Execute",
            client.execute(request(&format!("call {i}"), None)),
        )
        .await
        {
            Ok(resp) => {
                assert!(matches!(
                    resp.into_inner().result,
                    Some(execute_response::Result::Success(_))
                ));
                ok += 1;
            }
            Err(status) => refused.push(refusal(&status)),
        }
    }
    assert_eq!(ok, 4, "refusals: {refused:?}");
    for (limit, retry) in &refused {
        assert_eq!(limit, "rpm");
        assert!(retry.is_some_and(|ms| ms > 0 && ms <= 15_000), "{retry:?}");
    }
    assert_eq!(mock.stats().await["requests_total"], 4);
}

#[tokio::test]
async fn a_concurrency_lease_is_shared_and_given_back_when_the_stream_ends() {
    let redis = RedisServer::start();
    let mock = MockProvider::start(&[]);
    let limits = redis_limits(
        &redis.url(),
        "global:\n  max_concurrent_requests: 1",
        "closed",
    );
    let text = config_text(&mock, &limits, "");
    let (a, b) = (Served::start(&text).await, Served::start(&text).await);
    let mut on_a = a.client().await;
    let mut on_b = b.client().await;
    let mut stream = on_a
        .stream_execute(request(&slow(3, 200), None))
        .await
        .expect("admitted on a")
        .into_inner();
    let status = on_b
        .execute(request("on b", None))
        .await
        .expect_err("a holds the one slot");
    assert_eq!(refusal(&status).0, "concurrency");
    while within("the stream", stream.message())
        .await
        .expect("stream")
        .is_some()
    {}
    // The lease is given back asynchronously after the stream's end.
    let deadline = Instant::now() + LIMIT;
    loop {
        match on_b.execute(request("on b again", None)).await {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(refusal(&status).0, "concurrency");
                assert!(Instant::now() < deadline, "the lease was never given back");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// The `lease_seconds` of the lease tests: the schema's minimum.
const LEASE_SECONDS: u64 = 2;
const TTL: Duration = Duration::from_secs(LEASE_SECONDS);

/// Limits of one call in flight across the replicas, with leases of [`TTL`].
fn one_slot(url: &str) -> String {
    redis_limits(
        url,
        &super::limits(&[
            (
                key::SERVER_LIMITS_GLOBAL_MAX_CONCURRENT_REQUESTS,
                "1".to_owned(),
            ),
            (key::SERVER_LIMITS_LEASE_SECONDS, LEASE_SECONDS.to_string()),
        ]),
        "closed",
    )
}

/// Call `on` until it is admitted, asserting each refusal is `concurrency` and that admission
/// comes before `deadline`; the time it took.
async fn admitted_by(
    on: &mut VibectlLlmProxyClient<tonic::transport::Channel>,
    deadline: Instant,
    what: &str,
) -> Duration {
    let start = Instant::now();
    loop {
        match within("Execute", on.execute(request("after", None))).await {
            Ok(_) => return start.elapsed(),
            Err(status) => {
                assert_eq!(refusal(&status).0, "concurrency", "{status:?}");
                assert!(Instant::now() < deadline, "{what}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test]
async fn a_killed_replica_frees_its_concurrency_slot_within_the_lease_ttl() {
    let redis = RedisServer::start();
    let mock = MockProvider::start(&[]);
    let text = config_text(&mock, &one_slot(&redis.url()), "");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, &text).expect("write");
    let mut child = Command::new(BIN)
        .env_clear()
        .env("HOME", dir.path())
        .arg("--config")
        .arg(&file)
        .args(["serve", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start serve");
    let stdout = child.stdout.take().expect("piped");
    let mut killed = Serve(child);
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let addr = address_after(&lines, "vibectl-server listening on ");
    let channel = within(
        "connect",
        Endpoint::from_shared(format!("http://{addr}"))
            .expect("url")
            .connect(),
    )
    .await
    .expect("connect");
    // A stream of a minute (20 chunks 3 s apart): it would hold the slot long after the test if
    // the replica lived. Its response head means it was admitted.
    let stream = within(
        "StreamExecute",
        VibectlLlmProxyClient::new(channel).stream_execute(request(&slow(20, 3000), None)),
    )
    .await
    .expect("admitted on the process")
    .into_inner();

    let other = Served::start(&text).await;
    let mut on_other = other.client().await;
    // Past one TTL, so the lease the process holds has been renewed.
    tokio::time::sleep(TTL + TTL / 2).await;
    let status = on_other
        .execute(request("while the process runs", None))
        .await
        .expect_err("the process holds the one slot");
    assert_eq!(refusal(&status).0, "concurrency");

    signal(&killed.0, "KILL");
    let killed_at = Instant::now();
    killed.0.wait().expect("wait for the killed process");
    let status = on_other
        .execute(request("just after the kill", None))
        .await
        .expect_err("the lease outlives its replica until it lapses");
    assert_eq!(refusal(&status).0, "concurrency");
    drop(stream);

    admitted_by(
        &mut on_other,
        killed_at + 3 * TTL,
        "the killed replica's lease did not lapse within 3 x lease_seconds",
    )
    .await;
}

#[tokio::test]
async fn a_call_longer_than_the_lease_ttl_keeps_its_slot() {
    let redis = RedisServer::start();
    let mock = MockProvider::start(&[]);
    let text = config_text(&mock, &one_slot(&redis.url()), "");
    let (a, b) = (Served::start(&text).await, Served::start(&text).await);
    let mut on_b = b.client().await;
    // The mock's 29-character reply one character at a time, 220 ms apart: 6.4 s, three TTLs.
    let mut stream = a
        .client()
        .await
        .stream_execute(request(&slow(29, 220), None))
        .await
        .expect("admitted on a")
        .into_inner();
    let reader = tokio::spawn(async move {
        let mut texts = 0;
        while let Some(chunk) = within("the stream", stream.message())
            .await
            .expect("the long stream failed")
        {
            match chunk.chunk_type {
                Some(ChunkType::TextChunk(_)) => texts += 1,
                Some(ChunkType::Error(e)) => panic!("the long stream failed: {e:?}"),
                _ => {}
            }
        }
        texts
    });
    // Refused all through 2.25 TTLs, which a lease that is not renewed cannot last.
    let started = Instant::now();
    let mut refusals = 0;
    while started.elapsed() < 2 * TTL + TTL / 4 {
        match on_b.execute(request("on b", None)).await {
            Ok(_) => panic!(
                "b was admitted {:?} into a's call: its lease was not renewed",
                started.elapsed()
            ),
            Err(status) => assert_eq!(refusal(&status).0, "concurrency"),
        }
        refusals += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(refusals > 5, "only {refusals} tries");
    let limiter = a
        .gov
        .redis_for(&a.state.load().config.server.limits)
        .expect("the redis backend")
        .expect("a's limiter");
    assert_eq!(
        limiter.leases_held(),
        1,
        "a renews the lease of its one call"
    );
    assert!(
        !reader.is_finished(),
        "the stream ended too soon to prove anything"
    );
    let texts = within("the stream", reader).await.expect("reader");
    assert_eq!(texts, 29, "every chunk of the long call");
    // Given back at the end of the call, not at the end of a TTL, and no longer renewed.
    admitted_by(
        &mut on_b,
        Instant::now() + LIMIT,
        "the lease was never given back",
    )
    .await;
    assert_eq!(
        limiter.leases_held(),
        0,
        "a still renews an ended call's lease"
    );
}

#[tokio::test]
async fn an_unreachable_redis_refuses_when_closed_and_lets_through_when_open() {
    let mock = MockProvider::start(&[]);
    let url = format!("redis://127.0.0.1:{}/0", free_port());
    let rpm = "global:\n  max_requests_per_minute: 100";
    let closed = Served::start(&config_text(&mock, &redis_limits(&url, rpm, "closed"), "")).await;
    let status = within(
        "Execute",
        closed.client().await.execute(request("hi", None)),
    )
    .await
    .expect_err("closed refuses");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        closed
            .gov
            .metrics
            .encode()
            .contains(r#"vibectl_redis_failures_total{mode="closed"} 1"#)
    );

    let open = Served::start(&config_text(&mock, &redis_limits(&url, rpm, "open"), "")).await;
    let resp = within("Execute", open.client().await.execute(request("hi", None)))
        .await
        .expect("open lets it through");
    assert!(matches!(
        resp.into_inner().result,
        Some(execute_response::Result::Success(_))
    ));
    assert!(
        open.gov
            .metrics
            .encode()
            .contains(r#"vibectl_redis_failures_total{mode="open"} 1"#)
    );
}

#[tokio::test]
async fn quota_counters_are_shared_through_redis() {
    let redis = RedisServer::start();
    let mock = MockProvider::start(&[]);
    let limits = redis_limits(&redis.url(), "global:\n  max_tokens_per_day: 5", "closed");
    let text = config_text(&mock, &limits, "");
    let (a, b) = (Served::start(&text).await, Served::start(&text).await);
    let resp = a
        .client()
        .await
        .execute(request("spend", None))
        .await
        .expect("within quota");
    assert!(matches!(
        resp.into_inner().result,
        Some(execute_response::Result::Success(_))
    ));
    // The usage reaches Redis asynchronously after the call.
    let mut on_b = b.client().await;
    let deadline = Instant::now() + LIMIT;
    loop {
        match on_b.execute(request("spend more", None)).await {
            Err(status) => {
                let (limit, retry) = refusal(&status);
                assert_eq!(limit, "quota");
                assert!(
                    retry.is_some_and(|ms| ms > 0 && ms <= 86_400_000),
                    "{retry:?}"
                );
                break;
            }
            Ok(_) => assert!(Instant::now() < deadline, "b never saw a's usage"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn the_redis_backend_needs_a_url() {
    use vibectl::config::ServerConfig;
    use vibectl::config::generated::server::ServerLimitsBackend;
    let mut cfg = ServerConfig::default();
    cfg.server.limits.backend = ServerLimitsBackend::Redis;
    let dir = tempfile::tempdir().expect("temp dir");
    let problems =
        match vibectl::server::State::build(cfg, dir.path(), &crate::support::server::no_env) {
            Ok(_) => panic!("a redis backend without redis_url was accepted"),
            Err(p) => p,
        };
    assert!(
        problems
            .iter()
            .any(|(k, m)| k == "server.limits.redis_url" && m.contains("server.limits.backend")),
        "{problems:?}"
    );
}
