//! The HTTP client for one upstream provider: builds requests, sends them over a shared
//! connection pool, and maps answers and failures to provider-neutral types.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt, TryStreamExt};
use reqwest::Url;

use super::error::ProviderError;
use super::provider::{ChatRequest, ChatResponse, ProviderKind};
use super::stream::{self as chat_stream, ChatStream};
use super::{anthropic, h1, ollama, openai};
use crate::config::Secret;

/// The `user-agent` of every upstream request.
const USER_AGENT: &str = concat!("vibectl/", env!("CARGO_PKG_VERSION"));

/// Largest error body read to build an error message, in bytes.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The largest answer body accepted from a provider, whole or streamed, in bytes; a longer one
/// fails the call with a `BadResponse` instead of being held in memory.
pub const MAX_RESPONSE_BYTES: u64 = 32 * 1024 * 1024;

/// How long a stream may run in all when the caller sets no limit of its own.
const DEFAULT_STREAM_TOTAL: Duration = Duration::from_secs(30 * 60);

/// Bounds on the calls of one provider client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// One attempt: connecting, the response head, and for a whole answer its whole body.
    pub attempt: Duration,
    /// The longest silence between two pieces of a streamed body.
    pub stream_idle: Duration,
    /// How long one streamed body may run in all.
    pub stream_total: Duration,
}

impl CallLimits {
    fn from_options(options: &ProviderOptions) -> CallLimits {
        CallLimits {
            attempt: options.request_timeout.unwrap_or(options.read_timeout),
            stream_idle: options.read_timeout,
            stream_total: DEFAULT_STREAM_TOTAL,
        }
    }
}

/// Timeouts for upstream calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderOptions {
    /// Limit on establishing a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Limit on any single wait for bytes: the response head, or the next piece of a body.
    /// For a stream this is the longest silence tolerated between chunks.
    pub read_timeout: Duration,
    /// Limit on a whole non-streaming call; a stream is bounded by `read_timeout` between
    /// pieces and by a default total (see [`CallLimits`] to set both per client).
    pub request_timeout: Option<Duration>,
}

impl Default for ProviderOptions {
    fn default() -> Self {
        ProviderOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(300),
            request_timeout: None,
        }
    }
}

/// A pooled HTTP client. Cloning is cheap and clones share one connection pool, so build one
/// per process (or per runtime) and hand it to every [`ProviderClient`].
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    options: ProviderOptions,
}

impl HttpClient {
    /// A client with TCP_NODELAY and the given connect and read timeouts.
    pub fn new(options: &ProviderOptions) -> Result<Self, ProviderError> {
        let inner = reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            // A provider API answers a POST itself; a redirect is reported, not followed.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| ProviderError::Config {
                detail: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(HttpClient {
            inner,
            options: *options,
        })
    }
}

/// A client for one provider endpoint; cheap to clone.
#[derive(Clone)]
pub struct ProviderClient {
    kind: ProviderKind,
    base_url: String,
    /// The URL every request goes to, parsed once.
    endpoint: Url,
    api_key: Option<Secret>,
    http: HttpClient,
    /// The lean HTTP/1.1 path for whole answers from a plain-`http://` endpoint.
    lean: Option<Arc<h1::Pool>>,
    limits: CallLimits,
    /// When the whole call, retries included, must be over.
    deadline: Option<Instant>,
    /// Streams are served by a whole call, sent as one piece.
    whole_only: bool,
}

impl fmt::Debug for ProviderClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderClient")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

impl ProviderClient {
    /// A client with its own connection pool. `base_url` defaults to
    /// [`ProviderKind::default_base_url`]; for OpenAI it includes the `/v1` prefix.
    pub fn new(
        kind: ProviderKind,
        base_url: Option<&str>,
        api_key: Option<Secret>,
        options: ProviderOptions,
    ) -> Result<Self, ProviderError> {
        let http = HttpClient::new(&options)?;
        Self::with_http(kind, base_url, api_key, &http)
    }

    /// A client that shares `http`'s connection pool and timeouts.
    pub fn with_http(
        kind: ProviderKind,
        base_url: Option<&str>,
        api_key: Option<Secret>,
        http: &HttpClient,
    ) -> Result<Self, ProviderError> {
        let base = base_url.unwrap_or(kind.default_base_url()).trim();
        let parsed = Url::parse(base).map_err(|e| ProviderError::Config {
            detail: format!("invalid base URL `{base}`: {e}"),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(ProviderError::Config {
                detail: format!("base URL `{base}` must be an http:// or https:// URL with a host"),
            });
        }
        let base_url = base.trim_end_matches('/').to_string();
        let endpoint = endpoint_of(kind, &base_url);
        let endpoint = Url::parse(&endpoint).map_err(|e| ProviderError::Config {
            detail: format!("invalid endpoint URL `{endpoint}`: {e}"),
        })?;
        let lean = h1::Pool::for_url(&endpoint, http.options.connect_timeout, &|v| {
            std::env::var(v).ok()
        })
        .map(Arc::new);
        Ok(ProviderClient {
            lean,
            kind,
            base_url,
            endpoint,
            api_key: api_key.filter(|k| !k.is_blank()),
            limits: CallLimits::from_options(&http.options),
            http: http.clone(),
            deadline: None,
            whole_only: false,
        })
    }

    /// This client with its own bounds (instead of the shared pool's timeouts).
    pub fn with_limits(mut self, limits: CallLimits) -> Self {
        self.limits = limits;
        self
    }

    /// This client for one call that must be over by `deadline`, retries included: each
    /// attempt gets at most what is left.
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// This client answering [`stream`](Self::stream) with one whole call, sent as one piece.
    pub fn whole_answers_only(mut self) -> Self {
        self.whole_only = true;
        self
    }

    /// The time one attempt may take: its own limit, or what is left of the call's deadline.
    fn attempt_limit(&self) -> Result<Duration, ProviderError> {
        let left = self
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()));
        match left {
            Some(left) if left.is_zero() => Err(ProviderError::Timeout {
                detail: "the call's deadline passed before another attempt".to_owned(),
            }),
            Some(left) => Ok(left.min(self.limits.attempt)),
            None => Ok(self.limits.attempt),
        }
    }

    pub fn kind(&self) -> ProviderKind {
        self.kind
    }

    /// The base URL without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The full URL requests are sent to.
    pub fn endpoint(&self) -> String {
        self.endpoint.to_string()
    }

    fn request(&self, req: &ChatRequest, stream: bool) -> reqwest::RequestBuilder {
        let key = self.api_key.as_ref();
        let builder = self.http.inner.post(self.endpoint.clone());
        let (builder, body) = match self.kind {
            ProviderKind::Anthropic => (
                anthropic::headers(builder, key),
                anthropic::body(req, stream),
            ),
            ProviderKind::OpenAi => (openai::headers(builder, key), openai::body(req, stream)),
            ProviderKind::Ollama => (ollama::headers(builder, key), ollama::body(req, stream)),
        };
        let builder = match (stream, self.kind) {
            (true, ProviderKind::Ollama) => builder.header("accept", "application/x-ndjson"),
            (true, _) => builder.header("accept", "text/event-stream"),
            (false, _) => builder.header("accept", "application/json"),
        };
        builder
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
    }

    /// Send the whole request and wait for the whole answer, within one attempt's limit and
    /// at most [`MAX_RESPONSE_BYTES`] of body.
    pub async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let limit = self.attempt_limit()?;
        let body = tokio::time::timeout(limit, self.complete_body(req, limit))
            .await
            .map_err(|_| ProviderError::Timeout {
                detail: format!("no whole answer from the provider within {limit:?}"),
            })
            .and_then(|r| r)?;
        match self.kind {
            ProviderKind::Anthropic => anthropic::parse_response(&body, !req.tools.is_empty()),
            ProviderKind::OpenAi => openai::parse_response(&body),
            ProviderKind::Ollama => ollama::parse_response(&body),
        }
    }

    /// The body of a successful whole answer.
    async fn complete_body(
        &self,
        req: &ChatRequest,
        limit: Duration,
    ) -> Result<bytes::Bytes, ProviderError> {
        match &self.lean {
            Some(pool) => {
                let built =
                    self.request(req, false)
                        .build()
                        .map_err(|e| ProviderError::Config {
                            detail: format!("cannot build the request: {e}"),
                        })?;
                let mut headers = built.headers().clone();
                headers.insert(
                    reqwest::header::USER_AGENT,
                    reqwest::header::HeaderValue::from_static(USER_AGENT),
                );
                let body = built
                    .body()
                    .and_then(|b| b.as_bytes())
                    .map(bytes::Bytes::copy_from_slice)
                    .unwrap_or_default();
                let answer = pool.post(&headers, body, limit, MAX_RESPONSE_BYTES).await?;
                if !answer.parts.status.is_success() {
                    let body = &answer.body[..answer.body.len().min(MAX_ERROR_BODY)];
                    return Err(status_error(
                        answer.parts.status,
                        &answer.parts.headers,
                        body,
                        self.api_key.as_ref(),
                    ));
                }
                Ok(answer.body)
            }
            None => {
                let resp = send(
                    self.request(req, false).timeout(limit),
                    self.api_key.as_ref(),
                )
                .await?;
                if resp
                    .content_length()
                    .is_some_and(|n| n > MAX_RESPONSE_BYTES)
                {
                    return Err(chat_stream::too_large(MAX_RESPONSE_BYTES));
                }
                let limits = chat_stream::BodyLimits {
                    idle: limit,
                    deadline: Instant::now() + limit,
                    max_bytes: MAX_RESPONSE_BYTES,
                };
                chat_stream::collect(chat_stream::bounded(chat_stream::body_of(resp), limits)).await
            }
        }
    }

    /// Send the request and stream the answer. Nothing is sent until the stream is first
    /// polled. Dropping the stream drops the HTTP response, which closes the upstream
    /// connection: that is how a cancelled call stops the provider's work.
    pub fn stream(&self, req: &ChatRequest) -> ChatStream {
        if self.whole_only {
            let this = self.clone();
            let req = req.clone();
            let whole = async move {
                let resp = this.complete(&req).await?;
                Ok::<_, ProviderError>(stream::iter(resp.into_events().into_iter().map(Ok)))
            };
            return stream::once(whole).try_flatten().boxed();
        }
        let builder = self.request(req, true);
        let kind = self.kind;
        let tools = !req.tools.is_empty();
        let this = self.clone();
        let start = async move {
            let limit = this.attempt_limit()?;
            let resp = tokio::time::timeout(limit, send(builder, this.api_key.as_ref()))
                .await
                .map_err(|_| ProviderError::Timeout {
                    detail: format!("no answer from the provider within {limit:?}"),
                })??;
            let body = chat_stream::bounded(
                chat_stream::body_of(resp),
                chat_stream::BodyLimits {
                    idle: this.limits.stream_idle,
                    deadline: Instant::now() + this.limits.stream_total,
                    max_bytes: MAX_RESPONSE_BYTES,
                },
            );
            Ok::<ChatStream, ProviderError>(match kind {
                ProviderKind::Anthropic => chat_stream::decode(
                    chat_stream::sse_frames(body),
                    anthropic::Decoder::new(tools),
                ),
                ProviderKind::OpenAi => {
                    chat_stream::decode(chat_stream::sse_frames(body), openai::Decoder::default())
                }
                ProviderKind::Ollama => chat_stream::decode(
                    chat_stream::ndjson_frames(body),
                    ollama::Decoder::default(),
                ),
            })
        };
        stream::once(start).try_flatten().boxed()
    }
}

/// The URL requests of `kind` go to, for a base URL without a trailing slash.
fn endpoint_of(kind: ProviderKind, base_url: &str) -> String {
    match kind {
        ProviderKind::Anthropic => anthropic::endpoint(base_url),
        ProviderKind::OpenAi => openai::endpoint(base_url),
        ProviderKind::Ollama => ollama::endpoint(base_url),
    }
}

/// The error for a non-success answer, with `key` (which a provider may echo back) taken out
/// of the body before any of it is kept.
fn status_error(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    key: Option<&Secret>,
) -> ProviderError {
    match key {
        Some(key) => ProviderError::from_status(status, headers, &key.scrub(body)),
        None => ProviderError::from_status(status, headers, body),
    }
}

/// Send, and turn a non-success status into the matching error.
async fn send(
    builder: reqwest::RequestBuilder,
    key: Option<&Secret>,
) -> Result<reqwest::Response, ProviderError> {
    let resp = builder
        .send()
        .await
        .map_err(|e| ProviderError::from_reqwest(&e))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let headers = resp.headers().clone();
    let body = read_capped(resp, MAX_ERROR_BODY).await;
    Err(status_error(status, &headers, &body, key))
}

/// Up to `cap` bytes of a body; a body that fails half-way yields what was read.
async fn read_capped(resp: reqwest::Response, cap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut body = resp.bytes_stream();
    while let Some(Ok(chunk)) = body.next().await {
        let room = cap.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= cap {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_defaults_and_is_trimmed() {
        let http = HttpClient::new(&ProviderOptions::default()).expect("client");
        let c = ProviderClient::with_http(ProviderKind::OpenAi, None, None, &http).expect("ok");
        assert_eq!(c.endpoint(), "https://api.openai.com/v1/chat/completions");
        let c = ProviderClient::with_http(
            ProviderKind::Anthropic,
            Some("http://127.0.0.1:9/"),
            Some(Secret::new("k")),
            &http,
        )
        .expect("ok");
        assert_eq!(c.endpoint(), "http://127.0.0.1:9/v1/messages");
        assert!(!format!("{c:?}").contains("\"k\""));
        let bad = ProviderClient::with_http(ProviderKind::Ollama, Some("ftp://x"), None, &http);
        assert!(matches!(bad, Err(ProviderError::Config { .. })));
    }
}
