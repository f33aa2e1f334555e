//! Picking the adapter a command uses. `--proxy NAME` and `--no-proxy` arrive as overrides of
//! `proxy.active`, so the effective config alone decides: an active profile means that
//! server, none means the provider directly. A profile that does not exist or cannot be set up
//! is an error, never a silent fallback to direct mode.

use super::adapter::{AdapterError, ModelAdapter};
use super::direct::DirectAdapter;
use super::proxy::ProxyAdapter;
use super::select::{Overrides, profile_settings};
use crate::config::ClientConfig;

/// Where model calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Direct,
    Proxy { profile: String },
}

/// The mode the effective config asks for.
pub fn mode(cfg: &ClientConfig) -> Mode {
    match cfg.proxy.active.as_deref().map(str::trim) {
        Some(p) if !p.is_empty() => Mode::Proxy {
            profile: p.to_owned(),
        },
        _ => Mode::Direct,
    }
}

/// The adapter for the effective config; `env` is the process environment.
pub fn adapter(
    cfg: &ClientConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Box<dyn ModelAdapter>, AdapterError> {
    match mode(cfg) {
        Mode::Direct => Ok(Box::new(DirectAdapter::from_config(cfg, env)?)),
        Mode::Proxy { profile } => {
            let (settings, _) = profile_settings(cfg, &profile, &Overrides::default(), env)?;
            Ok(Box::new(ProxyAdapter::new(settings)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_profile_is_an_error_not_direct_mode() {
        let mut cfg = ClientConfig::default();
        assert_eq!(mode(&cfg), Mode::Direct);
        cfg.proxy.active = Some("prod".into());
        assert_eq!(
            mode(&cfg),
            Mode::Proxy {
                profile: "prod".into()
            }
        );
        let err = adapter(&cfg, &|_| None).err().expect("no such profile");
        assert!(err.to_string().contains("prod"), "{err}");
    }
}
