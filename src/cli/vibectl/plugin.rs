//! `plugin install FILE|list|uninstall NAME|update FILE|precedence ...`: prompt plugins in vibectl 0.11.6's
//! format (see [`crate::prompts::plugin`]), kept as `NAME-VERSION.json` files in the client
//! config directory's `plugins/`. [`resolved`] gives every model command the winning mapping
//! of each prompt key, ordered by `plugins.precedence` and then by name.

mod precedence;

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::session::Ctx;
use crate::cli::{CmdError, CmdResult, out, warn};
use crate::config::generated::client::key;
use crate::config::{ClientConfig, store};
use crate::prompts::plugin::{MAX_PLUGIN_BYTES, Plugin, Prompts};

/// Most plugin files read from `plugins/`.
const MAX_PLUGINS: usize = 200;

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Install a plugin file (refused when a plugin of that name is installed, unless --force)
    ///
    /// Example: `vibectl plugin install security-focused-check-v1.json`
    Install {
        file: PathBuf,
        /// Replace an installed plugin of the same name
        #[arg(long)]
        force: bool,
        /// Where to place the plugin in plugins.precedence
        #[arg(long, value_name = "PLACE")]
        precedence: Option<precedence::Place>,
    },
    /// List the installed plugins and the prompts they replace
    List,
    /// Remove an installed plugin
    ///
    /// Example: `vibectl plugin uninstall security-focused-check`
    Uninstall { name: String },
    /// Replace an installed plugin with a new version of its file
    ///
    /// Example: `vibectl plugin update security-focused-check-v2.json`
    Update { file: PathBuf },
    /// Show or change plugins.precedence, the order in which plugins are asked for a prompt
    ///
    /// Example: `vibectl plugin precedence set strict-check other-plugin`
    #[command(subcommand)]
    Precedence(precedence::PrecedenceCommand),
}

/// The `plugins/` directory next to the config file.
pub fn dir(config_file: &Path) -> PathBuf {
    config_file
        .parent()
        .unwrap_or(Path::new("."))
        .join("plugins")
}

/// The installed plugins with their files, by name; files that are not valid plugins are
/// skipped with a warning. The newest version wins when a name has several files.
fn installed(dir: &Path) -> Vec<(PathBuf, Plugin)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.len() > MAX_PLUGINS {
        warn(&format!(
            "{} holds {} plugin files; only the first {MAX_PLUGINS} are read",
            dir.display(),
            files.len()
        ));
        files.truncate(MAX_PLUGINS);
    }
    let mut out: Vec<(PathBuf, Plugin)> = Vec::new();
    for f in files {
        match read(&f) {
            Ok(p) => out.push((f, p)),
            Err(e) => warn(&format!(
                "skipping the plugin file {}: {}",
                f.display(),
                e.message
            )),
        }
    }
    out.sort_by(|a, b| a.1.name.cmp(&b.1.name).then(b.1.version.cmp(&a.1.version)));
    out
}

/// Read and check a plugin file (at most [`MAX_PLUGIN_BYTES`]).
fn read(path: &Path) -> Result<Plugin, CmdError> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| CmdError::new(format!("cannot read {}: {e}", path.display())))?;
    let mut text = String::new();
    file.take(MAX_PLUGIN_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| CmdError::new(format!("cannot read {}: {e}", path.display())))?;
    Plugin::parse(&text).map_err(|e| {
        CmdError::new(format!("{} is not a valid plugin: {e}", path.display())).with_hint(format!(
            "fix the field `{}`; the format is vibectl 0.11.6's (plugin_metadata, prompt_mappings)",
            e.field
        ))
    })
}

/// The winning prompt mappings for `cfg`'s `plugins.precedence`.
pub fn resolved(config_file: &Path, cfg: &ClientConfig) -> Prompts {
    let plugins: Vec<Plugin> = dedup(installed(&dir(config_file)))
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    for name in &cfg.plugins.precedence {
        if !plugins.iter().any(|p| &p.name == name) {
            warn(&format!(
                "{} names `{name}`, which is not installed",
                key::PLUGINS_PRECEDENCE
            ));
        }
    }
    Prompts::resolve(&plugins, &cfg.plugins.precedence)
}

/// The names of the installed plugins, in name order.
fn names(config_file: &Path) -> Vec<String> {
    dedup(installed(&dir(config_file)))
        .into_iter()
        .map(|(_, p)| p.name)
        .collect()
}

/// One entry per name: its newest version.
fn dedup(mut all: Vec<(PathBuf, Plugin)>) -> Vec<(PathBuf, Plugin)> {
    all.dedup_by(|b, a| a.1.name == b.1.name);
    all
}

pub fn run(ctx: &Ctx, cmd: &PluginCommand) -> CmdResult {
    let (_, cfg) = ctx.load()?;
    let dir = dir(&ctx.file);
    match cmd {
        PluginCommand::Install {
            file,
            force,
            precedence: None,
        } => put(&dir, file, *force, false),
        PluginCommand::Install {
            file,
            force,
            precedence: Some(place),
        } => {
            // The config edit is checked before the plugin is installed: a refused one installs
            // nothing.
            let name = read(file)?.name;
            let index = (*place == precedence::Place::First).then_some(0);
            let list = precedence::placed(&cfg.plugins.precedence, &name, index);
            let text = precedence::edited(ctx, &list)?;
            put(&dir, file, *force, false)?;
            precedence::write(ctx, &text)?;
            let at = match place {
                precedence::Place::First => "first (highest priority)",
                precedence::Place::Last => "last (lowest priority)",
            };
            eprintln!("{name} is {at} in {}", key::PLUGINS_PRECEDENCE);
            Ok(())
        }
        PluginCommand::Precedence(cmd) => precedence::run(ctx, cmd),
        PluginCommand::Update { file } => put(&dir, file, true, true),
        PluginCommand::Uninstall { name } => {
            let files: Vec<PathBuf> = installed(&dir)
                .into_iter()
                .filter(|(_, p)| &p.name == name)
                .map(|(f, _)| f)
                .collect();
            // The precedence edit is checked before any file goes.
            let kept: Option<String> = if cfg.plugins.precedence.contains(name) {
                let rest: Vec<String> = cfg
                    .plugins
                    .precedence
                    .iter()
                    .filter(|p| *p != name)
                    .cloned()
                    .collect();
                Some(precedence::edited(ctx, &rest)?)
            } else {
                None
            };
            if files.is_empty() {
                return Err(
                    CmdError::new(format!("no plugin named `{name}` is installed"))
                        .with_hint("see the installed ones with `vibectl plugin list`"),
                );
            }
            for f in files {
                std::fs::remove_file(&f)
                    .map_err(|e| CmdError::new(format!("cannot remove {}: {e}", f.display())))?;
            }
            eprintln!("uninstalled {name}");
            if let Some(text) = kept {
                precedence::write(ctx, &text)?;
                eprintln!("removed `{name}` from {}", key::PLUGINS_PRECEDENCE);
            }
            Ok(())
        }
        PluginCommand::List => {
            let all = dedup(installed(&dir));
            if all.is_empty() {
                eprintln!("no plugin is installed");
                return Ok(());
            }
            let plugins: Vec<Plugin> = all.iter().map(|(_, p)| p.clone()).collect();
            let winners = Prompts::resolve(&plugins, &cfg.plugins.precedence);
            for p in &plugins {
                out(&format!(
                    "{} {}  {}\n",
                    p.name,
                    p.version,
                    p.description.trim()
                ));
                for k in p.mappings.keys() {
                    let wins = winners.get(k).is_some_and(|(n, _)| n == p.name);
                    let mark = if wins { "" } else { " (another plugin wins)" };
                    out(&format!("  {k}{mark}\n"));
                }
            }
            Ok(())
        }
    }
}

/// Install (`update` false) or update `file`; `replace` allows a name already installed.
fn put(dir: &Path, file: &Path, replace: bool, update: bool) -> CmdResult {
    let plugin = read(file)?;
    let text = std::fs::read_to_string(file)
        .map_err(|e| CmdError::new(format!("cannot read {}: {e}", file.display())))?;
    let existing: Vec<PathBuf> = installed(dir)
        .into_iter()
        .filter(|(_, p)| p.name == plugin.name)
        .map(|(f, _)| f)
        .collect();
    if update && existing.is_empty() {
        return Err(
            CmdError::new(format!("no plugin named `{}` is installed", plugin.name)).with_hint(
                format!("install it: vibectl plugin install {}", file.display()),
            ),
        );
    }
    if !replace && !existing.is_empty() {
        return Err(CmdError::new(format!(
            "a plugin named `{}` is already installed",
            plugin.name
        ))
        .with_hint(format!(
            "replace it with `vibectl plugin update {}` (or install --force)",
            file.display()
        )));
    }
    let dest = dir.join(format!("{}-{}.json", plugin.name, plugin.version));
    store::write_atomic(&dest, &text, false)?;
    for f in existing.iter().filter(|f| **f != dest) {
        let _ = std::fs::remove_file(f);
    }
    let verb = if existing.is_empty() {
        "installed"
    } else {
        "updated"
    };
    eprintln!(
        "{verb} {} {} ({} prompt{})",
        plugin.name,
        plugin.version,
        plugin.mappings.len(),
        if plugin.mappings.len() == 1 { "" } else { "s" }
    );
    Ok(())
}
