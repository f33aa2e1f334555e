//! Governance of the proxy's calls: how often and how much each client (token subject) may call
//! (rate, concurrency, input length, timeout, quotas), what each call used, and the metrics of it
//! all. One [`Governance`] lives as long as the server process; the limits it enforces are read
//! from the current [`State`](super::State) on every call, so a reload applies to the next
//! request while counters, usage and metrics carry on.
//!
//! - [`layer`]: the tower layer on the proxy's gRPC paths: auth, rate, concurrency, quota.
//! - [`limiter`]: in-memory GCRA rate windows and concurrency slots per subject.
//! - [`redis_backend`]: the same limits and the quota counters in Redis, shared by replicas;
//!   concurrency slots are short leases renewed while their calls run.
//! - [`usage`]: tokens and cost per subject and model in `usage.jsonl`; the quota totals.
//! - [`meter`]: the drop guard that charges each call once, however it ends.
//! - [`metrics`]: the Prometheus registry and the `/metrics`, `/healthz`, `/readyz` endpoint.
//! - [`fields`]: bounds on the fields a client names freely (model name, request id, schema).
//!
//! The input length and the fields are checked by the service (it needs the decoded message,
//! which a layer on the HTTP body does not have), through [`Governance::check_input`].

pub mod fields;
pub mod layer;
pub mod limiter;
pub mod meter;
pub mod metrics;
pub mod redis_backend;
pub mod usage;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use tonic::Status;
use tonic::metadata::MetadataValue;

use super::catalog::ModelDef;
use crate::config::generated::server::{ServerLimits, ServerLimitsBackend};
use crate::proto::ExecuteRequest;
use redis_backend::RedisLimiter;

/// The subject of every call when authentication is off: one shared bucket.
pub const ANONYMOUS: &str = "anonymous";
/// The usage log's file name in the server config directory.
pub const USAGE_FILE: &str = "usage.jsonl";
/// The retry hint of a concurrency refusal: a slot frees when some call ends, which cannot be
/// known in advance, so a short wait.
pub const CONCURRENCY_RETRY: Duration = Duration::from_millis(250);
/// gRPC metadata keys of a refusal.
pub const LIMIT_TYPE_HEADER: &str = "limit-type";
pub const RETRY_AFTER_HEADER: &str = "retry-after-ms";

/// Which limit refused a call (the `limit-type` metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitType {
    Rpm,
    Concurrency,
    Input,
    Quota,
}

impl LimitType {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitType::Rpm => "rpm",
            LimitType::Concurrency => "concurrency",
            LimitType::Input => "input",
            LimitType::Quota => "quota",
        }
    }
}

/// A call refused by a limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub limit: LimitType,
    /// When a retry can succeed; `None` when waiting does not help (input too long).
    pub retry_after: Option<Duration>,
    pub message: String,
}

impl Refusal {
    /// RESOURCE_EXHAUSTED with `limit-type` and, when known, `retry-after-ms` (rounded up).
    pub fn into_status(self) -> Status {
        let mut status = Status::resource_exhausted(self.message);
        let md = status.metadata_mut();
        md.insert(
            LIMIT_TYPE_HEADER,
            MetadataValue::from_static(self.limit.as_str()),
        );
        if let Some(after) = self.retry_after {
            let ms = after.as_nanos().div_ceil(1_000_000).max(1);
            if let Ok(v) = ms.to_string().parse() {
                md.insert(RETRY_AFTER_HEADER, v);
            }
        }
        status
    }
}

/// Why a request's input is refused before anything goes upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    /// A client-chosen field out of bounds.
    Field(fields::FieldError),
    /// The text sent upstream has `chars` characters; the subject's limit is `max`.
    TooLong { chars: u64, max: u64 },
}

impl InputError {
    /// The gRPC status: INVALID_ARGUMENT naming the field, or RESOURCE_EXHAUSTED with
    /// `limit-type: input`.
    pub fn into_status(self) -> Status {
        match self {
            InputError::Field(e) => e.into_status(),
            InputError::TooLong { chars, max } => Refusal {
                limit: LimitType::Input,
                retry_after: None,
                message: format!(
                    "the request has {chars} characters of system and user text and response \
                     schema; the limit is {max}"
                ),
            }
            .into_status(),
        }
    }
}

/// The limits in force for one subject: its `per_token` values over the global ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub rpm: Option<u32>,
    pub concurrent: Option<u32>,
    pub input_chars: Option<u64>,
    pub timeout: Option<Duration>,
    pub tokens_per_day: Option<u64>,
    pub tokens_per_month: Option<u64>,
    pub cost_usd_per_month: Option<f64>,
}

impl Limits {
    pub fn for_sub(limits: &ServerLimits, sub: &str) -> Limits {
        let g = &limits.global;
        let t = limits.per_token.get(sub);
        let pick = |own: Option<i64>, global: Option<i64>| own.or(global);
        let u32_of = |v: Option<i64>| v.map(|n| u32::try_from(n.max(1)).unwrap_or(u32::MAX));
        let u64_of = |v: Option<i64>| v.map(|n| n.max(1) as u64);
        Limits {
            rpm: u32_of(pick(
                t.and_then(|t| t.max_requests_per_minute),
                g.max_requests_per_minute,
            )),
            concurrent: u32_of(pick(
                t.and_then(|t| t.max_concurrent_requests),
                g.max_concurrent_requests,
            )),
            input_chars: u64_of(pick(t.and_then(|t| t.max_input_length), g.max_input_length)),
            timeout: u64_of(pick(
                t.and_then(|t| t.request_timeout_seconds),
                g.request_timeout_seconds,
            ))
            .map(Duration::from_secs),
            tokens_per_day: u64_of(pick(
                t.and_then(|t| t.max_tokens_per_day),
                g.max_tokens_per_day,
            )),
            tokens_per_month: u64_of(pick(
                t.and_then(|t| t.max_tokens_per_month),
                g.max_tokens_per_month,
            )),
            cost_usd_per_month: t
                .and_then(|t| t.max_cost_usd_per_month)
                .or(g.max_cost_usd_per_month),
        }
    }
}

/// The verified subject of a call, put into the request extensions by the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject(pub String);

/// The subject the layer found for this request ([`ANONYMOUS`] without one).
pub fn subject<T>(req: &tonic::Request<T>) -> String {
    req.extensions()
        .get::<Subject>()
        .map(|s| s.0.clone())
        .unwrap_or_else(|| ANONYMOUS.to_owned())
}

/// Counters, usage and metrics shared by every call of one server.
pub struct Governance {
    pub limiter: limiter::MemoryLimiter,
    pub usage: usage::UsageStore,
    pub metrics: metrics::Metrics,
    /// The response cache's in-memory store (used with the memory backend).
    pub cache: crate::server::cache::MemoryStore,
    /// The health of the deployments calls are routed over (kept across reloads).
    pub health: crate::server::routing::health::Health,
    ready: AtomicBool,
    /// The Redis counters of the current config, when its backend is redis.
    redis: Mutex<Option<Arc<RedisLimiter>>>,
    /// The Redis URL deployment health is shared through, when it is.
    health_url: Mutex<Option<String>>,
}

impl std::fmt::Debug for Governance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governance")
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl Governance {
    /// With the usage log at `usage_file` (read back now), or kept in memory only.
    pub fn new(usage_file: Option<PathBuf>) -> Governance {
        Governance {
            limiter: limiter::MemoryLimiter::default(),
            usage: usage::UsageStore::open(usage_file),
            metrics: metrics::Metrics::new(),
            cache: crate::server::cache::MemoryStore::default(),
            health: crate::server::routing::health::Health::default(),
            ready: AtomicBool::new(false),
            redis: Mutex::new(None),
            health_url: Mutex::new(None),
        }
    }

    /// Keep deployment health where `limits` say: in Redis, on the limit counters' connection,
    /// with the redis backend; in this process otherwise. Called at start and after each
    /// reload: a reload that switches the backend or the URL switches the store.
    pub fn sync_health(&self, limits: &ServerLimits) {
        let redis = match self.redis_for(limits) {
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => {
                tracing::warn!("deployment health stays in this process: {e}");
                None
            }
            None => None,
        };
        let mut url = self.health_url.lock().unwrap_or_else(|e| e.into_inner());
        if url.as_deref() == redis.as_ref().map(|r| r.url.as_str()) {
            return;
        }
        *url = redis.as_ref().map(|r| r.url.clone());
        self.health.share(redis.map(|r| {
            let store = crate::server::routing::shared::RedisHealth::new(
                r.connection(),
                self.metrics.health_store_failures(),
            );
            Arc::new(store) as Arc<dyn crate::server::routing::health::HealthStore>
        }));
    }

    /// The Redis counters for `limits` (`None` with the memory backend), made on first use and
    /// again when `redis_url` changes.
    pub fn redis_for(&self, limits: &ServerLimits) -> Option<Result<Arc<RedisLimiter>, String>> {
        let mut cached = self.redis.lock().unwrap_or_else(|e| e.into_inner());
        if limits.backend != ServerLimitsBackend::Redis {
            *cached = None;
            return None;
        }
        let Some(url) = limits.redis_url.as_deref() else {
            return Some(Err("no Redis URL is configured".to_owned()));
        };
        if let Some(r) = cached.as_ref().filter(|r| r.url == url) {
            return Some(Ok(r.clone()));
        }
        Some(RedisLimiter::new(url).map(|r| {
            let r = Arc::new(r);
            *cached = Some(r.clone());
            r
        }))
    }

    fn current_redis(&self) -> Option<Arc<RedisLimiter>> {
        self.redis.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the server is serving and not draining (`/readyz`).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Refuse a request with a field out of bounds ([`fields`]: INVALID_ARGUMENT naming it), or
    /// whose text sent upstream (system and user fragments and the response schema) together
    /// exceeds the subject's limit; the errors name the gRPC fields.
    pub fn check_input(
        &self,
        sub: &str,
        limits: &Limits,
        req: &ExecuteRequest,
    ) -> Result<(), Status> {
        self.input_error(sub, limits, req)
            .map_err(InputError::into_status)
    }

    /// The checks of [`Governance::check_input`], typed, so an API with other field names (the
    /// HTTP API) can name its own; an input over the limit is counted in the metrics.
    pub fn input_error(
        &self,
        sub: &str,
        limits: &Limits,
        req: &ExecuteRequest,
    ) -> Result<(), InputError> {
        fields::check_request(req).map_err(InputError::Field)?;
        let Some(max) = limits.input_chars else {
            return Ok(());
        };
        let chars = request_chars(req);
        if chars <= max {
            return Ok(());
        }
        self.metrics.refused(sub, LimitType::Input);
        Err(InputError::TooLong { chars, max })
    }

    /// Start tracking one gRPC call of `sub` on its way upstream.
    pub fn call(self: &Arc<Self>, sub: String) -> Call {
        self.call_via(sub, usage::Api::Grpc)
    }

    /// Start tracking one call of `sub`, which came in on `api`, on its way upstream.
    pub fn call_via(self: &Arc<Self>, sub: String, api: usage::Api) -> Call {
        Call {
            gov: self.clone(),
            sub,
            api,
            started: Instant::now(),
            first_chunk: false,
        }
    }
}

/// One call on its way upstream: records first-chunk and upstream latency, tokens, cost and
/// upstream errors.
#[derive(Clone)]
pub struct Call {
    gov: Arc<Governance>,
    sub: String,
    api: usage::Api,
    started: Instant,
    first_chunk: bool,
}

impl Call {
    /// A text chunk was forwarded; the first one is timed.
    pub fn chunk(&mut self, model: &ModelDef) {
        if !self.first_chunk {
            self.first_chunk = true;
            self.gov
                .metrics
                .first_chunk(model, self.started.elapsed().as_secs_f64());
        }
    }

    /// Charge `input` and `output` tokens of a call that `deployment` answered and that ended
    /// with `outcome` (`cache` says whether its answer came from the response cache): the quota
    /// totals and usage log, the Redis quota counters (in the background) and the metrics.
    /// [`meter::Meter`] calls this once per call.
    pub fn charge(
        &self,
        model: &ModelDef,
        deployment: Option<String>,
        input: u64,
        output: u64,
        outcome: usage::Outcome,
        cache: Option<usage::CacheUse>,
    ) {
        let cost = model.cost_usd(input, output);
        let record = usage::Record {
            ts: usage::now_unix(),
            sub: self.sub.clone(),
            model: model.usage_name(),
            input_tokens: input,
            output_tokens: output,
            cost_usd: cost,
            status: outcome,
            api: self.api,
            cache,
            deployment,
        };
        if let Some(redis) = self.gov.current_redis()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let shared = record.clone();
            let gov = self.gov.clone();
            rt.spawn(async move {
                let ok = redis.record(&shared).await;
                gov.metrics.redis_usage_write(ok);
            });
        }
        self.gov.usage.record(record);
        self.gov.metrics.finished(
            &self.sub,
            model,
            cache
                .is_none()
                .then(|| self.started.elapsed().as_secs_f64()),
            input,
            output,
            cost,
        );
        self.gov.metrics.usage_recorded(outcome, self.api);
    }

    /// The call failed upstream with an error of `kind` (a provider error code or `timeout`).
    pub fn failed(&self, model: &ModelDef, kind: &str) {
        self.gov
            .metrics
            .upstream_error(model, kind, self.started.elapsed().as_secs_f64());
    }
}

/// Characters of everything a request sends upstream: its system and user text and its
/// response schema.
pub fn request_chars(req: &ExecuteRequest) -> u64 {
    req.system_fragments
        .iter()
        .chain(&req.user_fragments)
        .map(String::as_str)
        .chain(req.response_model_schema.as_deref())
        .map(|f| f.chars().count() as u64)
        .sum()
}

/// `stream`, ended after `limit` with `on_timeout()` as its last item. `on_timeout` runs before
/// the inner stream (and with it the upstream call) is dropped, so it can mark how the call
/// ended; the drop comes before the item is yielded.
pub fn with_deadline<S, T, F>(
    stream: S,
    limit: Option<Duration>,
    on_timeout: F,
) -> impl Stream<Item = T> + Send + 'static
where
    S: Stream<Item = T> + Send + 'static,
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    async_stream::stream! {
        let mut inner = Some(Box::pin(stream));
        let sleep = async move {
            match limit {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending::<()>().await,
            }
        };
        let mut sleep = Box::pin(sleep);
        while let Some(s) = inner.as_mut() {
            let next = tokio::select! {
                item = s.next() => Some(item),
                _ = &mut sleep => None,
            };
            match next {
                Some(Some(item)) => yield item,
                Some(None) => inner = None,
                None => {
                    let last = on_timeout();
                    // Drop the upstream call before telling the client.
                    drop(inner.take());
                    yield last;
                    break;
                }
            }
        }
    }
}
