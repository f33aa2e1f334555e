//! The `ModelAdapter` trait: what the commands that call a model use, whether the call goes
//! straight to a provider or through a vibectl-server.

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;

use super::ProviderError;

/// One model call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LlmRequest {
    pub system: Vec<String>,
    pub user: Vec<String>,
    /// The model asked for; `None` lets a proxy pick its default.
    pub model: Option<String>,
    /// A JSON Schema the answer must follow.
    pub response_schema: Option<serde_json::Value>,
    /// The id of this call, sent to a proxy (and written in the audit log); `None` makes one up.
    pub request_id: Option<String>,
}

/// What a call cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LlmMetrics {
    pub duration_ms: u64,
    pub input_tokens: Option<u32>,
    pub output_tokens: Option<u32>,
    pub cost_usd: Option<f64>,
    pub retry_count: u32,
}

/// A whole answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LlmResponse {
    pub text: String,
    /// The model that answered.
    pub model: String,
    pub metrics: LlmMetrics,
}

/// One item of a streamed answer: text pieces, then `Done`.
#[derive(Debug, Clone, PartialEq)]
pub enum AdapterEvent {
    Text(String),
    Done { model: String, metrics: LlmMetrics },
}

/// What a proxy server says about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerInfo {
    pub name: String,
    pub version: String,
    /// `(model id, provider, aliases)`.
    pub models: Vec<(String, String, Vec<String>)>,
    pub default_model: String,
    pub aliases: BTreeMap<String, String>,
    /// `(limit name, value)` for the limits the server reports.
    pub limits: Vec<(&'static str, i32)>,
}

impl ServerInfo {
    /// The model id a requested name means: an id, an alias of the map, or a model's alias;
    /// or one of these written the direct way, `PROVIDER/NAME` (`openai/gpt-4o`), when that
    /// provider (by the server's entry name or by kind) serves it.
    pub fn resolve(&self, name: &str) -> Option<String> {
        if let Some(id) = self.resolve_plain(name) {
            return Some(id);
        }
        let (p, m) = name.split_once('/')?;
        let id = self.resolve_plain(m)?;
        let (_, provider, _) = self.models.iter().find(|(i, _, _)| *i == id)?;
        let kind = crate::llm::kind_for_model(&id).map(|k| k.as_str());
        (provider == p || kind == Some(p)).then_some(id)
    }

    fn resolve_plain(&self, name: &str) -> Option<String> {
        if self.models.iter().any(|(id, _, _)| id == name) {
            return Some(name.to_owned());
        }
        if let Some(id) = self.aliases.get(name) {
            return Some(id.clone());
        }
        self.models
            .iter()
            .find(|(_, _, aliases)| aliases.iter().any(|a| a == name))
            .map(|(id, _, _)| id.clone())
    }
}

/// Why a model call failed, in terms a user can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdapterError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("cannot reach the vibectl server at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("the server's TLS certificate is not trusted: {detail}")]
    CertUntrusted { detail: String },
    #[error("the server refused the token: {detail}")]
    TokenRefused { detail: String },
    #[error("rate limited by the server ({limit_type}); retry in {retry_after_ms} ms")]
    RateLimited {
        limit_type: String,
        retry_after_ms: u64,
    },
    #[error("the server timed out after {seconds} s")]
    Timeout { seconds: u64 },
    #[error("the server answered {code}: {message}")]
    Server { code: String, message: String },
    #[error("model `{name}` is not available; available: {}", available.join(", "))]
    UnknownModel {
        name: String,
        available: Vec<String>,
    },
    #[error("{0}")]
    Config(String),
}

impl AdapterError {
    /// How to fix it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            AdapterError::CertUntrusted { .. } => Some(
                "pass --ca-bundle FILE (the server's CA certificate), or set VIBECTL_CA_BUNDLE"
                    .into(),
            ),
            AdapterError::TokenRefused { .. } => Some(
                "get a new token from the server operator (`vibectl-server generate-token`)".into(),
            ),
            AdapterError::Unreachable { .. } => {
                Some("check the server is running and the URL's host and port".into())
            }
            AdapterError::RateLimited { retry_after_ms, .. } => Some(format!(
                "wait {:.1} s and try again",
                *retry_after_ms as f64 / 1000.0
            )),
            AdapterError::Provider(ProviderError::Auth { .. }) => {
                Some("check the provider API key (providers.<p>.key or VIBECTL_<P>_API_KEY)".into())
            }
            _ => None,
        }
    }
}

pub type AdapterStream = BoxStream<'static, Result<AdapterEvent, AdapterError>>;

/// A way to call a model. Implemented by [`super::direct::DirectAdapter`] and
/// [`super::proxy::ProxyAdapter`]; commands hold a `dyn ModelAdapter` and print the same either way.
pub trait ModelAdapter: Send + Sync {
    fn execute<'a>(
        &'a self,
        req: &'a LlmRequest,
    ) -> BoxFuture<'a, Result<LlmResponse, AdapterError>>;
    fn stream<'a>(
        &'a self,
        req: &'a LlmRequest,
    ) -> BoxFuture<'a, Result<AdapterStream, AdapterError>>;
    /// The proxy's own description; `None` in direct mode.
    fn server_info(&self) -> BoxFuture<'_, Result<Option<ServerInfo>, AdapterError>>;
}
