//! `usage`: tokens and cost by token subject and model, from the server's usage log.

use std::collections::BTreeMap;
use std::path::Path;

use clap::{Args, ValueEnum};
use serde_json::json;

use crate::cli::{CmdError, CmdResult, out};
use crate::server::governance::{USAGE_FILE, usage};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// Only this token subject
    #[arg(long, value_name = "S")]
    pub sub: Option<String>,
    /// Only calls since D: a UTC date (2026-11-01) or an age (7d, 12h)
    #[arg(long, value_name = "D")]
    pub since: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `--since` as unix seconds, relative to `now`.
fn parse_since(text: &str, now: i64) -> Result<i64, String> {
    let t = text.trim();
    if let Some((n, unit)) = t
        .strip_suffix('d')
        .map(|n| (n, 86_400))
        .or_else(|| t.strip_suffix('h').map(|n| (n, 3_600)))
        && let Ok(n) = n.parse::<i64>()
    {
        return Ok(now - n * unit);
    }
    let parts: Vec<&str> = t.split('-').collect();
    let date = match parts.as_slice() {
        [y, m, d] => match (y.parse(), m.parse::<u8>(), d.parse()) {
            (Ok(y), Ok(m), Ok(d)) => time::Month::try_from(m)
                .ok()
                .and_then(|m| time::Date::from_calendar_date(y, m, d).ok()),
            _ => None,
        },
        _ => None,
    };
    date.map(|d| d.midnight().assume_utc().unix_timestamp())
        .ok_or_else(|| format!("`{text}` is neither a date (2026-11-01) nor an age (7d, 12h)"))
}

#[derive(Default)]
struct Row {
    calls: u64,
    input: u64,
    output: u64,
    cost: f64,
}

pub fn run(file: &Path, args: &UsageArgs) -> CmdResult {
    let since = match &args.since {
        Some(s) => Some(
            parse_since(s, usage::now_unix())
                .map_err(|e| CmdError::new(format!("--since: {e}")))?,
        ),
        None => None,
    };
    let log = file.parent().unwrap_or(Path::new(".")).join(USAGE_FILE);
    let records = usage::read(&log)
        .map_err(|e| CmdError::new(format!("cannot read {}: {e}", log.display())))?;
    let mut rows: BTreeMap<(String, String), Row> = BTreeMap::new();
    for r in records.iter().filter(|r| {
        args.sub.as_ref().is_none_or(|s| *s == r.sub) && since.is_none_or(|t| r.ts >= t)
    }) {
        let row = rows.entry((r.sub.clone(), r.model.clone())).or_default();
        row.calls += 1;
        row.input += r.input_tokens;
        row.output += r.output_tokens;
        row.cost += r.cost_usd.unwrap_or(0.0);
    }
    let mut total = Row::default();
    for row in rows.values() {
        total.calls += row.calls;
        total.input += row.input;
        total.output += row.output;
        total.cost += row.cost;
    }
    match args.format {
        Format::Json => {
            let row_json = |sub: Option<&str>, model: Option<&str>, r: &Row| {
                json!({"sub": sub, "model": model, "calls": r.calls, "input_tokens": r.input,
                       "output_tokens": r.output, "cost_usd": r.cost})
            };
            let list: Vec<_> = rows
                .iter()
                .map(|((s, m), r)| row_json(Some(s), Some(m), r))
                .collect();
            let doc = json!({"rows": list, "total": row_json(None, None, &total)});
            out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            ));
        }
        Format::Table => {
            let mut text = format!(
                "{:<20} {:<24} {:>8} {:>12} {:>12} {:>12}\n",
                "SUB", "MODEL", "CALLS", "INPUT", "OUTPUT", "COST_USD"
            );
            let line = |sub: &str, model: &str, r: &Row| {
                format!(
                    "{sub:<20} {model:<24} {:>8} {:>12} {:>12} {:>12.6}\n",
                    r.calls, r.input, r.output, r.cost
                )
            };
            for ((s, m), r) in &rows {
                text.push_str(&line(s, m, r));
            }
            text.push_str(&line("TOTAL", "", &total));
            out(&text);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_since;

    #[test]
    fn since_takes_a_date_or_an_age() {
        assert_eq!(parse_since("2026-11-25", 0), Ok(1_795_564_800));
        assert_eq!(parse_since("2d", 1_000_000), Ok(1_000_000 - 172_800));
        assert_eq!(parse_since("3h", 20_000), Ok(20_000 - 10_800));
        assert!(parse_since("yesterday", 0).is_err());
    }
}
