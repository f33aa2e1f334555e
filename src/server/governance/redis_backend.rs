//! The limit counters in Redis (`server.limits.backend: redis`), shared by every replica that
//! uses the same `redis_url`: one Lua script checks the quotas, the concurrency leases (a sorted
//! set of lease ids scored by expiry, so a crashed replica's leases lapse) and the GCRA rate
//! window, and takes a rate slot and a lease only when all pass. Time is Redis's own clock, so
//! replicas need not agree on theirs. Usage counters for the quotas are kept per UTC day and
//! month under keys that expire after the period.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::usage::Record;
use super::{CONCURRENCY_RETRY, LimitType, Limits, Refusal};

/// Longest wait for Redis on one call before the failure mode applies.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(800);
/// How long a lease outlives the request timeout (or lives without one) before it lapses.
const LEASE_SLACK: Duration = Duration::from_secs(30);
const LEASE_DEFAULT: Duration = Duration::from_secs(600);
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
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return {0, 0}
";

/// A connection to the shared counters.
pub struct RedisLimiter {
    pub url: String,
    con: ConnectionManager,
    admit: redis::Script,
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
        })
    }

    /// Check the quotas, concurrency and rate of `sub` and, when all pass, take a rate slot and
    /// the lease `lease`. The outer error is Redis failing.
    pub async fn admit(
        &self,
        sub: &str,
        limits: &Limits,
        lease: &str,
    ) -> Result<Result<(), Refusal>, String> {
        let now = super::usage::now_unix();
        let [day, month, cost] = quota_keys(sub, now);
        let n = limits.rpm.unwrap_or(0);
        let interval_ms = if n > 0 { 60_000 / u64::from(n) } else { 0 };
        let ttl = limits.timeout.map_or(LEASE_DEFAULT, |t| t + LEASE_SLACK);
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
            0 => Ok(()),
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

    /// Give back the lease of a call that ended.
    pub async fn release(&self, sub: &str, lease: &str) {
        let mut con = self.con.clone();
        let cmd = redis::cmd("ZREM")
            .arg(key("leases", sub))
            .arg(lease)
            .clone();
        let done = tokio::time::timeout(REDIS_TIMEOUT, cmd.query_async::<()>(&mut con)).await;
        if !matches!(done, Ok(Ok(()))) {
            tracing::debug!("cannot release a Redis lease of {sub}; it lapses on its own");
        }
    }

    /// Add a finished call to the quota counters.
    pub async fn record(&self, r: &Record) {
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
        if !matches!(done, Ok(Ok(()))) {
            tracing::warn!("cannot add usage of {} to the Redis quota counters", r.sub);
        }
    }
}
