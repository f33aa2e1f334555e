//! The load generator's two ways of sending calls, closed loop and open (fixed-rate) loop, and
//! the histograms they fill.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::{Semaphore, mpsc};

use super::target::Target;
use super::{Args, DRAIN_GRACE, MAX_TRACKED_US, Rpc};

/// Latencies of the successful calls, and the failures.
pub struct Stats {
    pub hist: Histogram<u64>,
    /// Of the successful streamed calls: the time to the first answer text.
    pub first: Histogram<u64>,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            hist: Histogram::new_with_bounds(1, MAX_TRACKED_US, 3).expect("valid bounds"),
            first: Histogram::new_with_bounds(1, MAX_TRACKED_US, 3).expect("valid bounds"),
            errors: 0,
            first_error: None,
        }
    }

    /// One call that started at `start` (its due time in the open loop) and ended at `end`.
    fn record(&mut self, start: Instant, end: Instant, result: Result<Option<Instant>, String>) {
        let us = |d: Duration| d.as_micros().max(1) as u64;
        match result {
            Ok(first) => {
                self.hist
                    .saturating_record(us(end.saturating_duration_since(start)));
                if let Some(at) = first {
                    self.first
                        .saturating_record(us(at.saturating_duration_since(start)));
                }
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    fn merge(&mut self, other: Stats) {
        self.hist.add(&other.hist).expect("same bounds");
        self.first.add(&other.first).expect("same bounds");
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Closed loop: `workers` tasks, each with one call in flight, until `limit` calls or `until`.
pub async fn closed_loop(
    target: Arc<Target>,
    rpc: Rpc,
    workers: usize,
    limit: u64,
    until: Instant,
    timeout: Duration,
) -> Stats {
    let issued = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..workers.max(1))
        .map(|w| {
            let (target, issued) = (target.clone(), issued.clone());
            tokio::spawn(async move {
                let mut stats = Stats::new();
                loop {
                    let seq = issued.fetch_add(1, Ordering::Relaxed);
                    if seq >= limit || Instant::now() >= until {
                        return stats;
                    }
                    let t0 = Instant::now();
                    let r = tokio::time::timeout(timeout, target.call(rpc, w, seq))
                        .await
                        .unwrap_or_else(|_| Err("timed out".into()));
                    stats.record(t0, Instant::now(), r);
                }
            })
        })
        .collect();
    let mut total = Stats::new();
    for t in tasks {
        total.merge(t.await.expect("a worker panicked"));
    }
    total
}

/// Open loop: call `seq` is due at `start + seq / rate`; its latency counts from then.
/// Returns the stats and how many due calls were never sent (the run ended first).
pub async fn open_loop(
    target: Arc<Target>,
    args: &Args,
    rate: f64,
    until: Instant,
    timeout: Duration,
) -> (Stats, u64) {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    let limit = args.requests;
    let start = Instant::now();
    // A thread paces the schedule: std sleeps are finer than tokio's 1 ms timer wheel.
    let pacer = std::thread::spawn(move || {
        let mut due: u64 = 0;
        for seq in 0..limit {
            let at = start + interval.mul_f64(seq as f64);
            if at >= until {
                break;
            }
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            if tx.send((seq, at)).is_err() {
                break;
            }
            due += 1;
        }
        due
    });
    let stats = Arc::new(Mutex::new(Stats::new()));
    let slots = Arc::new(Semaphore::new(args.max_in_flight.max(1)));
    let mut sent = 0u64;
    while let Some((seq, at)) = rx.recv().await {
        if Instant::now() >= until {
            break;
        }
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let (target, stats) = (target.clone(), stats.clone());
        let rpc = args.rpc;
        tokio::spawn(async move {
            let r = tokio::time::timeout(timeout, target.call(rpc, seq as usize, seq))
                .await
                .unwrap_or_else(|_| Err("timed out".into()));
            let end = Instant::now();
            stats.lock().expect("stats lock").record(at, end, r);
            drop(permit);
        });
        sent += 1;
    }
    drop(rx);
    let due = tokio::task::spawn_blocking(move || pacer.join().unwrap_or(0))
        .await
        .unwrap_or(0);
    let all = u32::try_from(args.max_in_flight.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN_GRACE, slots.acquire_many(all)).await;
    let stats = std::mem::replace(&mut *stats.lock().expect("stats lock"), Stats::new());
    (stats, due.saturating_sub(sent))
}
