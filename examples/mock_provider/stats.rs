//! Request counters and a request log, served at `GET /mock/stats` and `GET /mock/requests`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

/// How many recent requests `GET /mock/requests` keeps.
const LOG_CAPACITY: usize = 64;

#[derive(Default)]
pub struct Stats {
    requests: Mutex<BTreeMap<String, u64>>,
    log: Mutex<VecDeque<Value>>,
    streams_started: AtomicU64,
    streams_completed: AtomicU64,
    streams_cancelled: AtomicU64,
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

    pub fn snapshot(&self) -> Value {
        let requests = self.requests.lock().map(|r| r.clone()).unwrap_or_default();
        let total: u64 = requests.values().sum();
        json!({
            "requests": requests,
            "requests_total": total,
            "streams_started": self.streams_started.load(Ordering::SeqCst),
            "streams_completed": self.streams_completed.load(Ordering::SeqCst),
            "streams_cancelled": self.streams_cancelled.load(Ordering::SeqCst),
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
