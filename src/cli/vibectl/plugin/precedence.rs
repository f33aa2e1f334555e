//! `plugin precedence list|set PLUGINS...|add NAME [--position N]|remove NAME`: the order in
//! which installed plugins are asked for a prompt (`plugins.precedence`), edited through the
//! config engine so comments stay and a refused change writes nothing.

use clap::{Subcommand, ValueEnum};

use super::super::session::Ctx;
use crate::cli::{CmdError, CmdResult, out, warn};
use crate::config::generated::client::key;
use crate::config::{CLIENT, KeyPath};

/// Most names `plugins.precedence` may hold (as many as plugins are read).
const MAX_NAMES: usize = super::MAX_PLUGINS;

#[derive(Debug, Subcommand)]
pub enum PrecedenceCommand {
    /// Print the plugin precedence order, highest priority first
    List,
    /// Replace the precedence order with PLUGINS, highest priority first (all installed)
    ///
    /// Example: `vibectl plugin precedence set plugin-a plugin-b plugin-c`
    Set {
        #[arg(required = true, value_name = "PLUGINS")]
        plugins: Vec<String>,
    },
    /// Put an installed plugin into the precedence order (moved if it is there already)
    ///
    /// Example: `vibectl plugin precedence add strict-check --position 1`
    Add {
        plugin_name: String,
        /// Position to insert at (1-based; past the end means last)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        position: Option<u32>,
    },
    /// Take a plugin out of the precedence order
    Remove { plugin_name: String },
}

/// Where `plugin install --precedence` puts the plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Place {
    /// Highest priority
    First,
    /// Lowest priority
    Last,
}

pub fn run(ctx: &Ctx, cmd: &PrecedenceCommand) -> CmdResult {
    let (_, cfg) = ctx.load()?;
    let current = cfg.plugins.precedence.clone();
    let installed: Vec<String> = super::names(&ctx.file);
    let new = match cmd {
        PrecedenceCommand::List => {
            if current.is_empty() {
                eprintln!("no plugin precedence is set: plugins are asked in name order");
            } else {
                out(&numbered(&current, None));
            }
            return Ok(());
        }
        PrecedenceCommand::Set { plugins } => {
            let unknown: Vec<&str> = plugins
                .iter()
                .filter(|p| !installed.contains(p))
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                return Err(not_installed(&unknown, &installed));
            }
            if let Some(dup) = plugins
                .iter()
                .enumerate()
                .find(|(i, p)| plugins[..*i].contains(p))
                .map(|(_, p)| p)
            {
                return Err(CmdError::new(format!(
                    "`{dup}` is named twice; each plugin has one place in {}",
                    key::PLUGINS_PRECEDENCE
                ))
                .with_hint("name each plugin once, highest priority first"));
            }
            plugins.clone()
        }
        PrecedenceCommand::Add {
            plugin_name,
            position,
        } => {
            if !installed.contains(plugin_name) {
                return Err(not_installed(&[plugin_name], &installed));
            }
            let index = position.map(|p| p as usize - 1);
            placed(&current, plugin_name, index)
        }
        PrecedenceCommand::Remove { plugin_name } => {
            if !current.contains(plugin_name) {
                return Err(CmdError::new(format!(
                    "`{plugin_name}` is not in {}",
                    key::PLUGINS_PRECEDENCE
                ))
                .with_hint("see the order with `vibectl plugin precedence list`"));
            }
            current.into_iter().filter(|p| p != plugin_name).collect()
        }
    };
    save(ctx, &new)?;
    let marked = match cmd {
        PrecedenceCommand::Add { plugin_name, .. } => Some(plugin_name.as_str()),
        _ => None,
    };
    report(&new, marked);
    Ok(())
}

/// `current` with `name` taken out and put back at `index` (the end when `None` or past it).
pub fn placed(current: &[String], name: &str, index: Option<usize>) -> Vec<String> {
    let mut list: Vec<String> = current.iter().filter(|p| *p != name).cloned().collect();
    let at = index.unwrap_or(list.len()).min(list.len());
    list.insert(at, name.to_owned());
    list
}

/// The config file's new text with `plugins.precedence` set to `names`; nothing is written.
pub fn edited(ctx: &Ctx, names: &[String]) -> Result<String, CmdError> {
    if names.len() > MAX_NAMES {
        return Err(CmdError::new(format!(
            "{} may name at most {MAX_NAMES} plugins",
            key::PLUGINS_PRECEDENCE
        )));
    }
    let loaded = CLIENT.load(&ctx.file)?;
    let raw = serde_json::to_string(names).expect("a list of strings is JSON");
    let (text, _) = CLIENT.set(&loaded, &KeyPath::template(key::PLUGINS_PRECEDENCE), &raw)?;
    Ok(text)
}

/// Write `text` (from [`edited`]) as the config file.
pub fn write(ctx: &Ctx, text: &str) -> CmdResult {
    let loaded = CLIENT.load(&ctx.file)?;
    CLIENT.write(&loaded, text)?;
    if crate::cli::process_env("VIBECTL_PLUGINS_PRECEDENCE").is_some() {
        warn(&format!(
            "VIBECTL_PLUGINS_PRECEDENCE is set and wins over {} in the config file",
            key::PLUGINS_PRECEDENCE
        ));
    }
    Ok(())
}

fn save(ctx: &Ctx, names: &[String]) -> CmdResult {
    let text = edited(ctx, names)?;
    write(ctx, &text)
}

/// Tell the user the new order on stderr.
fn report(names: &[String], marked: Option<&str>) {
    if names.is_empty() {
        eprintln!(
            "{} is now empty: plugins are asked in name order",
            key::PLUGINS_PRECEDENCE
        );
    } else {
        eprint!(
            "{} is now:\n{}",
            key::PLUGINS_PRECEDENCE,
            numbered(names, marked)
        );
    }
}

/// `  1. name` lines, `marked` followed by `(new place)`.
fn numbered(names: &[String], marked: Option<&str>) -> String {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mark = if Some(n.as_str()) == marked {
                "  (new place)"
            } else {
                ""
            };
            format!("  {}. {n}{mark}\n", i + 1)
        })
        .collect()
}

fn not_installed(unknown: &[&str], installed: &[String]) -> CmdError {
    let list = |v: &[&str]| {
        v.iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let names: Vec<&str> = installed.iter().map(String::as_str).collect();
    let hint = if names.is_empty() {
        "no plugin is installed; install one with `vibectl plugin install FILE`".to_owned()
    } else {
        format!("installed plugins: {}", list(&names))
    };
    CmdError::new(format!("no plugin named {} is installed", list(unknown))).with_hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placed_moves_or_inserts_and_clamps_past_the_end() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let l = v(&["a", "b", "c"]);
        assert_eq!(placed(&l, "d", None), v(&["a", "b", "c", "d"]));
        assert_eq!(placed(&l, "d", Some(0)), v(&["d", "a", "b", "c"]));
        assert_eq!(placed(&l, "c", Some(0)), v(&["c", "a", "b"]));
        assert_eq!(placed(&l, "a", Some(99)), v(&["b", "c", "a"]));
        assert_eq!(placed(&l, "a", Some(1)), v(&["b", "a", "c"]));
    }
}
