//! The limit counters in Redis (`server.limits.backend: redis`), shared by every replica that
//! uses the same `redis_url`: one Lua script checks the quotas, the concurrency leases (a sorted
//! set of lease ids scored by expiry) and the GCRA rate window, and takes a rate slot and a lease
//! only when all pass. Time is Redis's own clock, so replicas need not agree on theirs. Usage
//! counters for the quotas are kept per UTC day and month under keys that expire after the
//! period.
//!
//! A lease lives `server.limits.lease_seconds` (the TTL) unless renewed. Each [`RedisLimiter`]
//! keeps the leases of its calls in flight and one background task (the heartbeat) pushes all
//! their expiries forward every TTL/3 in one Lua call, so a long call keeps its slot while a
//! replica that dies (and stops renewing) frees its slots within one TTL: the next admission on
//! any replica prunes the lapsed leases. A call that ends gives its lease back at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::usage::Record;
use super::{CONCURRENCY_RETRY, LimitType, Limits, Refusal};

/// Longest wait for Redis on one call before the failure mode applies.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(800);
/// The shortest lease TTL (the schema's minimum of `server.limits.lease_seconds`); a shorter
/// one would be renewed more often than Redis may take to answer.
pub const LEASE_MIN: Duration = Duration::from_secs(2);
/// The most leases renewed by one Lua call; more are split over several calls.
const RENEW_BATCH: usize = 1000;
const DAY_SECS: i64 = 86_400;

const ADMIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local maxc = tonumber(ARGV[3])
local ttl = tonumber(ARGV[5])
local maxday = tonumber(ARGV[6])
local maxmonth = tonumber(ARGV[7])
local maxcost = tonumber(ARGV[8])
if maxday > 0 and tonumber(redis.call('GET', KEYS[3]) or '0') >= maxday then
  return {3, tonumber(ARGV[9])}
end
if maxmonth > 0 and tonumber(redis.call('GET', KEYS[4]) or '0') >= maxmonth then
  return {3, tonumber(ARGV[10])}
end
if maxcost > 0 and tonumber(redis.call('GET', KEYS[5]) or '0') >= maxcost then
  return {3, tonumber(ARGV[10])}
end
if maxc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= maxc then
    return {2, 0}
  end
end
if interval > 0 then
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat < now then tat = now end
  local new = tat + interval
  local window = interval * n
  if new - now > window then
    return {1, new - now - window}
  end
  redis.call('SET', KEYS[1], new, 'PX', new - now)
end
if maxc > 0 then
  redis.call('ZADD', KEYS[2], now + ttl, ARGV[4])
  if redis.call('PTTL', KEYS[2]) < ttl then
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
end
return {0, 0}
";

/// Push the expiry of leases still present to now + their TTL: KEYS[i] is a lease set, ARGV[2i-1]
/// the lease id in it and ARGV[2i] its TTL in milliseconds. A lease no longer there (it lapsed
/// and was pruned, or Redis lost it) is not added back; the ids of those are returned.
const RENEW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lost = {}
for i, k in ipairs(KEYS) do
  local id = ARGV[2 * i - 1]
  local ttl = tonumber(ARGV[2 * i])
  if redis.call('ZSCORE', k, id) then
    redis.call('ZADD', k, 'XX', now + ttl, id)
    if redis.call('PTTL', k) < ttl then
      redis.call('PEXPIRE', k, ttl)
    end
  else
    lost[#lost + 1] = id
  end
end
return lost
";

/// A lease this replica holds for a call in flight.
struct Held {
    /// The lease set it is in.
    key: String,
    ttl_ms: u64,
}

/// A connection to the shared counters, and the leases of this replica's calls in flight.
pub struct RedisLimiter {
    pub url: String,
    con: ConnectionManager,
    admit: redis::Script,
    renew: redis::Script,
    /// Lease id to lease, for the heartbeat.
    held: Mutex<HashMap<String, Held>>,
    /// Wakes the heartbeat: a lease that needs renewing sooner, or this limiter dropped.
    wake: Arc<Notify>,
    /// Whether the heartbeat task has been started.
    beating: AtomicBool,
}

impl Drop for RedisLimiter {
    fn drop(&mut self) {
        // The heartbeat finds the limiter gone and ends.
        self.wake.notify_one();
    }
}

fn key(kind: &str, sub: &str) -> String {
    format!("vibectl:{kind}:{sub}")
}

/// The quota keys of `sub` for the UTC day and month of `now` (unix seconds).
fn quota_keys(sub: &str, now: i64) -> [String; 3] {
    let (y, m) = super::usage::month_of(now);
    let day = now.div_euclid(DAY_SECS);
    [
        key(&format!("tokens-day-{day}"), sub),
        key(&format!("tokens-month-{y}-{m:02}"), sub),
        key(&format!("cost-month-{y}-{m:02}"), sub),
    ]
}

impl RedisLimiter {
    /// A lazily connected limiter; the URL is checked now, the server on first use.
    pub fn new(url: &str) -> Result<RedisLimiter, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let con =
            ConnectionManager::new_lazy_with_config(client, config).map_err(|e| e.to_string())?;
        Ok(RedisLimiter {
            url: url.to_owned(),
            con,
            admit: redis::Script::new(ADMIT),
            renew: redis::Script::new(RENEW),
            held: Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
            beating: AtomicBool::new(false),
        })
    }

    /// A handle on the shared connection, for other state kept in the same Redis (the
    /// deployment health and the response cache).
    pub fn connection(&self) -> ConnectionManager {
        self.con.clone()
    }

    /// Check the quotas, concurrency and rate of `sub` and, when all pass, take a rate slot and
    /// (with a concurrency limit) the lease `lease`, which lives `ttl` (at least [`LEASE_MIN`])
    /// and is renewed until it is [`release`](Self::release)d. The outer error is Redis failing.
    pub async fn admit(
        self: &Arc<Self>,
        sub: &str,
        limits: &Limits,
        lease: &str,
        ttl: Duration,
    ) -> Result<Result<(), Refusal>, String> {
        let now = super::usage::now_unix();
        let [day, month, cost] = quota_keys(sub, now);
        let n = limits.rpm.unwrap_or(0);
        let interval_ms = if n > 0 { 60_000 / u64::from(n) } else { 0 };
        let ttl = ttl.max(LEASE_MIN);
        let day_end_ms = ((now.div_euclid(DAY_SECS) + 1) * DAY_SECS - now) * 1000;
        let month_end_ms = (super::usage::next_month_start(now) - now) * 1000;
        let mut con = self.con.clone();
        let mut call = self.admit.prepare_invoke();
        call.key(key("rate", sub))
            .key(key("leases", sub))
            .key(day)
            .key(month)
            .key(cost)
            .arg(interval_ms)
            .arg(n)
            .arg(limits.concurrent.unwrap_or(0))
            .arg(lease)
            .arg(ttl.as_millis() as u64)
            .arg(limits.tokens_per_day.unwrap_or(0))
            .arg(limits.tokens_per_month.unwrap_or(0))
            .arg(limits.cost_usd_per_month.unwrap_or(0.0))
            .arg(day_end_ms)
            .arg(month_end_ms);
        let (code, retry_ms): (i64, i64) =
            tokio::time::timeout(REDIS_TIMEOUT, call.invoke_async(&mut con))
                .await
                .map_err(|_| "Redis did not answer in time".to_owned())?
                .map_err(|e| e.to_string())?;
        let retry = Duration::from_millis(retry_ms.max(1) as u64);
        Ok(match code {
            0 => {
                if limits.concurrent.is_some() {
                    self.hold(key("leases", sub), lease, ttl);
                }
                Ok(())
            }
            1 => Err(Refusal {
                limit: LimitType::Rpm,
                retry_after: Some(retry),
                message: format!("{sub} has used its {n} requests per minute"),
            }),
            2 => Err(Refusal {
                limit: LimitType::Concurrency,
                retry_after: Some(CONCURRENCY_RETRY),
                message: format!(
                    "{sub} already has {} requests in flight, the most allowed",
                    limits.concurrent.unwrap_or(0)
                ),
            }),
            _ => Err(Refusal {
                limit: LimitType::Quota,
                retry_after: Some(retry),
                message: format!("{sub} has used its quota"),
            }),
        })
    }

    /// Give back the lease of a call that ended: it is no longer renewed, and is removed from
    /// Redis in the background (when that fails it lapses within its TTL).
    pub fn release(self: &Arc<Self>, sub: &str, lease: &str) {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(lease);
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let me = self.clone();
        let (sub, lease) = (sub.to_owned(), lease.to_owned());
        rt.spawn(async move {
            let mut con = me.con.clone();
            let cmd = redis::cmd("ZREM")
                .arg(key("leases", &sub))
                .arg(&lease)
                .clone();
            let done = tokio::time::timeout(REDIS_TIMEOUT, cmd.query_async::<()>(&mut con)).await;
            if !matches!(done, Ok(Ok(()))) {
                tracing::debug!("cannot release a Redis lease of {sub}; it lapses on its own");
            }
        });
    }

    /// The number of leases this replica holds and renews.
    pub fn leases_held(&self) -> usize {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Renew `lease` (in the set `key`) from now on, starting the heartbeat on first use.
    fn hold(self: &Arc<Self>, key: String, lease: &str, ttl: Duration) {
        let ttl_ms = ttl.as_millis() as u64;
        let sooner = {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            let sooner = held
                .values()
                .map(|h| h.ttl_ms)
                .min()
                .is_none_or(|m| ttl_ms < m);
            held.insert(lease.to_owned(), Held { key, ttl_ms });
            sooner
        };
        if !self.beating.swap(true, Ordering::SeqCst) {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(heartbeat(Arc::downgrade(self), self.wake.clone()));
                }
                Err(_) => self.beating.store(false, Ordering::SeqCst),
            }
        }
        if sooner {
            self.wake.notify_one();
        }
    }

    /// How often the held leases need renewing: a third of the shortest TTL; `None` when no
    /// lease is held.
    fn renew_period(&self) -> Option<Duration> {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.values()
            .map(|h| Duration::from_millis(h.ttl_ms / 3))
            .min()
    }

    /// Push the expiry of every held lease forward, in one Lua call per [`RENEW_BATCH`] leases.
    async fn renew(&self) {
        let batches: Vec<Vec<(String, String, u64)>> = {
            let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            let all: Vec<_> = held
                .iter()
                .map(|(id, h)| (h.key.clone(), id.clone(), h.ttl_ms))
                .collect();
            all.chunks(RENEW_BATCH).map(<[_]>::to_vec).collect()
        };
        for batch in batches {
            let mut call = self.renew.prepare_invoke();
            for (key, id, ttl_ms) in &batch {
                call.key(key).arg(id).arg(*ttl_ms);
            }
            let mut con = self.con.clone();
            let lost: Vec<String> =
                match tokio::time::timeout(REDIS_TIMEOUT, call.invoke_async(&mut con)).await {
                    Ok(Ok(lost)) => lost,
                    Ok(Err(e)) => {
                        tracing::warn!("cannot renew {} Redis leases: {e}", batch.len());
                        continue;
                    }
                    Err(_) => {
                        tracing::warn!(
                            "cannot renew {} Redis leases: Redis did not answer in time",
                            batch.len()
                        );
                        continue;
                    }
                };
            if lost.is_empty() {
                continue;
            }
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            for id in &lost {
                // Not there any more: it lapsed before this renewal (or Redis lost it), and
                // another call may have its slot. Renewing it would not bring it back.
                if let Some(h) = held.remove(id) {
                    tracing::warn!(
                        "a Redis lease in {} lapsed while its call was still running",
                        h.key
                    );
                }
            }
        }
    }

    /// Add a call's usage to the quota counters; whether Redis took it.
    pub async fn record(&self, r: &Record) -> bool {
        let [day, month, cost] = quota_keys(&r.sub, r.ts);
        let tokens = r.input_tokens + r.output_tokens;
        let mut pipe = redis::pipe();
        pipe.cmd("INCRBY").arg(&day).arg(tokens).ignore();
        pipe.cmd("EXPIRE").arg(&day).arg(2 * DAY_SECS).ignore();
        pipe.cmd("INCRBY").arg(&month).arg(tokens).ignore();
        pipe.cmd("EXPIRE").arg(&month).arg(32 * DAY_SECS).ignore();
        if let Some(c) = r.cost_usd {
            pipe.cmd("INCRBYFLOAT").arg(&cost).arg(c).ignore();
            pipe.cmd("EXPIRE").arg(&cost).arg(32 * DAY_SECS).ignore();
        }
        let mut con = self.con.clone();
        let done = tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async::<()>(&mut con)).await;
        let ok = matches!(done, Ok(Ok(())));
        if !ok {
            tracing::warn!("cannot add usage of {} to the Redis quota counters", r.sub);
        }
        ok
    }
}

/// The heartbeat of one [`RedisLimiter`]: renews its held leases every third of the shortest
/// TTL, sleeps while it holds none, and ends when the limiter is dropped.
async fn heartbeat(limiter: Weak<RedisLimiter>, wake: Arc<Notify>) {
    let mut due: Option<Instant> = None;
    loop {
        let Some(period) = limiter.upgrade().map(|l| l.renew_period()) else {
            return;
        };
        let Some(period) = period else {
            due = None;
            wake.notified().await;
            continue;
        };
        // A lease with a shorter TTL than the others brings the next renewal forward.
        let at = due.map_or(Instant::now() + period, |d| d.min(Instant::now() + period));
        due = Some(at);
        tokio::select! {
            () = tokio::time::sleep_until(at) => {
                due = None;
                let Some(l) = limiter.upgrade() else {
                    return;
                };
                l.renew().await;
            }
            () = wake.notified() => {}
        }
    }
}
