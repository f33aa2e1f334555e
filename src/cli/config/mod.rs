//! `config show|get|set|unset|info|validate|schema|edit`: one toolkit over either schema.

mod edit;
mod get;
mod info;
mod schema;
mod set;
mod show;
mod unset;
mod validate;

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::complete;
use super::{CmdResult, warn};
use crate::config::{Engine, KeyPath, Loaded, Override};

/// What every config subcommand works on.
pub struct Ctx<'a> {
    pub engine: &'static Engine,
    /// The config file (it may not exist yet).
    pub file: PathBuf,
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Values set by flags for this run.
    pub overrides: Vec<Override>,
    /// The binary, for messages (`vibectl`, `vibectl-server`).
    pub bin: &'static str,
}

impl Ctx<'_> {
    /// The key as the schema names it now, with a warning when `key` is an old name.
    pub fn current_name(&self, key: &KeyPath) -> KeyPath {
        let now = self.engine.canonical(key);
        if now != *key {
            warn(&format!("{key} is the old name of {now}; use {now}"));
        }
        now
    }

    /// Load the config file, warning about old key names it still uses.
    pub fn load(&self) -> Result<Loaded, crate::config::ConfigError> {
        let loaded = self.engine.load(&self.file)?;
        for (old, new) in &loaded.renamed {
            warn(&format!(
                "{} uses the old key {old}; it is now {new}",
                self.file.display()
            ));
        }
        Ok(loaded)
    }
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Show the effective config (defaults, file, env and flags merged), a section, or one key
    ///
    /// Example: `config show llm`
    Show(show::ShowArgs),
    /// Print one value, raw, for scripts
    ///
    /// Example: `config get llm.model`
    Get(get::GetArgs),
    /// Set a key in the config file (the value is parsed by the key's type)
    ///
    /// Example: `config set display.theme dark`
    Set(set::SetArgs),
    /// Remove a key from the config file so its default applies again
    ///
    /// Example: `config unset memory.max_chars`
    Unset(unset::UnsetArgs),
    /// Where the config file is, or everything about one key
    ///
    /// Example: `config info llm.model`
    Info(info::InfoArgs),
    /// Check a config file against the schema, listing every problem with its key and line
    ///
    /// Example: `config validate ./config.yaml`
    Validate(validate::ValidateArgs),
    /// Print the JSON Schema (draft 2020-12) of the config file
    ///
    /// Example: `config schema > config.schema.json`
    Schema,
    /// Open the config file in $EDITOR; an invalid result is refused and the old file kept
    ///
    /// Example: `EDITOR=nano config edit`
    Edit,
}

/// How `config show` prints.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Table,
}

/// A key argument (dotted path) with completion from the schema and the file.
#[derive(Debug, Args)]
pub struct KeyArg {
    /// A dotted key, e.g. llm.model or proxy.profiles.prod.server_url
    #[arg(value_parser = clap::value_parser!(KeyPath), add = complete::key_completer())]
    pub key: KeyPath,
}

pub fn run(ctx: &Ctx<'_>, cmd: &ConfigCommand) -> CmdResult {
    match cmd {
        ConfigCommand::Show(a) => show::run(ctx, a),
        ConfigCommand::Get(a) => get::run(ctx, a),
        ConfigCommand::Set(a) => set::run(ctx, a),
        ConfigCommand::Unset(a) => unset::run(ctx, a),
        ConfigCommand::Info(a) => info::run(ctx, a),
        ConfigCommand::Validate(a) => validate::run(ctx, a),
        ConfigCommand::Schema => schema::run(ctx),
        ConfigCommand::Edit => edit::run(ctx),
    }
}

/// The effective subtree at `path` (the whole config for `None`), wrapped in its parent keys.
pub fn nest(path: Option<&KeyPath>, v: serde_json::Value) -> serde_json::Value {
    let Some(path) = path else { return v };
    path.segments().iter().rev().fold(v, |acc, seg| {
        let mut m = serde_json::Map::new();
        m.insert(seg.clone(), acc);
        serde_json::Value::Object(m)
    })
}
