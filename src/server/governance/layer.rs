//! The tower layer in front of the gRPC routes. On the proxy's paths
//! (`/vibectl.llm_proxy.VibectlLLMProxy/*`) and on health `Watch`, a stream that stays open, it
//! checks the bearer token when auth is on (health `Check`, which probes and load balancers
//! call without a token, and reflection stay open) and puts the verified claims and the [`Subject`] into the request
//! extensions; on Execute and StreamExecute it then applies the subject's quota, rate and
//! concurrency limits. An admitted call holds its concurrency slot in its response body, so a
//! stream keeps the slot until its body ends or is dropped. With the Redis backend the slot is a
//! lease that [`RedisLimiter`] renews while the call runs and gives back when the slot is freed.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures_util::future::BoxFuture;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::Status;
use tonic::body::Body;
use tonic::server::NamedService;

use super::redis_backend::RedisLimiter;
use super::{ANONYMOUS, Governance, Limits, Refusal, Subject};
use crate::config::generated::server::ServerLimitsRedisFailureMode;
use crate::proto::vibectl_llm_proxy_server::VibectlLlmProxyServer;
use crate::server::service::ProxyService;
use crate::server::state::State;

/// The methods that count against the limits (GetServerInfo does not).
const LIMITED_METHODS: &[&str] = &["Execute", "StreamExecute"];

/// `/grpc.health.v1.Health/Watch`.
fn health_watch_path() -> String {
    format!(
        "/{}/Watch",
        <tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService> as NamedService>::NAME
    )
}

/// `/vibectl.llm_proxy.VibectlLLMProxy/`.
fn proxy_prefix() -> String {
    format!(
        "/{}/",
        <VibectlLlmProxyServer<ProxyService> as NamedService>::NAME
    )
}

#[derive(Clone)]
pub struct GovernLayer {
    state: Arc<ArcSwap<State>>,
    gov: Arc<Governance>,
    prefix: Arc<str>,
    health_watch: Arc<str>,
}

impl GovernLayer {
    pub fn new(state: Arc<ArcSwap<State>>, gov: Arc<Governance>) -> GovernLayer {
        GovernLayer {
            state,
            gov,
            prefix: proxy_prefix().into(),
            health_watch: health_watch_path().into(),
        }
    }
}

impl<S> tower::Layer<S> for GovernLayer {
    type Service = Govern<S>;

    fn layer(&self, inner: S) -> Govern<S> {
        Govern {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Govern<S> {
    inner: S,
    layer: GovernLayer,
}

fn refuse<E: Send + 'static>(
    status: Status,
) -> BoxFuture<'static, Result<http::Response<Body>, E>> {
    Box::pin(std::future::ready(Ok(status.into_http())))
}

/// The inner service's response, its body boxed.
fn pass<F, ResB, E>(fut: F) -> BoxFuture<'static, Result<http::Response<Body>, E>>
where
    F: std::future::Future<Output = Result<http::Response<ResB>, E>> + Send + 'static,
    ResB: HttpBody<Data = bytes::Bytes> + Send + 'static,
    ResB::Error: Into<tonic::codegen::StdError>,
{
    Box::pin(async move { Ok(fut.await?.map(Body::new)) })
}

impl<S, B, ResB> tower::Service<http::Request<B>> for Govern<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    ResB: HttpBody<Data = bytes::Bytes> + Send + 'static,
    ResB::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<http::Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // The ready service is the one to call; keep a fresh clone for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = req.uri().path();
        let method = match path.strip_prefix(&*self.layer.prefix) {
            Some(method) => method,
            None if path == &*self.layer.health_watch => "",
            None => return pass(inner.call(req)),
        };
        let limited = LIMITED_METHODS.contains(&method);
        let method = method.to_owned();
        let state = self.layer.state.load_full();
        let sub = match &state.verifier {
            Some(verifier) => {
                let header = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok());
                match verifier.verify_header(header) {
                    Ok(claims) => {
                        let sub = claims.sub.clone();
                        req.extensions_mut().insert(claims);
                        sub
                    }
                    Err(e) => return refuse(Status::unauthenticated(e.to_string())),
                }
            }
            None => ANONYMOUS.to_owned(),
        };
        req.extensions_mut().insert(Subject(sub.clone()));
        if !limited {
            return pass(inner.call(req));
        }
        let gov = self.layer.gov.clone();
        Box::pin(async move {
            let slot = match admit(gov, &state, sub, method).await {
                Ok(slot) => slot,
                Err(Denied::Limit(refusal)) => return Ok(refusal.into_status().into_http()),
                Err(Denied::Unavailable) => {
                    return Ok(Status::unavailable("the limit store is unreachable").into_http());
                }
            };
            let resp = inner.call(req).await?;
            Ok(resp.map(|body| {
                Body::new(SlotBody {
                    inner: Body::new(body),
                    slot: Some(slot),
                })
            }))
        })
    }
}

/// Why a call was not admitted.
#[derive(Debug)]
pub enum Denied {
    /// A limit refused it.
    Limit(Refusal),
    /// The Redis limit store could not be reached and its failure mode is closed.
    Unavailable,
}

/// Admit one limited call (`method`) of `sub` under `state`'s limits: count it, then check its
/// quota, rate and concurrency, in memory or in Redis as configured. The returned [`Slot`]
/// holds the call's concurrency place until it is dropped. The gRPC layer and the HTTP APIs
/// both admit their calls here.
pub async fn admit(
    gov: Arc<Governance>,
    state: &State,
    sub: String,
    method: String,
) -> Result<Slot, Denied> {
    gov.metrics.request(&sub);
    let limits = Limits::for_sub(&state.config.server.limits, &sub);
    if let Some(redis) = gov.redis_for(&state.config.server.limits) {
        let open =
            state.config.server.limits.redis_failure_mode == ServerLimitsRedisFailureMode::Open;
        let ttl = Duration::from_secs(
            u64::try_from(state.config.server.limits.lease_seconds).unwrap_or(0),
        );
        let lease = uuid::Uuid::new_v4().to_string();
        let outcome = match redis {
            Ok(r) => r.admit(&sub, &limits, &lease, ttl).await.map(|a| (a, r)),
            Err(e) => Err(e),
        };
        let release = match outcome {
            Ok((Ok(()), r)) => Release::Redis(r, lease),
            Ok((Err(refusal), _)) => {
                gov.metrics.refused(&sub, refusal.limit);
                return Err(Denied::Limit(refusal));
            }
            Err(e) if open => {
                gov.metrics.redis_failure(true);
                tracing::warn!("Redis failed ({e}); letting the call through unlimited");
                Release::Nothing
            }
            Err(e) => {
                gov.metrics.redis_failure(false);
                tracing::warn!("Redis failed ({e}); refusing the call");
                return Err(Denied::Unavailable);
            }
        };
        return Ok(Slot::new(gov, sub, method, release));
    }
    let admitted = gov
        .usage
        .check(&sub, &limits, super::usage::now_unix())
        .and_then(|()| gov.limiter.admit(&sub, &limits, Instant::now()));
    if let Err(refusal) = admitted {
        gov.metrics.refused(&sub, refusal.limit);
        return Err(Denied::Limit(refusal));
    }
    Ok(Slot::new(gov, sub, method, Release::Memory))
}

/// Where an admitted call's concurrency slot is given back.
enum Release {
    Memory,
    /// The Redis lease with this id.
    Redis(Arc<RedisLimiter>, String),
    /// Admitted without a slot (Redis failed and the failure mode is open).
    Nothing,
}

/// An admitted call's concurrency slot; freeing it also records the call's duration.
pub struct Slot {
    gov: Arc<Governance>,
    sub: String,
    method: String,
    started: Instant,
    release: Release,
}

impl Slot {
    fn new(gov: Arc<Governance>, sub: String, method: String, release: Release) -> Slot {
        gov.metrics.in_flight(&sub, 1);
        Slot {
            gov,
            sub,
            method,
            started: Instant::now(),
            release,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.release, Release::Nothing) {
            Release::Memory => self.gov.limiter.release(&self.sub),
            Release::Redis(redis, lease) => redis.release(&self.sub, &lease),
            Release::Nothing => {}
        }
        self.gov.metrics.in_flight(&self.sub, -1);
        self.gov
            .metrics
            .request_done(&self.method, self.started.elapsed().as_secs_f64());
    }
}

/// A response body that frees its slot at its last frame (gRPC trailers), its end, or its drop.
struct SlotBody {
    inner: Body,
    slot: Option<Slot>,
}

impl HttpBody for SlotBody {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => self.slot = None,
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => self.slot = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
