//! `audit show [--limit N] [--since DUR] [--profile P]`: the most recent records as a table,
//! newest last (file order, which is the order they were written in).

use clap::Args;
use time::macros::format_description;

use super::{Ctx, DIRECT, ProfileArg, load, printable, select, since, target};
use crate::audit::{self, Record};
use crate::cli::{CmdResult, out};

/// The most characters of a command in the table (`export` has them whole).
const COMMAND_WIDTH: usize = 60;

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Show at most N of the most recent records (0: all)
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Only records since then: 30m, 2h, 7d, an RFC 3339 time, or epoch seconds
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    #[command(flatten)]
    pub profile: ProfileArg,
}

pub fn run(ctx: &Ctx, args: &ShowArgs) -> CmdResult {
    let since = since(args.since.as_deref())?;
    let target = target(ctx, &args.profile)?;
    let file = target.path.display();
    let Some(contents) = load(&target)? else {
        let off = if audit::enabled(&target.cfg, target.profile.as_deref()) {
            ""
        } else {
            ", and audit logging is off for this mode (`vibectl audit info` says which key)"
        };
        out(&format!(
            "no audit records ({}): {file} does not exist yet{off}\n",
            target.mode()
        ));
        return Ok(());
    };
    let records = select(&target, contents, since)?;
    if records.is_empty() {
        let when = args
            .since
            .as_deref()
            .map(|s| format!(" since {s}"))
            .unwrap_or_default();
        out(&format!("no audit records{when} in {file}\n"));
        return Ok(());
    }
    let total = records.len();
    let skip = match args.limit {
        0 => 0,
        n => total.saturating_sub(n),
    };
    let mut text = table(&records[skip..]);
    if skip > 0 {
        text.push_str(&format!(
            "the last {} of {total} records in {file} (--limit 0 shows all)\n",
            total - skip
        ));
    } else {
        let s = if total == 1 { "" } else { "s" };
        text.push_str(&format!("{total} record{s} in {file}\n"));
    }
    out(&text);
    Ok(())
}

/// The records as aligned columns under a header.
fn table(records: &[Record]) -> String {
    let header = [
        "TIME (UTC)",
        "PROFILE",
        "EVENT",
        "MODEL",
        "SECRETS",
        "COMMAND",
        "APPROVED",
        "EXIT",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    rows.extend(records.iter().map(row));
    let mut widths = vec![0; header.len()];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in r.iter().zip(&widths).enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

fn row(r: &Record) -> Vec<String> {
    let time = match r.time() {
        Some(t) => t
            .to_offset(time::UtcOffset::UTC)
            .format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .unwrap_or_else(|_| r.timestamp.clone()),
        None => r.timestamp.clone(),
    };
    let event = match &r.label {
        Some(l) => format!("{} ({l})", r.event_type),
        None => r.event_type.clone(),
    };
    let command = r.command_generated.as_deref().map(|c| {
        let c = c.trim();
        if c.chars().count() > COMMAND_WIDTH {
            let mut short: String = c.chars().take(COMMAND_WIDTH - 3).collect();
            short.push_str("...");
            short
        } else {
            c.to_owned()
        }
    });
    let approved = r.user_approved.map(|a| if a { "yes" } else { "no" });
    [
        time,
        r.proxy_profile.clone().unwrap_or_else(|| DIRECT.to_owned()),
        event,
        r.model_used.clone().unwrap_or_else(|| "-".to_owned()),
        secrets(r),
        command.unwrap_or_else(|| "-".to_owned()),
        approved.unwrap_or("-").to_owned(),
        r.exit_code.map_or("-".to_owned(), |c| c.to_string()),
    ]
    .into_iter()
    .map(|cell| printable(&cell))
    .collect()
}

/// The secrets by kind in first-seen order (`k8s-secret-data x2, jwt`), or their count when
/// the kinds are missing; `-` for none.
fn secrets(r: &Record) -> String {
    if r.secrets_detected == 0 && r.secrets_types.is_empty() {
        return "-".to_owned();
    }
    if r.secrets_types.is_empty() {
        return r.secrets_detected.to_string();
    }
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    for t in &r.secrets_types {
        match kinds.iter_mut().find(|(k, _)| k == t) {
            Some((_, n)) => *n += 1,
            None => kinds.push((t, 1)),
        }
    }
    let mut parts: Vec<String> = kinds
        .iter()
        .map(|(k, n)| {
            if *n > 1 {
                format!("{k} x{n}")
            } else {
                (*k).to_owned()
            }
        })
        .collect();
    let listed = r.secrets_types.len() as u64;
    if r.secrets_detected > listed {
        parts.push(format!("{} more", r.secrets_detected - listed));
    }
    parts.join(", ")
}
