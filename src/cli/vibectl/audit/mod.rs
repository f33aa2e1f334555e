//! `vibectl audit`: read the audit log a mode writes (see [`crate::audit`]): `show` the recent
//! records, `export` them as JSON or CSV, `info` about the file.
//!
//! Which file: `--profile P` picks profile P's (`--profile direct` direct mode's), else the
//! active mode's (the active profile, else direct). The files are only ever read here.
//!
//! A file where no line is a record (a foreign or corrupt file, or the wrong path): `show` and
//! `export` print a warning per bad line and fail with exit 1, since there is nothing to show
//! and the likely cause is a misconfigured path; `info` reports the counts and exits 0. A file
//! with some records and some bad lines works with the records, after the warnings.

mod export;
mod info;
mod show;

use std::path::PathBuf;

use clap::{Args, Subcommand};
use time::OffsetDateTime;

use super::session;
use crate::audit::{self, AuditError, Contents, Record};
use crate::cli::{CmdError, CmdResult, process_env, warn};
use crate::config::ClientConfig;
use crate::llm::choose::{self, Mode};

/// The `--profile` value naming direct mode.
pub const DIRECT: &str = "direct";
/// How many bad lines get a warning each; the rest are counted in one more.
pub const MAX_WARNINGS: usize = 10;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Show the most recent audit records as a table, newest last
    ///
    /// Example: `vibectl audit show --since 2h --limit 50`
    Show(show::ShowArgs),
    /// Write the audit records as JSON or CSV, to stdout or a file
    ///
    /// Example: `vibectl audit export --format csv --output audit.csv`
    Export(export::ExportArgs),
    /// Show where the audit file is, its size, entries, bad lines, first and last times
    ///
    /// Example: `vibectl audit info --profile prod`
    Info(info::InfoArgs),
}

/// What the audit commands are given by the command line.
pub struct Ctx {
    pub session: session::Ctx,
    /// Whether `--config-dir` was given (it moves the default audit files).
    pub dir_flag: bool,
}

/// The `--profile` flag every audit command takes.
#[derive(Debug, Args)]
pub struct ProfileArg {
    /// The proxy profile whose audit file to read (`direct`: direct mode's); default: the
    /// active profile, else direct mode
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
}

/// The audit file a command reads, and the mode it belongs to.
pub struct Target {
    pub cfg: ClientConfig,
    /// `None`: direct mode.
    pub profile: Option<String>,
    pub path: PathBuf,
}

impl Target {
    /// `direct` or `profile NAME`.
    pub fn mode(&self) -> String {
        match &self.profile {
            None => DIRECT.to_owned(),
            Some(p) => format!("profile {p}"),
        }
    }
}

/// The file for `--profile` (or the active mode). A profile that is not configured is an
/// error unless its default file exists (the log of a removed profile stays readable).
pub fn target(ctx: &Ctx, arg: &ProfileArg) -> Result<Target, CmdError> {
    let (_, cfg) = ctx.session.load()?;
    let profile = match arg.profile.as_deref() {
        Some(DIRECT) => None,
        Some(p) => Some(p.to_owned()),
        None => match choose::mode(&cfg) {
            Mode::Direct => None,
            Mode::Proxy { profile } => Some(profile),
        },
    };
    let path = audit::locate(
        &cfg,
        profile.as_deref(),
        &ctx.session.file,
        ctx.dir_flag,
        &process_env,
    );
    if let (Some(p), Some(_)) = (&profile, &arg.profile)
        && !cfg.proxy.profiles.contains_key(p)
        && !path.exists()
    {
        let mut known: Vec<&str> = cfg.proxy.profiles.keys().map(String::as_str).collect();
        known.push(DIRECT);
        return Err(
            CmdError::new(format!("there is no proxy profile `{p}`")).with_hint(format!(
                "known: {} (`{DIRECT}` is direct mode's audit file)",
                known.join(", ")
            )),
        );
    }
    Ok(Target { cfg, profile, path })
}

impl From<AuditError> for CmdError {
    fn from(e: AuditError) -> CmdError {
        let mut err = CmdError::new(e.to_string());
        err.hint = e.hint();
        err
    }
}

/// Read the target's file, warning once per bad line (at most [`MAX_WARNINGS`], then a
/// count); `None` when it does not exist.
pub fn load(target: &Target) -> Result<Option<Contents>, CmdError> {
    let contents = match audit::read(&target.path) {
        Ok(c) => c,
        Err(AuditError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let file = target.path.display();
    for (line, why) in contents.bad.iter().take(MAX_WARNINGS) {
        warn(&format!("{file} line {line} is not an audit record: {why}"));
    }
    if contents.bad.len() > MAX_WARNINGS {
        warn(&format!(
            "{file}: {} more lines are not audit records",
            contents.bad.len() - MAX_WARNINGS
        ));
    }
    Ok(Some(contents))
}

/// The records of `contents` at or after `since`, in file order. With `since`, a record whose
/// timestamp does not read as a time is left out (it cannot be shown to be recent). Fails when
/// the file has lines but none is a record.
pub fn select(
    target: &Target,
    contents: Contents,
    since: Option<OffsetDateTime>,
) -> Result<Vec<Record>, CmdError> {
    if contents.records.is_empty() && !contents.bad.is_empty() {
        return Err(CmdError::new(format!(
            "no line of {} is an audit record ({} bad lines)",
            target.path.display(),
            contents.bad.len()
        ))
        .with_hint(
            "check that the configured audit_log_path names vibectl's audit log; \
             `vibectl audit info` shows the file in use",
        ));
    }
    Ok(contents
        .records
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| since.is_none_or(|s| r.time().is_some_and(|t| t >= s)))
        .collect())
}

/// The `--since` value as a time; an error naming `--since` and the forms it accepts.
pub fn since(value: Option<&str>) -> Result<Option<OffsetDateTime>, CmdError> {
    let Some(v) = value else { return Ok(None) };
    match audit::time::parse_since(v, OffsetDateTime::now_utc()) {
        Some(t) => Ok(Some(t)),
        None => Err(
            CmdError::new(format!("--since: `{v}` is not a time or a duration"))
                .with_hint(format!("use {}", audit::time::SINCE_FORMS)),
        ),
    }
}

/// Control characters (line breaks, terminal escapes from a foreign file) shown as `?`.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

pub fn run(ctx: &Ctx, cmd: &AuditCommand) -> CmdResult {
    match cmd {
        AuditCommand::Show(a) => show::run(ctx, a),
        AuditCommand::Export(a) => export::run(ctx, a),
        AuditCommand::Info(a) => info::run(ctx, a),
    }
}
