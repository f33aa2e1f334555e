//! Bounded waits on something a test can observe (a counter, a file, a socket, a line): the
//! condition is looked at again and again until it holds, and the test fails with what was last
//! seen once the limit passes. Never a fixed sleep, never an assertion on elapsed time.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// How long to rest between two looks at a condition.
pub const POLL: Duration = Duration::from_millis(20);

/// Look at `check` until it gives `Ok`; panic with `what` and its last `Err` (what it saw)
/// after `limit`.
pub async fn until<T, E: Display>(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(seen) if Instant::now() >= deadline => {
                panic!("{what}: not within {limit:?}; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// [`until`] for a plain condition: `true` when it holds.
pub async fn until_true(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    until(what, limit, async || {
        if check().await { Ok(()) } else { Err("false") }
    })
    .await;
}

/// [`until`] outside a runtime: the thread rests between looks.
pub fn until_blocking<T, E: Display>(
    what: &str,
    limit: Duration,
    check: impl FnMut() -> Result<T, E>,
) -> T {
    poll_blocking(limit, check)
        .unwrap_or_else(|seen| panic!("{what}: not within {limit:?}; last seen: {seen}"))
}

/// Look at `check` until it gives `Ok`, for at most `limit`; the last `Err` after that, for a
/// caller that has something to do before failing (kill a child, collect its output).
pub fn poll_blocking<T, E>(
    limit: Duration,
    mut check: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let deadline = Instant::now() + limit;
    loop {
        match check() {
            Ok(v) => return Ok(v),
            Err(seen) if Instant::now() >= deadline => return Err(seen),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}
