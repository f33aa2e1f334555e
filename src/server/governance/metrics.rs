//! The Prometheus metrics of one server (a registry per [`Governance`], no globals, so tests can
//! run several servers) and the plain-HTTP endpoint that serves them: `/metrics` (OpenMetrics
//! text), `/healthz` (the process is up) and `/readyz` (it is serving and not draining).
//!
//! The first three names are the ones vibectl 0.11.6 documents: `vibectl_requests_total{sub}`,
//! `vibectl_rate_limited_total{sub,limit_type}`, `vibectl_concurrent_in_flight{sub}`.
//!
//! No label takes a value a client chose: a `model` label is a configured model id, or
//! [`OTHER`] for a model the client named through an open route; and each family keyed by
//! subject, model or provider holds at most [`MAX_LABEL_SETS`] label sets, those that come
//! after counted under [`OTHER`] (the fixed labels, like `direction`, kept).

use std::collections::HashSet;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::usage::{Api, Outcome};
use super::{Governance, LimitType};
use crate::server::catalog::ModelDef;

/// The content type of OpenMetrics text.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Most label sets a family keyed by subject, model or provider holds before it counts new
/// ones under [`OTHER`].
pub const MAX_LABEL_SETS: usize = 1000;
/// The label value of a model the catalog does not configure, and of label sets past the cap.
pub const OTHER: &str = "other";

/// A label set whose free values (subject, model, provider) can be folded into [`OTHER`].
trait Overflow {
    fn overflow(self) -> Self;
}

/// A family that holds at most [`MAX_LABEL_SETS`] label sets (plus their [`OTHER`] forms).
struct Capped<L, M, C = fn() -> M> {
    family: Family<L, M, C>,
    seen: Mutex<HashSet<L>>,
}

impl<L, M, C> Capped<L, M, C>
where
    L: Clone + Hash + Eq + Overflow + EncodeLabelSet + std::fmt::Debug,
    C: MetricConstructor<M>,
{
    fn new(family: Family<L, M, C>) -> Self {
        Capped {
            family,
            seen: Mutex::new(HashSet::new()),
        }
    }

    /// `labels`, or their [`OTHER`] form once the family is full.
    fn admit(&self, labels: L) -> L {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(&labels) {
            return labels;
        }
        let labels = if seen.len() < MAX_LABEL_SETS {
            labels
        } else {
            labels.overflow()
        };
        seen.insert(labels.clone());
        labels
    }

    fn with(&self, labels: L, f: impl FnOnce(&M)) {
        let labels = self.admit(labels);
        f(&self.family.get_or_create(&labels));
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubLabels {
    sub: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    sub: String,
    limit_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    provider: String,
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UsageLabels {
    sub: String,
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    sub: String,
    model: String,
    direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    provider: String,
    model: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabels {
    mode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

/// The API a call came in on and how it ended: three APIs by four outcomes, a bounded set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    api: String,
    status: String,
}

/// A model and how a lookup in the response cache went (hit, miss or bypass).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    model: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

/// A deployment (`MODEL/DEPLOYMENT` from the config) and the model it serves.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeploymentLabels {
    model: String,
    deployment: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeploymentStateLabels {
    model: String,
    deployment: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeploymentRestLabels {
    model: String,
    deployment: String,
}

/// A call to `model` answered by its fallback `to`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FallbackLabels {
    model: String,
    to: String,
}

impl Overflow for DeploymentLabels {
    fn overflow(self) -> Self {
        DeploymentLabels {
            model: OTHER.into(),
            deployment: OTHER.into(),
            ..self
        }
    }
}

impl Overflow for DeploymentStateLabels {
    fn overflow(self) -> Self {
        DeploymentStateLabels {
            model: OTHER.into(),
            deployment: OTHER.into(),
            ..self
        }
    }
}

impl Overflow for DeploymentRestLabels {
    fn overflow(self) -> Self {
        DeploymentRestLabels {
            model: OTHER.into(),
            deployment: OTHER.into(),
        }
    }
}

impl Overflow for FallbackLabels {
    fn overflow(self) -> Self {
        FallbackLabels {
            model: OTHER.into(),
            to: OTHER.into(),
        }
    }
}

impl Overflow for SubLabels {
    fn overflow(self) -> Self {
        SubLabels { sub: OTHER.into() }
    }
}

impl Overflow for LimitLabels {
    fn overflow(self) -> Self {
        LimitLabels {
            sub: OTHER.into(),
            ..self
        }
    }
}

impl Overflow for ModelLabels {
    fn overflow(self) -> Self {
        ModelLabels {
            provider: OTHER.into(),
            model: OTHER.into(),
        }
    }
}

impl Overflow for UsageLabels {
    fn overflow(self) -> Self {
        UsageLabels {
            sub: OTHER.into(),
            model: OTHER.into(),
        }
    }
}

impl Overflow for TokenLabels {
    fn overflow(self) -> Self {
        TokenLabels {
            sub: OTHER.into(),
            model: OTHER.into(),
            ..self
        }
    }
}

impl Overflow for CacheLabels {
    fn overflow(self) -> Self {
        CacheLabels {
            model: OTHER.into(),
            ..self
        }
    }
}

impl Overflow for ErrorLabels {
    fn overflow(self) -> Self {
        ErrorLabels {
            provider: OTHER.into(),
            model: OTHER.into(),
            ..self
        }
    }
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency buckets from 5 ms to about 80 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

pub struct Metrics {
    registry: Registry,
    requests: Capped<SubLabels, Counter>,
    rate_limited: Capped<LimitLabels, Counter>,
    in_flight: Capped<SubLabels, Gauge>,
    request_duration: Histograms<MethodLabels>,
    upstream_duration: Capped<ModelLabels, Histogram>,
    first_chunk: Capped<ModelLabels, Histogram>,
    tokens: Capped<TokenLabels, Counter>,
    cost: Capped<UsageLabels, Counter<f64, AtomicU64>>,
    upstream_errors: Capped<ErrorLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    redis_failures: Family<ModeLabels, Counter>,
    usage_records: Family<StatusLabels, Counter>,
    usage_records_by_api: Family<ApiLabels, Counter>,
    redis_usage_writes: Family<ResultLabels, Counter>,
    cache_lookups: Capped<CacheLabels, Counter>,
    deployment_calls: Capped<DeploymentLabels, Counter>,
    deployment_state: Capped<DeploymentStateLabels, Gauge>,
    deployment_rest: Capped<DeploymentRestLabels, Gauge<f64, AtomicU64>>,
    fallbacks: Capped<FallbackLabels, Counter>,
    health_store_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            requests: Capped::new(Family::new_with_constructor(Counter::default)),
            rate_limited: Capped::new(Family::new_with_constructor(Counter::default)),
            in_flight: Capped::new(Family::new_with_constructor(Gauge::default)),
            request_duration: Family::new_with_constructor(latency),
            upstream_duration: Capped::new(Family::new_with_constructor(latency)),
            first_chunk: Capped::new(Family::new_with_constructor(latency)),
            tokens: Capped::new(Family::new_with_constructor(Counter::default)),
            cost: Capped::new(Family::new_with_constructor(Counter::default)),
            upstream_errors: Capped::new(Family::new_with_constructor(Counter::default)),
            reloads: Family::default(),
            redis_failures: Family::default(),
            usage_records: Family::default(),
            usage_records_by_api: Family::default(),
            redis_usage_writes: Family::default(),
            cache_lookups: Capped::new(Family::new_with_constructor(Counter::default)),
            deployment_calls: Capped::new(Family::new_with_constructor(Counter::default)),
            deployment_state: Capped::new(Family::new_with_constructor(Gauge::default)),
            deployment_rest: Capped::new(Family::new_with_constructor(Gauge::default)),
            fallbacks: Capped::new(Family::new_with_constructor(Counter::default)),
            health_store_failures: Counter::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "vibectl_requests",
            "Calls that count against the limits (Execute, StreamExecute, and the HTTP API's chat calls), by token subject",
            m.requests.family.clone(),
        );
        r.register(
            "vibectl_rate_limited",
            "Calls refused by a limit, by subject and limit type",
            m.rate_limited.family.clone(),
        );
        r.register(
            "vibectl_concurrent_in_flight",
            "Calls in flight, by subject",
            m.in_flight.family.clone(),
        );
        r.register(
            "vibectl_request_duration_seconds",
            "Time from a call's arrival to the end of its response",
            m.request_duration.clone(),
        );
        r.register(
            "vibectl_upstream_duration_seconds",
            "Time of the provider call, retries included",
            m.upstream_duration.family.clone(),
        );
        r.register(
            "vibectl_time_to_first_chunk_seconds",
            "Time from the provider call to the first streamed text",
            m.first_chunk.family.clone(),
        );
        r.register(
            "vibectl_tokens",
            "Tokens used, by subject, model and direction (input or output)",
            m.tokens.family.clone(),
        );
        r.register(
            "vibectl_cost_usd",
            "Cost in US dollars of the tokens used, by subject and model",
            m.cost.family.clone(),
        );
        r.register(
            "vibectl_upstream_errors",
            "Failed provider calls, by provider, model and error kind",
            m.upstream_errors.family.clone(),
        );
        r.register(
            "vibectl_config_reloads",
            "Config reloads, by result (ok or refused)",
            m.reloads.clone(),
        );
        r.register(
            "vibectl_redis_failures",
            "Calls for which Redis could not be reached, by failure mode (open lets them through)",
            m.redis_failures.clone(),
        );
        r.register(
            "vibectl_usage_records",
            "Calls charged to their subject's usage, by how they ended \
             (completed, cancelled, error or timeout)",
            m.usage_records.clone(),
        );
        r.register(
            "vibectl_usage_records_by_api",
            "Calls charged to their subject's usage, by the API they came in on \
             (grpc, openai or anthropic) and how they ended",
            m.usage_records_by_api.clone(),
        );
        r.register(
            "vibectl_redis_usage_writes",
            "Usage records added to the Redis quota counters, by result (ok or failed)",
            m.redis_usage_writes.clone(),
        );
        r.register(
            "vibectl_cache_lookups",
            "Calls to a model with the response cache on, by model and result: hit (answered \
             from the cache), miss (sent to the provider) or bypass (the caller asked for no-cache)",
            m.cache_lookups.family.clone(),
        );
        r.register(
            "vibectl_deployment_calls",
            "Attempts at a deployment, by model, deployment (MODEL/DEPLOYMENT, or the model id \
             for a model without deployments) and outcome (answered, rate_limited, failed or error)",
            m.deployment_calls.family.clone(),
        );
        r.register(
            "vibectl_deployment_state",
            "1 for the state a deployment is in (healthy, cooling, out or probe), 0 for the others",
            m.deployment_state.family.clone(),
        );
        r.register(
            "vibectl_deployment_rest_seconds",
            "How long a cooling or out deployment rests still, in seconds",
            m.deployment_rest.family.clone(),
        );
        r.register(
            "vibectl_fallbacks",
            "Calls to a model answered by one of its fallback models, by model and fallback",
            m.fallbacks.family.clone(),
        );
        r.register(
            "vibectl_health_store_failures",
            "Reads and writes of deployment health that could not reach Redis (the deployment \
             counted as healthy)",
            m.health_store_failures.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The registry as OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!("cannot encode the metrics: {e}");
        }
        out
    }

    pub fn request(&self, sub: &str) {
        self.requests.with(
            SubLabels {
                sub: sub.to_owned(),
            },
            |c| {
                c.inc();
            },
        );
    }

    pub fn refused(&self, sub: &str, limit: LimitType) {
        self.rate_limited.with(
            LimitLabels {
                sub: sub.to_owned(),
                limit_type: limit.as_str().to_owned(),
            },
            |c| {
                c.inc();
            },
        );
    }

    pub fn in_flight(&self, sub: &str, delta: i64) {
        self.in_flight.with(
            SubLabels {
                sub: sub.to_owned(),
            },
            |g| {
                g.inc_by(delta);
            },
        );
    }

    pub fn request_done(&self, method: &str, seconds: f64) {
        self.request_duration
            .get_or_create(&MethodLabels {
                method: method.to_owned(),
            })
            .observe(seconds);
    }

    /// A model's `model` label: its id when the catalog configures it, else [`OTHER`].
    fn model_label(model: &ModelDef) -> String {
        if model.configured {
            model.id.clone()
        } else {
            OTHER.to_owned()
        }
    }

    fn model_labels(model: &ModelDef) -> ModelLabels {
        ModelLabels {
            provider: model.provider.clone(),
            model: Self::model_label(model),
        }
    }

    pub fn first_chunk(&self, model: &ModelDef, seconds: f64) {
        self.first_chunk
            .with(Self::model_labels(model), |h| h.observe(seconds));
    }

    /// A call charged its tokens; `upstream_seconds` is how long its provider call took (`None`
    /// for an answer from the cache, which made none).
    pub fn finished(
        &self,
        sub: &str,
        model: &ModelDef,
        upstream_seconds: Option<f64>,
        input: u64,
        output: u64,
        cost: Option<f64>,
    ) {
        if let Some(seconds) = upstream_seconds {
            self.upstream_duration
                .with(Self::model_labels(model), |h| h.observe(seconds));
        }
        for (direction, n) in [("input", input), ("output", output)] {
            self.tokens.with(
                TokenLabels {
                    sub: sub.to_owned(),
                    model: Self::model_label(model),
                    direction: direction.to_owned(),
                },
                |c| {
                    c.inc_by(n);
                },
            );
        }
        if let Some(c) = cost {
            self.cost.with(
                UsageLabels {
                    sub: sub.to_owned(),
                    model: Self::model_label(model),
                },
                |counter| {
                    counter.inc_by(c);
                },
            );
        }
    }

    pub fn upstream_error(&self, model: &ModelDef, kind: &str, seconds: f64) {
        self.upstream_duration
            .with(Self::model_labels(model), |h| h.observe(seconds));
        self.upstream_errors.with(
            ErrorLabels {
                provider: model.provider.clone(),
                model: Self::model_label(model),
                kind: kind.to_owned(),
            },
            |c| {
                c.inc();
            },
        );
    }

    pub fn redis_failure(&self, open: bool) {
        self.redis_failures
            .get_or_create(&ModeLabels {
                mode: if open { "open" } else { "closed" }.to_owned(),
            })
            .inc();
    }

    pub fn usage_recorded(&self, outcome: Outcome, api: Api) {
        self.usage_records
            .get_or_create(&StatusLabels {
                status: outcome.as_str().to_owned(),
            })
            .inc();
        self.usage_records_by_api
            .get_or_create(&ApiLabels {
                api: api.as_str().to_owned(),
                status: outcome.as_str().to_owned(),
            })
            .inc();
    }

    /// A call to `model` looked in the response cache with `result` (hit, miss or bypass).
    pub fn cache_lookup(&self, model: &ModelDef, result: &str) {
        self.cache_lookups.with(
            CacheLabels {
                model: Self::model_label(model),
                result: result.to_owned(),
            },
            |c| {
                c.inc();
            },
        );
    }

    pub fn redis_usage_write(&self, ok: bool) {
        self.redis_usage_writes
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "failed" }.to_owned(),
            })
            .inc();
    }

    /// An attempt at deployment `id` of `model` ended with `result`.
    pub fn deployment_call(&self, model: &ModelDef, id: &str, outcome: &str) {
        self.deployment_calls.with(
            DeploymentLabels {
                model: Self::model_label(model),
                deployment: id.to_owned(),
                outcome: outcome.to_owned(),
            },
            |c| {
                c.inc();
            },
        );
    }

    /// A call to `requested` was answered by its fallback `to`.
    pub fn fallback(&self, requested: &str, to: &ModelDef) {
        self.fallbacks.with(
            FallbackLabels {
                model: requested.to_owned(),
                to: Self::model_label(to),
            },
            |c| {
                c.inc();
            },
        );
    }

    /// Deployment `id` of `model` is in `state` and rests `rest` seconds still.
    pub fn deployment_state(&self, model: &ModelDef, id: &str, state: &str, rest: f64) {
        for s in crate::server::routing::health::STATES {
            self.deployment_state.with(
                DeploymentStateLabels {
                    model: Self::model_label(model),
                    deployment: id.to_owned(),
                    state: (*s).to_owned(),
                },
                |g| {
                    g.set(i64::from(*s == state));
                },
            );
        }
        self.deployment_rest.with(
            DeploymentRestLabels {
                model: Self::model_label(model),
                deployment: id.to_owned(),
            },
            |g| {
                g.set(rest);
            },
        );
    }

    /// The counter of deployment-health operations that could not reach Redis, for the store.
    pub fn health_store_failures(&self) -> Counter {
        self.health_store_failures.clone()
    }

    pub fn reload(&self, ok: bool) {
        self.reloads
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "refused" }.to_owned(),
            })
            .inc();
    }
}

/// `/metrics`, `/healthz` and `/readyz` of `gov`.
pub fn router(gov: Arc<Governance>) -> axum::Router {
    let for_metrics = gov.clone();
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let gov = for_metrics.clone();
                async move {
                    for (id, model, status) in gov.health.all().await {
                        gov.metrics.deployment_state(
                            &model,
                            &id,
                            status.name(),
                            status.remaining().as_secs_f64(),
                        );
                    }
                    ([(header::CONTENT_TYPE, CONTENT_TYPE)], gov.metrics.encode())
                }
            }),
        )
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .route(
            "/readyz",
            axum::routing::get(move || {
                let gov = gov.clone();
                async move {
                    if gov.is_ready() {
                        (StatusCode::OK, "ready\n").into_response()
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
                    }
                }
            }),
        )
}

/// Serve the metrics endpoint on `listener`, under the side listeners' connection limits
/// ([`crate::server::conn::SIDE_LIMITS`]), until `shutdown` resolves.
pub async fn serve(
    gov: Arc<Governance>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener =
        crate::server::conn::LimitedListener::new(listener, crate::server::conn::SIDE_LIMITS)?;
    axum::serve(listener, router(gov))
        .with_graceful_shutdown(shutdown)
        .await
}
