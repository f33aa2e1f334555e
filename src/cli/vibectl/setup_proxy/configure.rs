//! `setup-proxy configure NAME URL`: test the server, then save the profile (nothing is saved
//! when the test fails). A token in the URL goes to a 0600 file, not into config.yaml.

use std::path::PathBuf;

use clap::Args;

use super::{Ctx, describe, fetch_info};
use crate::cli::{CmdError, CmdResult, out, process_env};
use crate::config::generated::client::key;
use crate::config::{KeyPath, store};
use crate::llm::proxy_url::ProxyUrl;
use crate::llm::select::{self, Overrides};

#[derive(Debug, Args)]
pub struct ConfigureArgs {
    /// The profile name
    pub name: String,
    /// vibectl-server://[TOKEN@]HOST[:PORT] (TLS) or vibectl-server-insecure://...
    pub url: String,
    /// A file holding the token (instead of one in the URL)
    #[arg(long, value_name = "FILE")]
    pub jwt_path: Option<PathBuf>,
    /// A PEM file of the CA that signed the server's certificate
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
    /// A PEM client certificate, for servers that require mutual TLS (with --client-key)
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// The PEM private key of --client-cert
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Make the profile read-only (its security.read_only): commands through it that can
    /// change the cluster are refused
    #[arg(long)]
    pub read_only: bool,
    /// Save without testing the connection
    #[arg(long)]
    pub no_test: bool,
    /// Make it the active profile (the default)
    #[arg(long, conflicts_with = "no_activate")]
    pub activate: bool,
    /// Keep the current active profile
    #[arg(long)]
    pub no_activate: bool,
}

fn absolute(p: &PathBuf) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.clone())
}

pub fn run(ctx: &Ctx, args: &ConfigureArgs) -> CmdResult {
    let name = args.name.trim();
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(CmdError::new(format!(
            "the profile name {:?} must be non-empty, without spaces or /",
            args.name
        )));
    }
    let url = ProxyUrl::parse(&args.url)
        .map_err(|e| CmdError::new(format!("invalid server URL: {e}")))?;
    let (loaded, cfg) = ctx.load()?;
    let over = Overrides {
        jwt_path: args.jwt_path.clone(),
        ca_bundle: args.ca_bundle.clone(),
        client_cert: args.client_cert.clone(),
        client_key: args.client_key.clone(),
        timeout: None,
    };
    let (settings, _) = select::settings(&args.url, None, &cfg, &over, &process_env)?;
    if !args.no_test {
        let info = fetch_info(settings).map_err(|e| CmdError {
            message: format!(
                "the connection test failed, so nothing was saved: {}",
                e.message
            ),
            ..e
        })?;
        out(&format!("connected to {url}\n{}", describe(&info)));
    }
    let profile = |k: &str| KeyPath::fill(k, &[name]);
    let mut edits = Vec::new();
    let mut jwt_path = args.jwt_path.as_ref().map(absolute);
    if let Some(token) = &url.token {
        let dir = ctx
            .file
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default()
            .join("tokens");
        let path = dir.join(format!("{name}.jwt"));
        store::write_atomic(&path, &format!("{}\n", token.expose()), true)?;
        jwt_path = Some(path);
    }
    let bare = ProxyUrl {
        token: None,
        ..url.clone()
    };
    edits.push((
        profile(key::PROXY_PROFILES_PROFILE_SERVER_URL),
        Some(bare.to_url_with_token()),
    ));
    edits.push((
        profile(key::PROXY_PROFILES_PROFILE_JWT_PATH),
        jwt_path.map(|p| p.display().to_string()),
    ));
    edits.push((
        profile(key::PROXY_PROFILES_PROFILE_CA_BUNDLE_PATH),
        args.ca_bundle
            .as_ref()
            .map(|p| absolute(p).display().to_string()),
    ));
    edits.push((
        profile(key::PROXY_PROFILES_PROFILE_CLIENT_CERT_PATH),
        args.client_cert
            .as_ref()
            .map(|p| absolute(p).display().to_string()),
    ));
    edits.push((
        profile(key::PROXY_PROFILES_PROFILE_CLIENT_KEY_PATH),
        args.client_key
            .as_ref()
            .map(|p| absolute(p).display().to_string()),
    ));
    if args.read_only {
        edits.push((
            profile(key::PROXY_PROFILES_PROFILE_SECURITY_READ_ONLY),
            Some("true".to_owned()),
        ));
    }
    if !args.no_activate {
        edits.push((KeyPath::template(key::PROXY_ACTIVE), Some(name.to_owned())));
    }
    ctx.edit(&loaded, &edits)?;
    let active = if args.no_activate {
        ""
    } else {
        " and made it active"
    };
    out(&format!("saved profile {name} ({url}){active}\n"));
    Ok(())
}
