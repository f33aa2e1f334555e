//! `server.limits.backend: redis`: the cache lives in Redis (a real `redis-server`), so an
//! answer stored through one replica is a hit on another, and it expires by Redis's own TTL.

use vibectl::config::generated::server::key;
use vibectl::server::cache::REDIS_PREFIX;

use super::{chat, grpc_text, http_text, lookups, on, serve, upstream_calls};
use crate::governance::redis::RedisServer;
use crate::support::mock::MockProvider;
use crate::support::server::{request, within};

#[tokio::test]
async fn two_replicas_on_one_redis_share_their_answers() {
    let redis = RedisServer::start();
    let mock = MockProvider::start(&[]);
    let mut pairs = on(120);
    pairs.push((key::SERVER_LIMITS_BACKEND.to_owned(), "redis".to_owned()));
    pairs.push((key::SERVER_LIMITS_REDIS_URL.to_owned(), redis.url()));
    let one = serve(&mock, false, &pairs).await;
    let two = serve(&mock, false, &pairs).await;

    let mut c1 = one.server.client().await;
    let mut c2 = two.server.client().await;
    let first = grpc_text(&mut c1, request("describe the cluster", None), &[]).await;
    assert_eq!(upstream_calls(&mock).await, 1);
    let again = grpc_text(&mut c2, request("describe the cluster", None), &[]).await;
    assert_eq!(again, first);
    assert_eq!(
        upstream_calls(&mock).await,
        1,
        "the other replica's answer was a hit"
    );
    let body = chat("describe the cluster");
    let http = http_text(&two, None, &[], &body).await;
    assert_eq!(http_text(&one, None, &[], &body).await, http);
    assert_eq!(upstream_calls(&mock).await, 2);
    assert!(
        one.gov.cache.is_empty() && two.gov.cache.is_empty(),
        "not in memory"
    );
    assert_eq!(two.usage()[0]["cache"], "hit");

    // Two answers in Redis under the cache's prefix, each expiring within its TTL.
    let client = redis::Client::open(redis.url()).expect("a Redis URL");
    let mut con = within(
        "connecting to Redis",
        client.get_multiplexed_async_connection(),
    )
    .await
    .expect("connect");
    let keys: Vec<String> = within(
        "KEYS",
        redis::cmd("KEYS")
            .arg(format!("{REDIS_PREFIX}*"))
            .query_async(&mut con),
    )
    .await
    .expect("KEYS");
    assert_eq!(keys.len(), 2, "{keys:?}");
    for k in &keys {
        let ttl_ms: i64 = within("PTTL", redis::cmd("PTTL").arg(k).query_async(&mut con))
            .await
            .expect("PTTL");
        assert!(0 < ttl_ms && ttl_ms <= 120_000, "{k}: {ttl_ms}");
        // The value is the answer as JSON, in the clear.
        let value: String = within("GET", redis::cmd("GET").arg(k).query_async(&mut con))
            .await
            .expect("GET");
        let answer: serde_json::Value = serde_json::from_str(&value).expect("JSON");
        assert!(
            [&first, &http].contains(&&answer["text"].as_str().unwrap_or("").to_owned()),
            "{value}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_redis_is_a_miss_not_a_failed_call() {
    let mock = MockProvider::start(&[]);
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let mut pairs = on(120);
    pairs.push((key::SERVER_LIMITS_BACKEND.to_owned(), "redis".to_owned()));
    pairs.push((
        key::SERVER_LIMITS_REDIS_URL.to_owned(),
        format!("redis://{nowhere}/0"),
    ));
    // Open: the limits let calls through without Redis, so the cache is all that is left.
    pairs.push((
        key::SERVER_LIMITS_REDIS_FAILURE_MODE.to_owned(),
        "open".to_owned(),
    ));
    let served = serve(&mock, false, &pairs).await;
    let mut client = served.server.client().await;
    for calls in [1, 2] {
        grpc_text(&mut client, request("describe the cluster", None), &[]).await;
        assert_eq!(upstream_calls(&mock).await, calls);
    }
    let text = served.gov.metrics.encode();
    assert!(text.lines().any(|l| l == lookups("miss", 2)), "{text}");
}
