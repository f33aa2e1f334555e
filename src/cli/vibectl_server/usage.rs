//! `usage`: tokens and cost by token subject, model and API (`--by`), from the server's usage
//! log.

use std::collections::BTreeMap;
use std::path::Path;

use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use crate::cli::{CmdError, CmdResult, out};
use crate::server::governance::{USAGE_FILE, usage};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

/// What the rows of the report are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Group {
    /// The token subject
    Sub,
    /// The model
    Model,
    /// The API the call came in on: grpc, openai or anthropic
    Api,
}

impl Group {
    fn name(self) -> &'static str {
        match self {
            Group::Sub => "sub",
            Group::Model => "model",
            Group::Api => "api",
        }
    }

    /// The column width in the table.
    fn width(self) -> usize {
        match self {
            Group::Sub => 20,
            Group::Model => 24,
            Group::Api => 10,
        }
    }

    fn of(self, r: &usage::Record) -> String {
        match self {
            Group::Sub => r.sub.clone(),
            Group::Model => r.model.clone(),
            Group::Api => r.api.as_str().to_owned(),
        }
    }
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// One row per distinct value of these, comma-separated, in this order (`--by api`,
    /// `--by sub,api`)
    #[arg(long, value_enum, value_delimiter = ',', value_name = "KEYS",
          default_values_t = [Group::Sub, Group::Model])]
    pub by: Vec<Group>,
    /// Only this token subject
    #[arg(long, value_name = "S")]
    pub sub: Option<String>,
    /// Only calls that came in on this API
    #[arg(long, value_enum, value_name = "API")]
    pub api: Option<usage::Api>,
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
    let mut by: Vec<Group> = vec![];
    for g in &args.by {
        if !by.contains(g) {
            by.push(*g);
        }
    }
    let mut rows: BTreeMap<Vec<String>, Row> = BTreeMap::new();
    for r in records.iter().filter(|r| {
        args.sub.as_ref().is_none_or(|s| *s == r.sub)
            && args.api.is_none_or(|a| a == r.api)
            && since.is_none_or(|t| r.ts >= t)
    }) {
        let row = rows
            .entry(by.iter().map(|g| g.of(r)).collect())
            .or_default();
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
            let row_json = |keys: Option<&[String]>, r: &Row| {
                let mut doc = serde_json::Map::new();
                for (i, g) in by.iter().enumerate() {
                    let v = keys
                        .and_then(|k| k.get(i))
                        .map_or(Value::Null, |k| json!(k));
                    doc.insert(g.name().to_owned(), v);
                }
                doc.insert("calls".into(), json!(r.calls));
                doc.insert("input_tokens".into(), json!(r.input));
                doc.insert("output_tokens".into(), json!(r.output));
                doc.insert("cost_usd".into(), json!(r.cost));
                Value::Object(doc)
            };
            let list: Vec<_> = rows.iter().map(|(k, r)| row_json(Some(k), r)).collect();
            let doc = json!({"rows": list, "total": row_json(None, &total)});
            out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            ));
        }
        Format::Table => {
            let line = |keys: &[&str], numbers: [String; 4]| {
                let mut text = String::new();
                for (g, k) in by.iter().zip(keys) {
                    text.push_str(&format!("{k:<w$} ", w = g.width()));
                }
                let [calls, input, output, cost] = numbers;
                text.push_str(&format!("{calls:>8} {input:>12} {output:>12} {cost:>12}\n"));
                text
            };
            let numbers = |r: &Row| {
                [
                    r.calls.to_string(),
                    r.input.to_string(),
                    r.output.to_string(),
                    format!("{:.6}", r.cost),
                ]
            };
            let heads: Vec<String> = by.iter().map(|g| g.name().to_uppercase()).collect();
            let heads: Vec<&str> = heads.iter().map(String::as_str).collect();
            let mut text = line(
                &heads,
                ["CALLS", "INPUT", "OUTPUT", "COST_USD"].map(str::to_owned),
            );
            for (k, r) in &rows {
                let keys: Vec<&str> = k.iter().map(String::as_str).collect();
                text.push_str(&line(&keys, numbers(r)));
            }
            let mut total_keys = vec![""; by.len()];
            if let Some(first) = total_keys.first_mut() {
                *first = "TOTAL";
            }
            text.push_str(&line(&total_keys, numbers(&total)));
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
