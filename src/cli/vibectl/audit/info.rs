//! `audit info [--profile P]`: which audit file a mode uses, whether auditing is on, and what
//! the file holds (size, mode, entries, bad lines, first and last timestamps).

use clap::Args;

use super::{Ctx, ProfileArg, printable, target};
use crate::audit::{self, AuditError, Contents};
use crate::cli::{CmdResult, out};
use crate::config::generated::client::key;

/// How many bad line numbers are listed.
const MAX_LISTED: usize = 10;

#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub profile: ProfileArg,
}

pub fn run(ctx: &Ctx, args: &InfoArgs) -> CmdResult {
    let target = target(ctx, &args.profile)?;
    let on = audit::enabled(&target.cfg, target.profile.as_deref());
    let switch = match &target.profile {
        None => key::SECURITY_AUDIT_LOGGING.to_owned(),
        Some(p) => key::PROXY_PROFILES_PROFILE_SECURITY_AUDIT_LOGGING.replace("<profile>", p),
    };
    let mut rows = vec![
        ("file:", target.path.display().to_string()),
        ("mode:", target.mode()),
        (
            "logging:",
            format!("{} ({switch})", if on { "on" } else { "off" }),
        ),
    ];
    match audit::read(&target.path) {
        Ok(contents) => {
            let meta = std::fs::metadata(&target.path).map_err(|source| AuditError::Read {
                path: target.path.clone(),
                source,
            })?;
            rows.push(("size:", format!("{} bytes", meta.len())));
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = meta.permissions().mode() & 0o7777;
                let note = if mode & 0o077 != 0 {
                    " (others can read it; vibectl makes it 0600 when it next writes, if it owns it)"
                } else {
                    ""
                };
                rows.push(("permissions:", format!("{mode:04o}{note}")));
            }
            rows.extend(describe(&contents));
        }
        Err(AuditError::NotFound { .. }) => {
            rows.push(("exists:", "no, the file does not exist yet".to_owned()));
        }
        Err(e) => return Err(e.into()),
    }
    let text: String = rows
        .iter()
        .map(|(label, value)| format!("{label:<12} {}\n", printable(value)))
        .collect();
    out(&text);
    Ok(())
}

/// Entries, bad lines (the first line numbers), first and last timestamps.
fn describe(contents: &Contents) -> Vec<(&'static str, String)> {
    let bad = &contents.bad;
    let bad_lines = if bad.is_empty() {
        "0".to_owned()
    } else {
        let mut numbers: Vec<String> = bad
            .iter()
            .take(MAX_LISTED)
            .map(|(n, _)| n.to_string())
            .collect();
        if bad.len() > MAX_LISTED {
            numbers.push("...".to_owned());
        }
        format!("{} (line {})", bad.len(), numbers.join(", "))
    };
    let stamp =
        |r: Option<&(usize, audit::Record)>| r.map_or("-".to_owned(), |(_, r)| r.timestamp.clone());
    vec![
        ("entries:", contents.records.len().to_string()),
        ("bad lines:", bad_lines),
        ("first:", stamp(contents.records.first())),
        ("last:", stamp(contents.records.last())),
    ]
}
