//! Choosing the adapter a command uses: the active proxy profile (`proxy.active`, `--proxy`,
//! `--no-proxy`) or a direct provider, never a silent fallback from one to the other.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::adapter::AdapterError;
use super::proxy::ProxySettings;
use super::proxy_url::ProxyUrl;
use crate::config::ClientConfig;
use crate::config::KeyPath;
use crate::config::generated::client::{ProxyProfile, key};

/// Env var with a token used when neither the URL nor the profile's jwt_path has one.
pub const ENV_TOKEN: &str = "VIBECTL_JWT_TOKEN";
/// Env var with a CA bundle used when the profile names none.
pub const ENV_CA_BUNDLE: &str = "VIBECTL_CA_BUNDLE";

/// Where the token in use comes from, for `setup-proxy status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Url,
    File(PathBuf),
    Env,
    None,
}

impl std::fmt::Display for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::Url => f.write_str("the server URL"),
            TokenSource::File(p) => write!(f, "file {}", p.display()),
            TokenSource::Env => write!(f, "env {ENV_TOKEN}"),
            TokenSource::None => f.write_str("none (the server must have auth off)"),
        }
    }
}

/// Read a token file: one line, no spaces.
pub fn read_token(path: &Path) -> Result<String, AdapterError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        AdapterError::Config(format!(
            "cannot read the token file {}: {e}",
            path.display()
        ))
    })?;
    let token = text.trim().to_owned();
    if token.is_empty() || token.chars().any(char::is_whitespace) {
        return Err(AdapterError::Config(format!(
            "the token file {} must hold one token with no spaces",
            path.display()
        )));
    }
    Ok(token)
}

/// Overrides given on the command line for one call.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub jwt_path: Option<PathBuf>,
    pub ca_bundle: Option<PathBuf>,
    pub timeout: Option<Duration>,
}

/// The settings of `url` with the given profile values (any may be absent).
pub fn settings(
    url: &str,
    profile: Option<&ProxyProfile>,
    cfg: &ClientConfig,
    over: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(ProxySettings, TokenSource), AdapterError> {
    let url = ProxyUrl::parse(url)
        .map_err(|e| AdapterError::Config(format!("invalid server URL: {e}")))?;
    let jwt_path = over
        .jwt_path
        .clone()
        .or_else(|| profile.and_then(|p| p.jwt_path.clone()));
    let (token, source) = if let Some(t) = &url.token {
        (Some(t.clone()), TokenSource::Url)
    } else if let Some(p) = &jwt_path {
        (Some(read_token(p)?), TokenSource::File(p.clone()))
    } else if let Some(t) = env(ENV_TOKEN).filter(|t| !t.trim().is_empty()) {
        (Some(t.trim().to_owned()), TokenSource::Env)
    } else {
        (None, TokenSource::None)
    };
    let ca_bundle = over
        .ca_bundle
        .clone()
        .or_else(|| profile.and_then(|p| p.ca_bundle_path.clone()))
        .or_else(|| {
            env(ENV_CA_BUNDLE)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        });
    if let Some(ca) = &ca_bundle
        && let Err(e) = std::fs::File::open(ca)
    {
        return Err(AdapterError::Config(format!(
            "cannot read the CA bundle {}: {e}",
            ca.display()
        )));
    }
    let timeout_secs = profile
        .and_then(|p| p.timeout_seconds)
        .unwrap_or(cfg.proxy.timeout_seconds)
        .max(1);
    let retries = profile
        .and_then(|p| p.retry_attempts)
        .unwrap_or(cfg.proxy.retry_attempts)
        .clamp(0, 20);
    Ok((
        ProxySettings {
            url,
            token,
            ca_bundle,
            timeout: over
                .timeout
                .unwrap_or(Duration::from_secs(timeout_secs as u64)),
            retry_attempts: retries as u32,
        },
        source,
    ))
}

/// The settings of the named profile.
pub fn profile_settings(
    cfg: &ClientConfig,
    name: &str,
    over: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(ProxySettings, TokenSource), AdapterError> {
    let profile = cfg.proxy.profiles.get(name).ok_or_else(|| {
        let known: Vec<&str> = cfg.proxy.profiles.keys().map(String::as_str).collect();
        AdapterError::Config(format!(
            "there is no proxy profile `{name}` (known: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ))
    })?;
    let url = profile.server_url.as_deref().ok_or_else(|| {
        AdapterError::Config(format!(
            "{} is not set",
            KeyPath::fill(key::PROXY_PROFILES_PROFILE_SERVER_URL, &[name])
        ))
    })?;
    settings(url, Some(profile), cfg, over, env)
}
