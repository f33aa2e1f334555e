//! `audit export --format json|jsonl|csv [--output FILE] [--since DUR] [--profile P]`: every
//! matching record, to stdout or atomically to a 0600 file (a failed export leaves the file as
//! it was).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{Ctx, ProfileArg, load, select, since, target};
use crate::audit::Record;
use crate::cli::{CmdError, CmdResult, out, warn};
use crate::config::store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON array of records
    Json,
    /// One compact JSON record per line, as in the audit file
    Jsonl,
    /// A header and one row per record, in fixed columns
    Csv,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The output format
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Write to FILE (replaced atomically, mode 0600) instead of stdout
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only records since then: 30m, 2h, 7d, an RFC 3339 time, or epoch seconds
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    #[command(flatten)]
    pub profile: ProfileArg,
}

/// The CSV columns, in order; the keys not listed go to `extra` as one JSON object.
pub const CSV_COLUMNS: &[&str] = &[
    "timestamp",
    "proxy_profile",
    "request_id",
    "event_type",
    "label",
    "model_used",
    "request_hash",
    "response_hash",
    "secrets_detected",
    "secrets_types",
    "command_generated",
    "user_approved",
    "exit_code",
    "extra",
];

pub fn run(ctx: &Ctx, args: &ExportArgs) -> CmdResult {
    let since = since(args.since.as_deref())?;
    let target = target(ctx, &args.profile)?;
    let records = match load(&target)? {
        Some(contents) => select(&target, contents, since)?,
        None => {
            warn(&format!("{} does not exist yet", target.path.display()));
            Vec::new()
        }
    };
    let text = match args.format {
        Format::Json => {
            let mut t = serde_json::to_string_pretty(&records).expect("records serialize");
            t.push('\n');
            t
        }
        Format::Jsonl => records
            .iter()
            .map(|r| serde_json::to_string(r).expect("a record serializes") + "\n")
            .collect(),
        Format::Csv => csv(&records),
    };
    let Some(output) = &args.output else {
        out(&text);
        return Ok(());
    };
    if same_file(output, &target.path) {
        return Err(CmdError::new(format!(
            "--output {} is the audit file itself",
            output.display()
        ))
        .with_hint("export to another file"));
    }
    store::write_atomic(output, &text, true)?;
    let s = if records.len() == 1 { "" } else { "s" };
    out(&format!(
        "exported {} record{s} to {}\n",
        records.len(),
        output.display()
    ));
    Ok(())
}

/// Whether `a` and `b` name one existing file.
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The records as CSV (RFC 4180 quoting; lines end with `\n`).
pub fn csv(records: &[Record]) -> String {
    let mut text = CSV_COLUMNS.join(",");
    text.push('\n');
    for r in records {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let extra = if r.extra.is_empty() {
            String::new()
        } else {
            serde_json::Value::Object(r.extra.clone()).to_string()
        };
        let cells = [
            r.timestamp.clone(),
            opt(&r.proxy_profile),
            r.request_id.clone(),
            r.event_type.clone(),
            opt(&r.label),
            opt(&r.model_used),
            opt(&r.request_hash),
            opt(&r.response_hash),
            r.secrets_detected.to_string(),
            r.secrets_types.join(","),
            opt(&r.command_generated),
            r.user_approved.map(|a| a.to_string()).unwrap_or_default(),
            r.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            extra,
        ];
        let line: Vec<String> = cells.iter().map(|c| field(c)).collect();
        text.push_str(&line.join(","));
        text.push('\n');
    }
    text
}

/// One CSV field, quoted (with `"` doubled) when it holds a comma, quote or line break.
fn field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}
