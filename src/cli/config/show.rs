//! `config show [SECTION|KEY]`: the effective config, a section of it, or one value.

use clap::Args;

use super::{Ctx, Format, nest};
use crate::cli::{CmdError, CmdResult, complete, out};
use crate::config::{KeyPath, document, render};

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A section (llm) or key (llm.model); the whole config when left out
    #[arg(value_parser = clap::value_parser!(KeyPath), add = complete::section_completer())]
    pub target: Option<KeyPath>,
    /// Output format
    #[arg(long, value_enum, default_value = "yaml")]
    pub format: Format,
    /// Print secrets instead of **REDACTED**
    #[arg(long)]
    pub show_secrets: bool,
}

pub fn run(ctx: &Ctx<'_>, args: &ShowArgs) -> CmdResult {
    let target = match &args.target {
        Some(t) => {
            ctx.engine.resolve(t)?;
            Some(ctx.current_name(t))
        }
        None => None,
    };
    let loaded = ctx.load()?;
    ctx.engine.validate(&loaded)?;
    let effective = ctx.engine.effective(&loaded, ctx.env, &ctx.overrides)?;
    let root = KeyPath::from_segments(Vec::new());
    let at = target.as_ref().unwrap_or(&root);
    let sub = if at.is_empty() {
        Some(&effective)
    } else {
        document::get(&effective, at)
    };
    let Some(sub) = sub else {
        return Err(CmdError::new(format!("{at} is not set")).with_hint(format!(
            "map entries exist only once configured; see `{} config show {}`",
            ctx.bin,
            at.parent().map(|p| p.to_string()).unwrap_or_default()
        )));
    };
    let shown = if args.show_secrets {
        sub.clone()
    } else {
        ctx.engine.redact(sub, at)
    };
    let text = match args.format {
        Format::Yaml => render::yaml(&nest(target.as_ref(), shown)),
        Format::Json => render::json(&nest(target.as_ref(), shown)),
        Format::Table => {
            let mut rows = Vec::new();
            render::rows(&shown, at, &mut rows);
            let table: Vec<Vec<String>> = rows
                .into_iter()
                .map(|(path, value)| {
                    let origin = ctx.engine.origin(&loaded, ctx.env, &ctx.overrides, &path);
                    vec![path.to_string(), value, origin.to_string()]
                })
                .collect();
            render::table(&["KEY", "VALUE", "SOURCE"], &table)
        }
    };
    out(&text);
    Ok(())
}
