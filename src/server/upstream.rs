//! The upstream providers the server calls: one client per provider entry over one shared
//! connection pool, with API keys found by the contract's lookup order.

use std::time::Duration;

use indexmap::IndexMap;

use crate::config::generated::server::{ProviderEntry, key};
use crate::config::{KeyPath, ServerConfig};
use crate::llm::client::CallLimits;
use crate::llm::keys::resolve_key;
use crate::llm::retry::RetryPolicy;
use crate::llm::{HttpClient, ProviderClient, ProviderKind, ProviderOptions};

/// The longest connect timeout of the shared pool; a provider's own timeout may be shorter.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The bounds any configured number of seconds is clamped to before it becomes a `Duration`.
const MIN_SECONDS: f64 = 0.1;
const MAX_SECONDS: f64 = 86_400.0;

/// One configured provider: a client when it can be called, or why it cannot.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: String,
    pub kind: ProviderKind,
    pub client: Result<ProviderClient, String>,
    /// When to retry a failed call (`max_retries`, with the shared backoff).
    pub retry: RetryPolicy,
    /// One attempt (`timeout_seconds`).
    pub timeout: Duration,
    /// A whole call, retries included (`deadline_seconds`).
    pub deadline: Duration,
    /// The provider's bounds and connection pool, for clients of its deployments.
    pub limits: CallLimits,
    pub http: Result<HttpClient, String>,
    /// The configured `key` and `key_file` and `base_url` (not the env), for its deployments.
    pub entry: ProviderEntry,
}

impl Upstream {
    /// A client of this provider for a deployment with an API key of its own (`key` or
    /// `key_file`, else the provider's lookup with `env`) and a base URL of its own (else the
    /// provider's).
    pub fn deployment_client(
        &self,
        key: Option<&crate::config::Secret>,
        key_file: Option<&std::path::Path>,
        base_url: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ProviderClient, String> {
        let api_key = if key.is_some() || key_file.is_some() {
            resolve_key(&self.name, self.kind, key, key_file, &|_| None)
        } else {
            resolve_key(
                &self.name,
                self.kind,
                self.entry.key.as_ref(),
                self.entry.key_file.as_deref(),
                env,
            )
        };
        let base_url = base_url.or(self.entry.base_url.as_deref());
        client(
            &self.name,
            self.kind,
            api_key,
            base_url,
            &self.http,
            self.limits,
        )
    }
}

/// A client of provider `name`, or why it cannot be called.
fn client(
    name: &str,
    kind: ProviderKind,
    api_key: Result<Option<crate::config::Secret>, String>,
    base_url: Option<&str>,
    http: &Result<HttpClient, String>,
    limits: CallLimits,
) -> Result<ProviderClient, String> {
    let api_key = api_key?;
    // A key is needed for the public endpoints; a custom base URL may need none.
    if api_key.is_none() && base_url.is_none() && kind != ProviderKind::Ollama {
        return Err(missing_key_message(name));
    }
    let http = http.clone()?;
    ProviderClient::with_http(kind, base_url, api_key, &http)
        .map(|c| c.with_limits(limits))
        .map_err(|e| e.to_string())
}

/// `seconds` from the config as a `Duration`, clamped so it never panics.
fn seconds(seconds: f64) -> Duration {
    Duration::from_secs_f64(if seconds.is_nan() {
        MAX_SECONDS
    } else {
        seconds.clamp(MIN_SECONDS, MAX_SECONDS)
    })
}

/// What to tell an operator whose provider has no key.
pub fn missing_key_message(name: &str) -> String {
    let upper = name.to_ascii_uppercase().replace(['-', '.'], "_");
    format!(
        "provider `{name}` has no API key: set {} (or {}) in the server config, or the env var VIBECTL_{upper}_API_KEY",
        KeyPath::fill(key::PROVIDERS_PROVIDER_KEY, &[name]),
        KeyPath::fill(key::PROVIDERS_PROVIDER_KEY_FILE, &[name]),
    )
}

/// The provider entries in use: the configured ones, or anthropic, openai and ollama with
/// their defaults when none is configured.
pub fn entries(cfg: &ServerConfig) -> Vec<(String, ProviderKind, Option<ProviderEntry>)> {
    if cfg.providers.is_empty() {
        return ProviderKind::ALL
            .iter()
            .map(|k| (k.as_str().to_owned(), *k, None))
            .collect();
    }
    cfg.providers
        .iter()
        .filter_map(|(name, e)| {
            let kind = match e.kind {
                Some(k) => k.as_str().parse().ok()?,
                None => name.parse().ok()?,
            };
            Some((name.clone(), kind, Some(e.clone())))
        })
        .collect()
}

/// Problems a provider entry has that config validation cannot see (its kind).
pub fn entry_problems(cfg: &ServerConfig) -> Vec<(String, String)> {
    cfg.providers
        .iter()
        .filter(|(name, e)| e.kind.is_none() && name.parse::<ProviderKind>().is_err())
        .map(|(name, _)| {
            (
                KeyPath::fill(key::PROVIDERS_PROVIDER_KIND, &[name]).to_string(),
                format!("`{name}` is not anthropic, openai or ollama, so kind must be set"),
            )
        })
        .collect()
}

/// Build every upstream client over one HTTP connection pool (TCP_NODELAY, connect and read
/// timeouts as a backstop); each client then carries its own provider's bounds
/// (`timeout_seconds`, `stream_idle_seconds`, `stream_max_seconds`), and each call the
/// provider's `deadline_seconds`.
pub fn build(
    cfg: &ServerConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> IndexMap<String, Upstream> {
    let entries: Vec<(String, ProviderKind, Option<ProviderEntry>, ProviderEntry)> = entries(cfg)
        .into_iter()
        .map(|(name, kind, e)| {
            let settings = e.clone().unwrap_or_default();
            (name, kind, e, settings)
        })
        .collect();
    let longest = entries
        .iter()
        .map(|(_, _, _, e)| seconds(e.timeout_seconds).max(seconds(e.stream_idle_seconds)))
        .max()
        .unwrap_or(CONNECT_TIMEOUT);
    let http = HttpClient::new(&ProviderOptions {
        connect_timeout: CONNECT_TIMEOUT.min(longest),
        read_timeout: longest,
        request_timeout: None,
    })
    .map_err(|e| e.to_string());
    let mut out = IndexMap::new();
    for (name, kind, entry, settings) in entries {
        let timeout = seconds(settings.timeout_seconds);
        let max_retries = settings.max_retries.clamp(0, 10) as u32;
        let deadline = match settings.deadline_seconds {
            Some(s) => seconds(s),
            None => timeout.saturating_mul(max_retries + 1),
        };
        let limits = CallLimits {
            attempt: timeout,
            stream_idle: seconds(settings.stream_idle_seconds),
            stream_total: seconds(settings.stream_max_seconds),
        };
        let api_key = resolve_key(
            &name,
            kind,
            entry.as_ref().and_then(|e| e.key.as_ref()),
            entry.as_ref().and_then(|e| e.key_file.as_deref()),
            env,
        );
        let client = client(
            &name,
            kind,
            api_key,
            settings.base_url.as_deref(),
            &http,
            limits,
        );
        out.insert(
            name.clone(),
            Upstream {
                name,
                kind,
                client,
                retry: RetryPolicy::new(max_retries),
                timeout,
                deadline,
                limits,
                http: http.clone(),
                entry: settings,
            },
        );
    }
    out
}
