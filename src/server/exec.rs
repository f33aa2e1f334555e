//! Running one request upstream: model resolution, the provider call with retries and backoff,
//! and the wire metrics and errors of the result.
//!
//! A client-facing error says what failed (the error code, the provider entry's name, the model
//! id, the kind of failure) but never the provider's own text, which can echo the request's
//! `Authorization` header, nor an upstream address: that detail is logged on the server,
//! scrubbed of keys and tokens by [`scrub`].

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::catalog::{CatalogError, ModelDef};
use super::governance::Governance;
use super::routing::{self, Route, Served, Target};
use super::state::State;
use crate::llm::{ChatRequest, ChatResponse, ProviderError, StreamEvent, Usage};
use crate::proto::{ExecuteError, ExecuteRequest, ExecutionMetrics};

/// Wire error codes (the first three are vibectl 0.11.6's; the rest are finer ones we add).
pub mod code {
    pub const NO_MODEL: &str = "NO_MODEL";
    pub const MODEL_NOT_FOUND: &str = "MODEL_NOT_FOUND";
    pub const EXECUTION_FAILED: &str = "EXECUTION_FAILED";
    pub const INVALID_REQUEST: &str = "INVALID_REQUEST";
    pub const PROVIDER_NOT_CONFIGURED: &str = "PROVIDER_NOT_CONFIGURED";
    pub const PROVIDER_AUTH_FAILED: &str = "PROVIDER_AUTH_FAILED";
    pub const PROVIDER_RATE_LIMITED: &str = "PROVIDER_RATE_LIMITED";
    pub const PROVIDER_UNAVAILABLE: &str = "PROVIDER_UNAVAILABLE";
    pub const UPSTREAM_MODEL_NOT_FOUND: &str = "UPSTREAM_MODEL_NOT_FOUND";
    pub const BAD_PROVIDER_RESPONSE: &str = "BAD_PROVIDER_RESPONSE";
    pub const TIMEOUT: &str = "TIMEOUT";
}

pub fn error(code: &str, message: impl Into<String>, details: Option<String>) -> ExecuteError {
    ExecuteError {
        error_code: code.to_owned(),
        error_message: message.into(),
        error_details: details,
    }
}

/// A request ready to send upstream.
pub struct Prepared {
    /// The model the request asked for (the one it is answered by: [`Prepared::served`]).
    pub model: ModelDef,
    pub chat: ChatRequest,
    /// When the call, retries and fallbacks included, must be over (the `deadline_seconds` of
    /// the provider of the model's first deployment).
    pub deadline: Instant,
    /// The deployments and fallbacks it may go to.
    pub route: Route,
}

impl Prepared {
    /// The model and deployment the call was answered by (before it is, the last one tried).
    pub fn served(&self) -> Served {
        routing::served(&self.route.served)
    }
}

/// `model` as deployment `d` serves it.
fn deployed(model: &ModelDef, d: &routing::Deployment) -> ModelDef {
    ModelDef {
        provider: d.provider.clone(),
        upstream: d.upstream_model.clone(),
        ..model.clone()
    }
}

/// The candidates of a call to `model` (its deployments, then its fallbacks'), each with its
/// client bounded by `deadline`, or the error of the first when none can be called.
fn targets(
    state: &State,
    model: &ModelDef,
) -> Result<(Vec<Target>, std::time::Duration), ExecuteError> {
    let mut out = Vec::new();
    let mut first_error = None;
    let mut deadline = None;
    let chain = if model.configured {
        state.routes.chain(&model.id)
    } else {
        vec![model.id.clone()]
    };
    for (n, id) in chain.iter().enumerate() {
        let m = if n == 0 {
            model.clone()
        } else {
            match state.catalog.models.get(id) {
                Some(m) => m.clone(),
                None => continue,
            }
        };
        let deployments: Vec<routing::Deployment> =
            match state.routes.deployments.get(id).filter(|_| m.configured) {
                Some(list) => list.clone(),
                None => match state.upstreams.get(&m.provider) {
                    // The one deployment of a model without any: its provider.
                    Some(u) => vec![routing::Deployment {
                        id: if m.configured {
                            m.id.clone()
                        } else {
                            u.name.clone()
                        },
                        provider: u.name.clone(),
                        upstream_model: m.upstream.clone(),
                        weight: 1,
                        client: u.client.clone(),
                        retry: u.retry,
                        deadline: u.deadline,
                    }],
                    None => {
                        first_error.get_or_insert_with(|| {
                            error(
                                code::PROVIDER_NOT_CONFIGURED,
                                format!("provider `{}` is not configured", m.provider),
                                None,
                            )
                        });
                        continue;
                    }
                },
            };
        for d in deployments {
            deadline.get_or_insert(d.deadline);
            let (id, weight, retry) = (d.id.clone(), d.weight, d.retry);
            let m = deployed(&m, &d);
            match d.client {
                Ok(client) => {
                    // A model that does not stream is asked for a whole answer, sent as one chunk.
                    let client = if m.supports_streaming {
                        client
                    } else {
                        client.whole_answers_only()
                    };
                    out.push(Target {
                        id,
                        model: m,
                        weight,
                        client,
                        retry,
                        fallback: n > 0,
                    });
                }
                Err(e) => {
                    let e = not_set_up(&m.provider, &e);
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    match (out.is_empty(), first_error) {
        (true, Some(e)) => Err(e),
        (true, None) => Err(error(
            code::PROVIDER_NOT_CONFIGURED,
            format!("model `{}` has no deployment that can be called", model.id),
            None,
        )),
        (false, first) => {
            if let Some(e) = first {
                tracing::warn!(
                    "a deployment of model `{}` is left out: {}",
                    model.id,
                    e.error_message
                );
            }
            Ok((out, deadline.unwrap_or_default()))
        }
    }
}

/// Every deployment the configured models' calls may go to, with the model each serves as.
pub fn deployments(state: &State) -> impl Iterator<Item = (String, ModelDef)> + use<> {
    let all: Vec<(String, ModelDef)> = state
        .catalog
        .models
        .values()
        .filter_map(|m| targets(state, m).ok())
        .flat_map(|(ts, _)| ts.into_iter().map(|t| (t.id, t.model)))
        .collect();
    all.into_iter()
}

/// The wire error of a provider client that cannot be made: the missing-key hint names config
/// keys and env vars only; anything else (a key file path, a base URL) stays in the server log.
fn not_set_up(provider: &str, e: &str) -> ExecuteError {
    let hint = super::upstream::missing_key_message(provider);
    if e == hint {
        return error(code::PROVIDER_NOT_CONFIGURED, hint, None);
    }
    tracing::warn!(provider = %provider, "provider cannot be called: {}", scrub(e));
    error(
        code::PROVIDER_NOT_CONFIGURED,
        format!("provider `{provider}` is not set up on the server (see the server log)"),
        None,
    )
}

/// Resolve the model, its deployments and fallbacks, and build the provider request.
pub fn prepare(
    state: &State,
    gov: &Arc<Governance>,
    req: &ExecuteRequest,
) -> Result<Prepared, ExecuteError> {
    if req.system_fragments.is_empty() && req.user_fragments.is_empty() {
        return Err(error(
            code::INVALID_REQUEST,
            "the request has no system or user fragments",
            None,
        ));
    }
    let model = state
        .catalog
        .resolve(req.model_name.as_deref())
        .map_err(|e| match e {
            CatalogError::NoModel => error(code::NO_MODEL, e.to_string(), None),
            CatalogError::NotFound { .. } => error(code::MODEL_NOT_FOUND, e.to_string(), None),
            CatalogError::Config { .. } => error(code::EXECUTION_FAILED, e.to_string(), None),
        })?;
    let (mut targets, deadline) = targets(state, &model)?;
    let deadline = Instant::now() + deadline;
    for t in &mut targets {
        t.client = t.client.clone().with_deadline(deadline);
    }
    gov.health
        .register(targets.iter().map(|t| (t.id.clone(), t.model.clone())));
    let served = Arc::new(std::sync::Mutex::new(Served {
        model: targets[0].model.clone(),
        deployment: targets[0].id.clone(),
    }));
    let response_schema = match req
        .response_model_schema
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        Some(text) => Some(serde_json::from_str(text).map_err(|e| {
            error(
                code::INVALID_REQUEST,
                format!("response_model_schema is not valid JSON: {e}"),
                None,
            )
        })?),
        None => None,
    };
    let chat = ChatRequest {
        system: req.system_fragments.clone(),
        user: req.user_fragments.clone(),
        model: model.upstream.clone(),
        response_schema,
        max_tokens: None,
        ..Default::default()
    };
    Ok(Prepared {
        model,
        chat,
        deadline,
        route: Route {
            targets,
            gov: gov.clone(),
            settings: state.config.routing.clone(),
            served,
            deadline,
        },
    })
}

/// `text` with the keys and tokens in it (Bearer tokens, `Authorization` values, JWTs,
/// `key=value` secrets, passwords in URLs) replaced by placeholders, for the server log.
pub fn scrub(text: &str) -> String {
    crate::redact::Redactor::new().redact(text).0
}

/// What the client is told of a provider failure: its kind, without the provider's text.
fn client_message(e: &ProviderError) -> String {
    match e {
        ProviderError::Auth { status, .. } => {
            format!("the provider rejected the server's credentials (HTTP {status})")
        }
        ProviderError::NotFound { .. } => "the provider has no such model".to_owned(),
        ProviderError::RateLimited { .. } => "the provider's rate limit was reached".to_owned(),
        ProviderError::Overloaded { .. } => "the provider is overloaded".to_owned(),
        ProviderError::Server { status, .. } => format!("the provider failed (HTTP {status})"),
        ProviderError::Timeout { .. } => "the provider did not answer in time".to_owned(),
        ProviderError::Connect { .. } => "the provider could not be reached".to_owned(),
        ProviderError::BadResponse { .. } => "the provider sent a bad response".to_owned(),
        ProviderError::BadRequest { status, .. } => {
            format!("the provider rejected the request (HTTP {status})")
        }
        ProviderError::Config { .. } => "the provider is not set up on the server".to_owned(),
    }
}

/// The wire error for a provider failure after `retries` retries; the provider's own text is
/// logged (scrubbed), not sent.
pub fn provider_error(e: &ProviderError, model: &ModelDef, retries: u32) -> ExecuteError {
    tracing::warn!(
        provider = %model.provider,
        model = %model.id,
        retries,
        "provider call failed: {}",
        scrub(&e.to_string())
    );
    let c = match e {
        ProviderError::Auth { .. } => code::PROVIDER_AUTH_FAILED,
        ProviderError::NotFound { .. } => code::UPSTREAM_MODEL_NOT_FOUND,
        ProviderError::RateLimited { .. } => code::PROVIDER_RATE_LIMITED,
        ProviderError::Overloaded { .. }
        | ProviderError::Server { .. }
        | ProviderError::Connect { .. } => code::PROVIDER_UNAVAILABLE,
        ProviderError::Timeout { .. } => code::TIMEOUT,
        ProviderError::BadResponse { .. } => code::BAD_PROVIDER_RESPONSE,
        ProviderError::BadRequest { .. } => code::INVALID_REQUEST,
        ProviderError::Config { .. } => code::PROVIDER_NOT_CONFIGURED,
    };
    let details = serde_json::json!({
        "provider": model.provider,
        "model": model.id,
        "kind": e.code(),
        "retry_after_ms": e.retry_after().map(|d| d.as_millis() as u64),
        "retry_count": retries,
    });
    let message = format!(
        "{} (provider `{}`, model `{}`; see the server log)",
        client_message(e),
        model.provider,
        model.id
    );
    error(c, message, Some(details.to_string()))
}

/// The metrics of a finished call. `charged` is what the call's meter charges (the provider's
/// counts, or estimates where it sent none), so the cost sent to the client is the cost in the
/// usage record, by the one rule of [`ModelDef::cost_usd`].
pub fn metrics(
    started: Instant,
    usage: Usage,
    model: &ModelDef,
    retries: u32,
    charged: Option<(u64, u64)>,
) -> ExecutionMetrics {
    let as_i32 = |n: Option<u32>| n.map(|n| n.min(i32::MAX as u32) as i32);
    ExecutionMetrics {
        duration_ms: started.elapsed().as_millis() as i64,
        input_tokens: as_i32(usage.input_tokens),
        output_tokens: as_i32(usage.output_tokens),
        total_tokens: as_i32(usage.total_tokens()),
        cost_usd: charged.and_then(|(input, output)| model.cost_usd(input, output)),
        retry_count: retries as i32,
        timestamp: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default(),
    }
}

/// The whole answer of `p` over its deployments and fallbacks ([`Route::complete`]): the
/// answer and the retries it took, or the last error and the retries before it.
pub async fn complete(p: &Prepared) -> Result<(ChatResponse, u32), (ProviderError, u32)> {
    p.route.complete(&p.chat, &p.model.id).await
}

/// The streamed answer of `p` over its deployments and fallbacks ([`Route::stream`]): a failure
/// before the first text moves on or is retried; after it, or when no candidate is left, it is
/// the stream's last item. Each item comes with the number of retries before it. Dropping the
/// stream drops the upstream call.
pub fn stream(
    p: &Prepared,
) -> impl futures_util::Stream<Item = Result<(StreamEvent, u32), (ProviderError, u32)>> + Send + 'static
{
    p.route.clone().stream(p.chat.clone(), p.model.id.clone())
}
