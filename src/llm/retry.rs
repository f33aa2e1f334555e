//! The one retry policy of every upstream call: the server's calls to its providers, the
//! client's direct calls to a provider and its calls through a proxy server. Each side builds a
//! [`RetryPolicy`] from its own config keys; the backoff and the use of a `retry-after` hint
//! (read once, clamped, by [`super::error`]) are computed here and nowhere else.
//!
//! The rule, for retry number `attempt` (0-based) after a failure worth retrying:
//! - no retry once `max_retries` retries were made;
//! - a failure that says when to come back (`retry-after`, `retry-after-ms`) is retried after
//!   exactly that wait, unless the wait is longer than `max_retry_after`: every retry before
//!   then would be refused too, so the call fails at once with the wait in its error;
//! - otherwise the wait is `base` doubled per retry, at most `max`, less a random part of up to
//!   `jitter` of it (so that many clients failing together do not retry in step);
//! - no retry whose wait would reach the call's deadline, when it has one.

use std::time::{Duration, Instant};

use super::error::ProviderError;

/// The first wait of the server's and the proxy client's backoff.
pub const DEFAULT_BASE: Duration = Duration::from_millis(250);
/// The longest wait of the server's and the proxy client's backoff.
pub const DEFAULT_MAX: Duration = Duration::from_secs(10);
/// The longest wait a provider may ask the server or the direct client for; a longer hint
/// ends the retries.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// The random part taken off a backoff by default: up to half of it.
pub const DEFAULT_JITTER: f64 = 0.5;

/// When and how often to retry a failed upstream call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// How many retries follow the first attempt.
    pub max_retries: u32,
    /// The wait before the first retry; each later one doubles it.
    pub base: Duration,
    /// The longest backoff (raised to `base` when it is shorter, so the first wait is `base`).
    pub max: Duration,
    /// The longest `retry-after` hint honoured; a longer one ends the retries.
    pub max_retry_after: Duration,
    /// The share of a backoff, from 0 to 1, that may be taken off at random; 0 waits exactly
    /// the backoff. A `retry-after` wait is never shortened.
    pub jitter: f64,
}

impl RetryPolicy {
    /// `max_retries` retries with the default backoff: 250 ms doubled per retry up to 10 s,
    /// jittered by up to half; `retry-after` hints up to 30 s honoured.
    pub const fn new(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            base: DEFAULT_BASE,
            max: DEFAULT_MAX,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            jitter: DEFAULT_JITTER,
        }
    }

    /// The wait before retry number `attempt` (0-based) of a call that failed with `err`, or
    /// `None` to give up: `err` is not worth retrying, or [`RetryPolicy::delay`] says no.
    pub fn after_error(
        &self,
        err: &ProviderError,
        attempt: u32,
        deadline: Option<Instant>,
    ) -> Option<Duration> {
        if !err.is_retryable() {
            return None;
        }
        self.delay(attempt, err.retry_after(), deadline)
    }

    /// The wait before retry number `attempt` (0-based) of a call that failed in a way worth
    /// retrying, with the server's `retry_after` hint if it gave one; `None` to give up (see
    /// the module docs for the rule).
    pub fn delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        deadline: Option<Instant>,
    ) -> Option<Duration> {
        self.delay_at(
            attempt,
            retry_after,
            deadline,
            Instant::now(),
            rand::random::<f64>(),
        )
    }

    /// [`RetryPolicy::delay`] at `now`, with `unit` (from 0 to 1) as the random draw.
    fn delay_at(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        deadline: Option<Instant>,
        now: Instant,
        unit: f64,
    ) -> Option<Duration> {
        if attempt >= self.max_retries {
            return None;
        }
        let wait = match retry_after {
            Some(asked) if asked > self.max_retry_after => return None,
            Some(asked) => asked,
            None => self.backoff(attempt, unit),
        };
        match deadline {
            Some(deadline) if now.checked_add(wait).is_none_or(|at| at >= deadline) => None,
            _ => Some(wait),
        }
    }

    /// `base` doubled `attempt` times, at most `max`, less up to `jitter` of it.
    fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        let cap = self.max.max(self.base);
        let full = self.base.saturating_mul(1 << attempt.min(31)).min(cap);
        let share = |x: f64| if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
        let keep = 1.0 - share(self.jitter) * share(unit);
        Duration::try_from_secs_f64(full.as_secs_f64() * keep).map_or(full, |d| d.min(full))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEC: Duration = Duration::from_secs(1);

    fn exact(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::new(max_retries)
        }
    }

    #[test]
    fn the_backoff_doubles_from_base_up_to_max() {
        let p = RetryPolicy {
            base: SEC,
            max: 5 * SEC,
            ..exact(10)
        };
        let waits: Vec<_> = (0..5)
            .map(|a| p.delay_at(a, None, None, Instant::now(), 0.7))
            .collect();
        let expected = [1, 2, 4, 5, 5].map(|s| Some(s * SEC));
        assert_eq!(waits, expected);
        // A base longer than the cap is still the first wait.
        let p = RetryPolicy { max: SEC, ..p };
        assert_eq!(p.delay_at(0, None, None, Instant::now(), 0.0), Some(SEC));
    }

    #[test]
    fn jitter_takes_off_at_most_its_share() {
        let p = RetryPolicy {
            base: SEC,
            jitter: 0.5,
            ..exact(3)
        };
        let now = Instant::now();
        assert_eq!(p.delay_at(0, None, None, now, 0.0), Some(SEC));
        assert_eq!(p.delay_at(0, None, None, now, 1.0), Some(SEC / 2));
        assert_eq!(p.delay_at(1, None, None, now, 0.5), Some(SEC * 3 / 2));
    }

    #[test]
    fn retry_after_is_waited_exactly_up_to_its_limit() {
        let p = exact(2);
        let now = Instant::now();
        let asked = Duration::from_millis(1500);
        assert_eq!(p.delay_at(0, Some(asked), None, now, 1.0), Some(asked));
        assert_eq!(
            p.delay_at(1, Some(Duration::ZERO), None, now, 1.0),
            Some(Duration::ZERO)
        );
        let too_long = p.max_retry_after + Duration::from_millis(1);
        assert_eq!(p.delay_at(0, Some(too_long), None, now, 0.0), None);
        assert_eq!(
            p.delay_at(2, Some(asked), None, now, 0.0),
            None,
            "retries spent"
        );
    }

    #[test]
    fn no_retry_reaches_the_deadline() {
        let p = exact(5);
        let now = Instant::now();
        let deadline = now + 2 * SEC;
        assert_eq!(
            p.delay_at(0, Some(SEC), Some(deadline), now, 0.0),
            Some(SEC)
        );
        assert_eq!(p.delay_at(0, Some(2 * SEC), Some(deadline), now, 0.0), None);
        assert_eq!(p.delay_at(0, None, Some(now), now, 0.0), None);
    }

    #[test]
    fn only_retryable_errors_are_retried() {
        let p = exact(2);
        let auth = ProviderError::Auth {
            status: 401,
            message: String::new(),
        };
        assert_eq!(p.after_error(&auth, 0, None), None);
        let limited = ProviderError::RateLimited {
            retry_after: Some(SEC),
            message: String::new(),
        };
        assert_eq!(p.after_error(&limited, 0, None), Some(SEC));
        let down = ProviderError::Connect {
            detail: String::new(),
        };
        assert_eq!(p.after_error(&down, 0, None), Some(DEFAULT_BASE));
    }

    fn duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            (0u64..120_000).prop_map(Duration::from_millis),
            any::<u64>().prop_map(Duration::from_secs),
            Just(Duration::MAX),
        ]
    }

    proptest! {
        #[test]
        fn a_wait_never_panics_and_keeps_every_bound(
            max_retries in 0u32..20,
            base in duration(),
            max in duration(),
            max_retry_after in duration(),
            jitter in proptest::num::f64::ANY,
            unit in proptest::num::f64::ANY,
            attempt in prop_oneof![0u32..40, any::<u32>()],
            retry_after in proptest::option::of(duration()),
            left in proptest::option::of(duration()),
        ) {
            let p = RetryPolicy { max_retries, base, max, max_retry_after, jitter };
            let now = Instant::now();
            let deadline = left.and_then(|l| now.checked_add(l));
            let Some(wait) = p.delay_at(attempt, retry_after, deadline, now, unit) else {
                return Ok(());
            };
            prop_assert!(attempt < max_retries);
            match retry_after {
                Some(asked) => prop_assert!(wait == asked && asked <= max_retry_after),
                None => prop_assert!(wait <= max.max(base)),
            }
            if let Some(deadline) = deadline {
                prop_assert!(now + wait < deadline);
            }
        }

        #[test]
        fn a_retry_after_within_the_limit_is_honoured(
            asked in 0u64..=30_000,
            attempt in 0u32..3,
        ) {
            let asked = Duration::from_millis(asked);
            let p = RetryPolicy::new(3);
            prop_assert_eq!(p.delay(attempt, Some(asked), None), Some(asked));
        }
    }
}
