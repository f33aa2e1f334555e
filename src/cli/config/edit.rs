//! `config edit`: edit the file in $VISUAL/$EDITOR; keep it only if the result is valid.

use std::process::Command;

use super::Ctx;
use crate::cli::{CmdError, CmdResult, out};

pub fn run(ctx: &Ctx<'_>) -> CmdResult {
    let loaded = ctx.load()?;
    let original = loaded.text.clone().unwrap_or_default();
    let dir = tempfile::tempdir()
        .map_err(|e| CmdError::new(format!("cannot create a temporary directory: {e}")))?;
    let scratch = dir.path().join("config.yaml");
    std::fs::write(&scratch, &original)
        .map_err(|e| CmdError::new(format!("cannot write {}: {e}", scratch.display())))?;
    let editor = (ctx.env)("VISUAL")
        .or_else(|| (ctx.env)("EDITOR"))
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".to_owned());
    // The editor may carry arguments (`code --wait`), so run it through the shell.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&scratch)
        .status()
        .map_err(|e| {
            CmdError::new(format!("cannot run the editor `{editor}`: {e}")).with_hint("set $EDITOR")
        })?;
    if !status.success() {
        return Err(CmdError::new(format!(
            "the editor `{editor}` failed ({status}); the config file is unchanged"
        )));
    }
    let edited = std::fs::read_to_string(&scratch)
        .map_err(|e| CmdError::new(format!("cannot read the edited file: {e}")))?;
    if edited == original {
        out("no changes\n");
        return Ok(());
    }
    let after = ctx.engine.from_text(&loaded.path, Some(edited.clone()))?;
    if let Err(e) = ctx.engine.validate(&after) {
        let mut err = CmdError::from(e);
        err.message = format!(
            "the edit was refused and the config file is unchanged: {}",
            err.message
        );
        return Err(err);
    }
    ctx.engine.write(&loaded, &edited)?;
    out(&format!("saved {}\n", loaded.path.display()));
    Ok(())
}
