//! `ProxyAdapter`: model calls through a vibectl-server over gRPC, on one reused channel, with
//! the profile's timeout and retries applied by the shared [`RetryPolicy`] (jittered backoff,
//! honouring `retry-after-ms`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::OnceCell;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Request, Status};

use super::adapter::{
    AdapterError, AdapterEvent, AdapterStream, LlmMetrics, LlmRequest, LlmResponse, ModelAdapter,
    ServerInfo,
};
use super::error::parse_retry_after_ms;
use super::proxy_url::ProxyUrl;
use super::retry::RetryPolicy;
use crate::config::Secret;
use crate::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;
use crate::proto::{
    ExecuteRequest, ExecutionMetrics, GetServerInfoRequest, execute_response, stream_chunk,
};

/// Where a proxy adapter connects and how patient it is. The token is a [`Secret`] (`Debug`
/// prints `**REDACTED**`; the URL prints its own token as `***`).
#[derive(Debug, Clone)]
pub struct ProxySettings {
    pub url: ProxyUrl,
    /// The token, already looked up (URL, then the profile's jwt_path, then VIBECTL_JWT_TOKEN).
    pub token: Option<Secret>,
    /// A PEM CA bundle to trust instead of the system roots.
    pub ca_bundle: Option<PathBuf>,
    /// A client certificate to present, for servers that require mutual TLS.
    pub client_identity: Option<ClientIdentity>,
    pub timeout: Duration,
    pub retry_attempts: u32,
}

/// PEM files of a client certificate (with any intermediates) and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Adds `authorization: Bearer <token>` to every call; the value is marked sensitive, so
/// `Debug` prints `Sensitive`.
#[derive(Debug, Clone)]
pub struct BearerToken(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(h) = &self.0 {
            req.metadata_mut().insert("authorization", h.clone());
        }
        Ok(req)
    }
}

type Client = VibectlLlmProxyClient<InterceptedService<Channel, BearerToken>>;

/// The adapter over one server.
#[derive(Debug)]
pub struct ProxyAdapter {
    client: Client,
    settings: ProxySettings,
    info: OnceCell<ServerInfo>,
}

/// The longest `retry-after-ms` a client waits for: a server asking for longer (a spent
/// per-minute budget: up to 60 s) would refuse every retry before then, so the call fails at
/// once with the wait.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

impl ProxyAdapter {
    /// Set up the channel (it connects on first use).
    pub fn new(settings: ProxySettings) -> Result<ProxyAdapter, AdapterError> {
        let mut endpoint = Channel::from_shared(settings.url.endpoint())
            .map_err(|e| AdapterError::Config(format!("bad server address {}: {e}", settings.url)))?
            .tcp_nodelay(true)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .timeout(settings.timeout);
        if settings.url.tls {
            let mut tls = ClientTlsConfig::new().domain_name(settings.url.host.clone());
            tls = match &settings.ca_bundle {
                Some(path) => {
                    let pem = std::fs::read(path).map_err(|e| {
                        AdapterError::Config(format!(
                            "cannot read the CA bundle {}: {e}",
                            path.display()
                        ))
                    })?;
                    tls.ca_certificate(Certificate::from_pem(pem))
                }
                None => tls.with_native_roots(),
            };
            if let Some(id) = &settings.client_identity {
                let read = |what: &str, path: &PathBuf| {
                    std::fs::read(path).map_err(|e| {
                        AdapterError::Config(format!(
                            "cannot read the {what} {}: {e}",
                            path.display()
                        ))
                    })
                };
                let cert = read("client certificate", &id.cert)?;
                let key = read("client key", &id.key)?;
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| AdapterError::Config(format!("bad TLS setup: {e}")))?;
        }
        let channel = endpoint.connect_lazy();
        // The one place the token leaves its `Secret`: the header of every call.
        let header = match &settings.token {
            Some(t) => {
                let mut value =
                    MetadataValue::try_from(format!("Bearer {}", t.expose())).map_err(|_| {
                        AdapterError::Config(
                            "the token has characters not allowed in a header".into(),
                        )
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(ProxyAdapter {
            client: VibectlLlmProxyClient::with_interceptor(channel, BearerToken(header)),
            settings,
            info: OnceCell::new(),
        })
    }

    /// Map a gRPC failure to something a user can act on.
    fn map_status(&self, s: &Status) -> AdapterError {
        let msg = s.message().to_owned();
        match s.code() {
            Code::Unauthenticated => AdapterError::TokenRefused { detail: msg },
            Code::ResourceExhausted => AdapterError::RateLimited {
                limit_type: meta(s, "limit-type").unwrap_or_else(|| "limit".into()),
                retry_after_ms: meta(s, "retry-after-ms")
                    .and_then(|v| parse_retry_after_ms(&v))
                    .map_or(0, |d| d.as_millis() as u64),
            },
            Code::DeadlineExceeded | Code::Cancelled
                if msg.contains("Timeout") || s.code() == Code::DeadlineExceeded =>
            {
                AdapterError::Timeout {
                    seconds: self.settings.timeout.as_secs(),
                }
            }
            _ => {
                let detail = source_chain(s);
                let lower = detail.to_ascii_lowercase();
                if lower.contains("invalidcontenttype") {
                    AdapterError::Unreachable {
                        url: self.settings.url.to_string(),
                        detail: "the server does not speak TLS on this port (for plaintext use vibectl-server-insecure://)".into(),
                    }
                } else if lower.contains("certificate")
                    || lower.contains("unknownissuer")
                    || lower.contains("invalid peer")
                {
                    AdapterError::CertUntrusted { detail }
                } else if s.code() == Code::Unavailable
                    || s.code() == Code::Unknown && lower.contains("transport")
                {
                    AdapterError::Unreachable {
                        url: self.settings.url.to_string(),
                        detail,
                    }
                } else {
                    AdapterError::Server {
                        code: format!("{:?}", s.code()),
                        message: detail,
                    }
                }
            }
        }
    }

    /// The profile's retries (`retry_attempts`) with the shared backoff; a server's
    /// `retry-after-ms` is waited when it is no longer than the timeout and [`MAX_RETRY_AFTER`].
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retry_after: MAX_RETRY_AFTER.min(self.settings.timeout),
            ..RetryPolicy::new(self.settings.retry_attempts)
        }
    }

    /// Retry `call` on UNAVAILABLE and RESOURCE_EXHAUSTED by [`Self::retry_policy`].
    async fn with_retries<T, F, Fut>(&self, mut call: F) -> Result<(T, u32), AdapterError>
    where
        F: FnMut(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        let policy = self.retry_policy();
        let mut attempt = 0u32;
        loop {
            match call(self.client.clone()).await {
                Ok(v) => return Ok((v, attempt)),
                Err(s) => {
                    let err = self.map_status(&s);
                    // A refusal a wait cannot cure (input too long) is not retried; nor is one
                    // whose wait is longer than the policy sits through (a spent quota): the
                    // error says how long to wait instead.
                    let (retryable, retry_after) = match &err {
                        AdapterError::CertUntrusted { .. } => (false, None),
                        AdapterError::RateLimited {
                            limit_type,
                            retry_after_ms,
                        } => (
                            limit_type != "input",
                            (*retry_after_ms > 0).then(|| Duration::from_millis(*retry_after_ms)),
                        ),
                        _ => (s.code() == Code::Unavailable, None),
                    };
                    let wait = retryable
                        .then(|| policy.delay(attempt, retry_after, None))
                        .flatten();
                    let Some(wait) = wait else {
                        return Err(err);
                    };
                    tracing::debug!(?wait, attempt, "retrying the proxy call");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    /// GetServerInfo, once per adapter.
    pub async fn info(&self) -> Result<&ServerInfo, AdapterError> {
        self.info
            .get_or_try_init(|| async {
                let (resp, _) = self
                    .with_retries(|mut c| async move {
                        c.get_server_info(GetServerInfoRequest {}).await
                    })
                    .await?;
                let r = resp.into_inner();
                let mut limits = Vec::new();
                if let Some(l) = &r.limits {
                    let named = [
                        ("max_requests_per_minute", l.max_requests_per_minute),
                        ("max_concurrent_requests", l.max_concurrent_requests),
                        ("max_input_length", l.max_input_length),
                        ("request_timeout_seconds", l.request_timeout_seconds),
                    ];
                    limits.extend(named.into_iter().filter_map(|(n, v)| v.map(|v| (n, v))));
                }
                Ok(ServerInfo {
                    name: r.server_name,
                    version: r.server_version,
                    models: r
                        .available_models
                        .into_iter()
                        .map(|m| (m.model_id, m.provider, m.aliases))
                        .collect(),
                    default_model: r.default_model,
                    aliases: r.model_aliases.into_iter().collect(),
                    limits,
                })
            })
            .await
    }

    /// The model id to send: the requested name resolved against the server's models.
    async fn model_for(&self, requested: Option<&str>) -> Result<Option<String>, AdapterError> {
        let Some(name) = requested else {
            return Ok(None);
        };
        let info = self.info().await?;
        if info.models.is_empty() {
            return Ok(Some(name.to_owned()));
        }
        info.resolve(name)
            .map(Some)
            .ok_or_else(|| AdapterError::UnknownModel {
                name: name.to_owned(),
                available: info.models.iter().map(|(id, _, _)| id.clone()).collect(),
            })
    }

    async fn request(&self, req: &LlmRequest) -> Result<ExecuteRequest, AdapterError> {
        Ok(ExecuteRequest {
            system_fragments: req.system.clone(),
            user_fragments: req.user.clone(),
            model_name: self.model_for(req.model.as_deref()).await?,
            response_model_schema: req.response_schema.as_ref().map(|s| s.to_string()),
            request_id: req
                .request_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        })
    }
}

fn meta(s: &Status, key: &str) -> Option<String> {
    s.metadata()
        .get(key)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn source_chain(s: &Status) -> String {
    let mut out = s.message().to_owned();
    let mut src = std::error::Error::source(s);
    while let Some(e) = src {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(&format!(": {text}"));
        }
        src = e.source();
    }
    out
}

fn metrics(m: Option<ExecutionMetrics>, started: Instant, client_retries: u32) -> LlmMetrics {
    let m = m.unwrap_or_default();
    LlmMetrics {
        duration_ms: if m.duration_ms > 0 {
            m.duration_ms as u64
        } else {
            started.elapsed().as_millis() as u64
        },
        input_tokens: m.input_tokens.map(|n| n.max(0) as u32),
        output_tokens: m.output_tokens.map(|n| n.max(0) as u32),
        cost_usd: m.cost_usd,
        retry_count: m.retry_count.max(0) as u32 + client_retries,
    }
}

impl ModelAdapter for ProxyAdapter {
    fn execute<'a>(
        &'a self,
        req: &'a LlmRequest,
    ) -> BoxFuture<'a, Result<LlmResponse, AdapterError>> {
        async move {
            let started = Instant::now();
            let wire = self.request(req).await?;
            let (resp, retries) = self
                .with_retries(|mut c| {
                    let w = wire.clone();
                    async move { c.execute(w).await }
                })
                .await?;
            match resp.into_inner().result {
                Some(execute_response::Result::Success(s)) => Ok(LlmResponse {
                    text: s.response_text,
                    model: s.actual_model_used,
                    metrics: metrics(s.metrics, started, retries),
                }),
                Some(execute_response::Result::Error(e)) => Err(AdapterError::Server {
                    code: e.error_code,
                    message: e.error_message,
                }),
                None => Err(AdapterError::Server {
                    code: "EMPTY_RESPONSE".into(),
                    message: "the server sent neither a result nor an error".into(),
                }),
            }
        }
        .boxed()
    }

    fn stream<'a>(
        &'a self,
        req: &'a LlmRequest,
    ) -> BoxFuture<'a, Result<AdapterStream, AdapterError>> {
        async move {
            let started = Instant::now();
            let wire = self.request(req).await?;
            let (resp, retries) = self
                .with_retries(|mut c| {
                    let w = wire.clone();
                    async move { c.stream_execute(w).await }
                })
                .await?;
            let mut inner = resp.into_inner();
            let url = self.settings.url.to_string();
            let stream = async_stream::stream! {
                let mut model = String::new();
                loop {
                    match inner.next().await {
                        None => {
                            yield Err(AdapterError::Unreachable { url: url.clone(), detail: "the stream ended before its final metrics".into() });
                            return;
                        }
                        Some(Err(s)) => {
                            yield Err(AdapterError::Server { code: format!("{:?}", s.code()), message: s.message().to_owned() });
                            return;
                        }
                        Some(Ok(chunk)) => match chunk.chunk_type {
                            Some(stream_chunk::ChunkType::TextChunk(t)) => yield Ok(AdapterEvent::Text(t)),
                            Some(stream_chunk::ChunkType::Complete(c)) => model = c.actual_model_used,
                            Some(stream_chunk::ChunkType::FinalMetrics(m)) => {
                                yield Ok(AdapterEvent::Done { model: model.clone(), metrics: metrics(Some(m), started, retries) });
                                return;
                            }
                            Some(stream_chunk::ChunkType::Error(e)) => {
                                yield Err(AdapterError::Server { code: e.error_code, message: e.error_message });
                                return;
                            }
                            None => {}
                        },
                    }
                }
            };
            Ok(stream.boxed())
        }
        .boxed()
    }

    fn server_info(&self) -> BoxFuture<'_, Result<Option<ServerInfo>, AdapterError>> {
        async move { self.info().await.map(|i| Some(i.clone())) }.boxed()
    }
}
