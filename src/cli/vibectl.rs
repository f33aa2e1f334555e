//! The `vibectl` command line: global flags and the subcommand tree.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod apply;
mod audit;
mod auto;
mod check;
mod display_flags;
mod edit;
mod guard;
mod instructions;
mod just;
mod kube;
mod kubectl;
mod live;
mod looping;
mod memory;
mod plan;
mod plugin;
mod port_forward;
mod relay;
mod rollout;
mod safety;
mod semiauto;
mod session;
pub mod setup_proxy;
mod spinner;
mod theme;
mod version;
mod vibe;

use super::completions::{self, Shell};
use super::config::{self as config_cmd, ConfigCommand, Ctx};
use super::{CmdError, CmdResult, process_env};
use crate::config::generated::client::key;
use crate::config::{CLIENT, KeyPath, Override, store, value};

/// The heading of the flags every command takes.
pub const GLOBAL_HEADING: &str = "Global options";

/// vibectl: plan and explain kubectl commands with an LLM.
#[derive(Debug, Parser)]
#[command(
    name = "vibectl",
    version,
    about,
    propagate_version = true,
    next_help_heading = GLOBAL_HEADING
)]
pub struct Cli {
    /// Use this model for this run (overrides llm.model)
    #[arg(long, global = true, value_name = "NAME")]
    pub model: Option<String>,
    /// Use this proxy profile for this run (overrides proxy.active)
    #[arg(
        long,
        global = true,
        value_name = "PROFILE",
        conflicts_with = "no_proxy"
    )]
    pub proxy: Option<String>,
    /// Call the provider directly for this run, even if a proxy is active
    #[arg(long, global = true)]
    pub no_proxy: bool,
    /// Log level for this run (overrides system.log_level); debug logs vibectl's own steps
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Same as --log-level debug
    #[arg(long, global = true, conflicts_with = "log_level")]
    pub verbose: bool,
    /// The client config directory (same as VIBECTL_CLIENT_CONFIG_DIR)
    #[arg(long, global = true, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// Answer yes to confirmations
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
    /// Refuse every kubectl command that can change the cluster or reach into it (same as
    /// security.read_only); --yes does not override it
    #[arg(long, global = true)]
    pub read_only: bool,
    #[command(flatten)]
    pub display: display_flags::DisplayFlags,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show, change and check the client config
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Connect to a vibectl-server: import URLs as profiles, test them, pick one
    #[command(subcommand)]
    SetupProxy(setup_proxy::SetupProxyCommand),
    /// Plan a kubectl command from a request, run it (after confirming) and explain the result
    ///
    /// Example: `vibectl vibe "show the pods that keep restarting"`
    Vibe(vibe::VibeArgs),
    /// Run `kubectl get ARGS` and summarize the output
    ///
    /// Example: `vibectl get pods -n kube-system`, or `vibectl get vibe "pods that restarted today"`
    Get(kube::KubeArgs),
    /// Run `kubectl describe ARGS` and summarize the output
    ///
    /// Example: `vibectl describe deployment web`
    Describe(kube::KubeArgs),
    /// Run `kubectl logs ARGS` and summarize the output
    ///
    /// Example: `vibectl logs deploy/web --since=1h`
    Logs(kube::KubeArgs),
    /// Run `kubectl events ARGS` and summarize the output
    ///
    /// Example: `vibectl events -n shop`
    Events(kube::KubeArgs),
    /// Run `kubectl explain ARGS` and summarize the output
    ///
    /// Example: `vibectl explain deployment.spec.strategy`
    Explain(kube::KubeArgs),
    /// Run `kubectl rollout status|history|undo|restart|pause|resume ARGS` and summarize
    ///
    /// Example: `vibectl rollout status deployment/web`
    #[command(subcommand)]
    Rollout(rollout::RolloutCommand),
    /// Run `kubectl top ARGS` and summarize the output
    ///
    /// Example: `vibectl top pods -n shop`
    Top(kube::KubeArgs),
    /// Print vibectl's version (and the server's, through a proxy), then summarize `kubectl version ARGS`
    ///
    /// Example: `vibectl version`
    Version(kube::KubeArgs),
    /// Run `kubectl create ARGS` and summarize the output
    ///
    /// Example: `vibectl create deployment web --image=nginx`, or `vibectl create vibe "an nginx deployment"`
    Create(kube::KubeArgs),
    /// Run `kubectl delete ARGS` and summarize the output
    ///
    /// Example: `vibectl delete pod web-1`, or `vibectl delete vibe "the failed jobs in batch"`
    Delete(kube::KubeArgs),
    /// Run `kubectl scale ARGS` and summarize the output
    ///
    /// Example: `vibectl scale deployment/web --replicas=3`
    Scale(kube::KubeArgs),
    /// Run `kubectl wait ARGS` and summarize the output
    ///
    /// Example: `vibectl wait deployment/web --for=condition=Available --timeout=60s`
    Wait(kube::KubeArgs),
    /// Run `kubectl diff ARGS` and summarize the differences (differences are not a failure)
    ///
    /// Example: `vibectl diff -f web.yaml`
    Diff(kube::KubeArgs),
    /// Run `kubectl cluster-info ARGS` and summarize the output
    ///
    /// Example: `vibectl cluster-info`
    ClusterInfo(kube::KubeArgs),
    /// Run `kubectl apply ARGS` and summarize; `apply vibe` gathers, validates, corrects and applies manifests
    ///
    /// Example: `vibectl apply -f web.yaml`, or `vibectl apply vibe "web.yaml, fixed so the server accepts it"`
    Apply(kube::KubeArgs),
    /// Run `kubectl edit ARGS`; `edit vibe` turns a plain-language change into a patch, shown and confirmed
    ///
    /// Example: `vibectl edit vibe "give the web deployment 3 replicas"`
    Edit(kube::KubeArgs),
    /// Run `kubectl patch ARGS` and summarize the output
    ///
    /// Example: `vibectl patch deployment web -p '{"spec":{"replicas":2}}'`, or `vibectl patch vibe "..."`
    Patch(kube::KubeArgs),
    /// Run `kubectl port-forward ARGS` until Ctrl-C, through a local relay that counts the
    /// traffic when networking.intermediate_port_range is set, and summarize the session
    ///
    /// Example: `vibectl port-forward pod/web 8080:80`, or `vibectl port-forward vibe "the web service on my 8080"`
    PortForward(kube::KubeArgs),
    /// Run `kubectl ARGS` as it is, without the model
    ///
    /// Example: `vibectl just get pods -o wide`
    Just(just::JustArgs),
    /// Show or change the memory carried between commands
    ///
    /// Example: `vibectl memory show`
    #[command(subcommand)]
    Memory(memory::MemoryCommand),
    /// Work toward a goal step by step: plan a kubectl command, run it, look at the result,
    /// until the model says the goal is reached, --limit steps ran, or Ctrl-C
    ///
    /// Example: `vibectl auto --limit 5 "find out why the web pods restart"`
    Auto(auto::AutoArgs),
    /// Like auto, but confirm every step (yes, no, and remember, or exit)
    ///
    /// Example: `vibectl semiauto "clean up the failed jobs in namespace batch"`
    Semiauto(auto::SemiautoArgs),
    /// Decide whether a statement about the cluster holds, with read-only commands; exits 0
    /// (true), 1 (false), 2 (poorly posed) or 3 (cannot determine)
    ///
    /// Example: `vibectl check "every pod in namespace shop is running"`
    Check(check::CheckArgs),
    /// Install, list, update and remove prompt plugins
    ///
    /// Example: `vibectl plugin install security-focused-check-v1.json`
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Show or change the custom instructions added to every prompt
    ///
    /// Example: `vibectl instructions set "Use namespace staging unless told otherwise."`
    #[command(subcommand)]
    Instructions(instructions::InstructionsCommand),
    /// List the colour themes or pick one
    ///
    /// Example: `vibectl theme set accessible`
    #[command(subcommand)]
    Theme(theme::ThemeCommand),
    /// Read the audit log: the model calls and kubectl commands vibectl recorded
    ///
    /// Example: `vibectl audit show --since 2h`
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Print the shell completion script (bash, zsh, fish)
    ///
    /// Example: `source <(vibectl completions bash)`
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// The client config file: `--config-dir`, else the directory rule of the wire contract.
pub fn config_file(
    config_dir: Option<&PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PathBuf, CmdError> {
    let dir = match config_dir {
        Some(d) => d.clone(),
        None => store::config_dir(CLIENT.schema.program, env)?,
    };
    Ok(dir.join(store::FILE_NAME))
}

/// For completion: the file named by `--config-dir` among the typed words, or the default.
pub fn completion_file(words: &[String]) -> Option<PathBuf> {
    let dir = super::complete::flag_value(words, "--config-dir").map(PathBuf::from);
    config_file(dir.as_ref(), &process_env).ok()
}

impl Cli {
    /// The global flags as config overrides for this run.
    pub fn overrides(&self) -> Result<Vec<Override>, CmdError> {
        let mut out = Vec::new();
        let mut add = |k: &str, raw: Option<&str>, flag: &str| -> Result<(), CmdError> {
            let path = KeyPath::template(k);
            let spec = CLIENT.leaf(&path)?;
            let v = match raw {
                Some(r) => {
                    value::parse(spec, k, r).map_err(|e| CmdError::new(format!("{flag}: {e}")))?
                }
                None => serde_json::Value::Null,
            };
            out.push(Override {
                key: path,
                value: v,
                flag: flag.to_owned(),
            });
            Ok(())
        };
        if let Some(m) = &self.model {
            add(key::LLM_MODEL, Some(m), "--model")?;
        }
        if let Some(p) = &self.proxy {
            add(key::PROXY_ACTIVE, Some(p), "--proxy")?;
        }
        if self.no_proxy {
            add(key::PROXY_ACTIVE, None, "--no-proxy")?;
        }
        if let Some(l) = &self.log_level {
            add(key::SYSTEM_LOG_LEVEL, Some(l), "--log-level")?;
        }
        if self.verbose {
            add(key::SYSTEM_LOG_LEVEL, Some("DEBUG"), "--verbose")?;
        }
        for (k, v, flag) in self.display.overrides() {
            add(k, Some(v), flag)?;
        }
        Ok(out)
    }
}

pub fn run(cli: Cli) -> CmdResult {
    match &cli.command {
        Command::Config(cmd) => {
            let ctx = Ctx {
                engine: &CLIENT,
                file: config_file(cli.config_dir.as_ref(), &process_env)?,
                env: &process_env,
                overrides: cli.overrides()?,
                bin: "vibectl",
            };
            config_cmd::run(&ctx, cmd)
        }
        Command::SetupProxy(cmd) => {
            let ctx = setup_proxy::Ctx {
                file: config_file(cli.config_dir.as_ref(), &process_env)?,
                overrides: cli.overrides()?,
            };
            setup_proxy::run(&ctx, cmd)
        }
        Command::Completions { shell } => completions::run("vibectl", *shell),
        Command::Vibe(a) => vibe::run(&model_ctx(&cli)?, a),
        Command::Get(a) => kube::run(&model_ctx(&cli)?, "get", a),
        Command::Describe(a) => kube::run(&model_ctx(&cli)?, "describe", a),
        Command::Logs(a) => kube::run(&model_ctx(&cli)?, "logs", a),
        Command::Events(a) => kube::run(&model_ctx(&cli)?, "events", a),
        Command::Explain(a) => kube::run(&model_ctx(&cli)?, "explain", a),
        Command::Rollout(cmd) => rollout::run(&model_ctx(&cli)?, cmd),
        Command::Create(a) => kube::run(&model_ctx(&cli)?, "create", a),
        Command::Delete(a) => kube::run(&model_ctx(&cli)?, "delete", a),
        Command::Scale(a) => kube::run(&model_ctx(&cli)?, "scale", a),
        Command::Wait(a) => kube::run(&model_ctx(&cli)?, "wait", a),
        Command::Diff(a) => kube::run(&model_ctx(&cli)?, "diff", a),
        Command::ClusterInfo(a) => kube::run(&model_ctx(&cli)?, "cluster-info", a),
        Command::Apply(a) => apply::run(&model_ctx(&cli)?, a),
        Command::Edit(a) => edit::run(&model_ctx(&cli)?, a),
        Command::Patch(a) => kube::run(&model_ctx(&cli)?, "patch", a),
        Command::Top(a) => kube::run(&model_ctx(&cli)?, "top", a),
        Command::Version(a) => version::run(&model_ctx(&cli)?, a),
        Command::PortForward(a) => port_forward::run(&model_ctx(&cli)?, a),
        Command::Just(a) => just::run(&model_ctx(&cli)?, a),
        Command::Memory(m) => memory::run(&model_ctx(&cli)?, m),
        Command::Auto(a) => auto::run(&model_ctx(&cli)?, a),
        Command::Semiauto(a) => semiauto::run(&model_ctx(&cli)?, a),
        Command::Check(a) => check::run(&model_ctx(&cli)?, a),
        Command::Plugin(cmd) => plugin::run(&model_ctx(&cli)?, cmd),
        Command::Instructions(cmd) => instructions::run(&model_ctx(&cli)?, cmd),
        Command::Theme(cmd) => theme::run(&model_ctx(&cli)?, cmd),
        Command::Audit(cmd) => {
            let ctx = audit::Ctx {
                session: model_ctx(&cli)?,
                dir_flag: cli.config_dir.is_some(),
            };
            audit::run(&ctx, cmd)
        }
    }
}

/// What the commands that run kubectl or call the model are given.
fn model_ctx(cli: &Cli) -> Result<session::Ctx, CmdError> {
    Ok(session::Ctx {
        file: config_file(cli.config_dir.as_ref(), &process_env)?,
        overrides: cli.overrides()?,
        yes: cli.yes,
        read_only: cli.read_only,
        dir_flag: cli.config_dir.is_some(),
        mode: cli.display.mode,
    })
}
