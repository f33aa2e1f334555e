//! `DirectAdapter`: model calls straight to a provider (Anthropic, OpenAI or any compatible
//! server, Ollama) with the client config's keys and base URLs, retrying transient failures
//! by the shared [`RetryPolicy`] from `llm.max_retries` and `llm.retry_delay_seconds`.
//!
//! A model is named `PROVIDER/MODEL` (`openai/gpt-4.1`, `anthropic/claude-sonnet-4-0`,
//! `ollama/llama3.2`) or by a bare name whose provider [`kind_for_model`] can tell
//! (`claude-*`, `gpt-*`, `ollama:llama3`, ...). The model names of vibectl 0.11.6 (the `llm`
//! library's aliases such as `claude-3.7-sonnet`) map to the provider's own names.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt, stream};

use super::adapter::{
    AdapterError, AdapterEvent, AdapterStream, LlmMetrics, LlmRequest, LlmResponse, ModelAdapter,
    ServerInfo,
};
use super::keys::{conventional_env, key_env, resolve_key};
use super::retry::RetryPolicy;
use super::{
    ChatRequest, HttpClient, ProviderClient, ProviderKind, ProviderOptions, StreamEvent, Usage,
    kind_for_model,
};
use crate::config::generated::client::key;
use crate::config::{ClientConfig, Secret};

/// The longest backoff between two retries.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// Names of the `llm` library (used by vibectl 0.11.6) that the provider spells differently.
const LLM_ALIASES: &[(&str, &str)] = &[
    ("claude-3.7-sonnet", "claude-3-7-sonnet-latest"),
    ("claude-3.5-sonnet", "claude-3-5-sonnet-latest"),
    ("claude-3.5-haiku", "claude-3-5-haiku-latest"),
    ("claude-3-opus", "claude-3-opus-latest"),
    ("claude-4-sonnet", "claude-sonnet-4-0"),
    ("claude-4-opus", "claude-opus-4-0"),
];

/// The provider and the provider's own name for a model name.
pub fn route(model: &str) -> Result<(ProviderKind, String), AdapterError> {
    let model = model.trim();
    if let Some((p, m)) = model.split_once('/')
        && let Ok(kind) = p.parse::<ProviderKind>()
        && !m.is_empty()
    {
        return Ok((kind, m.to_owned()));
    }
    let kind = kind_for_model(model).ok_or_else(|| {
        AdapterError::Config(format!(
            "cannot tell which provider serves model `{model}`: name it PROVIDER/MODEL, \
             e.g. openai/gpt-4.1, anthropic/claude-sonnet-4-0 or ollama/llama3.2 \
             (set {} or pass --model)",
            key::LLM_MODEL
        ))
    })?;
    let upstream = model.strip_prefix("ollama:").unwrap_or(model);
    let upstream = LLM_ALIASES
        .iter()
        .find(|(alias, _)| *alias == upstream)
        .map_or(upstream, |(_, real)| real);
    Ok((kind, upstream.to_owned()))
}

/// The config keys of one provider's section.
fn keys_of(kind: ProviderKind) -> (&'static str, &'static str) {
    match kind {
        ProviderKind::Anthropic => (
            key::PROVIDERS_ANTHROPIC_KEY,
            key::PROVIDERS_ANTHROPIC_KEY_FILE,
        ),
        ProviderKind::OpenAi => (key::PROVIDERS_OPENAI_KEY, key::PROVIDERS_OPENAI_KEY_FILE),
        ProviderKind::Ollama => (key::PROVIDERS_OLLAMA_KEY, key::PROVIDERS_OLLAMA_KEY_FILE),
    }
}

/// One provider as configured: where it is and its key (or why the key cannot be read).
#[derive(Debug, Clone)]
struct Endpoint {
    kind: ProviderKind,
    base_url: Option<String>,
    key: Result<Option<Secret>, String>,
}

/// The adapter over the providers of the client config.
#[derive(Debug)]
pub struct DirectAdapter {
    http: HttpClient,
    endpoints: Vec<Endpoint>,
    default_model: String,
    retry: RetryPolicy,
}

impl DirectAdapter {
    /// From the effective client config; `env` is the process environment.
    pub fn from_config(
        cfg: &ClientConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<DirectAdapter, AdapterError> {
        let p = &cfg.providers;
        let sections = [
            (
                ProviderKind::Anthropic,
                p.anthropic.key.as_ref(),
                p.anthropic.key_file.as_ref(),
                p.anthropic.base_url.clone(),
            ),
            (
                ProviderKind::OpenAi,
                p.openai.key.as_ref(),
                p.openai.key_file.as_ref(),
                p.openai.base_url.clone(),
            ),
            (
                ProviderKind::Ollama,
                p.ollama.key.as_ref(),
                p.ollama.key_file.as_ref(),
                p.ollama.base_url.clone().or_else(|| ollama_host(env)),
            ),
        ];
        let endpoints = sections
            .into_iter()
            .map(|(kind, k, file, base_url)| Endpoint {
                kind,
                base_url: base_url.filter(|u| !u.trim().is_empty()),
                key: resolve_key(kind.as_str(), kind, k, file.map(PathBuf::as_path), env),
            })
            .collect();
        let http = HttpClient::new(&ProviderOptions::default())?;
        Ok(DirectAdapter {
            http,
            endpoints,
            default_model: cfg.llm.model.clone(),
            retry: retry_policy(cfg),
        })
    }

    /// The client and the upstream model name for a request.
    fn target(&self, req: &LlmRequest) -> Result<(ProviderClient, ChatRequest), AdapterError> {
        let name = req.model.as_deref().unwrap_or(&self.default_model);
        let (kind, upstream) = route(name)?;
        let ep = self
            .endpoints
            .iter()
            .find(|e| e.kind == kind)
            .ok_or_else(|| AdapterError::Config(format!("provider {kind} is not configured")))?;
        let api_key = ep.key.clone().map_err(AdapterError::Config)?;
        // The public endpoints need a key; a custom base URL (a gateway, a local server) may not.
        if api_key.is_none() && ep.base_url.is_none() && kind != ProviderKind::Ollama {
            let (k, file) = keys_of(kind);
            let sdk = conventional_env(kind)
                .map(|v| format!(" (or {v})"))
                .unwrap_or_default();
            return Err(AdapterError::Config(format!(
                "no API key for {kind}: set {k} (or {file}), or the env var {}{sdk}",
                key_env(kind.as_str())
            )));
        }
        let client = ProviderClient::with_http(kind, ep.base_url.as_deref(), api_key, &self.http)?;
        let chat = ChatRequest {
            system: req.system.clone(),
            user: req.user.clone(),
            model: upstream,
            response_schema: req.response_schema.clone(),
            max_tokens: None,
            ..Default::default()
        };
        Ok((client, chat))
    }
}

/// The retries of `llm.max_retries`, the first after `llm.retry_delay_seconds` and each later one
/// after twice the one before (up to 30 s), not jittered, so the first wait is the one the key
/// names; a provider's `retry-after` is waited instead, and one over 30 s ends the retries.
fn retry_policy(cfg: &ClientConfig) -> RetryPolicy {
    let delay = cfg.llm.retry_delay_seconds;
    let delay = if delay.is_nan() {
        0.0
    } else {
        delay.clamp(0.0, 60.0)
    };
    RetryPolicy {
        base: Duration::from_secs_f64(delay),
        max: MAX_RETRY_DELAY,
        jitter: 0.0,
        ..RetryPolicy::new(cfg.llm.max_retries.clamp(0, 10) as u32)
    }
}

/// `OLLAMA_HOST` as a base URL (`host:port` gets `http://`).
fn ollama_host(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let host = env("OLLAMA_HOST")?.trim().to_owned();
    if host.is_empty() {
        None
    } else if host.contains("://") {
        Some(host)
    } else {
        Some(format!("http://{host}"))
    }
}

fn metrics(usage: Usage, started: Instant, retries: u32) -> LlmMetrics {
    LlmMetrics {
        duration_ms: started.elapsed().as_millis() as u64,
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        cost_usd: None,
        retry_count: retries,
    }
}

impl ModelAdapter for DirectAdapter {
    fn execute<'a>(
        &'a self,
        req: &'a LlmRequest,
    ) -> BoxFuture<'a, Result<LlmResponse, AdapterError>> {
        async move {
            let started = Instant::now();
            let (client, chat) = self.target(req)?;
            let mut attempt = 0;
            loop {
                match client.complete(&chat).await {
                    Ok(r) => {
                        return Ok(LlmResponse {
                            text: r.text,
                            model: chat.model.clone(),
                            metrics: metrics(r.usage, started, attempt),
                        });
                    }
                    Err(e) => match self.retry.after_error(&e, attempt, None) {
                        Some(wait) => {
                            tokio::time::sleep(wait).await;
                            attempt += 1;
                        }
                        None => return Err(e.into()),
                    },
                }
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
            let (client, chat) = self.target(req)?;
            let mut attempt = 0;
            // Retry while nothing has arrived yet; once text flows, a failure ends the stream.
            let (first, rest) = loop {
                let mut s = client.stream(&chat);
                match s.next().await {
                    Some(Err(e)) => match self.retry.after_error(&e, attempt, None) {
                        Some(wait) => {
                            tokio::time::sleep(wait).await;
                            attempt += 1;
                        }
                        None => return Err(e.into()),
                    },
                    first => break (first, s),
                }
            };
            let model = chat.model.clone();
            let events = stream::iter(first).chain(rest).filter_map(move |item| {
                let event = match item {
                    Ok(StreamEvent::Text(t)) => Some(Ok(AdapterEvent::Text(t))),
                    Ok(StreamEvent::Usage(u)) => Some(Ok(AdapterEvent::Done {
                        model: model.clone(),
                        metrics: metrics(u, started, attempt),
                    })),
                    // The client's requests define no tools; the rest has no adapter event.
                    Ok(_) => None,
                    Err(e) => Some(Err(AdapterError::from(e))),
                };
                std::future::ready(event)
            });
            Ok(events.boxed())
        }
        .boxed()
    }

    fn server_info(&self) -> BoxFuture<'_, Result<Option<ServerInfo>, AdapterError>> {
        async { Ok(None) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_never_prints_its_key() {
        let e = Endpoint {
            kind: ProviderKind::OpenAi,
            base_url: None,
            key: Ok(Some(Secret::new("sk-live-0123456789"))),
        };
        let shown = format!("{e:?}");
        assert!(!shown.contains("sk-live"), "{shown}");
        assert!(shown.contains(crate::config::secret::REDACTED), "{shown}");
    }

    #[test]
    fn the_first_retry_waits_llm_retry_delay_seconds_and_later_ones_double() {
        let mut cfg = ClientConfig::default();
        cfg.llm.max_retries = 3;
        cfg.llm.retry_delay_seconds = 1.5;
        let p = retry_policy(&cfg);
        let waits: Vec<_> = (0..4).map(|a| p.delay(a, None, None)).collect();
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(waits, [ms(1500), ms(3000), ms(6000), None]);
        // A provider's hint replaces the backoff.
        assert_eq!(p.delay(0, ms(20), None), ms(20));
    }

    #[test]
    fn provider_slash_model_and_bare_names_route() {
        let r = |m: &str| route(m).expect("routes");
        assert_eq!(
            r("openai/gpt-4.1"),
            (ProviderKind::OpenAi, "gpt-4.1".into())
        );
        assert_eq!(
            r("anthropic/claude-sonnet-4-0"),
            (ProviderKind::Anthropic, "claude-sonnet-4-0".into())
        );
        assert_eq!(
            r("ollama/llama3.2"),
            (ProviderKind::Ollama, "llama3.2".into())
        );
        assert_eq!(r("gpt-4o"), (ProviderKind::OpenAi, "gpt-4o".into()));
        assert_eq!(r("ollama:llama3"), (ProviderKind::Ollama, "llama3".into()));
        assert_eq!(
            r("claude-3.7-sonnet"),
            (ProviderKind::Anthropic, "claude-3-7-sonnet-latest".into())
        );
        let err = route("mystery").expect_err("no provider");
        assert!(err.to_string().contains("PROVIDER/MODEL"), "{err}");
        assert!(err.to_string().contains(key::LLM_MODEL), "{err}");
    }

    #[test]
    fn a_missing_key_names_the_config_key_and_the_env_var() {
        let mut cfg = ClientConfig::default();
        cfg.llm.model = "openai/gpt-4.1".into();
        let adapter = DirectAdapter::from_config(&cfg, &|_| None).expect("builds");
        let err = adapter
            .target(&LlmRequest::default())
            .expect_err("no key anywhere");
        let text = err.to_string();
        assert!(text.contains(key::PROVIDERS_OPENAI_KEY), "{text}");
        assert!(text.contains("VIBECTL_OPENAI_API_KEY"), "{text}");
        let env = |k: &str| (k == "OPENAI_API_KEY").then(|| "sk-x".to_owned());
        let adapter = DirectAdapter::from_config(&cfg, &env).expect("builds");
        assert!(adapter.target(&LlmRequest::default()).is_ok());
    }

    #[test]
    fn ollama_host_becomes_the_base_url() {
        let env = |k: &str| (k == "OLLAMA_HOST").then(|| "10.0.0.5:11434".to_owned());
        assert_eq!(ollama_host(&env).as_deref(), Some("http://10.0.0.5:11434"));
        let adapter = DirectAdapter::from_config(&ClientConfig::default(), &env).expect("builds");
        let req = LlmRequest {
            model: Some("ollama/llama3.2".into()),
            ..LlmRequest::default()
        };
        let (client, chat) = adapter.target(&req).expect("no key needed");
        assert_eq!(client.base_url(), "http://10.0.0.5:11434");
        assert_eq!(chat.model, "llama3.2");
    }
}
