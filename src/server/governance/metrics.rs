//! The Prometheus metrics of one server (a registry per [`Governance`], no globals, so tests can
//! run several servers) and the plain-HTTP endpoint that serves them: `/metrics` (OpenMetrics
//! text), `/healthz` (the process is up) and `/readyz` (it is serving and not draining).
//!
//! The first three names are the ones vibectl 0.11.6 documents: `vibectl_requests_total{sub}`,
//! `vibectl_rate_limited_total{sub,limit_type}`, `vibectl_concurrent_in_flight{sub}`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::usage::Outcome;
use super::{Governance, LimitType};
use crate::server::catalog::ModelDef;

/// The content type of OpenMetrics text.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency buckets from 5 ms to about 80 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<SubLabels, Counter>,
    rate_limited: Family<LimitLabels, Counter>,
    in_flight: Family<SubLabels, Gauge>,
    request_duration: Histograms<MethodLabels>,
    upstream_duration: Histograms<ModelLabels>,
    first_chunk: Histograms<ModelLabels>,
    tokens: Family<TokenLabels, Counter>,
    cost: Family<UsageLabels, Counter<f64, AtomicU64>>,
    upstream_errors: Family<ErrorLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    redis_failures: Family<ModeLabels, Counter>,
    usage_records: Family<StatusLabels, Counter>,
    redis_usage_writes: Family<ResultLabels, Counter>,
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
            requests: Family::default(),
            rate_limited: Family::default(),
            in_flight: Family::default(),
            request_duration: Family::new_with_constructor(latency),
            upstream_duration: Family::new_with_constructor(latency),
            first_chunk: Family::new_with_constructor(latency),
            tokens: Family::default(),
            cost: Family::default(),
            upstream_errors: Family::default(),
            reloads: Family::default(),
            redis_failures: Family::default(),
            usage_records: Family::default(),
            redis_usage_writes: Family::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "vibectl_requests",
            "Execute and StreamExecute calls, by token subject",
            m.requests.clone(),
        );
        r.register(
            "vibectl_rate_limited",
            "Calls refused by a limit, by subject and limit type",
            m.rate_limited.clone(),
        );
        r.register(
            "vibectl_concurrent_in_flight",
            "Calls in flight, by subject",
            m.in_flight.clone(),
        );
        r.register(
            "vibectl_request_duration_seconds",
            "Time from a call's arrival to the end of its response",
            m.request_duration.clone(),
        );
        r.register(
            "vibectl_upstream_duration_seconds",
            "Time of the provider call, retries included",
            m.upstream_duration.clone(),
        );
        r.register(
            "vibectl_time_to_first_chunk_seconds",
            "Time from the provider call to the first streamed text",
            m.first_chunk.clone(),
        );
        r.register(
            "vibectl_tokens",
            "Tokens used, by subject, model and direction (input or output)",
            m.tokens.clone(),
        );
        r.register(
            "vibectl_cost_usd",
            "Cost in US dollars of the tokens used, by subject and model",
            m.cost.clone(),
        );
        r.register(
            "vibectl_upstream_errors",
            "Failed provider calls, by provider, model and error kind",
            m.upstream_errors.clone(),
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
            "vibectl_redis_usage_writes",
            "Usage records added to the Redis quota counters, by result (ok or failed)",
            m.redis_usage_writes.clone(),
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
        self.requests
            .get_or_create(&SubLabels {
                sub: sub.to_owned(),
            })
            .inc();
    }

    pub fn refused(&self, sub: &str, limit: LimitType) {
        self.rate_limited
            .get_or_create(&LimitLabels {
                sub: sub.to_owned(),
                limit_type: limit.as_str().to_owned(),
            })
            .inc();
    }

    pub fn in_flight(&self, sub: &str, delta: i64) {
        self.in_flight
            .get_or_create(&SubLabels {
                sub: sub.to_owned(),
            })
            .inc_by(delta);
    }

    pub fn request_done(&self, method: &str, seconds: f64) {
        self.request_duration
            .get_or_create(&MethodLabels {
                method: method.to_owned(),
            })
            .observe(seconds);
    }

    fn model_labels(model: &ModelDef) -> ModelLabels {
        ModelLabels {
            provider: model.provider.clone(),
            model: model.id.clone(),
        }
    }

    pub fn first_chunk(&self, model: &ModelDef, seconds: f64) {
        self.first_chunk
            .get_or_create(&Self::model_labels(model))
            .observe(seconds);
    }

    pub fn finished(
        &self,
        sub: &str,
        model: &ModelDef,
        seconds: f64,
        input: u64,
        output: u64,
        cost: Option<f64>,
    ) {
        self.upstream_duration
            .get_or_create(&Self::model_labels(model))
            .observe(seconds);
        for (direction, n) in [("input", input), ("output", output)] {
            self.tokens
                .get_or_create(&TokenLabels {
                    sub: sub.to_owned(),
                    model: model.id.clone(),
                    direction: direction.to_owned(),
                })
                .inc_by(n);
        }
        if let Some(c) = cost {
            self.cost
                .get_or_create(&UsageLabels {
                    sub: sub.to_owned(),
                    model: model.id.clone(),
                })
                .inc_by(c);
        }
    }

    pub fn upstream_error(&self, model: &ModelDef, kind: &str, seconds: f64) {
        self.upstream_duration
            .get_or_create(&Self::model_labels(model))
            .observe(seconds);
        self.upstream_errors
            .get_or_create(&ErrorLabels {
                provider: model.provider.clone(),
                model: model.id.clone(),
                kind: kind.to_owned(),
            })
            .inc();
    }

    pub fn redis_failure(&self, open: bool) {
        self.redis_failures
            .get_or_create(&ModeLabels {
                mode: if open { "open" } else { "closed" }.to_owned(),
            })
            .inc();
    }

    pub fn usage_recorded(&self, outcome: Outcome) {
        self.usage_records
            .get_or_create(&StatusLabels {
                status: outcome.as_str().to_owned(),
            })
            .inc();
    }

    pub fn redis_usage_write(&self, ok: bool) {
        self.redis_usage_writes
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "failed" }.to_owned(),
            })
            .inc();
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
                async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], gov.metrics.encode()) }
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

/// Serve the metrics endpoint on `listener` until `shutdown` resolves.
pub async fn serve(
    gov: Arc<Governance>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(gov))
        .with_graceful_shutdown(shutdown)
        .await
}
