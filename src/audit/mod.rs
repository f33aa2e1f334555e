//! The client's audit log: one JSON line per model call and per kubectl command, in vibectl
//! 0.11.6's format (its field names; the fields we add are extra keys), appended so that
//! concurrent writers never tear a line, and read back tolerantly.
//!
//! - [`Record`]: one line, and its constructors for the two events vibectl writes.
//! - [`AuditLog`]: an open file that records are appended to ([`log`]).
//! - [`read`]: every record of a file plus the lines that are not records ([`read`](mod@read)).
//! - [`path_for`], [`enabled`]: which file a mode writes to, and whether it writes at all.
//! - [`time`]: timestamps, and the `--since` forms of `vibectl audit`.

pub mod log;
pub mod read;
pub mod time;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::config::{CLIENT, ClientConfig};

pub use log::AuditLog;
pub use read::{Contents, read};

/// `event_type` of a model call (0.11.6's name).
pub const LLM_REQUEST: &str = "llm_request";
/// `event_type` of a kubectl command vibectl ran (ours; 0.11.6 has no such event).
pub const COMMAND_EXECUTION: &str = "command_execution";
/// `event_type` of 0.11.6's sanitization events (read, never written by us).
pub const SANITIZATION: &str = "sanitization";
/// `event_type` of 0.11.6's proxy connection events (read, never written by us).
pub const PROXY_CONNECTION: &str = "proxy_connection";

/// The audit file name of direct mode, in the default directory.
pub const DIRECT_FILE: &str = "audit.log";

/// One audit line. Serialized with 0.11.6's field names; fields we add are extra keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// RFC 3339 UTC with microseconds, like 0.11.6 (`2025-06-18T12:34:56.123456+00:00`).
    pub timestamp: String,
    /// `None` = direct mode (written as null, shown as "direct").
    pub proxy_profile: Option<String>,
    pub request_id: String,
    /// [`LLM_REQUEST`] (a model call) or [`COMMAND_EXECUTION`] (a kubectl run); other values
    /// come from 0.11.6's files.
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_hash: Option<String>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub secrets_detected: u64,
    /// One entry per secret, as 0.11.6 (a kind found twice is listed twice).
    #[serde(default, deserialize_with = "null_is_default")]
    pub secrets_types: Vec<String>,
    #[serde(default)]
    pub command_generated: Option<String>,
    #[serde(default)]
    pub user_approved: Option<bool>,
    #[serde(default)]
    pub model_used: Option<String>,
    /// The exit code of a [`COMMAND_EXECUTION`]; `None` when kubectl did not run to the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Which call of a command: "plan", "summary", "memory"...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Unknown fields (0.11.6's `original_hash`, `server_url`, ...), kept for export.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A null in a foreign file reads as the field's default instead of failing the line.
fn null_is_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Record {
    /// A model call: the request and answer are kept only as hashes ([`sha256_hex`]); `secrets`
    /// is each kind of secret removed from the request with its count (`secrets_types` lists
    /// at most [`log::MAX_KINDS`] of them; `secrets_detected` is the true total). The time is now.
    pub fn llm_request(
        profile: Option<&str>,
        request_id: &str,
        model: Option<&str>,
        label: &str,
        request: &str,
        response: &str,
        secrets: &[(String, usize)],
    ) -> Record {
        // One entry per secret, as 0.11.6, up to the most a line carries.
        let mut types = Vec::new();
        for (kind, count) in secrets {
            let room = log::MAX_KINDS - types.len();
            types.extend(std::iter::repeat_n(kind.clone(), (*count).min(room)));
        }
        Record {
            request_hash: Some(sha256_hex(request)),
            response_hash: Some(sha256_hex(response)),
            secrets_detected: secrets.iter().map(|(_, n)| *n as u64).sum(),
            secrets_types: types,
            model_used: model.map(str::to_owned),
            label: Some(label.to_owned()),
            ..Record::new(profile, request_id, LLM_REQUEST)
        }
    }

    /// A kubectl command vibectl ran (or was refused to run, `approved` false); `exit_code` is
    /// `None` when it did not run or did not exit normally. The time is now.
    pub fn command(
        profile: Option<&str>,
        request_id: &str,
        command: &str,
        approved: bool,
        exit_code: Option<i32>,
    ) -> Record {
        Record {
            command_generated: Some(command.to_owned()),
            user_approved: Some(approved),
            exit_code,
            ..Record::new(profile, request_id, COMMAND_EXECUTION)
        }
    }

    /// A record of `event_type` stamped now, every other field empty.
    pub fn new(profile: Option<&str>, request_id: &str, event_type: &str) -> Record {
        Record {
            timestamp: time::now(),
            proxy_profile: profile.map(str::to_owned),
            request_id: request_id.to_owned(),
            event_type: event_type.to_owned(),
            request_hash: None,
            response_hash: None,
            secrets_detected: 0,
            secrets_types: Vec::new(),
            command_generated: None,
            user_approved: None,
            model_used: None,
            exit_code: None,
            label: None,
            extra: serde_json::Map::new(),
        }
    }

    /// The timestamp, when it reads as a time (a naive one as UTC).
    pub fn time(&self) -> Option<::time::OffsetDateTime> {
        time::parse_timestamp(&self.timestamp)
    }
}

/// The SHA-256 of `text` in lowercase hex; `"null"` for empty text, like 0.11.6.
pub fn sha256_hex(text: &str) -> String {
    if text.is_empty() {
        return "null".to_owned();
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// What can go wrong with an audit file; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot create the directory {} for the audit log: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the audit log {} for writing: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write to the audit log {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the audit log {} took only {written} of {len} bytes of a record", path.display())]
    ShortWrite {
        path: PathBuf,
        written: usize,
        len: usize,
    },
    #[error("the audit log {} does not exist", path.display())]
    NotFound { path: PathBuf },
    #[error("cannot read the audit log {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl AuditError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            AuditError::CreateDir { path, .. }
            | AuditError::Open { path, .. }
            | AuditError::Write { path, .. }
            | AuditError::ShortWrite { path, .. }
            | AuditError::NotFound { path }
            | AuditError::Read { path, .. } => path,
        }
    }

    /// How to fix it, for the `hint:` line.
    pub fn hint(&self) -> Option<String> {
        use crate::config::generated::client::key;
        match self {
            AuditError::CreateDir { .. } | AuditError::Open { .. } | AuditError::Write { .. } => {
                Some(format!(
                    "make it writable, or point {} (through a profile, {}) at a writable file",
                    key::SECURITY_AUDIT_LOG_PATH,
                    key::PROXY_PROFILES_PROFILE_SECURITY_AUDIT_LOG_PATH,
                ))
            }
            AuditError::NotFound { .. } => {
                Some("vibectl writes it with the first audited model call".to_owned())
            }
            AuditError::ShortWrite { .. } | AuditError::Read { .. } => None,
        }
    }
}

/// The audit file for a mode (`profile` `None` is direct mode): the configured path
/// (`security.audit_log_path` in direct mode, the profile's `security.audit_log_path` through a
/// profile; a leading `~` is `home`), else `audit.log` or `audit-PROFILE.log` in
/// `~/.config/vibectl` as 0.11.6, or in `config_dir` when `explicit` (`--config-dir` or
/// `VIBECTL_CLIENT_CONFIG_DIR` chose it) or when there is no home. A relative configured path
/// stays relative to the working directory, as in 0.11.6. Path separators in a profile name
/// become `_` so the default file stays in its directory.
pub fn path_for(
    cfg: &ClientConfig,
    profile: Option<&str>,
    config_dir: &Path,
    explicit: bool,
    home: Option<&Path>,
) -> PathBuf {
    let configured = match profile {
        None => cfg.security.audit_log_path.as_deref(),
        Some(p) => cfg
            .proxy
            .profiles
            .get(p)
            .and_then(|prof| prof.security.audit_log_path.as_deref()),
    };
    if let Some(path) = configured {
        return expand_home(path, home);
    }
    let dir = match home {
        Some(h) if !explicit => h.join(".config").join("vibectl"),
        _ => config_dir.to_owned(),
    };
    dir.join(default_file_name(profile))
}

/// `audit.log`, or `audit-PROFILE.log` with path separators in the name made `_`.
pub fn default_file_name(profile: Option<&str>) -> String {
    match profile {
        None => DIRECT_FILE.to_owned(),
        Some(p) => {
            let safe: String = p
                .chars()
                .map(|c| {
                    if matches!(c, '/' | '\\' | '\0') {
                        '_'
                    } else {
                        c
                    }
                })
                .collect();
            format!("audit-{safe}.log")
        }
    }
}

/// [`path_for`] with its inputs taken from the process: the config dir is the config file's
/// directory, explicit when `dir_flag` (`--config-dir` was given) or when
/// `VIBECTL_CLIENT_CONFIG_DIR` is set; the home is `$HOME`.
pub fn locate(
    cfg: &ClientConfig,
    profile: Option<&str>,
    config_file: &Path,
    dir_flag: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> PathBuf {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    let var = format!(
        "VIBECTL_{}_CONFIG_DIR",
        CLIENT.schema.program.to_uppercase()
    );
    let explicit = dir_flag || set(&var).is_some();
    let dir = config_file.parent().unwrap_or(Path::new("."));
    let home = set("HOME").map(PathBuf::from);
    path_for(cfg, profile, dir, explicit, home.as_deref())
}

/// `~` and `~/rest` become `home` and `home/rest`; anything else is kept.
fn expand_home(path: &Path, home: Option<&Path>) -> PathBuf {
    let Some(home) = home else {
        return path.to_owned();
    };
    let mut parts = path.components();
    match parts.next() {
        Some(std::path::Component::Normal(first)) if first == "~" => match parts.as_path() {
            rest if rest.as_os_str().is_empty() => home.to_owned(),
            rest => home.join(rest),
        },
        _ => path.to_owned(),
    }
}

/// Whether auditing is on for a mode: `security.audit_logging` in direct mode, the profile's
/// `security.audit_logging` through a profile (on for a profile that is not configured, its
/// default).
pub fn enabled(cfg: &ClientConfig, profile: Option<&str>) -> bool {
    match profile {
        None => cfg.security.audit_logging,
        Some(p) => cfg.proxy.profiles.get(p).map_or(
            crate::config::generated::client::ProxyProfileSecurity::default().audit_logging,
            |prof| prof.security.audit_logging,
        ),
    }
}

#[cfg(test)]
mod tests;
