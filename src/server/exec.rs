//! Running one request upstream: model resolution, the provider call with retries and backoff,
//! and the wire metrics and errors of the result.
//!
//! A client-facing error says what failed (the error code, the provider entry's name, the model
//! id, the kind of failure) but never the provider's own text, which can echo the request's
//! `Authorization` header, nor an upstream address: that detail is logged on the server,
//! scrubbed of keys and tokens by [`scrub`].

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::catalog::{CatalogError, ModelDef};
use super::state::State;
use crate::llm::retry::RetryPolicy;
use crate::llm::{ChatRequest, ChatResponse, ProviderClient, ProviderError, StreamEvent, Usage};
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
    pub model: ModelDef,
    /// The provider's client for this call: its attempts end by `deadline`.
    pub client: ProviderClient,
    /// The provider's retry policy.
    pub retry: RetryPolicy,
    pub chat: ChatRequest,
    /// When the call, retries included, must be over (the provider's `deadline_seconds`).
    pub deadline: Instant,
}

impl Prepared {
    /// How long to wait before retry number `attempt` (0-based), or `None` to give up: the
    /// provider's [`RetryPolicy`], with no retry whose wait would reach the deadline.
    pub fn backoff(&self, e: &ProviderError, attempt: u32) -> Option<Duration> {
        self.retry.after_error(e, attempt, Some(self.deadline))
    }
}

/// Resolve the model and provider and build the provider request.
pub fn prepare(state: &State, req: &ExecuteRequest) -> Result<Prepared, ExecuteError> {
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
    let upstream = state.upstreams.get(&model.provider).ok_or_else(|| {
        error(
            code::PROVIDER_NOT_CONFIGURED,
            format!("provider `{}` is not configured", model.provider),
            None,
        )
    })?;
    let deadline = Instant::now() + upstream.deadline;
    let client = upstream
        .client
        .clone()
        .map_err(|e| {
            // The missing-key hint names config keys and env vars only; anything else (a key file
            // path, a base URL) stays in the server log.
            let hint = super::upstream::missing_key_message(&model.provider);
            if e == hint {
                return error(code::PROVIDER_NOT_CONFIGURED, hint, None);
            }
            tracing::warn!(
                provider = %model.provider,
                "provider cannot be called: {}",
                scrub(&e)
            );
            error(
                code::PROVIDER_NOT_CONFIGURED,
                format!(
                    "provider `{}` is not set up on the server (see the server log)",
                    model.provider
                ),
                None,
            )
        })?
        .with_deadline(deadline);
    // A model that does not stream is asked for a whole answer, sent as one chunk.
    let client = if model.supports_streaming {
        client
    } else {
        client.whole_answers_only()
    };
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
        retry: upstream.retry,
        model,
        client,
        chat,
        deadline,
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

/// The whole answer of `p`, retried by the provider's policy: the answer and the retries it
/// took, or the last error and the retries before it.
pub async fn complete(p: &Prepared) -> Result<(ChatResponse, u32), (ProviderError, u32)> {
    let mut attempt = 0;
    loop {
        match p.client.complete(&p.chat).await {
            Ok(resp) => return Ok((resp, attempt)),
            Err(e) => match p.backoff(&e, attempt) {
                Some(wait) => {
                    tracing::debug!(error = %scrub(&e.to_string()), attempt, ?wait, "retrying upstream call");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                None => return Err((e, attempt)),
            },
        }
    }
}

/// The streamed answer of `p`: a failure before the first text is retried by the provider's
/// policy; after it, or when retries are spent, it is the stream's last item. Each item comes
/// with the number of retries before it. Dropping the stream drops the upstream call.
pub fn stream(
    p: &Prepared,
) -> impl futures_util::Stream<Item = Result<(StreamEvent, u32), (ProviderError, u32)>> + Send + 'static
{
    let (client, chat, retry, deadline) = (p.client.clone(), p.chat.clone(), p.retry, p.deadline);
    async_stream::stream! {
        let mut attempt = 0;
        'attempts: loop {
            let mut upstream = client.stream(&chat);
            let mut sent = false;
            while let Some(item) = futures_util::StreamExt::next(&mut upstream).await {
                match item {
                    Ok(event) => {
                        sent |= event.is_output();
                        yield Ok((event, attempt));
                    }
                    Err(e) => {
                        if !sent && let Some(wait) = retry.after_error(&e, attempt, Some(deadline)) {
                            drop(upstream);
                            tokio::time::sleep(wait).await;
                            attempt += 1;
                            continue 'attempts;
                        }
                        yield Err((e, attempt));
                        return;
                    }
                }
            }
            return;
        }
    }
}
