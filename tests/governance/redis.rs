//! `server.limits.backend: redis`: replicas sharing one Redis (a real `redis-server` on a free
//! loopback port, stopped after the test) share their limits; an unreachable Redis refuses calls
//! or lets them through, by `redis_failure_mode`.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::Code;
use vibectl::proto::execute_response;

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
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start() -> RedisServer {
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

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis_limits(url: &str, limits: &str, mode: &str) -> String {
    format!("{limits}\nbackend: redis\nredis_url: {url}\nredis_failure_mode: {mode}")
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
