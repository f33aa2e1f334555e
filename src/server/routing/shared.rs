//! Deployment health in Redis (`server.limits.backend: redis`), so that every replica on the
//! same Redis sees the rests, failure counts, back-offs and probe claims of the others. It uses
//! the limit counters' connection (`server.limits.redis_url`, the same timeouts) and their key
//! prefix: per deployment id (`MODEL/DEPLOYMENT`, from the config only)
//!
//! - `vibectl:health:ID`, a hash: why it rests (`kind`), until when (`until`, Unix ms) and its
//!   last back-off (`backoff`, ms). It expires a day after the end of its latest rest.
//! - `vibectl:health-failures:ID`, a sorted set of failure times, trimmed to the failure window
//!   on each failure and expiring one window after the last.
//! - `vibectl:health-probe:ID`, the probe claim: `SET NX PX` until the lease ends.
//!
//! Each write is one atomic command or Lua script. Reading the records of all the candidates
//! of a call is one pipelined round trip. When Redis cannot be reached in
//! [`REDIS_TIMEOUT`](crate::server::governance::redis_backend::REDIS_TIMEOUT), the operation
//! counts in `vibectl_health_store_failures_total`, a warning is logged (at most once a
//! minute), and the deployment counts as healthy: a call never fails because of its health
//! store.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::counter::Counter;
use redis::aio::ConnectionManager;

use super::health::{HealthStore, Record, Rest, now_ms};
use crate::server::governance::redis_backend::REDIS_TIMEOUT;

/// How long a health record outlives the end of its latest rest (so that a deployment out
/// after repeated failures stays to be probed, and its back-off is kept for doubling).
const KEEP_MS: u64 = 24 * 3600 * 1000;
/// The least time between two warnings about Redis.
const WARN_EVERY_MS: u64 = 60_000;

/// KEYS[1] the record, KEYS[2] the probe claim; ARGV: kind, until (ms), back-off (ms), the
/// record's TTL (ms). The later rest and the longer back-off are kept; the claim is dropped.
const REST: &str = r"
local untl = tonumber(ARGV[2])
local cur = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if cur < untl then
  redis.call('HSET', KEYS[1], 'kind', ARGV[1], 'until', ARGV[2])
end
local b = tonumber(redis.call('HGET', KEYS[1], 'backoff') or '0')
if b < tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'backoff', ARGV[3])
end
redis.call('DEL', KEYS[2])
local ttl = tonumber(ARGV[4])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
";

/// KEYS[1] the failure times; ARGV: now (ms), window (ms), a unique member, most kept. Drops
/// the times out of the window, adds this one, and returns how many are left.
const FAIL: &str = r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
local most = tonumber(ARGV[4])
if n > most then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - most - 1)
  n = most
end
redis.call('PEXPIRE', KEYS[1], math.max(window, 1))
return n
";

fn key(kind: &str, id: &str) -> String {
    format!("vibectl:{kind}:{id}")
}

/// The health of deployments, shared through Redis.
pub struct RedisHealth {
    con: ConnectionManager,
    rest: redis::Script,
    fail: redis::Script,
    /// `vibectl_health_store_failures_total`.
    failures: Counter,
    /// When (Unix ms) the last warning was logged.
    warned: AtomicU64,
}

impl RedisHealth {
    /// On `con` (the limit counters' connection), counting failures in `failures`.
    pub fn new(con: ConnectionManager, failures: Counter) -> RedisHealth {
        RedisHealth {
            con,
            rest: redis::Script::new(REST),
            fail: redis::Script::new(FAIL),
            failures,
            warned: AtomicU64::new(0),
        }
    }

    /// Run `op` on the connection within [`REDIS_TIMEOUT`]; `None` (counted, and logged at most
    /// once a minute) when Redis fails or does not answer in time.
    async fn run<T, F>(&self, what: &str, op: impl FnOnce(ConnectionManager) -> F) -> Option<T>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let why = match tokio::time::timeout(REDIS_TIMEOUT, op(self.con.clone())).await {
            Ok(Ok(v)) => return Some(v),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "Redis did not answer in time".to_owned(),
        };
        self.failures.inc();
        let now = now_ms();
        let last = self.warned.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= WARN_EVERY_MS
            && self
                .warned
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                "cannot {what} in Redis ({why}); deployments count as healthy until it answers \
                 (vibectl_health_store_failures_total counts each failure)"
            );
        }
        None
    }
}

/// A record from the fields of its hash (all absent: nothing known).
fn record(kind: Option<String>, until: Option<u64>, backoff: Option<u64>) -> Record {
    let rest = match (kind.as_deref(), until) {
        (Some("cooling"), Some(u)) => Some((Rest::Cooling, u)),
        (Some("out"), Some(u)) => Some((Rest::Out, u)),
        _ => None,
    };
    Record {
        rest,
        backoff_ms: backoff.unwrap_or(0),
        probe_until: 0,
    }
}

type Fields = (Option<String>, Option<u64>, Option<u64>);

#[tonic::async_trait]
impl HealthStore for RedisHealth {
    async fn record(&self, id: &str) -> Record {
        self.records(&[id.to_owned()])
            .await
            .pop()
            .unwrap_or_default()
    }

    async fn records(&self, ids: &[String]) -> Vec<Record> {
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HMGET")
                .arg(key("health", id))
                .arg("kind")
                .arg("until")
                .arg("backoff");
        }
        let found: Option<Vec<Fields>> = self
            .run(
                "read deployment health",
                move |mut con: ConnectionManager| async move { pipe.query_async(&mut con).await },
            )
            .await;
        match found {
            Some(all) if all.len() == ids.len() => {
                all.into_iter().map(|(k, u, b)| record(k, u, b)).collect()
            }
            _ => vec![Record::default(); ids.len()],
        }
    }

    async fn rest(&self, id: &str, rest: Rest, until_ms: u64, backoff_ms: u64) {
        let kind = match rest {
            Rest::Cooling => "cooling",
            Rest::Out => "out",
        };
        let ttl = until_ms.saturating_sub(now_ms()).saturating_add(KEEP_MS);
        let mut call = self.rest.prepare_invoke();
        call.key(key("health", id))
            .key(key("health-probe", id))
            .arg(kind)
            .arg(until_ms)
            .arg(backoff_ms)
            .arg(ttl);
        self.run("rest a deployment", move |mut con: ConnectionManager| async move {
            call.invoke_async::<i64>(&mut con).await
        })
        .await;
    }

    async fn count_failure(&self, id: &str, now_ms: u64, window_ms: u64) -> u32 {
        let member = format!("{now_ms}-{:016x}", rand::random::<u64>());
        let mut call = self.fail.prepare_invoke();
        call.key(key("health-failures", id))
            .arg(now_ms)
            .arg(window_ms)
            .arg(member)
            .arg(super::health::MAX_FAILURES_KEPT);
        self.run("count a deployment failure", move |mut con: ConnectionManager| async move {
            call.invoke_async::<u32>(&mut con).await
        })
        .await
        .unwrap_or(0)
    }

    async fn claim_probe(&self, id: &str, now_ms: u64, until_ms: u64) -> bool {
        let cmd = redis::cmd("SET")
            .arg(key("health-probe", id))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(until_ms.saturating_sub(now_ms).max(1))
            .clone();
        // Without Redis the deployment counts as healthy: the call may go to it.
        self.run(
            "claim a deployment's probe",
            move |mut con: ConnectionManager| async move {
                cmd.query_async::<Option<String>>(&mut con).await
            },
        )
        .await
        .is_none_or(|set| set.is_some())
    }

    async fn restore(&self, id: &str) {
        let cmd = redis::cmd("DEL")
            .arg(key("health", id))
            .arg(key("health-failures", id))
            .arg(key("health-probe", id))
            .clone();
        self.run(
            "restore a deployment",
            move |mut con: ConnectionManager| async move { cmd.query_async::<i64>(&mut con).await },
        )
        .await;
    }
}
