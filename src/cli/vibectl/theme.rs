//! `theme list|set NAME`: the colour theme of vibectl's own lines (`display.theme`), set
//! through the config engine (which refuses a name that is not a theme, listing the themes).

use clap::Subcommand;

use super::session::Ctx;
use crate::cli::{CmdResult, out};
use crate::config::generated::client::{DisplayTheme, key};
use crate::config::{CLIENT, KeyPath};

#[derive(Debug, Subcommand)]
pub enum ThemeCommand {
    /// List the themes; the current one is marked with `*`
    List,
    /// Use theme NAME from now on
    ///
    /// Example: `vibectl theme set accessible`
    Set { name: String },
}

pub fn run(ctx: &Ctx, cmd: &ThemeCommand) -> CmdResult {
    let (_, cfg) = ctx.load()?;
    match cmd {
        ThemeCommand::List => {
            for t in DisplayTheme::ALL {
                let mark = if *t == cfg.display.theme { "*" } else { " " };
                out(&format!("{mark} {}\n", t.as_str()));
            }
            Ok(())
        }
        ThemeCommand::Set { name } => {
            let loaded = CLIENT.load(&ctx.file)?;
            let (text, _) = CLIENT.set(&loaded, &KeyPath::template(key::DISPLAY_THEME), name)?;
            CLIENT.write(&loaded, &text)?;
            eprintln!("theme set to {name}");
            Ok(())
        }
    }
}
