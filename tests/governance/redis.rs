//! `server.limits.backend: redis`: replicas sharing one Redis (a real `redis-server` on a free
//! loopback port, stopped after the test) share their limits; a concurrency lease is renewed
//! while its call runs and lapses soon after its replica is killed; an unreachable Redis refuses
//! calls or lets them through, by `redis_failure_mode`.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tonic::Code;
use vibectl::config::generated::server::key;
use vibectl::proto::execute_response;
use vibectl::proto::stream_chunk::ChunkType;
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;

use super::{config_text, held, refusal, stuck};
use crate::support::mock::MockProvider;
use crate::support::server::TestServer;
use crate::support::server::{LIMIT, request, within};
use crate::support::spawned::Spawned;
use crate::support::wait;

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
        wait::until_blocking("redis-server listening", LIMIT, || {
            TcpStream::connect(("127.0.0.1", port))
        });
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The concurrency leases of the anonymous subject (lease id, expiry) and Redis's clock,
    /// both in Redis milliseconds, read in one go.
    pub async fn leases(&self) -> (Vec<(String, f64)>, f64) {
        let client = redis::Client::open(self.url()).expect("a Redis URL");
        let mut con = within(
            "connecting to Redis",
            client.get_multiplexed_async_connection(),
        )
        .await
        .expect("connect to Redis");
        let (set, (secs, micros)): (Vec<(String, f64)>, (u64, u64)) = within(
            "reading the leases",
            redis::pipe()
                .cmd("ZRANGE")
                .arg(LEASES)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .cmd("TIME")
                .query_async(&mut con),
        )
        .await
        .expect("ZRANGE and TIME");
        (set, (secs * 1000 + micros / 1000) as f64)
    }

    /// The one lease held (id, expiry); panics unless there is exactly one.
    pub async fn the_lease(&self) -> (String, f64) {
        match self.leases().await.0.as_slice() {
            [one] => one.clone(),
            other => panic!("not one lease: {other:?}"),
        }
    }
}

/// The lease set of the anonymous subject (auth off), as `redis_backend` names it.
const LEASES: &str = "vibectl:leases:anonymous";

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
        TestServer::from_text(&text).await,
        TestServer::from_text(&text).await,
        TestServer::from_text(&text).await,
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
    let (a, b) = (
        TestServer::from_text(&text).await,
        TestServer::from_text(&text).await,
    );
    let mut on_a = a.client().await;
    let mut on_b = b.client().await;
    let mut stream = on_a
        .stream_execute(request(&held(3), None))
        .await
        .expect("admitted on a")
        .into_inner();
    let status = on_b
        .execute(request("on b", None))
        .await
        .expect_err("a holds the one slot");
    assert_eq!(refusal(&status).0, "concurrency");
    mock.release().await;
    while within("the stream", stream.message())
        .await
        .expect("stream")
        .is_some()
    {}
    // The lease is given back asynchronously after the stream's end.
    admitted(&mut on_b, "the lease was never given back").await;
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

/// Call `on` until it is admitted, asserting each refusal is `concurrency`; panics with `what`
/// after [`LIMIT`].
async fn admitted(on: &mut VibectlLlmProxyClient<tonic::transport::Channel>, what: &str) {
    wait::until(what, LIMIT, async || {
        match within("Execute", on.execute(request("after", None))).await {
            Ok(_) => Ok(()),
            Err(status) => {
                assert_eq!(refusal(&status).0, "concurrency", "{status:?}");
                Err(status)
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_killed_replica_frees_its_concurrency_slot_within_the_lease_ttl() {
    let redis = RedisServer::start();
    let mock = MockProvider::start(&[]);
    let text = config_text(&mock, &one_slot(&redis.url()), "");
    let mut killed = Spawned::start(&text, &[]);
    let mut on_killed = killed.client().await;
    // A stream held open as long as its client is there: it would hold the slot for good if the
    // replica lived. Its response head means it was admitted.
    let stream = within(
        "StreamExecute",
        on_killed.stream_execute(request(&stuck(), None)),
    )
    .await
    .expect("admitted on the process")
    .into_inner();

    let other = TestServer::from_text(&text).await;
    let mut on_other = other.client().await;
    // The process renews its lease: the expiry in Redis moves forward.
    let (id, first) = redis.the_lease().await;
    wait::until(
        "the process renewing its lease",
        LIMIT,
        async || match redis.the_lease().await {
            (i, expiry) if i == id && expiry > first => Ok(()),
            seen => Err(format!("{seen:?}, first {first}")),
        },
    )
    .await;
    let status = on_other
        .execute(request("while the process runs", None))
        .await
        .expect_err("the process holds the one slot");
    assert_eq!(refusal(&status).0, "concurrency");

    killed.signal("KILL");
    killed.wait_exit().await;
    // What is left lapses by itself, at most one lease_seconds after the last renewal.
    let (leases, now) = redis.leases().await;
    let [(_, expiry)] = leases.as_slice() else {
        panic!("not one lease after the kill: {leases:?}");
    };
    assert!(
        *expiry <= now + TTL.as_millis() as f64,
        "the lease outlives its replica by more than lease_seconds: {expiry} at {now}"
    );
    let result = on_other.execute(request("just after the kill", None)).await;
    // Refused as long as the lease had not lapsed by Redis's clock after the call.
    if redis.leases().await.1 < *expiry {
        let status = result.expect_err("the lease outlives its replica until it lapses");
        assert_eq!(refusal(&status).0, "concurrency");
    }
    drop(stream);

    admitted(&mut on_other, "the killed replica's lease never lapsed").await;
}

#[tokio::test]
async fn a_call_longer_than_the_lease_ttl_keeps_its_slot() {
    let redis = RedisServer::start();
    let mock = MockProvider::start(&[]);
    let text = config_text(&mock, &one_slot(&redis.url()), "");
    let (a, b) = (
        TestServer::from_text(&text).await,
        TestServer::from_text(&text).await,
    );
    let mut on_b = b.client().await;
    // The mock's 29-character reply one character at a time, held after the first until the
    // mock releases it.
    let mut stream = a
        .client()
        .await
        .stream_execute(request(&held(29), None))
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
    // Wait, on Redis's own clock, until the lease as first given has lapsed: it is still there,
    // renewed, and b is refused.
    let (id, first) = redis.the_lease().await;
    wait::until(
        "Redis's clock passing the first expiry",
        LIMIT,
        async || match redis.leases().await {
            (_, now) if now > first => Ok(()),
            seen => Err(format!("{seen:?}, first expiry {first}")),
        },
    )
    .await;
    let (leases, now) = redis.leases().await;
    assert!(
        matches!(leases.as_slice(), [(i, expiry)] if *i == id && *expiry > now),
        "a's lease was not renewed: {leases:?} at {now}"
    );
    let status = on_b
        .execute(request("on b", None))
        .await
        .expect_err("b was admitted into a's call: its lease was not renewed");
    assert_eq!(refusal(&status).0, "concurrency");
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
        "the stream ended before the mock released it"
    );
    mock.release().await;
    let texts = within("the stream", reader).await.expect("reader");
    assert_eq!(texts, 29, "every chunk of the long call");
    // Given back at the end of the call, and no longer renewed.
    admitted(&mut on_b, "the lease was never given back").await;
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
    let closed =
        TestServer::from_text(&config_text(&mock, &redis_limits(&url, rpm, "closed"), "")).await;
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

    let open =
        TestServer::from_text(&config_text(&mock, &redis_limits(&url, rpm, "open"), "")).await;
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
    let (a, b) = (
        TestServer::from_text(&text).await,
        TestServer::from_text(&text).await,
    );
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
    let status = wait::until("b seeing a's usage", LIMIT, async || {
        match on_b.execute(request("spend more", None)).await {
            Err(status) => Ok(status),
            Ok(_) => Err("admitted"),
        }
    })
    .await;
    let (limit, retry) = refusal(&status);
    assert_eq!(limit, "quota");
    assert!(
        retry.is_some_and(|ms| ms > 0 && ms <= 86_400_000),
        "{retry:?}"
    );
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
