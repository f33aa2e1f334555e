//! Choosing the adapter a command uses: the active proxy profile (`proxy.active`, `--proxy`,
//! `--no-proxy`) or a direct provider, never a silent fallback from one to the other.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::adapter::AdapterError;
use super::proxy::{ClientIdentity, ProxySettings};
use super::proxy_url::ProxyUrl;
use crate::config::KeyPath;
use crate::config::generated::client::{ProxyProfile, key};
use crate::config::{ClientConfig, Secret};

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
pub fn read_token(path: &Path) -> Result<Secret, AdapterError> {
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
    Ok(Secret::new(token))
}

/// The client certificate and key to present (both or neither), checked to be readable.
fn client_identity(
    url: &ProxyUrl,
    profile: Option<&ProxyProfile>,
    over: &Overrides,
) -> Result<Option<ClientIdentity>, AdapterError> {
    let cert = over
        .client_cert
        .clone()
        .or_else(|| profile.and_then(|p| p.client_cert_path.clone()));
    let key_file = over
        .client_key
        .clone()
        .or_else(|| profile.and_then(|p| p.client_key_path.clone()));
    let (cert, key_file) = match (cert, key_file) {
        (None, None) => return Ok(None),
        (Some(c), Some(k)) => (c, k),
        (Some(_), None) | (None, Some(_)) => {
            return Err(AdapterError::Config(format!(
                "a client certificate needs its key and the key its certificate: set both {} and \
                 {} (or pass both --client-cert and --client-key)",
                key::PROXY_PROFILES_PROFILE_CLIENT_CERT_PATH,
                key::PROXY_PROFILES_PROFILE_CLIENT_KEY_PATH
            )));
        }
    };
    if !url.tls {
        return Err(AdapterError::Config(format!(
            "a client certificate is only sent over TLS, and {url} is plaintext; use a \
             vibectl-server:// URL or unset {}",
            key::PROXY_PROFILES_PROFILE_CLIENT_CERT_PATH
        )));
    }
    for (what, path) in [("client certificate", &cert), ("client key", &key_file)] {
        if let Err(e) = std::fs::File::open(path) {
            return Err(AdapterError::Config(format!(
                "cannot read the {what} {}: {e}",
                path.display()
            )));
        }
    }
    Ok(Some(ClientIdentity {
        cert,
        key: key_file,
    }))
}

/// Overrides given on the command line for one call.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub jwt_path: Option<PathBuf>,
    pub ca_bundle: Option<PathBuf>,
    /// A client certificate and its key, for servers that require mutual TLS.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
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
        (Some(Secret::new(t.trim())), TokenSource::Env)
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
    let client_identity = client_identity(&url, profile, over)?;
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
            client_identity,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_client_certificate_needs_its_key_and_tls() {
        let cfg = ClientConfig::default();
        let dir = tempfile::tempdir().expect("temp dir");
        let cert = dir.path().join("c.crt");
        let key_file = dir.path().join("c.key");
        std::fs::write(&cert, "x").expect("write");
        std::fs::write(&key_file, "x").expect("write");
        let half = Overrides {
            client_cert: Some(cert.clone()),
            ..Overrides::default()
        };
        let e = settings("vibectl-server://h:1", None, &cfg, &half, &no_env)
            .expect_err("a certificate without a key");
        assert!(e.to_string().contains("client_key_path"), "{e}");
        let both = Overrides {
            client_cert: Some(cert),
            client_key: Some(key_file),
            ..Overrides::default()
        };
        let e = settings("vibectl-server-insecure://h:1", None, &cfg, &both, &no_env)
            .expect_err("a certificate over plaintext");
        assert!(e.to_string().contains("plaintext"), "{e}");
        let (s, _) = settings("vibectl-server://h:1", None, &cfg, &both, &no_env).expect("ok");
        assert!(s.client_identity.is_some());
        let missing = Overrides {
            client_key: Some(dir.path().join("nope.key")),
            ..both
        };
        let e = settings("vibectl-server://h:1", None, &cfg, &missing, &no_env)
            .expect_err("an unreadable key");
        assert!(e.to_string().contains("nope.key"), "{e}");
    }
}
