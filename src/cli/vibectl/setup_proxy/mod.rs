//! `setup-proxy`: import vibectl-server URLs as named profiles, test them, pick the active one.

mod configure;
mod disable;
mod list;
mod remove;
mod set_active;
mod status;
mod test;
mod url;

use std::path::PathBuf;

use clap::Subcommand;

use crate::cli::{CmdError, CmdResult, process_env};
use crate::config::{CLIENT, ClientConfig, KeyPath, Loaded, Override};
use crate::llm::adapter::{AdapterError, ServerInfo};
use crate::llm::proxy::{ProxyAdapter, ProxySettings};

#[derive(Debug, Subcommand)]
pub enum SetupProxyCommand {
    /// Import a server URL as profile NAME: test it, save it, make it active
    ///
    /// Example: `vibectl setup-proxy configure prod vibectl-server://TOKEN@llm.example.com:443 --ca-bundle ca.crt`
    Configure(configure::ConfigureArgs),
    /// Connect and show what the server offers (the active profile, or URL)
    ///
    /// Example: `vibectl setup-proxy test`
    Test(test::TestArgs),
    /// Show the proxy settings in effect (tokens redacted)
    Status,
    /// List the profiles
    List,
    /// Make profile NAME the active one
    SetActive(set_active::SetActiveArgs),
    /// Delete profile NAME
    Remove(remove::RemoveArgs),
    /// Call providers directly again (clears proxy.active)
    Disable,
    /// Print a well-formed server URL
    ///
    /// Example: `vibectl setup-proxy url llm.example.com 443 --jwt-token "$TOKEN"`
    Url(url::UrlArgs),
}

/// What the setup-proxy commands share.
pub struct Ctx {
    pub file: PathBuf,
    pub overrides: Vec<Override>,
}

impl Ctx {
    /// The file as read and the effective typed config.
    pub fn load(&self) -> Result<(Loaded, ClientConfig), CmdError> {
        let loaded = CLIENT.load(&self.file)?;
        CLIENT.validate(&loaded)?;
        let effective = CLIENT.effective(&loaded, &process_env, &self.overrides)?;
        let cfg: ClientConfig = CLIENT.typed(&effective)?;
        // Retries and connection problems show at system.log_level (or RUST_LOG), as they do
        // for the commands that call the model.
        crate::cli::init_logging(cfg.system.log_level.as_str());
        Ok((loaded, cfg))
    }

    /// Apply several edits (`None` removes a key) and write the file once.
    pub fn edit(&self, loaded: &Loaded, edits: &[(KeyPath, Option<String>)]) -> CmdResult {
        let mut current = loaded.clone();
        for (key, value) in edits {
            let text = match value {
                Some(v) => CLIENT.set(&current, key, v)?.0,
                None => match CLIENT.unset(&current, key) {
                    Ok(t) => t,
                    Err(crate::config::ConfigError::NotSet { .. }) => continue,
                    Err(e) => return Err(e.into()),
                },
            };
            current = CLIENT.from_text(&loaded.path, Some(text))?;
        }
        CLIENT.write(loaded, current.text.as_deref().unwrap_or_default())?;
        Ok(())
    }
}

impl From<AdapterError> for CmdError {
    fn from(e: AdapterError) -> CmdError {
        let mut err = CmdError::new(e.to_string());
        err.hint = e.hint();
        err
    }
}

/// Run a future on a small runtime (the commands are one call each).
pub fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, CmdError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CmdError::new(format!("cannot start the runtime: {e}")))?;
    Ok(rt.block_on(f))
}

/// Connect and fetch the server's description.
pub fn fetch_info(settings: ProxySettings) -> Result<ServerInfo, CmdError> {
    let timeout = settings.timeout;
    let info = block_on(async move {
        let adapter = ProxyAdapter::new(settings)?;
        match tokio::time::timeout(timeout, adapter.info()).await {
            Ok(r) => r.cloned(),
            Err(_) => Err(AdapterError::Timeout {
                seconds: timeout.as_secs(),
            }),
        }
    })??;
    Ok(info)
}

/// A human description of a server.
pub fn describe(info: &ServerInfo) -> String {
    let mut s = format!("server:   {} {}\n", info.name, info.version);
    s.push_str(&format!(
        "default:  {}\n",
        if info.default_model.is_empty() {
            "(none)"
        } else {
            &info.default_model
        }
    ));
    s.push_str("models:\n");
    for (id, provider, aliases) in &info.models {
        let a = if aliases.is_empty() {
            String::new()
        } else {
            format!(" (aliases: {})", aliases.join(", "))
        };
        s.push_str(&format!("  {id} [{provider}]{a}\n"));
    }
    if !info.aliases.is_empty() {
        s.push_str("aliases:\n");
        for (alias, id) in &info.aliases {
            s.push_str(&format!("  {alias} -> {id}\n"));
        }
    }
    if info.limits.is_empty() {
        s.push_str("limits:   none\n");
    } else {
        s.push_str("limits:\n");
        for (name, v) in &info.limits {
            s.push_str(&format!("  {name}: {v}\n"));
        }
    }
    s
}

pub fn run(ctx: &Ctx, cmd: &SetupProxyCommand) -> CmdResult {
    match cmd {
        SetupProxyCommand::Configure(a) => configure::run(ctx, a),
        SetupProxyCommand::Test(a) => test::run(ctx, a),
        SetupProxyCommand::Status => status::run(ctx),
        SetupProxyCommand::List => list::run(ctx),
        SetupProxyCommand::SetActive(a) => set_active::run(ctx, a),
        SetupProxyCommand::Remove(a) => remove::run(ctx, a),
        SetupProxyCommand::Disable => disable::run(ctx),
        SetupProxyCommand::Url(a) => url::run(a),
    }
}
