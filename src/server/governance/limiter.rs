//! In-memory limits per token subject: a GCRA rate window (burst = the per-minute limit, so with
//! a limit of N the first N quick calls pass) and a count of calls in flight. The map of
//! subjects is pruned of idle entries as it is used.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{CONCURRENCY_RETRY, LimitType, Limits, Refusal};

/// One minute: the window of `max_requests_per_minute`.
const MINUTE: Duration = Duration::from_secs(60);
/// Prune idle subjects every this many admissions.
const PRUNE_EVERY: u64 = 1024;

#[derive(Debug)]
struct Entry {
    /// GCRA's theoretical arrival time: the rate window is full up to here.
    tat: Instant,
    in_flight: u32,
}

#[derive(Debug, Default)]
pub struct MemoryLimiter {
    subs: Mutex<HashMap<String, Entry>>,
    admitted: AtomicU64,
}

impl MemoryLimiter {
    /// Take a rate slot and a concurrency slot for `sub`, or say which limit refuses and when a
    /// retry can pass. A refusal takes nothing. The caller must [`release`](Self::release)
    /// the concurrency slot when the call ends.
    pub fn admit(&self, sub: &str, limits: &Limits, now: Instant) -> Result<(), Refusal> {
        let mut subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        if self.admitted.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            subs.retain(|_, e| e.in_flight > 0 || e.tat > now);
            subs.shrink_to_fit();
        }
        let entry = subs.entry(sub.to_owned()).or_insert(Entry {
            tat: now,
            in_flight: 0,
        });
        if let Some(max) = limits.concurrent
            && entry.in_flight >= max
        {
            return Err(Refusal {
                limit: LimitType::Concurrency,
                retry_after: Some(CONCURRENCY_RETRY),
                message: format!("{sub} already has {max} requests in flight, the most allowed"),
            });
        }
        if let Some(n) = limits.rpm {
            let interval = MINUTE / n.max(1);
            let window = interval * n.max(1);
            let tat = entry.tat.max(now) + interval;
            let ahead = tat - now;
            if ahead > window {
                return Err(Refusal {
                    limit: LimitType::Rpm,
                    retry_after: Some(ahead - window),
                    message: format!("{sub} has used its {n} requests per minute"),
                });
            }
            entry.tat = tat;
        }
        entry.in_flight += 1;
        Ok(())
    }

    /// A call admitted for `sub` has ended.
    pub fn release(&self, sub: &str) {
        let mut subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = subs.get_mut(sub) {
            e.in_flight = e.in_flight.saturating_sub(1);
        }
    }

    /// Calls in flight for `sub`.
    pub fn in_flight(&self, sub: &str) -> u32 {
        let subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        subs.get(sub).map_or(0, |e| e.in_flight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rpm: Option<u32>, concurrent: Option<u32>) -> Limits {
        Limits {
            rpm,
            concurrent,
            ..Limits::default()
        }
    }

    #[test]
    fn rpm_allows_a_burst_of_n_then_refuses_with_the_exact_wait() {
        let l = MemoryLimiter::default();
        let now = Instant::now();
        let lim = limits(Some(5), None);
        for _ in 0..5 {
            l.admit("a", &lim, now).expect("within the burst");
            l.release("a");
        }
        let r = l.admit("a", &lim, now).expect_err("over the limit");
        assert_eq!(r.limit, LimitType::Rpm);
        assert_eq!(r.retry_after, Some(Duration::from_secs(12)));
        let later = now + Duration::from_secs(12);
        l.admit("a", &lim, later).expect("one slot back after 12 s");
        assert!(l.admit("a", &lim, later).is_err());
        // Another subject has its own bucket.
        l.admit("b", &lim, now).expect("b is not limited by a");
    }

    #[test]
    fn concurrency_refuses_until_a_slot_is_released() {
        let l = MemoryLimiter::default();
        let now = Instant::now();
        let lim = limits(None, Some(2));
        l.admit("a", &lim, now).unwrap();
        l.admit("a", &lim, now).unwrap();
        let r = l.admit("a", &lim, now).expect_err("third in flight");
        assert_eq!(r.limit, LimitType::Concurrency);
        l.release("a");
        l.admit("a", &lim, now).expect("a slot was freed");
        assert_eq!(l.in_flight("a"), 2);
    }
}
