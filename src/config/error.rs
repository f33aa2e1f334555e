//! The config engine's errors: each names the key (or file) and carries what a hint needs.

use std::path::PathBuf;

use super::path::PathError;

/// One problem found by validation, located by key and, where known, by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid key `{input}`: {source}")]
    BadPath { input: String, source: PathError },
    #[error("unknown key {key}")]
    UnknownKey {
        key: String,
        suggestions: Vec<String>,
    },
    #[error("{key} is a section, not a single key")]
    IsSection { key: String, children: Vec<String> },
    #[error("{key} is a map of named entries and cannot be set as a whole")]
    IsMap { key: String, example: String },
    #[error("invalid value for {key}: {value:?} is not {expected}")]
    BadValue {
        key: String,
        value: String,
        expected: String,
    },
    #[error("invalid value for {key}: {value} is out of range ({range})")]
    OutOfRange {
        key: String,
        value: String,
        range: String,
    },
    #[error("invalid value for {key}: {value:?} is not one of the allowed values")]
    NotAllowed {
        key: String,
        value: String,
        allowed: Vec<String>,
    },
    #[error("invalid value in environment variable {var} for {key}: {detail}")]
    BadEnv {
        var: String,
        key: String,
        detail: String,
    },
    #[error("{key} is not set in {}", file.display())]
    NotSet { key: String, file: PathBuf },
    #[error("{} is not valid YAML: {message}", file.display())]
    Yaml {
        file: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error("{} must be a mapping of sections, found {found}", file.display())]
    NotAMapping { file: PathBuf, found: String },
    #[error("{} has {} problem(s):\n{}", file.display(), problems.len(), list(problems))]
    Invalid {
        file: PathBuf,
        problems: Vec<Problem>,
    },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config directory {} is a file, not a directory", path.display())]
    DirIsFile { path: PathBuf },
    #[error("cannot edit {key} in {}: {detail}", file.display())]
    Edit {
        key: String,
        file: PathBuf,
        detail: String,
    },
    #[error("cannot find a home directory for the config file")]
    NoHome,
}

/// How to get past a failed read or write of the config file.
fn io_hint(action: &str, path: &std::path::Path, source: &std::io::Error) -> Option<String> {
    use std::io::ErrorKind;
    let p = path.display();
    match source.kind() {
        ErrorKind::PermissionDenied if action == "read" => Some(format!(
            "make the file readable (chmod u+r {p}) or run as its owner"
        )),
        ErrorKind::PermissionDenied => Some(format!(
            "make it writable (chmod u+w {p}), or choose another config directory"
        )),
        ErrorKind::IsADirectory => Some(format!(
            "{p} is a directory; move it away so the config file can be written there"
        )),
        ErrorKind::InvalidData => Some("the config file must be UTF-8 text".into()),
        _ => None,
    }
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigError {
    /// The same error with the offending value replaced by `**REDACTED**`, for a `sensitive`
    /// key: a secret is never printed, even when it is the wrong type.
    pub fn redacted(self) -> ConfigError {
        let hidden = || super::secret::REDACTED.to_owned();
        match self {
            ConfigError::BadValue { key, expected, .. } => ConfigError::BadValue {
                key,
                value: hidden(),
                expected,
            },
            ConfigError::OutOfRange { key, range, .. } => ConfigError::OutOfRange {
                key,
                value: hidden(),
                range,
            },
            ConfigError::NotAllowed { key, allowed, .. } => ConfigError::NotAllowed {
                key,
                value: hidden(),
                allowed,
            },
            other => other,
        }
    }

    /// What is wrong with a value, without the key (for messages that name the key themselves).
    pub fn detail(&self) -> String {
        match self {
            ConfigError::BadValue {
                value, expected, ..
            } => format!("{value:?} is not {expected}"),
            ConfigError::OutOfRange { value, range, .. } => {
                format!("{value} is out of range ({range})")
            }
            ConfigError::NotAllowed { value, allowed, .. } => format!(
                "{value:?} is not one of the allowed values: {}",
                allowed.join(", ")
            ),
            other => other.to_string(),
        }
    }

    /// A line telling the user how to fix it, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfigError::UnknownKey { suggestions, .. } if !suggestions.is_empty() => {
                Some(format!("did you mean {}?", suggestions.join(" or ")))
            }
            ConfigError::UnknownKey { .. } => Some("run `config show` to list the keys".into()),
            ConfigError::IsSection { children, .. } => {
                let shown: Vec<_> = children.iter().take(8).cloned().collect();
                let more = if children.len() > shown.len() {
                    ", ..."
                } else {
                    ""
                };
                Some(format!("set one of its keys: {}{more}", shown.join(", ")))
            }
            ConfigError::IsMap { example, .. } => {
                Some(format!("set a key of one entry, e.g. {example}"))
            }
            ConfigError::NotAllowed { allowed, .. } => {
                Some(format!("allowed values: {}", allowed.join(", ")))
            }
            ConfigError::BadValue { key, .. } | ConfigError::OutOfRange { key, .. } => Some(
                format!("`config info {key}` shows its type, range and default"),
            ),
            ConfigError::BadEnv { var, .. } => Some(format!("fix or unset {var}")),
            ConfigError::NotSet { .. } => Some("it already has its default value".into()),
            ConfigError::DirIsFile { .. } => Some(
                "move the file away, or choose another config directory (--config-dir or VIBECTL_CONFIG_DIR; --config for vibectl-server)"
                    .into(),
            ),
            ConfigError::NoHome => Some(
                "set HOME, or choose a config directory with --config-dir or VIBECTL_CONFIG_DIR"
                    .into(),
            ),
            ConfigError::Invalid { .. } => {
                Some("fix the file (`config edit`), or reset a key with `config unset KEY`".into())
            }
            ConfigError::Yaml {
                line: Some(line), ..
            } => Some(format!(
                "fix the YAML at line {line} (`config edit` opens the file), or move the file away to start from the defaults"
            )),
            ConfigError::Yaml { .. } | ConfigError::NotAMapping { .. } => Some(
                "fix the file (`config edit` opens it), or move it away to start from the defaults"
                    .into(),
            ),
            ConfigError::Edit { .. } => {
                Some("check the file with `config validate` and fix it with `config edit`".into())
            }
            ConfigError::Io {
                action,
                path,
                source,
            } => io_hint(action, path, source),
            ConfigError::BadPath { .. } => {
                Some(format!(
                    r#"keys look like {} or models."gpt-4.1".provider"#,
                    crate::config::generated::client::key::LLM_MODEL
                ))
            }
        }
    }
}
