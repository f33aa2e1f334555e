//! The `VibectlLLMProxy` gRPC service: Execute, StreamExecute and GetServerInfo.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tonic::{Request, Response, Status};

use super::cache::{self, Lookup};
use super::exec::{self, Prepared};
use super::governance::meter::Meter;
use super::governance::usage::Outcome;
use super::governance::{self, Governance, Limits};
use super::state::State;
use crate::llm::{StreamEvent, Usage};
use crate::proto::vibectl_llm_proxy_server::VibectlLlmProxy;
use crate::proto::{
    ExecuteError, ExecuteRequest, ExecuteResponse, ExecuteSuccess, GetServerInfoRequest,
    GetServerInfoResponse, ModelInfo, ServerLimits, StreamChunk, StreamComplete, execute_response,
    stream_chunk,
};

/// The name the server reports in GetServerInfo.
pub const SERVER_NAME: &str = "vibectl-server (rust)";

/// The service; cheap to clone, it shares the state that reload swaps.
#[derive(Clone)]
pub struct ProxyService {
    pub state: Arc<ArcSwap<State>>,
    pub gov: Arc<Governance>,
}

fn request_id(req: &ExecuteRequest) -> String {
    if req.request_id.is_empty() {
        uuid::Uuid::new_v4().to_string()
    } else {
        req.request_id.clone()
    }
}

fn chunk(request_id: &str, c: stream_chunk::ChunkType) -> Result<StreamChunk, Status> {
    Ok(StreamChunk {
        request_id: request_id.to_owned(),
        chunk_type: Some(c),
    })
}

fn clamp_i32(v: Option<i64>) -> Option<i32> {
    v.map(|n| n.clamp(0, i32::MAX as i64) as i32)
}

#[tonic::async_trait]
impl VibectlLlmProxy for ProxyService {
    async fn execute(
        &self,
        request: Request<ExecuteRequest>,
    ) -> Result<Response<ExecuteResponse>, Status> {
        let sub = governance::subject(&request);
        let bypass = cache::grpc_bypass(request.metadata());
        let req = request.into_inner();
        let id = request_id(&req);
        let state = self.state.load_full();
        let limits = Limits::for_sub(&state.config.server.limits, &sub);
        self.gov.check_input(&sub, &limits, &req)?;
        let started = Instant::now();
        let result = match exec::prepare(&state, &self.gov, &req) {
            Err(e) => execute_response::Result::Error(e),
            Ok(p) => {
                let call = self.gov.call(sub.clone());
                let meter = Meter::new(call, p.model.clone(), governance::request_chars(&req))
                    .following(p.route.served.clone());
                let lookup = Lookup::new(&self.gov, &state, &sub, &p, bypass, &meter);
                let failed = meter.failure();
                let run = run_complete(p, lookup, started, meter);
                match limits.timeout {
                    None => run.await,
                    Some(limit) => match tokio::time::timeout(limit, run).await {
                        Ok(r) => r,
                        Err(_) => {
                            failed(TIMED_OUT);
                            execute_response::Result::Error(timeout_error(limit))
                        }
                    },
                }
            }
        };
        Ok(Response::new(ExecuteResponse {
            request_id: id,
            result: Some(result),
        }))
    }

    type StreamExecuteStream = BoxStream<'static, Result<StreamChunk, Status>>;

    async fn stream_execute(
        &self,
        request: Request<ExecuteRequest>,
    ) -> Result<Response<Self::StreamExecuteStream>, Status> {
        let sub = governance::subject(&request);
        let bypass = cache::grpc_bypass(request.metadata());
        let req = request.into_inner();
        let id = request_id(&req);
        let state = self.state.load_full();
        let limits = Limits::for_sub(&state.config.server.limits, &sub);
        self.gov.check_input(&sub, &limits, &req)?;
        let started = Instant::now();
        let stream =
            match exec::prepare(&state, &self.gov, &req) {
                Err(e) => futures_util::stream::once(async move {
                    chunk(&id, stream_chunk::ChunkType::Error(e))
                })
                .boxed(),
                Ok(p) => {
                    let call = self.gov.call(sub.clone());
                    let meter = Meter::new(call, p.model.clone(), governance::request_chars(&req))
                        .following(p.route.served.clone());
                    let lookup = Lookup::new(&self.gov, &state, &sub, &p, bypass, &meter);
                    let on_timeout = timeout_chunk(&id, &meter, limits.timeout);
                    let run = run_stream(p, lookup, id, started, meter);
                    governance::with_deadline(run, limits.timeout, on_timeout).boxed()
                }
            };
        Ok(Response::new(stream))
    }

    async fn get_server_info(
        &self,
        _request: Request<GetServerInfoRequest>,
    ) -> Result<Response<GetServerInfoResponse>, Status> {
        let state = self.state.load_full();
        let global = &state.config.server.limits.global;
        let models = state
            .catalog
            .models
            .values()
            .map(|m| ModelInfo {
                model_id: m.id.clone(),
                display_name: m.display_name.clone(),
                provider: state
                    .upstreams
                    .get(&m.provider)
                    .map(|u| u.kind.as_str().to_owned())
                    .unwrap_or_default(),
                supports_streaming: m.supports_streaming,
                max_context_length: m.max_context_length,
                aliases: m.aliases.clone(),
            })
            .collect();
        Ok(Response::new(GetServerInfoResponse {
            available_models: models,
            default_model: state.catalog.default_model.clone().unwrap_or_default(),
            limits: Some(ServerLimits {
                max_requests_per_minute: clamp_i32(global.max_requests_per_minute),
                max_concurrent_requests: clamp_i32(global.max_concurrent_requests),
                max_input_length: clamp_i32(global.max_input_length),
                request_timeout_seconds: clamp_i32(global.request_timeout_seconds),
            }),
            server_version: env!("CARGO_PKG_VERSION").to_owned(),
            model_aliases: state.catalog.aliases.clone().into_iter().collect(),
            server_name: SERVER_NAME.to_owned(),
        }))
    }
}

/// The upstream error kind of a call the request timeout stopped.
const TIMED_OUT: &str = "timeout";

fn timeout_error(limit: std::time::Duration) -> ExecuteError {
    exec::error(
        exec::code::TIMEOUT,
        format!(
            "the request did not finish within its {}s timeout",
            limit.as_secs()
        ),
        None,
    )
}

/// The chunk that ends a stream stopped by the request timeout (which also counts the error
/// and marks the call's usage as ended by the timeout).
fn timeout_chunk(
    id: &str,
    meter: &Meter,
    limit: Option<std::time::Duration>,
) -> impl FnOnce() -> Result<StreamChunk, Status> + Send + 'static {
    let id = id.to_owned();
    let ending = meter.ending();
    let failed = meter.failure();
    move || {
        ending.timed_out();
        failed(TIMED_OUT);
        let limit = limit.unwrap_or_default();
        chunk(&id, stream_chunk::ChunkType::Error(timeout_error(limit)))
    }
}

/// The whole answer; a call that fails or is dropped (timeout, client gone) has produced no
/// text, so its meter charges nothing.
async fn run_complete(
    p: Prepared,
    lookup: Lookup,
    started: Instant,
    mut meter: Meter,
) -> execute_response::Result {
    match lookup.complete(&p).await {
        Ok((resp, attempt)) => {
            let served = p.served().model;
            meter.text(&resp.text);
            meter.usage(resp.usage);
            meter.end(Outcome::Completed);
            execute_response::Result::Success(ExecuteSuccess {
                response_text: resp.text,
                metrics: Some(exec::metrics(
                    started,
                    resp.usage,
                    &served,
                    attempt,
                    meter.used(),
                )),
                actual_model_used: served.id,
            })
        }
        Err((e, attempt)) => {
            meter.failed(e.code());
            meter.end(Outcome::Error);
            execute_response::Result::Error(exec::provider_error(&e, &p.served().model, attempt))
        }
    }
}

/// Forward each provider chunk as it arrives; then `complete`, then `final_metrics`. A failure
/// before the first chunk is retried; after it, it ends the stream with an `error` chunk. The
/// meter charges the call once: at its end, at a failure, or when the stream is dropped (the
/// client went away, or the request timeout stopped it).
fn run_stream(
    p: Prepared,
    lookup: Lookup,
    id: String,
    started: Instant,
    mut meter: Meter,
) -> impl futures_util::Stream<Item = Result<StreamChunk, Status>> + Send {
    async_stream::stream! {
        let mut attempt = 0;
        let mut usage = Usage::default();
        let mut upstream = std::pin::pin!(lookup.stream(&p));
        while let Some(item) = upstream.next().await {
            match item {
                Ok((StreamEvent::Text(t), _)) => {
                    meter.text(&t);
                    yield chunk(&id, stream_chunk::ChunkType::TextChunk(t));
                }
                Ok((StreamEvent::Usage(u), retries)) => {
                    attempt = retries;
                    usage = u;
                    meter.usage(u);
                }
                // A gRPC request defines no tools; the stop reason and early input count
                // have no place in its chunks.
                Ok(_) => {}
                Err((e, retries)) => {
                    meter.failed(e.code());
                    meter.end(Outcome::Error);
                    let err: ExecuteError = exec::provider_error(&e, &p.served().model, retries);
                    yield chunk(&id, stream_chunk::ChunkType::Error(err));
                    return;
                }
            }
        }
        meter.end(Outcome::Completed);
        let served = p.served().model;
        yield chunk(&id, stream_chunk::ChunkType::Complete(StreamComplete { actual_model_used: served.id.clone() }));
        yield chunk(&id, stream_chunk::ChunkType::FinalMetrics(exec::metrics(started, usage, &served, attempt, meter.used())));
    }
}
