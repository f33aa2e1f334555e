//! `config edit`: edit the file in $VISUAL/$EDITOR; keep it only if the result is valid. The
//! file opens even when it is broken (bad YAML, a bad value), since this is how to fix it.

use std::process::Command;

use super::Ctx;
use crate::cli::{CmdError, CmdResult, out};
use crate::config::store;

pub fn run(ctx: &Ctx<'_>) -> CmdResult {
    let original = store::read(&ctx.file)?.unwrap_or_default();
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
    let after = match ctx.engine.from_text(&ctx.file, Some(edited.clone())) {
        Ok(after) => after,
        Err(e) => {
            let mut err = CmdError::from(e);
            err.message = format!(
                "the edit was refused and the config file is unchanged: {}",
                err.message
            );
            return Err(err);
        }
    };
    if let Err(e) = ctx.engine.validate(&after) {
        let mut err = CmdError::from(e);
        err.message = format!(
            "the edit was refused and the config file is unchanged: {}",
            err.message
        );
        return Err(err);
    }
    ctx.engine.write(&after, &edited)?;
    out(&format!("saved {}\n", ctx.file.display()));
    Ok(())
}
