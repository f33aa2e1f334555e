//! The `vibectl-server` command line: `--config FILE` (global) and the subcommand tree.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::completions::{self, Shell};
use super::config::{self as config_cmd, ConfigCommand, Ctx};
use super::{CmdError, CmdResult, process_env};
use crate::config::{SERVER, store};

pub mod ca;
pub mod generate_certs;
pub mod generate_token;
pub mod init_config;
pub mod serve;
pub mod status;
pub mod usage;

/// vibectl-server: the central LLM proxy for vibectl clients.
#[derive(Debug, Parser)]
#[command(name = "vibectl-server", version, about, propagate_version = true)]
pub struct Cli {
    /// The server config file (default: config.yaml in the server config directory)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show, change and check the server config
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Validate the config, then serve the gRPC proxy
    ///
    /// Example: `vibectl-server serve --port 50051 --require-auth`
    Serve(serve::ServeArgs),
    /// Mint a token for a client; only the token is printed
    ///
    /// Example: `vibectl-server generate-token alice --expires-in 90d`
    GenerateToken(generate_token::GenerateTokenArgs),
    /// A private CA for TLS: init, create-server-cert, status, check-expiry
    Ca(ca::CaArgs),
    /// Quick TLS: a CA and a certificate for one host under certs/
    ///
    /// Example: `vibectl-server generate-certs --hostname llm.internal`
    GenerateCerts(generate_certs::GenerateCertsArgs),
    /// Write a commented default config (host 127.0.0.1, auth on)
    ///
    /// Example: `vibectl-server init-config`
    InitConfig(init_config::InitConfigArgs),
    /// Tokens and cost by token subject and model (or API: `--by api`), from the usage log
    ///
    /// Example: `vibectl-server usage --sub alice --since 7d --by api`
    Usage(usage::UsageArgs),
    /// Each deployment's state (healthy, cooling, out, probe) in a running server, from its /metrics
    ///
    /// Example: `vibectl-server status --metrics-url http://127.0.0.1:9095/metrics`
    Status(status::StatusArgs),
    /// Print the shell completion script (bash, zsh, fish)
    ///
    /// Example: `source <(vibectl-server completions bash)`
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// The server config file: `--config`, else the directory rule of the wire contract.
pub fn config_file(
    config: Option<&PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PathBuf, CmdError> {
    match config {
        Some(f) => Ok(f.clone()),
        None => Ok(store::config_dir(SERVER.schema.program, env)?.join(store::FILE_NAME)),
    }
}

/// For completion: the file named by `--config` among the typed words, or the default.
pub fn completion_file(words: &[String]) -> Option<PathBuf> {
    let file = super::complete::flag_value(words, "--config").map(PathBuf::from);
    config_file(file.as_ref(), &process_env).ok()
}

pub fn run(cli: Cli) -> CmdResult {
    let file = config_file(cli.config.as_ref(), &process_env)?;
    match &cli.command {
        Command::Config(cmd) => {
            let ctx = Ctx {
                engine: &SERVER,
                file,
                env: &process_env,
                overrides: Vec::new(),
                bin: "vibectl-server",
            };
            config_cmd::run(&ctx, cmd)
        }
        Command::InitConfig(args) => init_config::run(&file, args),
        Command::Serve(args) => serve::run(&file, args),
        Command::Ca(args) => ca::run(&file, args),
        Command::GenerateCerts(args) => generate_certs::run(&file, args),
        Command::GenerateToken(args) => generate_token::run(&file, args),
        Command::Usage(args) => usage::run(&file, args),
        Command::Status(args) => status::run(&file, args),
        Command::Completions { shell } => completions::run("vibectl-server", *shell),
    }
}
