//! `config info [KEY]`: where the config file is, or everything about one key.

use std::time::UNIX_EPOCH;

use clap::Args;

use super::Ctx;
use crate::cli::{CmdResult, complete, out};
use crate::config::schema::Found;
use crate::config::{KeyPath, document, render};

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A key to describe; the file when left out
    #[arg(value_parser = clap::value_parser!(KeyPath), add = complete::key_completer())]
    pub key: Option<KeyPath>,
}

pub fn run(ctx: &Ctx<'_>, args: &InfoArgs) -> CmdResult {
    match &args.key {
        None => file_info(ctx),
        Some(key) => key_info(ctx, key),
    }
}

fn file_info(ctx: &Ctx<'_>) -> CmdResult {
    let meta = std::fs::metadata(&ctx.file).ok();
    let modified = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| utc_text(d.as_secs()))
        .unwrap_or_else(|| "-".into());
    let dir = ctx
        .file
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let rows = vec![
        vec!["file".into(), ctx.file.display().to_string()],
        vec!["kind".into(), ctx.engine.schema.program.to_owned()],
        vec!["exists".into(), meta.is_some().to_string()],
        vec!["last modified".into(), modified],
        vec![
            "size".into(),
            meta.map(|m| format!("{} bytes", m.len()))
                .unwrap_or_else(|| "-".into()),
        ],
        vec!["directory".into(), dir],
        vec![
            "schema".into(),
            format!("`{} config schema` ({})", ctx.bin, ctx.engine.schema.title),
        ],
    ];
    out(&render::table(&["", ""], &rows)
        .lines()
        .skip(1)
        .map(|l| format!("{}\n", l.trim_end()))
        .collect::<String>());
    Ok(())
}

fn key_info(ctx: &Ctx<'_>, key: &KeyPath) -> CmdResult {
    let spec = match ctx.engine.resolve(key)? {
        Found::Key(spec) => spec,
        Found::Section(s) => {
            let key = &ctx.current_name(key);
            let mut text = format!("section: {}\ndoc: {}\nkeys:\n", s.path, s.doc);
            for child in ctx.engine.children(key) {
                text.push_str(&format!("  {child}\n"));
            }
            out(&text);
            return Ok(());
        }
    };
    let key = &ctx.current_name(key);
    let loaded = ctx.load()?;
    ctx.engine.validate(&loaded)?;
    let effective = ctx.engine.effective(&loaded, ctx.env, &ctx.overrides)?;
    let current = document::get(&effective, key)
        .map(|v| render::compact(&ctx.engine.redact(v, key)))
        .unwrap_or_else(|| "(not set)".into());
    let origin = ctx.engine.origin(&loaded, ctx.env, &ctx.overrides, key);
    let mut rows = vec![
        vec!["key".to_owned(), key.to_string()],
        vec!["doc".into(), spec.doc.to_owned()],
    ];
    if let Some(note) = spec.compat_text() {
        rows.push(vec!["effect".into(), note]);
    }
    rows.extend([
        vec!["type".into(), spec.type_text()],
        vec![
            "default".into(),
            if spec.default.is_empty() {
                "-".into()
            } else {
                spec.default.to_owned()
            },
        ],
    ]);
    if !spec.values.is_empty() {
        rows.push(vec!["allowed".into(), spec.values.join(", ")]);
    }
    rows.push(vec!["env".into(), spec.env.unwrap_or("-").to_owned()]);
    if spec.sensitive {
        rows.push(vec![
            "sensitive".into(),
            "yes (shown as **REDACTED**)".into(),
        ]);
    }
    if !spec.old_names.is_empty() {
        rows.push(vec!["old names".into(), spec.old_names.join(", ")]);
    }
    rows.push(vec!["value".into(), current]);
    rows.push(vec!["source".into(), origin.to_string()]);
    out(&render::table(&["", ""], &rows)
        .lines()
        .skip(1)
        .map(|l| format!("{}\n", l.trim_end()))
        .collect::<String>());
    Ok(())
}

/// `2026-11-25 18:30:00 UTC` from unix seconds (the civil calendar, no time zone database).
fn utc_text(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_text() {
        assert_eq!(super::utc_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc_text(1_795_631_600), "2026-11-25 18:33:20 UTC");
    }
}
