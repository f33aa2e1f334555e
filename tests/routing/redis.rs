//! Deployment health shared through Redis (`server.limits.backend: redis`): three replicas on
//! one real `redis-server` and two mock providers. A 429 seen by one replica rests the deployment
//! for the others, and all use it again once the rest is over; an out deployment's probe is
//! claimed by one replica only; a call of a healthy deployment reads the health of its
//! candidates and writes nothing; calls are served while Redis is down; a reload that switches
//! the backend switches the store, and a Redis that cannot be reached is logged once, not per
//! call. The store itself, against Redis: one claim among many, the
//! later rest kept, failures counted within their window, every key with a TTL.

use std::sync::Arc;

use vibectl::config::generated::server::key;
use vibectl::proto::execute_response;
use vibectl::proto::stream_chunk::ChunkType;
use vibectl::server::routing::health::{HealthStore, Record, Rest, now_ms};
use vibectl::server::routing::shared::RedisHealth;

use super::wait_state;
use super::{FIRST, MODEL, SECOND, Via, call, config, requests, routing, served_by, state};
use crate::governance::redis::RedisServer;
use crate::support::mock::MockProvider;
use crate::support::server::{LIMIT, TestServer, execute, request, within};
use crate::support::spawned::Spawned;
use crate::support::wait;

/// The `server.limits` pairs of the Redis backend at `url`, letting calls through unlimited when
/// Redis cannot be reached.
fn on_redis(url: &str) -> Vec<(String, String)> {
    routing(&[
        (key::SERVER_LIMITS_BACKEND, "redis"),
        (key::SERVER_LIMITS_REDIS_URL, url),
        (key::SERVER_LIMITS_REDIS_FAILURE_MODE, "open"),
    ])
}

/// Three replicas of the [`config`] of mocks `a` and `b` plus `extra`, on the Redis at `url`.
async fn replicas(
    a: &MockProvider,
    b: &MockProvider,
    url: &str,
    extra: &[(String, String)],
) -> [TestServer; 3] {
    let mut pairs = on_redis(url);
    pairs.extend(extra.iter().cloned());
    let text = config(a, b, &pairs);
    [
        TestServer::from_text(&text).await,
        TestServer::from_text(&text).await,
        TestServer::from_text(&text).await,
    ]
}

/// Every call of a test carries this: mock A (started failing every request) fails only the
/// first request with it, and answers the others.
const ONCE: &str = "[[mock:fail_times=1,fail_id=once]] hi";

#[tokio::test]
async fn a_429_seen_by_one_replica_rests_the_deployment_for_all_of_them() {
    let redis = RedisServer::start();
    let a = MockProvider::start(&["--fail-status", "429", "--retry-after", "3"]);
    let b = MockProvider::start(&[]);
    let servers = replicas(&a, &b, &redis.url(), &[]).await;
    for s in &servers {
        assert_eq!(state(s, FIRST).await, "healthy");
    }

    // Replica 0 gets the 429 and moves on to the second deployment.
    assert_eq!(
        call(&servers[0], Via::Grpc, MODEL, ONCE).await,
        Ok(MODEL.to_owned())
    );
    assert_eq!((requests(&a).await, requests(&b).await), (1, 1));

    // The other two see it resting, and send their calls to the second deployment.
    for (s, via) in servers[1..].iter().zip([Via::Grpc, Via::Http]) {
        assert_eq!(state(s, FIRST).await, "cooling");
        assert_eq!(state(s, SECOND).await, "healthy");
        assert_eq!(call(s, via, MODEL, ONCE).await, Ok(MODEL.to_owned()));
        assert_eq!(served_by(s), [SECOND]);
    }
    assert_eq!((requests(&a).await, requests(&b).await), (1, 3));

    // Its rest over, every replica sends to it again.
    for s in &servers {
        wait_state(s, FIRST, "healthy").await;
    }
    for s in &servers {
        assert_eq!(call(s, Via::Grpc, MODEL, ONCE).await, Ok(MODEL.to_owned()));
        assert_eq!(served_by(s).last().map(String::as_str), Some(FIRST));
    }
    assert_eq!((requests(&a).await, requests(&b).await), (4, 3));
}

#[tokio::test]
async fn the_probe_of_an_out_deployment_is_claimed_by_one_replica_only() {
    let redis = RedisServer::start();
    let a = MockProvider::start(&["--fail-status", "500"]);
    let b = MockProvider::start(&[]);
    let extra = routing(&[
        (key::ROUTING_FAILURE_THRESHOLD, "1"),
        (key::ROUTING_BACKOFF_SECONDS, "0.5"),
    ]);
    let servers = replicas(&a, &b, &redis.url(), &extra).await;

    // One failure on replica 0 takes it out for all; its back-off over, all may probe it.
    assert_eq!(
        call(&servers[0], Via::Grpc, MODEL, ONCE).await,
        Ok(MODEL.to_owned())
    );
    assert_eq!((requests(&a).await, requests(&b).await), (1, 1));
    for s in &servers {
        wait_state(s, FIRST, "probe").await;
    }

    // Replica 0 probes with a stream the mock holds after its first chunk.
    let probe = "[[mock:fail_times=1,fail_id=once,chunks=2,gate=1]] hi";
    let mut stream = servers[0]
        .client()
        .await
        .stream_execute(request(probe, None))
        .await
        .expect("StreamExecute")
        .into_inner();
    wait::until(
        "the probe reaching mock A",
        LIMIT,
        async || match requests(&a).await {
            2 => Ok(()),
            n => Err(n),
        },
    )
    .await;

    // While it runs, the others find the probe claimed and go to the second deployment.
    for (s, via) in servers[1..].iter().zip([Via::Grpc, Via::Http]) {
        assert_eq!(state(s, FIRST).await, "probe");
        assert_eq!(call(s, via, MODEL, ONCE).await, Ok(MODEL.to_owned()));
        assert_eq!(served_by(s), [SECOND]);
    }
    assert_eq!((requests(&a).await, requests(&b).await), (2, 3));

    // The probe answers: the deployment is back for every replica.
    a.release().await;
    let mut text = String::new();
    while let Some(chunk) = within("the probe", stream.message())
        .await
        .expect("the probe stream")
    {
        match chunk.chunk_type {
            Some(ChunkType::TextChunk(t)) => text.push_str(&t),
            Some(ChunkType::Error(e)) => panic!("the probe failed: {e:?}"),
            _ => {}
        }
    }
    assert!(!text.is_empty());
    for s in &servers {
        wait_state(s, FIRST, "healthy").await;
    }
    assert_eq!(
        call(&servers[2], Via::Grpc, MODEL, ONCE).await,
        Ok(MODEL.to_owned())
    );
    assert_eq!(
        served_by(&servers[2]).last().map(String::as_str),
        Some(FIRST)
    );
    assert_eq!((requests(&a).await, requests(&b).await), (3, 3));
}

/// `INFO commandstats`: calls per command (lower case), commands not run left out.
async fn command_calls(redis: &RedisServer) -> std::collections::HashMap<String, u64> {
    let mut con = connect(redis).await;
    let info: String = within(
        "INFO commandstats",
        redis::cmd("INFO").arg("commandstats").query_async(&mut con),
    )
    .await
    .expect("INFO");
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.strip_prefix("calls=")?.split(',').next()?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

async fn connect(redis: &RedisServer) -> redis::aio::ConnectionManager {
    let client = redis::Client::open(redis.url()).expect("a Redis URL");
    within("connecting to Redis", client.get_connection_manager())
        .await
        .expect("connect to Redis")
}

#[tokio::test]
async fn a_call_to_a_healthy_deployment_reads_its_candidates_once_and_writes_nothing() {
    let redis = RedisServer::start();
    let a = MockProvider::start(&[]);
    let b = MockProvider::start(&[]);
    let [server, ..] = replicas(&a, &b, &redis.url(), &[]).await;
    // A first call loads the limits' script; count from after it.
    assert_eq!(
        call(&server, Via::Grpc, MODEL, "hi").await,
        Ok(MODEL.to_owned())
    );
    let mut con = connect(&redis).await;
    let () = within(
        "CONFIG RESETSTAT",
        redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut con),
    )
    .await
    .expect("CONFIG RESETSTAT");
    for via in [Via::Grpc, Via::Http, Via::Grpc] {
        assert_eq!(call(&server, via, MODEL, "hi").await, Ok(MODEL.to_owned()));
    }
    let calls = command_calls(&redis).await;
    // The health of both deployments, read in one pipeline per call.
    assert_eq!(calls.get("hmget"), Some(&6), "{calls:?}");
    // The limits' admission script, once per call: no health script, claim or delete.
    assert_eq!(calls.get("evalsha"), Some(&3), "{calls:?}");
    for write in ["set", "del", "eval", "hset", "zadd"] {
        assert_eq!(calls.get(write), None, "{write}: {calls:?}");
    }
    assert_eq!(requests(&a).await, 4);
}

#[tokio::test]
async fn calls_are_served_while_redis_is_down() {
    let redis = RedisServer::start();
    let a = MockProvider::start(&[]);
    let b = MockProvider::start(&[]);
    let [server, ..] = replicas(&a, &b, &redis.url(), &[]).await;
    assert_eq!(
        call(&server, Via::Grpc, MODEL, "hi").await,
        Ok(MODEL.to_owned())
    );
    drop(redis);
    for via in [Via::Grpc, Via::Http] {
        assert_eq!(call(&server, via, MODEL, "hi").await, Ok(MODEL.to_owned()));
    }
    // Its health unknown, the deployment counts as healthy.
    assert_eq!(state(&server, FIRST).await, "healthy");
    assert_eq!(served_by(&server), [FIRST, FIRST, FIRST]);
    let failures = server
        .gov
        .metrics
        .encode()
        .lines()
        .find_map(|l| {
            l.strip_prefix("vibectl_health_store_failures_total ")?
                .parse()
                .ok()
        })
        .unwrap_or(0u64);
    assert!(failures >= 2, "{failures}");
}

#[tokio::test]
async fn a_reload_that_switches_the_backend_switches_the_health_store() {
    let redis = RedisServer::start();
    let a = MockProvider::start(&["--fail-status", "429", "--retry-after", "600"]);
    let b = MockProvider::start(&[]);
    let [shared, ..] = replicas(&a, &b, &redis.url(), &[]).await;
    let alone_text = config(&a, &b, &[]);
    let alone = TestServer::from_text(&alone_text).await;

    assert_eq!(
        call(&shared, Via::Grpc, MODEL, ONCE).await,
        Ok(MODEL.to_owned())
    );
    assert_eq!(state(&shared, FIRST).await, "cooling");
    // Its own health in memory, the other server knows nothing of it.
    assert_eq!(state(&alone, FIRST).await, "healthy");

    std::fs::write(&alone.file, config(&a, &b, &on_redis(&redis.url()))).expect("write");
    alone
        .wait_for_metric(r#"vibectl_config_reloads_total{result="ok"} 1"#)
        .await;
    assert_eq!(state(&alone, FIRST).await, "cooling");

    // Back on the memory backend, it has its own health again.
    std::fs::write(&alone.file, &alone_text).expect("write");
    alone
        .wait_for_metric(r#"vibectl_config_reloads_total{result="ok"} 2"#)
        .await;
    assert_eq!(state(&alone, FIRST).await, "healthy");
}

/// A store on its own connection to `redis`, and its failure counter.
async fn store(redis: &RedisServer) -> RedisHealth {
    RedisHealth::new(connect(redis).await, Default::default())
}

#[tokio::test]
async fn the_store_gives_one_claim_keeps_the_later_rest_counts_within_the_window_and_expires() {
    let redis = RedisServer::start();
    let stores: Vec<Arc<RedisHealth>> = vec![
        Arc::new(store(&redis).await),
        Arc::new(store(&redis).await),
        Arc::new(store(&redis).await),
    ];
    let now = now_ms();
    let claims = futures_util::future::join_all(stores.iter().cycle().take(30).map(|s| {
        let s = s.clone();
        async move { s.claim_probe("m/d", now, now + 60_000).await }
    }))
    .await;
    assert_eq!(claims.iter().filter(|c| **c).count(), 1, "{claims:?}");

    // The later rest is kept, whichever replica writes last; a rest drops the claim.
    let (s0, s1) = (&stores[0], &stores[1]);
    s0.rest("m/d", Rest::Cooling, now + 50_000, 0).await;
    s1.rest("m/d", Rest::Out, now + 20_000, 7_000).await;
    assert_eq!(
        s1.record("m/d").await,
        Record {
            rest: Some((Rest::Cooling, now + 50_000)),
            backoff_ms: 7_000,
            probe_until: 0
        }
    );
    assert!(s1.claim_probe("m/d", now, now + 60_000).await);

    // Failures count within the window only.
    let window = 60_000;
    assert_eq!(s0.count_failure("m/d", now, window).await, 1);
    assert_eq!(s1.count_failure("m/d", now + 30_000, window).await, 2);
    assert_eq!(s0.count_failure("m/d", now + 61_000, window).await, 2);
    assert_eq!(s1.count_failure("m/d", now + 200_000, window).await, 1);

    // Every key expires on its own.
    let mut con = connect(&redis).await;
    let keys: Vec<String> = within(
        "KEYS",
        redis::cmd("KEYS")
            .arg("vibectl:health*")
            .query_async(&mut con),
    )
    .await
    .expect("KEYS");
    assert_eq!(keys.len(), 3, "{keys:?}");
    // The record a day after the end of its rest, the failure times one window after the
    // last, the claim when its lease ends.
    let day = 86_400_000;
    for (k, least, most) in [
        ("vibectl:health:m/d", day, day + 50_000),
        ("vibectl:health-failures:m/d", 1, window),
        ("vibectl:health-probe:m/d", 1, 60_000),
    ] {
        assert!(keys.iter().any(|have| have == k), "{k}: {keys:?}");
        let ttl: u64 = within("PTTL", redis::cmd("PTTL").arg(k).query_async(&mut con))
            .await
            .expect("PTTL");
        assert!(least <= ttl && ttl <= most, "{k} expires in {ttl} ms");
    }

    // A probe that answers clears it all.
    s0.restore("m/d").await;
    assert_eq!(s1.record("m/d").await, Record::default());
    let left: Vec<String> = within(
        "KEYS",
        redis::cmd("KEYS")
            .arg("vibectl:health*")
            .query_async(&mut con),
    )
    .await
    .expect("KEYS");
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn an_unreachable_health_store_is_logged_once_not_per_call() {
    let redis = RedisServer::start();
    let url = redis.url();
    drop(redis);
    let a = MockProvider::start(&[]);
    let b = MockProvider::start(&[]);
    let server = Spawned::start(&config(&a, &b, &on_redis(&url)), &[]);
    let mut client = server.client().await;
    for i in 0..3 {
        let (_, result) = execute(&mut client, request(&format!("call {i}"), None)).await;
        assert!(
            matches!(result, execute_response::Result::Success(_)),
            "{result:?}"
        );
    }
    assert_eq!(requests(&a).await, 3);
    let log = server.wait_stderr(HEALTH_WARNING);
    assert_eq!(log.matches(HEALTH_WARNING).count(), 1, "{log}");
}

/// What the server logs when deployment health cannot be read or written in Redis.
const HEALTH_WARNING: &str = "deployments count as healthy until it answers";
