//! Tokens and cost per token subject and model. Each finished call is one JSON line appended to
//! `usage.jsonl` in the server config directory, so usage survives restarts (a torn last line,
//! from a crash mid-write, is skipped on reading). The running day and month totals per subject
//! are kept in memory for the quotas.
//!
//! A call only appends its line to a buffer in memory; a thread of the log's own writes the
//! buffer out every [`FLUSH_EVERY`], and [`UsageStore::flush`] (called when the server stops)
//! writes what is left. So a slow disk never stalls the runtime's workers, at the price of the
//! last fraction of a second of records if the process is killed.
//!
//! The log says who called, how much and when, so it is created 0600, and an existing one that
//! group or others can read is narrowed to 0600 when it is opened.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{LimitType, Limits, Refusal};

const DAY_SECS: i64 = 86_400;
/// How often the writer thread appends the buffered records to the log.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The answer was delivered whole (lines written before outcomes existed read as this).
    #[default]
    Completed,
    /// The client went away before the end (it dropped the stream or the call).
    Cancelled,
    /// The provider failed after the answer had started.
    Error,
    /// The request timeout stopped the call.
    Timeout,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Cancelled => "cancelled",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
        }
    }
}

/// The API a call came in on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// The `VibectlLLMProxy` gRPC service (lines written before this field existed read as this).
    #[default]
    Grpc,
    /// The OpenAI-compatible HTTP API (`/v1/chat/completions`).
    Openai,
    /// The Anthropic-compatible HTTP API (`/v1/messages`).
    Anthropic,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Grpc => "grpc",
            Api::Openai => "openai",
            Api::Anthropic => "anthropic",
        }
    }
}

/// How a call used the response cache, when it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheUse {
    /// The answer came from the cache: no provider call, no provider tokens.
    Hit,
}

/// One call's usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Unix seconds when the call finished.
    pub ts: i64,
    pub sub: String,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// How the call ended.
    #[serde(default)]
    pub status: Outcome,
    /// The API the call came in on.
    #[serde(default)]
    pub api: Api,
    /// `hit` when the answer came from the response cache; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheUse>,
    /// The deployment that answered (`MODEL/DEPLOYMENT`, or the model id for a model without
    /// deployments); absent in records written before routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
}

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// `(year, month)` of a unix time, UTC.
pub fn month_of(ts: i64) -> (i32, u8) {
    let dt =
        time::OffsetDateTime::from_unix_timestamp(ts).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    (dt.year(), dt.month() as u8)
}

/// The unix time the month after `ts`'s begins, UTC.
pub fn next_month_start(ts: i64) -> i64 {
    let (y, m) = month_of(ts);
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    time::Month::try_from(m)
        .ok()
        .and_then(|m| time::Date::from_calendar_date(y, m, 1).ok())
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .unwrap_or(ts + 31 * DAY_SECS)
}

#[derive(Debug, Default, Clone)]
struct Totals {
    day: i64,
    day_tokens: u64,
    month: (i32, u8),
    month_tokens: u64,
    month_cost: f64,
}

impl Totals {
    fn add(&mut self, r: &Record) {
        let tokens = r.input_tokens + r.output_tokens;
        let day = r.ts.div_euclid(DAY_SECS);
        if day > self.day {
            self.day = day;
            self.day_tokens = 0;
        }
        if day == self.day {
            self.day_tokens += tokens;
        }
        let month = month_of(r.ts);
        if month > self.month {
            self.month = month;
            self.month_tokens = 0;
            self.month_cost = 0.0;
        }
        if month == self.month {
            self.month_tokens += tokens;
            self.month_cost += r.cost_usd.unwrap_or(0.0);
        }
    }
}

/// The log file and the records not yet written to it.
#[derive(Debug)]
struct Log {
    file: Mutex<File>,
    pending: Mutex<Vec<u8>>,
    stop: AtomicBool,
}

impl Log {
    /// Write the buffered records. The file lock is taken first, so two flushes keep the
    /// records in order.
    fn flush(&self) {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let lines = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if lines.is_empty() {
            return;
        }
        if let Err(e) = file.write_all(&lines) {
            tracing::warn!("cannot append to the usage log: {e}");
        }
    }
}

/// The usage log and the running totals.
#[derive(Debug)]
pub struct UsageStore {
    log: Option<Arc<Log>>,
    writer: Option<JoinHandle<()>>,
    totals: Mutex<HashMap<String, Totals>>,
}

impl UsageStore {
    /// Read the log at `path` (when given) for the totals, and append to it from now on.
    pub fn open(path: Option<PathBuf>) -> UsageStore {
        let mut totals: HashMap<String, Totals> = HashMap::new();
        let mut file = None;
        if let Some(path) = path {
            match read(&path) {
                Ok(records) => {
                    for r in &records {
                        totals.entry(r.sub.clone()).or_default().add(r);
                    }
                }
                Err(e) => tracing::warn!("cannot read the usage log {}: {e}", path.display()),
            }
            match open_private(&path) {
                Ok(mut f) => {
                    // Start on a fresh line after a torn one.
                    if !ends_with_newline(&path) {
                        let _ = f.write_all(b"\n");
                    }
                    file = Some(f);
                }
                Err(e) => tracing::warn!(
                    "cannot open the usage log {}; usage is kept in memory only: {e}",
                    path.display()
                ),
            }
        }
        let log = file.map(|f| {
            Arc::new(Log {
                file: Mutex::new(f),
                pending: Mutex::new(Vec::new()),
                stop: AtomicBool::new(false),
            })
        });
        let writer = log.clone().and_then(|log| {
            std::thread::Builder::new()
                .name("usage-log".into())
                .spawn(move || {
                    while !log.stop.load(Ordering::Acquire) {
                        std::thread::park_timeout(FLUSH_EVERY);
                        log.flush();
                    }
                })
                .map_err(|e| tracing::warn!("cannot start the usage log writer: {e}"))
                .ok()
        });
        UsageStore {
            log,
            writer,
            totals: Mutex::new(totals),
        }
    }

    /// Count a call's usage and queue its line for the log.
    pub fn record(&self, r: Record) {
        if let Some(log) = &self.log {
            let mut pending = log.pending.lock().unwrap_or_else(|e| e.into_inner());
            if serde_json::to_writer(&mut *pending, &r).is_ok() {
                pending.push(b'\n');
            }
            drop(pending);
            if self.writer.is_none() {
                log.flush();
            }
        }
        self.totals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(r.sub.clone())
            .or_default()
            .add(&r);
    }

    /// Write every queued record to the log now.
    pub fn flush(&self) {
        if let Some(log) = &self.log {
            log.flush();
        }
    }

    /// Refuse `sub` when a quota of `limits` is used up at `now`; the retry hint is the start
    /// of the next UTC day or month.
    pub fn check(&self, sub: &str, limits: &Limits, now: i64) -> Result<(), Refusal> {
        if limits.tokens_per_day.is_none()
            && limits.tokens_per_month.is_none()
            && limits.cost_usd_per_month.is_none()
        {
            return Ok(());
        }
        let totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        let Some(t) = totals.get(sub) else {
            return Ok(());
        };
        let day = now.div_euclid(DAY_SECS);
        let month = month_of(now);
        let refuse = |what: String, until: i64| Refusal {
            limit: LimitType::Quota,
            retry_after: Some(Duration::from_secs((until - now).max(1) as u64)),
            message: format!("{sub} has used its quota of {what}"),
        };
        if let Some(max) = limits.tokens_per_day
            && t.day == day
            && t.day_tokens >= max
        {
            return Err(refuse(
                format!("{max} tokens per day"),
                (day + 1) * DAY_SECS,
            ));
        }
        if t.month == month {
            if let Some(max) = limits.tokens_per_month
                && t.month_tokens >= max
            {
                return Err(refuse(
                    format!("{max} tokens per month"),
                    next_month_start(now),
                ));
            }
            if let Some(max) = limits.cost_usd_per_month
                && t.month_cost >= max
            {
                return Err(refuse(format!("${max} per month"), next_month_start(now)));
            }
        }
        Ok(())
    }
}

impl Drop for UsageStore {
    fn drop(&mut self) {
        if let (Some(log), Some(writer)) = (&self.log, self.writer.take()) {
            log.stop.store(true, Ordering::Release);
            writer.thread().unpark();
            let _ = writer.join();
        }
        self.flush();
    }
}

/// The mode of the usage log: owner read and write only.
#[cfg(unix)]
const LOG_MODE: u32 = 0o600;

/// Open `path` for appending, created [`LOG_MODE`]; an existing file open to group or others
/// is narrowed to it.
fn open_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(LOG_MODE);
        let file = options.open(path)?;
        let mode = file.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                "the usage log {} was readable by others (mode {:o}); narrowing it to {LOG_MODE:o}",
                path.display(),
                mode & 0o777
            );
            file.set_permissions(std::fs::Permissions::from_mode(LOG_MODE))?;
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}

/// Whether the file is empty or ends with a newline.
fn ends_with_newline(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = File::open(path) else {
        return true;
    };
    let mut last = [b'\n'];
    if f.seek(SeekFrom::End(-1)).is_ok() {
        let _ = f.read_exact(&mut last);
    }
    last[0] == b'\n'
}

/// Every record of a usage log, oldest first; lines that do not parse are skipped.
pub fn read(path: &Path) -> std::io::Result<Vec<Record>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        match serde_json::from_str::<Record>(&line) {
            Ok(r) => out.push(r),
            Err(_) if line.trim().is_empty() => {}
            Err(e) => tracing::debug!("skipping a usage line that does not parse: {e}"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ts: i64, tokens: u64) -> Record {
        Record {
            ts,
            sub: "a".into(),
            model: "m".into(),
            input_tokens: tokens,
            output_tokens: 0,
            cost_usd: Some(0.5),
            status: Outcome::Completed,
            api: Api::Grpc,
            cache: None,
            deployment: None,
        }
    }

    #[test]
    fn a_line_written_before_outcomes_reads_as_completed() {
        let old = r#"{"ts":1,"sub":"a","model":"m","input_tokens":2,"output_tokens":3}"#;
        let r: Record = serde_json::from_str(old).expect("parses");
        assert_eq!(r.status, Outcome::Completed);
        assert_eq!(r.api, Api::Grpc);
        let cancelled = Record {
            status: Outcome::Cancelled,
            api: Api::Openai,
            ..r
        };
        let line = serde_json::to_string(&cancelled).expect("serializes");
        assert!(line.contains(r#""status":"cancelled""#), "{line}");
        assert!(line.contains(r#""api":"openai""#), "{line}");
    }

    #[test]
    fn quotas_refuse_until_the_period_ends_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage.jsonl");
        let store = UsageStore::open(Some(path.clone()));
        // 2026-11-25T12:00:00Z
        let now = 1_795_608_000;
        store.record(rec(now, 60));
        store.record(rec(now, 60));
        let day = Limits {
            tokens_per_day: Some(100),
            ..Limits::default()
        };
        let r = store.check("a", &day, now).expect_err("120 of 100 tokens");
        assert_eq!(r.limit, LimitType::Quota);
        assert_eq!(r.retry_after, Some(Duration::from_secs(12 * 3600)));
        assert!(store.check("b", &day, now).is_ok());
        assert!(store.check("a", &day, now + DAY_SECS).is_ok(), "a new day");
        drop(store);
        // A torn last line is skipped.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"ts\":1795608000,\"sub\":\"a\"").unwrap();
        let store = UsageStore::open(Some(path.clone()));
        store.record(rec(now - 40 * DAY_SECS, 5));
        let cost = Limits {
            cost_usd_per_month: Some(1.0),
            ..Limits::default()
        };
        let r = store.check("a", &cost, now).expect_err("$1 of $1 used");
        // 2026-12-01T00:00:00Z
        assert_eq!(
            r.retry_after,
            Some(Duration::from_secs(1_796_083_200 - now as u64))
        );
        store.flush();
        assert_eq!(read(&path).unwrap().len(), 3, "the torn line is skipped");
    }
}
