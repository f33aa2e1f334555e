//! `instructions show|set TEXT|edit|clear`: the custom instructions added to every prompt
//! (`system.custom_instructions`), written through the config engine so comments stay. `set`
//! without TEXT reads them from stdin; `edit` opens `$VISUAL` or `$EDITOR` on a copy and writes
//! the result only when the editor succeeds. Both are bounded to [`MAX_CHARS`].

use std::io::{IsTerminal, Read};

use clap::Subcommand;

use super::session::{Ctx, print_answer};
use crate::cli::{CmdError, CmdResult, process_env};
use crate::config::generated::client::key;
use crate::config::{CLIENT, ConfigError, KeyPath};

/// The longest instructions accepted, in characters.
pub const MAX_CHARS: usize = 16 * 1024;

#[derive(Debug, Subcommand)]
pub enum InstructionsCommand {
    /// Print the custom instructions
    Show,
    /// Replace the custom instructions with TEXT (or with stdin when TEXT is left out)
    ///
    /// Example: `vibectl instructions set "Use namespace staging unless told otherwise."`
    Set { text: Vec<String> },
    /// Edit the custom instructions in $VISUAL or $EDITOR
    Edit,
    /// Remove the custom instructions
    Clear,
}

pub fn run(ctx: &Ctx, cmd: &InstructionsCommand) -> CmdResult {
    let (_, cfg) = ctx.load()?;
    let current = cfg.system.custom_instructions.clone().unwrap_or_default();
    match cmd {
        InstructionsCommand::Show => {
            if current.trim().is_empty() {
                eprintln!("no custom instructions are set");
            } else {
                print_answer(&current);
            }
            Ok(())
        }
        InstructionsCommand::Set { text } => {
            let text = if text.is_empty() {
                if std::io::stdin().is_terminal() {
                    return Err(CmdError::new("no instructions given").with_hint(
                        "vibectl instructions set \"TEXT\", pipe them in, or use `vibectl instructions edit`",
                    ));
                }
                let mut buf = String::new();
                std::io::stdin()
                    .take((MAX_CHARS * 4 + 1) as u64)
                    .read_to_string(&mut buf)
                    .map_err(|e| CmdError::new(format!("cannot read stdin: {e}")))?;
                buf
            } else {
                text.join(" ")
            };
            save(ctx, &text)?;
            eprintln!("custom instructions set");
            Ok(())
        }
        InstructionsCommand::Edit => {
            let edited = edit(&current)?;
            if edited.trim() == current.trim() {
                eprintln!("custom instructions not changed");
                return Ok(());
            }
            save(ctx, &edited)?;
            eprintln!("custom instructions set");
            Ok(())
        }
        InstructionsCommand::Clear => {
            let loaded = CLIENT.load(&ctx.file)?;
            match CLIENT.unset(&loaded, &KeyPath::template(key::SYSTEM_CUSTOM_INSTRUCTIONS)) {
                Ok(text) => CLIENT.write(&loaded, &text)?,
                Err(ConfigError::NotSet { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            eprintln!("custom instructions cleared");
            Ok(())
        }
    }
}

/// Check and write the instructions.
fn save(ctx: &Ctx, text: &str) -> CmdResult {
    let text = text.trim();
    if text.is_empty() {
        return Err(CmdError::new("the instructions are empty")
            .with_hint("use `vibectl instructions clear` to remove them"));
    }
    let n = text.chars().count();
    if n > MAX_CHARS {
        return Err(CmdError::new(format!(
            "the instructions are {n} characters long; {} holds at most {MAX_CHARS}",
            key::SYSTEM_CUSTOM_INSTRUCTIONS
        ))
        .with_hint("shorten them; they are sent with every prompt"));
    }
    let loaded = CLIENT.load(&ctx.file)?;
    let (new_text, _) = CLIENT.set(
        &loaded,
        &KeyPath::template(key::SYSTEM_CUSTOM_INSTRUCTIONS),
        text,
    )?;
    CLIENT.write(&loaded, &new_text)?;
    Ok(())
}

/// Let the user edit `current` in their editor; the edited text, or an error when the editor
/// cannot run or fails (nothing is then changed).
fn edit(current: &str) -> Result<String, CmdError> {
    let editor = process_env("VISUAL")
        .or_else(|| process_env("EDITOR"))
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".to_owned());
    let mut words = editor.split_whitespace();
    let program = words.next().unwrap_or("vi");
    let tmp = tempfile::Builder::new()
        .prefix("vibectl-instructions-")
        .suffix(".txt")
        .tempfile()
        .map_err(|e| CmdError::new(format!("cannot make a file to edit: {e}")))?;
    std::fs::write(tmp.path(), current)
        .map_err(|e| CmdError::new(format!("cannot write {}: {e}", tmp.path().display())))?;
    let status = std::process::Command::new(program)
        .args(words)
        .arg(tmp.path())
        .status()
        .map_err(|e| {
            CmdError::new(format!("cannot run the editor `{editor}`: {e}"))
                .with_hint("set VISUAL or EDITOR to your editor, or use `vibectl instructions set`")
        })?;
    if !status.success() {
        return Err(CmdError::new(format!(
            "the editor `{editor}` failed ({status}); the instructions are not changed"
        )));
    }
    let mut text = String::new();
    std::fs::File::open(tmp.path())
        .and_then(|f| f.take((MAX_CHARS * 4 + 1) as u64).read_to_string(&mut text))
        .map_err(|e| CmdError::new(format!("cannot read the edited file: {e}")))?;
    Ok(text)
}
