//! `config schema`: the JSON Schema of the config file, for editors and other tools.

use super::Ctx;
use crate::cli::{CmdResult, out};

pub fn run(ctx: &Ctx<'_>) -> CmdResult {
    out(ctx.engine.schema.json_schema);
    Ok(())
}
