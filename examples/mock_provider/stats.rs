//! Request counters and a request log, served at `GET /mock/stats` and `GET /mock/requests`,
//! and the release that `POST /mock/release` gives the streams waiting at their `gate`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use tokio::sync::Notify;

/// How many recent requests `GET /mock/requests` keeps.
const LOG_CAPACITY: usize = 64;

#[derive(Default)]
pub struct Stats {
    requests: Mutex<BTreeMap<String, u64>>,
    log: Mutex<VecDeque<Value>>,
    streams_started: AtomicU64,
    streams_completed: AtomicU64,
    streams_cancelled: AtomicU64,
    /// Streams that reached their `gate` so far.
    streams_gated: AtomicU64,
    /// `POST /mock/release` calls so far (never reset: a stream waits for one after its request).
    releases: AtomicU64,
    released: Notify,
    /// Failures injected so far under `fail_times`, by `fail_id`.
    failures: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    /// Count a request to an API path and keep its headers and body for `/mock/requests`.
    pub fn record(&self, path: &str, headers: Value, body: Value) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry(path.to_string()).or_default() += 1;
        }
        if let Ok(mut log) = self.log.lock() {
            if log.len() == LOG_CAPACITY {
                log.pop_front();
            }
            log.push_back(json!({"path": path, "headers": headers, "body": body}));
        }
    }

    /// Whether a request limited to `times` injected failures under `id` still fails; counts
    /// the failure when it does.
    pub fn take_failure(&self, id: &str, times: u64) -> bool {
        let Ok(mut f) = self.failures.lock() else {
            return true;
        };
        let done = f.entry(id.to_string()).or_default();
        if *done >= times {
            return false;
        }
        *done += 1;
        true
    }

    pub fn stream_started(&self) {
        self.streams_started.fetch_add(1, Ordering::SeqCst);
    }

    /// The number of releases so far; a stream's gate opens at the first release after this.
    pub fn releases(&self) -> u64 {
        self.releases.load(Ordering::SeqCst)
    }

    /// Open the gate of every stream whose request came before this call.
    pub fn release(&self) -> u64 {
        let n = self.releases.fetch_add(1, Ordering::SeqCst) + 1;
        self.released.notify_waiters();
        n
    }

    /// Count a stream at its gate, and wait until a release later than `since`.
    pub async fn wait_release(&self, since: u64) {
        self.streams_gated.fetch_add(1, Ordering::SeqCst);
        loop {
            let notified = self.released.notified();
            tokio::pin!(notified);
            // Registered before the check, so a release between the two is not missed.
            notified.as_mut().enable();
            if self.releases() > since {
                return;
            }
            notified.await;
        }
    }

    pub fn snapshot(&self) -> Value {
        let requests = self.requests.lock().map(|r| r.clone()).unwrap_or_default();
        let total: u64 = requests.values().sum();
        json!({
            "requests": requests,
            "requests_total": total,
            "streams_started": self.streams_started.load(Ordering::SeqCst),
            "streams_completed": self.streams_completed.load(Ordering::SeqCst),
            "streams_cancelled": self.streams_cancelled.load(Ordering::SeqCst),
            "streams_gated": self.streams_gated.load(Ordering::SeqCst),
            "releases": self.releases(),
        })
    }

    pub fn requests(&self) -> Value {
        let log = self.log.lock().map(|l| l.clone()).unwrap_or_default();
        Value::Array(log.into_iter().collect())
    }

    pub fn reset(&self) {
        if let Ok(mut r) = self.requests.lock() {
            r.clear();
        }
        if let Ok(mut l) = self.log.lock() {
            l.clear();
        }
        if let Ok(mut f) = self.failures.lock() {
            f.clear();
        }
        for c in [
            &self.streams_started,
            &self.streams_completed,
            &self.streams_cancelled,
            &self.streams_gated,
        ] {
            c.store(0, Ordering::SeqCst);
        }
    }
}

/// Lives inside a streaming body. Dropped after the last frame: a completed stream; dropped
/// earlier (the client went away and the server dropped the body): a cancelled one.
pub struct StreamGuard {
    stats: std::sync::Arc<Stats>,
    finished: bool,
}

impl StreamGuard {
    pub fn new(stats: std::sync::Arc<Stats>) -> Self {
        stats.stream_started();
        StreamGuard {
            stats,
            finished: false,
        }
    }
}

impl StreamGuard {
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The body has sent everything it meant to send.
    pub fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let counter = if self.finished {
            &self.stats.streams_completed
        } else {
            &self.stats.streams_cancelled
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}
