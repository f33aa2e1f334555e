//! The HTTP APIs beside gRPC on the same listener: [`SteerLayer`] sends a request whose
//! content-type is `application/grpc*` on to the gRPC routes and any other to the HTTP router
//! ([`router`]), over HTTP/1.1 or HTTP/2, plaintext or TLS, inside the same connection limits.
//!
//! The HTTP path reuses what gRPC uses: the token check ([`Verifier`](super::auth::Verifier)),
//! admission ([`governance::layer::admit`]), the input bounds ([`Governance::input_error`]),
//! model resolution and the provider call ([`exec`](super::exec)) behind the response cache
//! ([`cache`](super::cache)), and the meter that charges each call once. What it adds is the
//! API's own shape: JSON bodies read up to
//! `server.http.max_body_bytes`, errors as `{"error": {message, type, param, code}}` with the
//! status and `retry-after` headers each SDK's retry logic reads.
//!
//! - [`openai`]: `GET /v1/models` and `POST /v1/chat/completions`.
//! - [`anthropic`]: `POST /v1/messages` and `POST /v1/messages/count_tokens`.

pub mod anthropic;
pub mod openai;
pub mod tools;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body::Body as HttpBody;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::cache::{self, Lookup};
use super::exec::{self, Prepared};
use super::governance::layer::{Denied, Slot, admit};
use super::governance::meter::Meter;
use super::governance::usage::Api;
use super::governance::{
    self, ANONYMOUS, Governance, InputError, LimitType, Limits, Refusal, fields,
};
use super::state::State;
use crate::config::generated::server::key;
use crate::llm::{Message, ProviderKind, ToolChoice, ToolDef};
use crate::proto::{ExecuteError, ExecuteRequest};

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct Http {
    pub state: Arc<ArcSwap<State>>,
    pub gov: Arc<Governance>,
}

/// The HTTP API's routes; anything else is a 404 in OpenAI's shape.
pub fn router(http: Http) -> axum::Router {
    axum::Router::new()
        .route("/v1/models", axum::routing::get(openai::models))
        .route(
            "/v1/chat/completions",
            axum::routing::post(openai::chat_completions),
        )
        .route(anthropic::PATH, axum::routing::post(anthropic::messages))
        .route(
            "/v1/messages/count_tokens",
            axum::routing::post(anthropic::count_tokens),
        )
        .fallback(|uri: http::Uri| async move {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found_error",
                format!(
                    "no route for {}; the HTTP API serves GET /v1/models, POST /v1/chat/completions, POST /v1/messages and POST /v1/messages/count_tokens",
                    shown(uri.path())
                ),
            )
        })
        .with_state(http)
}

/// An error in OpenAI's shape with its HTTP status.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// OpenAI's `type`: `invalid_request_error`, `authentication_error`, `rate_limit_error`...
    pub kind: &'static str,
    pub message: String,
    /// The request field at fault, when there is one.
    pub param: Option<String>,
    pub code: Option<&'static str>,
    /// When a retry can succeed (`retry-after`, `retry-after-ms`).
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            param: None,
            code: None,
            retry_after: None,
        }
    }

    /// A 400 about the request field `param`.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            param: Some(param.into()),
            ..ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
        }
    }

    pub fn with_code(self, code: &'static str) -> ApiError {
        ApiError {
            code: Some(code),
            ..self
        }
    }

    /// The JSON body: `{"error": {"message", "type", "param", "code"}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

/// `value` as an `application/json` response with `status`.
pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    (
        status,
        [(http::header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

impl ApiError {
    /// The error type of Anthropic's shape for this status.
    pub fn anthropic_type(&self) -> &'static str {
        match self.status.as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            503 => "overloaded_error",
            504 => "timeout_error",
            400..=499 => "invalid_request_error",
            _ => "api_error",
        }
    }

    /// Anthropic's JSON body: `{"type": "error", "error": {"type", "message"}}`. The shape has
    /// no `param`, so the message names the field at fault when it does not already.
    pub fn anthropic_body(&self) -> serde_json::Value {
        let message = match &self.param {
            Some(p) if !self.message.contains(p.as_str()) => format!("{p}: {}", self.message),
            _ => self.message.clone(),
        };
        serde_json::json!({"type": "error", "error": {
            "type": self.anthropic_type(),
            "message": message,
        }})
    }

    /// The error as a response in Anthropic's shape.
    pub fn into_anthropic(self) -> Response {
        let resp = json_response(self.status, &self.anthropic_body());
        self.with_retry_headers(resp)
    }

    fn with_retry_headers(&self, mut resp: Response) -> Response {
        if let Some(after) = self.retry_after {
            let ms = after.as_nanos().div_ceil(1_000_000).max(1);
            let secs = ms.div_ceil(1000);
            let h = resp.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                h.insert(http::header::RETRY_AFTER, v);
            }
            if let Ok(v) = HeaderValue::from_str(&ms.to_string()) {
                h.insert("retry-after-ms", v);
            }
        }
        resp
    }
}

impl IntoResponse for ApiError {
    /// The error as a response in OpenAI's shape.
    fn into_response(self) -> Response {
        let resp = json_response(self.status, &self.body());
        self.with_retry_headers(resp)
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        let (status, kind, code) = match r.limit {
            LimitType::Input => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "input_too_long",
            ),
            LimitType::Quota => (
                StatusCode::TOO_MANY_REQUESTS,
                "insufficient_quota",
                "insufficient_quota",
            ),
            LimitType::Rpm | LimitType::Concurrency => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "rate_limit_exceeded",
            ),
        };
        ApiError {
            retry_after: r.retry_after,
            ..ApiError::new(status, kind, r.message).with_code(code)
        }
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> ApiError {
        match d {
            Denied::Limit(r) => r.into(),
            Denied::Unavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "the limit store is unreachable",
            ),
        }
    }
}

impl From<ExecuteError> for ApiError {
    /// A request the server could not prepare (model resolution, provider set-up).
    fn from(e: ExecuteError) -> ApiError {
        use super::exec::code;
        let msg = e.error_message;
        match e.error_code.as_str() {
            code::MODEL_NOT_FOUND | code::UPSTREAM_MODEL_NOT_FOUND => ApiError {
                param: Some("model".to_owned()),
                ..ApiError::new(StatusCode::NOT_FOUND, "invalid_request_error", msg)
                    .with_code("model_not_found")
            },
            code::NO_MODEL => ApiError::invalid("model", msg),
            code::INVALID_REQUEST => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", msg)
            }
            code::PROVIDER_RATE_LIMITED => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", msg)
            }
            code::TIMEOUT => ApiError::new(StatusCode::GATEWAY_TIMEOUT, "timeout_error", msg),
            code::BAD_PROVIDER_RESPONSE | code::PROVIDER_AUTH_FAILED => {
                ApiError::new(StatusCode::BAD_GATEWAY, "api_error", msg)
            }
            _ => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "api_error", msg),
        }
    }
}

/// The provider failure `e` of a call to `model` after `retries` retries, as the client sees it
/// (the provider's own text is logged, scrubbed, not sent).
pub fn provider_failure(
    e: &crate::llm::ProviderError,
    model: &super::catalog::ModelDef,
    retries: u32,
) -> ApiError {
    let retry_after = e.retry_after();
    let mut err = ApiError::from(super::exec::provider_error(e, model, retries));
    err.retry_after = retry_after.filter(|_| err.status == StatusCode::TOO_MANY_REQUESTS);
    err
}

/// The token subject of a request: the JWT in `Authorization: Bearer` or `x-api-key`,
/// verified as gRPC verifies it; both headers with different tokens are refused.
pub fn identify(state: &State, headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(verifier) = &state.verifier else {
        return Ok(ANONYMOUS.to_owned());
    };
    let unauthorized =
        |m: String| ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", m);
    let text = |name: &str| -> Result<Option<&str>, ApiError> {
        headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map_err(|_| unauthorized(format!("the {name} header is not ASCII text")))
            })
            .transpose()
    };
    let bearer = text("authorization")?;
    let key = text("x-api-key")?.map(str::trim);
    let claims = match (bearer, key) {
        (Some(b), Some(k)) => {
            if b.strip_prefix("Bearer ").map(str::trim) != Some(k) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "the Authorization and x-api-key headers carry different tokens; send one of them",
                )
                .with_code("conflicting_credentials"));
            }
            verifier.verify(k)
        }
        (None, Some(k)) => verifier.verify(k),
        (b, None) => verifier.verify_header(b),
    };
    claims.map(|c| c.sub).map_err(|e| {
        unauthorized(format!(
            "{e} (send the token as `Authorization: Bearer <token>` or `x-api-key: <token>`)"
        ))
    })
}

/// A request's server state, token subject (see [`identify`]) and JSON body (see
/// [`json_body`], bounded by `server.http.max_body_bytes`), checked in that order.
pub async fn request(
    http: &Http,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<
    (
        Arc<State>,
        String,
        serde_json::Map<String, serde_json::Value>,
    ),
    ApiError,
> {
    let state = http.state.load_full();
    let sub = identify(&state, headers)?;
    let max = usize::try_from(state.config.server.http.max_body_bytes).unwrap_or(usize::MAX);
    let body = json_body(headers, body, max).await?;
    Ok((state, sub, body))
}

/// The request body, read up to `max` bytes (413 beyond), which must be JSON by its
/// content-type (415 otherwise) and an object.
pub async fn json_body(
    headers: &HeaderMap,
    body: axum::body::Body,
    max: usize,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    let ctype = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ctype.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request_error",
            format!(
                "the content-type is `{}`; send the body as `application/json`",
                shown(ctype)
            ),
        ));
    }
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            format!(
                "the request body is over {max} bytes ({}); send less",
                key::SERVER_HTTP_MAX_BODY_BYTES
            ),
        )
        .with_code("request_too_large")
    };
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let bytes = http_body_util::Limited::new(body, max)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "the request body could not be read",
                )
            }
        })?
        .to_bytes();
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "the request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("the request body is not valid JSON: {e}"),
        )
        .with_code("invalid_json")),
    }
}

/// A chat request, checked: what goes upstream and what the response needs.
#[derive(Debug, Default)]
pub struct Chat {
    pub model: String,
    pub system: Vec<String>,
    pub messages: Vec<Message>,
    pub stream: bool,
    pub include_usage: bool,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub stop: Vec<String>,
    /// The schema of `response_format`, as JSON text.
    pub schema: Option<String>,
    /// Where the text counted against the input limit comes from: each request field by the
    /// API's own path (`messages[3].content`, `system`, `response_format.json_schema`) and its
    /// characters, so a refusal names the field to shorten.
    pub origins: Vec<(String, u64)>,
    /// The tools the model may call.
    pub tools: Vec<ToolDef>,
    pub tool_choice: Option<ToolChoice>,
}

impl Chat {
    /// The fields gRPC's checks and model resolution read. Tool definitions, tool calls and
    /// tool results count as user text, so `max_input_length` bounds them too.
    fn execute_request(&self) -> ExecuteRequest {
        let mut user: Vec<String> = Vec::new();
        for m in &self.messages {
            user.extend(m.content.iter().cloned());
            user.extend(m.tool_calls.iter().map(tools::call_text));
            user.extend(m.tool_results.iter().flat_map(tools::result_text));
        }
        user.extend(self.tools.iter().map(tools::input_text));
        ExecuteRequest {
            system_fragments: self.system.clone(),
            user_fragments: user,
            model_name: Some(self.model.clone()),
            response_model_schema: self.schema.clone(),
            ..Default::default()
        }
    }

    /// Record that the request field `param` sends `text` upstream.
    pub fn origin<'a>(&mut self, param: &str, text: impl IntoIterator<Item = &'a String>) {
        let chars = text.into_iter().map(|t| t.chars().count() as u64).sum();
        self.origins.push((param.to_owned(), chars));
    }

    /// Tokens of the request by the estimate the meter charges when a provider reports none.
    pub fn estimated_input_tokens(&self) -> u64 {
        governance::meter::estimate_tokens(governance::request_chars(&self.execute_request()))
    }

    /// A refusal of the input checks shared with gRPC, naming this API's fields.
    fn input_error(&self, e: InputError) -> ApiError {
        match e {
            InputError::Field(f) => {
                let name = match f.field() {
                    fields::field::MODEL_NAME => "model",
                    fields::field::RESPONSE_MODEL_SCHEMA => SCHEMA_PARAM,
                    other => other,
                };
                ApiError::invalid(name, f.message_as(name))
            }
            InputError::TooLong { chars, max } => {
                let tool_chars: u64 = self
                    .tools
                    .iter()
                    .map(|t| tools::input_text(t).chars().count() as u64)
                    .sum();
                let origins: Vec<(String, u64)> = self
                    .origins
                    .iter()
                    .cloned()
                    .chain([("tools".to_owned(), tool_chars)])
                    .collect();
                let longest = origins
                    .iter()
                    .max_by_key(|(_, n)| *n)
                    .map_or(("messages", 0), |(p, n)| (p.as_str(), *n));
                let mut fields: Vec<&str> = vec![];
                for (p, _) in origins.iter().filter(|(_, n)| *n > 0) {
                    let top = p.split(['[', '.']).next().unwrap_or(p);
                    if !fields.contains(&top) {
                        fields.push(top);
                    }
                }
                ApiError::invalid(
                    longest.0,
                    format!(
                        "the request has {chars} characters of text in {}; the limit is {max}; \
                         the longest part is {} ({} characters)",
                        fields.join(", "),
                        longest.0,
                        longest.1
                    ),
                )
                .with_code("input_too_long")
            }
        }
    }

    /// The checks a chat passes before it may go upstream, after admission: the fields gRPC
    /// checks and the input limit ([`Governance::input_error`]), then the model and provider;
    /// the call ready to go.
    pub fn check(
        &self,
        gov: &Arc<Governance>,
        state: &State,
        sub: &str,
        limits: &Limits,
    ) -> Result<Prepared, ApiError> {
        let req = self.execute_request();
        gov.input_error(sub, limits, &req)
            .map_err(|e| self.input_error(e))?;
        let mut p = exec::prepare(state, gov, &req)?;
        p.chat.system = self.system.clone();
        p.chat.user = vec![];
        p.chat.messages = self.messages.clone();
        p.chat.temperature = self.temperature;
        p.chat.max_tokens = self.max_tokens;
        p.chat.stop = self.stop.clone();
        p.chat.tools = self.tools.clone();
        p.chat.tool_choice = self.tool_choice.clone();
        // Any deployment or fallback the call may go to must take tools.
        let ollama = p
            .route
            .targets
            .iter()
            .any(|t| t.client.kind() == ProviderKind::Ollama);
        if p.chat.uses_tools() && ollama {
            let param = if self.tools.is_empty() {
                "messages"
            } else {
                "tools"
            };
            return Err(ApiError::invalid(
                param,
                format!(
                    "`tools`, tool calls and tool results are not supported for `{}`, a model served by Ollama; use a model of another provider or send no tools",
                    self.model
                ),
            )
            .with_code("unsupported_parameter"));
        }
        Ok(p)
    }
}

/// The request path of the JSON schema of `response_format`.
pub const SCHEMA_PARAM: &str = "response_format.json_schema";

/// A chat call past its checks: ready to go upstream, metered, holding its admission slot.
pub struct Admitted {
    pub p: Prepared,
    pub meter: Meter,
    /// Its use of the response cache.
    pub lookup: Lookup,
    pub slot: Slot,
    /// The subject's request timeout.
    pub timeout: Option<Duration>,
}

/// Admit `chat` of `sub`, which came in on `api` (its `method` in the metrics) with `headers`,
/// as gRPC admits an Execute: the limits, then the input bounds, then the model and provider,
/// then its use of the response cache (`Cache-Control: no-cache` skips the lookup).
pub async fn admit_chat(
    http: &Http,
    sub: String,
    chat: &Chat,
    headers: &HeaderMap,
    api: Api,
    method: &str,
) -> Result<Admitted, ApiError> {
    let state = http.state.load_full();
    let req = chat.execute_request();
    let slot = admit(http.gov.clone(), &state, sub.clone(), method.to_owned()).await?;
    let limits = Limits::for_sub(&state.config.server.limits, &sub);
    let p = chat.check(&http.gov, &state, &sub, &limits)?;
    let meter = Meter::new(
        http.gov.call_via(sub.clone(), api),
        p.model.clone(),
        governance::request_chars(&req),
    )
    .following(p.route.served.clone());
    let bypass = cache::http_bypass(headers);
    let lookup = Lookup::new(&http.gov, &state, &sub, &p, bypass, &meter);
    Ok(Admitted {
        p,
        meter,
        lookup,
        slot,
        timeout: limits.timeout,
    })
}

/// A whole (not streamed) answer within the call's `deadline`, through the response cache
/// (`lookup`), metered, for both APIs: the answer's text and usage go to `meter`; a timeout or
/// a provider failure is recorded and becomes the HTTP error. `slot` (the admission) is held
/// until the answer is in.
pub async fn complete(
    p: &Prepared,
    lookup: &Lookup,
    meter: &mut Meter,
    deadline: Option<Duration>,
    slot: Slot,
) -> Result<crate::llm::ChatResponse, ApiError> {
    let answer = match deadline {
        None => lookup.complete(p).await,
        Some(limit) => match tokio::time::timeout(limit, lookup.complete(p)).await {
            Ok(r) => r,
            Err(_) => {
                meter.failed("timeout");
                return Err(timeout(limit));
            }
        },
    };
    drop(slot);
    match answer {
        Ok((resp, _)) => {
            meter.text(&resp.text);
            for call in &resp.tool_calls {
                meter.text(&call.name);
                meter.text(&call.arguments);
            }
            meter.usage(resp.usage);
            meter.end(governance::usage::Outcome::Completed);
            Ok(resp)
        }
        Err((e, retries)) => {
            meter.failed(e.code());
            meter.end(governance::usage::Outcome::Error);
            Err(provider_failure(&e, &p.served().model, retries))
        }
    }
}

pub fn timeout(limit: std::time::Duration) -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "timeout_error",
        format!(
            "the request did not finish within its {}s timeout",
            limit.as_secs()
        ),
    )
    .with_code("timeout")
}

/// Longest piece of client text quoted back in an error.
const SHOWN_CHARS: usize = 64;

/// Client text for an error message: at most [`SHOWN_CHARS`] characters, control characters
/// escaped.
pub fn shown(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(SHOWN_CHARS)
        .flat_map(char::escape_default)
        .collect();
    if text.chars().nth(SHOWN_CHARS).is_some() {
        out.push_str("...");
    }
    out
}

/// Whether a request is gRPC (its content-type starts `application/grpc`).
fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.get(..16)
                .is_some_and(|p| p.eq_ignore_ascii_case("application/grpc"))
        })
}

/// The tower layer that steers non-gRPC requests to the HTTP router.
#[derive(Clone)]
pub struct SteerLayer {
    http: Http,
    router: axum::Router,
}

impl SteerLayer {
    pub fn new(http: Http) -> SteerLayer {
        SteerLayer {
            router: router(http.clone()),
            http,
        }
    }
}

impl<S> tower::Layer<S> for SteerLayer {
    type Service = Steer<S>;

    fn layer(&self, inner: S) -> Steer<S> {
        Steer {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Steer<S> {
    inner: S,
    layer: SteerLayer,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B, ResB> tower::Service<http::Request<B>> for Steer<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
    ResB: HttpBody<Data = Bytes> + Send + 'static,
    ResB::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if is_grpc(req.headers()) {
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            return Box::pin(async move { Ok(inner.call(req).await?.map(tonic::body::Body::new)) });
        }
        let early = if req.version() < http::Version::HTTP_11 {
            Some(
                ApiError::new(
                    StatusCode::UPGRADE_REQUIRED,
                    "invalid_request_error",
                    "HTTP/1.0 is not supported; use HTTP/1.1 or HTTP/2",
                )
                .with_code("unsupported_http_version"),
            )
        } else if !self.layer.http.state.load().config.server.http.enabled {
            Some(
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found_error",
                    format!(
                        "the HTTP API is off on this server ({})",
                        key::SERVER_HTTP_ENABLED
                    ),
                )
                .with_code("http_api_disabled"),
            )
        } else {
            None
        };
        if let Some(err) = early {
            let mut resp = if req.uri().path().starts_with(anthropic::PATH) {
                err.into_anthropic()
            } else {
                err.into_response()
            };
            if resp.status() == StatusCode::UPGRADE_REQUIRED {
                resp.headers_mut()
                    .insert(http::header::UPGRADE, HeaderValue::from_static("HTTP/1.1"));
            }
            return Box::pin(async move { Ok(resp.map(tonic::body::Body::new)) });
        }
        let router = self.layer.router.clone();
        Box::pin(async move {
            let resp = match router.oneshot(req.map(axum::body::Body::new)).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
            Ok(resp.map(tonic::body::Body::new))
        })
    }
}
