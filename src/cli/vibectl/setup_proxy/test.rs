//! `setup-proxy test [URL]`: connect, call GetServerInfo, show what the server offers.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{Ctx, describe, fetch_info};
use crate::cli::{CmdError, CmdResult, out, process_env};
use crate::llm::select::{self, Overrides};

#[derive(Debug, Args)]
pub struct TestArgs {
    /// A server URL to test instead of the active profile
    pub url: Option<String>,
    /// Give up after this many seconds
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// A file holding the token
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
}

pub fn run(ctx: &Ctx, args: &TestArgs) -> CmdResult {
    let (_, cfg) = ctx.load()?;
    let over = Overrides {
        jwt_path: args.jwt_path.clone(),
        ca_bundle: args.ca_bundle.clone(),
        client_cert: args.client_cert.clone(),
        client_key: args.client_key.clone(),
        timeout: args.timeout.map(Duration::from_secs),
    };
    let (settings, _) = match &args.url {
        Some(url) => select::settings(url, None, &cfg, &over, &process_env)?,
        None => {
            let name = cfg.proxy.active.clone().ok_or_else(|| {
                CmdError::new("no proxy profile is active and no URL was given")
                    .with_hint("pass a URL, or run `vibectl setup-proxy configure NAME URL`")
            })?;
            select::profile_settings(&cfg, &name, &over, &process_env)?
        }
    };
    let url = settings.url.to_string();
    let info = fetch_info(settings)?;
    out(&format!(
        "connection to {url} succeeded\n{}",
        describe(&info)
    ));
    Ok(())
}
