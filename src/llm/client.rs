//! The HTTP client for one upstream provider: builds requests, sends them over a shared
//! connection pool, and maps answers and failures to provider-neutral types.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use reqwest::Url;

use super::error::ProviderError;
use super::provider::{ChatRequest, ChatResponse, ProviderKind};
use super::stream::{self as chat_stream, ChatStream};
use super::{anthropic, h1, ollama, openai};

/// The `user-agent` of every upstream request.
const USER_AGENT: &str = concat!("vibectl/", env!("CARGO_PKG_VERSION"));

/// Largest error body read to build an error message, in bytes.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Timeouts for upstream calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderOptions {
    /// Limit on establishing a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Limit on any single wait for bytes: the response head, or the next piece of a body.
    /// For a stream this is the longest silence tolerated between chunks.
    pub read_timeout: Duration,
    /// Limit on a whole non-streaming call; streams are bounded by `read_timeout` alone.
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
    request_timeout: Option<Duration>,
    connect_timeout: Duration,
    read_timeout: Duration,
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
            request_timeout: options.request_timeout,
            connect_timeout: options.connect_timeout,
            read_timeout: options.read_timeout,
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
    api_key: Option<String>,
    http: HttpClient,
    /// The lean HTTP/1.1 path for whole answers from a plain-`http://` endpoint.
    lean: Option<Arc<h1::Pool>>,
}

impl fmt::Debug for ProviderClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderClient")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "**REDACTED**"))
            .finish_non_exhaustive()
    }
}

impl ProviderClient {
    /// A client with its own connection pool. `base_url` defaults to
    /// [`ProviderKind::default_base_url`]; for OpenAI it includes the `/v1` prefix.
    pub fn new(
        kind: ProviderKind,
        base_url: Option<&str>,
        api_key: Option<String>,
        options: ProviderOptions,
    ) -> Result<Self, ProviderError> {
        let http = HttpClient::new(&options)?;
        Self::with_http(kind, base_url, api_key, &http)
    }

    /// A client that shares `http`'s connection pool and timeouts.
    pub fn with_http(
        kind: ProviderKind,
        base_url: Option<&str>,
        api_key: Option<String>,
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
        let lean = h1::Pool::for_url(&endpoint, http.connect_timeout, &|v| std::env::var(v).ok())
            .map(Arc::new);
        Ok(ProviderClient {
            lean,
            kind,
            base_url,
            endpoint,
            api_key: api_key.filter(|k| !k.is_empty()),
            http: http.clone(),
        })
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
        let key = self.api_key.as_deref();
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

    /// Send the whole request and wait for the whole answer.
    pub async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let body = match &self.lean {
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
                let limit = self.http.request_timeout.unwrap_or(self.http.read_timeout);
                let answer = pool.post(&headers, body, limit).await?;
                if !answer.parts.status.is_success() {
                    let body = &answer.body[..answer.body.len().min(MAX_ERROR_BODY)];
                    return Err(ProviderError::from_status(
                        answer.parts.status,
                        &answer.parts.headers,
                        body,
                    ));
                }
                answer.body
            }
            None => {
                let mut builder = self.request(req, false);
                if let Some(t) = self.http.request_timeout {
                    builder = builder.timeout(t);
                }
                let resp = send(builder).await?;
                resp.bytes()
                    .await
                    .map_err(|e| ProviderError::from_reqwest(&e))?
            }
        };
        match self.kind {
            ProviderKind::Anthropic => anthropic::parse_response(&body),
            ProviderKind::OpenAi => openai::parse_response(&body),
            ProviderKind::Ollama => ollama::parse_response(&body),
        }
    }

    /// Send the request and stream the answer. Nothing is sent until the stream is first
    /// polled. Dropping the stream drops the HTTP response, which closes the upstream
    /// connection: that is how a cancelled call stops the provider's work.
    pub fn stream(&self, req: &ChatRequest) -> ChatStream {
        let builder = self.request(req, true);
        let kind = self.kind;
        let start = async move {
            let resp = send(builder).await?;
            Ok::<ChatStream, ProviderError>(match kind {
                ProviderKind::Anthropic => chat_stream::decode(
                    chat_stream::sse_frames(resp),
                    anthropic::Decoder::default(),
                ),
                ProviderKind::OpenAi => {
                    chat_stream::decode(chat_stream::sse_frames(resp), openai::Decoder::default())
                }
                ProviderKind::Ollama => chat_stream::decode(
                    chat_stream::ndjson_frames(resp),
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

/// Send, and turn a non-success status into the matching error.
async fn send(builder: reqwest::RequestBuilder) -> Result<reqwest::Response, ProviderError> {
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
    Err(ProviderError::from_status(status, &headers, &body))
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

/// The schema as sent upstream: the `$schema` dialect marker is dropped, since some providers
/// reject keywords they do not know at the top level.
pub(crate) fn clean_schema(schema: &serde_json::Value) -> serde_json::Value {
    let mut schema = schema.clone();
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("$schema");
    }
    schema
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
            Some("k".into()),
            &http,
        )
        .expect("ok");
        assert_eq!(c.endpoint(), "http://127.0.0.1:9/v1/messages");
        assert!(!format!("{c:?}").contains("\"k\""));
        let bad = ProviderClient::with_http(ProviderKind::Ollama, Some("ftp://x"), None, &http);
        assert!(matches!(bad, Err(ProviderError::Config { .. })));
    }
}
