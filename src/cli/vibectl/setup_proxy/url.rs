//! `setup-proxy url HOST PORT`: print a well-formed server URL.

use clap::Args;

use crate::cli::{CmdError, CmdResult, out};
use crate::llm::proxy_url::ProxyUrl;

#[derive(Debug, Args)]
pub struct UrlArgs {
    pub host: String,
    pub port: u16,
    /// Put this token in the URL (the URL is then a secret: share it privately)
    #[arg(long, value_name = "TOKEN")]
    pub jwt_token: Option<String>,
    /// Plaintext (vibectl-server-insecure://) instead of TLS
    #[arg(long)]
    pub insecure: bool,
}

pub fn run(args: &UrlArgs) -> CmdResult {
    let scheme = if args.insecure {
        "vibectl-server-insecure"
    } else {
        "vibectl-server"
    };
    let token = args
        .jwt_token
        .as_deref()
        .map(|t| format!("{t}@"))
        .unwrap_or_default();
    let text = format!("{scheme}://{token}{}:{}", args.host, args.port);
    let url = ProxyUrl::parse(&text).map_err(|e| CmdError::new(format!("invalid URL: {e}")))?;
    out(&format!("{}\n", url.to_url_with_token()));
    Ok(())
}
