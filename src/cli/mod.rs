//! The subcommands of `vibectl` and `vibectl-server`, one file each, and what they share:
//! the error type with its exit code and hint, and output that treats a closed pipe as success.

pub mod complete;
pub mod completions;
pub mod config;
pub mod markup;
pub mod style;
pub mod vibectl;
pub mod vibectl_server;

use std::io::Write;

use crate::config::ConfigError;

/// Exit code of a user or config error.
pub const EXIT_ERROR: u8 = 1;
/// Exit code of command-line misuse (clap uses it too).
pub const EXIT_USAGE: u8 = 2;

/// A failed command: what went wrong, how to fix it, and the exit code.
#[derive(Debug)]
pub struct CmdError {
    pub message: String,
    pub hint: Option<String>,
    pub code: u8,
}

impl CmdError {
    pub fn new(message: impl Into<String>) -> CmdError {
        CmdError {
            message: message.into(),
            hint: None,
            code: EXIT_ERROR,
        }
    }

    /// An exit with `code` and nothing more to print (what was to say is said).
    pub fn exit(code: u8) -> CmdError {
        CmdError {
            message: String::new(),
            hint: None,
            code,
        }
    }

    pub fn with_code(mut self, code: u8) -> CmdError {
        self.code = code;
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> CmdError {
        self.hint = Some(hint.into());
        self
    }

    /// Print `error: ...` and `hint: ...` to stderr.
    pub fn report(&self) {
        if self.message.is_empty() {
            return;
        }
        let error = style::paint(style::Role::Error, style::Stream::Stderr, "error:");
        let hint = style::paint(style::Role::Hint, style::Stream::Stderr, "hint:");
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{error} {}", self.message);
        if let Some(h) = &self.hint {
            let _ = writeln!(err, "{hint} {h}");
        }
    }
}

impl From<ConfigError> for CmdError {
    fn from(e: ConfigError) -> CmdError {
        CmdError {
            message: e.to_string(),
            hint: e.hint(),
            code: EXIT_ERROR,
        }
    }
}

pub type CmdResult = Result<(), CmdError>;

/// Write to stdout; a closed pipe (`vibectl config show | head -1`) ends the process with 0.
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

/// A warning on stderr.
pub fn warn(text: &str) {
    let label = style::paint(style::Role::Warning, style::Stream::Stderr, "warning:");
    let _ = writeln!(std::io::stderr().lock(), "{label} {text}");
}

/// The process environment, as the config engine wants it.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Send logs to stderr at `level` (a Python-style name: DEBUG, INFO, WARNING, ERROR, CRITICAL),
/// unless RUST_LOG says otherwise.
pub fn init_logging(level: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(log_filter(level, std::env::var("RUST_LOG").ok().as_deref()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// The crates under vibectl whose debug logs are wire frames, not vibectl's steps: kept at
/// warnings unless `RUST_LOG` asks for them.
const NOISY: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
    "rustls",
    "reqwest",
    "tokio_rustls",
];

/// The log filter for `level` (`system.log_level`, `--log-level`): that level for vibectl, and
/// warnings for [`NOISY`]. `rust_log` (the `RUST_LOG` variable), when set and valid, wins whole.
pub fn log_filter(level: &str, rust_log: Option<&str>) -> tracing_subscriber::EnvFilter {
    if let Some(f) = rust_log
        .filter(|r| !r.trim().is_empty())
        .and_then(|r| tracing_subscriber::EnvFilter::try_new(r).ok())
    {
        return f;
    }
    let directive = match level.to_ascii_uppercase().as_str() {
        "DEBUG" => "debug",
        "INFO" => "info",
        "ERROR" | "CRITICAL" => "error",
        _ => "warn",
    };
    let mut spec = directive.to_owned();
    for c in NOISY {
        spec.push_str(&format!(",{c}=warn"));
    }
    tracing_subscriber::EnvFilter::new(spec)
}
