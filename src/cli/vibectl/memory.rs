//! `memory show|set TEXT|clear|update TEXT|freeze|unfreeze`: the memory carried between
//! commands (`memory_content` in the config file, written through the config engine so comments
//! stay). Frozen (`memory.enabled` false), the memory stays exactly as it is: no command changes
//! it until `memory unfreeze`.

use clap::Subcommand;

use super::session::{Ctx, Session, cut, print_answer, save_memory};
use crate::cli::vibectl::setup_proxy::block_on;
use crate::cli::{CmdError, CmdResult};
use crate::config::generated::client::key;
use crate::config::{CLIENT, KeyPath};
use crate::prompts;

#[derive(Debug, Subcommand)]
pub enum MemoryCommand {
    /// Print the memory
    Show,
    /// Replace the memory with TEXT (cut to memory.max_chars)
    ///
    /// Example: `vibectl memory set "the app runs in namespace shop"`
    Set {
        #[arg(required = true)]
        text: Vec<String>,
    },
    /// Empty the memory
    Clear,
    /// Ask the model to fold TEXT into the memory, and print the result
    ///
    /// Example: `vibectl memory update "the database was moved to namespace data"`
    Update {
        #[arg(required = true)]
        text: Vec<String>,
    },
    /// Keep the memory as it is: no command changes it, and prompts leave it out, until unfreeze
    Freeze,
    /// Let commands update the memory again
    Unfreeze,
}

/// Refuse to change a frozen memory.
fn not_frozen(cfg: &crate::config::ClientConfig) -> CmdResult {
    if cfg.memory.enabled {
        return Ok(());
    }
    Err(CmdError::new(format!(
        "the memory is frozen ({} is false): it stays as it is",
        key::MEMORY_ENABLED
    ))
    .with_hint("run `vibectl memory unfreeze` first"))
}

/// Write `memory.enabled` through the config engine.
fn set_enabled(ctx: &Ctx, on: bool) -> CmdResult {
    let loaded = CLIENT.load(&ctx.file)?;
    let k = KeyPath::template(key::MEMORY_ENABLED);
    let (text, _) = CLIENT.set(&loaded, &k, if on { "true" } else { "false" })?;
    CLIENT.write(&loaded, &text)?;
    Ok(())
}

pub fn run(ctx: &Ctx, cmd: &MemoryCommand) -> CmdResult {
    match cmd {
        MemoryCommand::Show => {
            let (_, cfg) = ctx.load()?;
            match cfg
                .memory_content
                .as_deref()
                .filter(|m| !m.trim().is_empty())
            {
                Some(m) => print_answer(m),
                None => eprintln!("the memory is empty"),
            }
            Ok(())
        }
        MemoryCommand::Set { text } => {
            let (_, cfg) = ctx.load()?;
            not_frozen(&cfg)?;
            let max = usize::try_from(cfg.memory.max_chars).unwrap_or(500).max(1);
            let text = text.join(" ");
            let kept = cut(text.trim(), max);
            if kept.is_empty() {
                return Err(CmdError::new("the memory text is empty")
                    .with_hint("use `vibectl memory clear` to empty the memory"));
            }
            save_memory(&ctx.file, Some(&kept))?;
            if kept.chars().count() < text.trim().chars().count() {
                crate::cli::warn(&format!("the memory was cut to {max} characters"));
            }
            eprintln!("memory set ({} characters)", kept.chars().count());
            Ok(())
        }
        MemoryCommand::Clear => {
            not_frozen(&ctx.load()?.1)?;
            save_memory(&ctx.file, None)?;
            eprintln!("memory cleared");
            Ok(())
        }
        MemoryCommand::Update { text } => block_on(async {
            let session = Session::open(ctx)?;
            not_frozen(&session.cfg)?;
            let max = session.max_memory_chars();
            let current = session.cfg.memory_content.clone().unwrap_or_default();
            let req =
                session
                    .context()
                    .instruct(prompts::memory_update(&current, &text.join(" "), max));
            let answer = session.ask("memory", req).await?;
            let kept = cut(answer.trim(), max);
            save_memory(&ctx.file, Some(&kept))?;
            print_answer(&kept);
            session.finish();
            Ok(())
        })?,
        MemoryCommand::Freeze => {
            ctx.load()?;
            set_enabled(ctx, false)?;
            eprintln!("memory frozen: it stays as it is until `vibectl memory unfreeze`");
            Ok(())
        }
        MemoryCommand::Unfreeze => {
            ctx.load()?;
            set_enabled(ctx, true)?;
            eprintln!("memory unfrozen: commands update it again");
            Ok(())
        }
    }
}
