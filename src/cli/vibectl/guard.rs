//! What every model call and kubectl run of a command passes through, in one place whatever
//! the command and whether the call goes direct or through a proxy: secrets replaced by
//! numbered placeholders before a request leaves the machine (`security.sanitize_requests`,
//! the profile's), a warning saying what was removed (`warnings.warn_sanitization`, the
//! profile's), placeholders put back only in the arguments kubectl gets, and one audit record
//! per model call and per kubectl run (`security.audit_logging`, the profile's). The audit file
//! is opened before anything else, so no call goes unaudited when auditing is on.

use std::cell::RefCell;
use std::path::Path;

use crate::audit::{self, AuditLog, Record};
use crate::cli::{CmdError, process_env, warn};
use crate::config::ClientConfig;
use crate::llm::adapter::LlmRequest;
use crate::llm::choose::Mode;
use crate::prompts;
use crate::redact::{Found, Redactor};

pub struct Guard {
    redactor: RefCell<Redactor>,
    sanitize: bool,
    warn: bool,
    audit: Option<AuditLog>,
    /// The proxy profile, `None` in direct mode.
    profile: Option<String>,
    /// The id of the latest model call, which a planned command's run record carries.
    last_id: RefCell<Option<String>>,
}

impl Guard {
    /// The guard of `cfg` in `mode`; `file` is the config file and `dir_flag` says
    /// `--config-dir` chose its directory. Fails when auditing is on and the audit file cannot
    /// be opened for appending.
    pub fn open(
        cfg: &ClientConfig,
        mode: &Mode,
        file: &Path,
        dir_flag: bool,
    ) -> Result<Guard, CmdError> {
        let profile = match mode {
            Mode::Proxy { profile } => Some(profile.clone()),
            Mode::Direct => None,
        };
        let security = profile
            .as_ref()
            .and_then(|p| cfg.proxy.profiles.get(p))
            .map(|p| &p.security);
        let sanitize = security.map_or(cfg.security.sanitize_requests, |s| s.sanitize_requests);
        let warn = security
            .and_then(|s| s.warn_sanitization)
            .unwrap_or(cfg.warnings.warn_sanitization);
        let audit = if audit::enabled(cfg, profile.as_deref()) {
            let path = audit::locate(cfg, profile.as_deref(), file, dir_flag, &process_env);
            Some(AuditLog::open(&path).map_err(audit_error)?)
        } else {
            None
        };
        Ok(Guard {
            redactor: RefCell::new(Redactor::new()),
            sanitize,
            warn,
            audit,
            profile,
            last_id: RefCell::new(None),
        })
    }

    /// Make `req` fit to leave the machine: a request id, every fragment with its secrets
    /// replaced (before it is cut to [`prompts::MAX_FRAGMENT_CHARS`], so a cut never splits a
    /// secret from what identifies it). Warns about what was removed; returns it.
    pub fn protect(&self, label: &str, req: &mut LlmRequest) -> Found {
        let id = uuid::Uuid::new_v4().to_string();
        req.request_id = Some(id.clone());
        *self.last_id.borrow_mut() = Some(id);
        let mut found = Found::new();
        let mut redactor = self.redactor.borrow_mut();
        for part in req.system.iter_mut().chain(req.user.iter_mut()) {
            if self.sanitize {
                let (text, f) = redactor.redact(part);
                *part = text;
                for (kind, n) in f {
                    *found.entry(kind).or_default() += n;
                }
            }
            if part.len() > prompts::MAX_FRAGMENT_CHARS {
                let before = part.len();
                *part = prompts::clip(part, prompts::MAX_FRAGMENT_CHARS);
                tracing::debug!(
                    call = label,
                    from_bytes = before,
                    to_bytes = part.len(),
                    "truncated a prompt fragment (its head and tail are kept)"
                );
            }
        }
        if self.warn && !found.is_empty() {
            let total: usize = found.values().sum();
            let kinds = found
                .iter()
                .map(|(k, n)| format!("{n} {}", k.name()))
                .collect::<Vec<_>>()
                .join(", ");
            let s = if total == 1 { "" } else { "s" };
            warn(&format!(
                "removed {total} secret{s} from the {label} request before it left the machine: {kinds}"
            ));
        }
        found
    }

    /// Record a model call: `req` as sent, the answer (empty when the call failed).
    pub fn audit_call(
        &self,
        label: &str,
        req: &LlmRequest,
        answer: &str,
        model: Option<&str>,
        found: &Found,
    ) -> Result<(), CmdError> {
        let Some(log) = &self.audit else {
            return Ok(());
        };
        let sent = req
            .system
            .iter()
            .chain(&req.user)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n");
        let secrets: Vec<(String, usize)> = found
            .iter()
            .map(|(k, n)| (k.name().to_owned(), *n))
            .collect();
        let record = Record::llm_request(
            self.profile.as_deref(),
            req.request_id.as_deref().unwrap_or_default(),
            model.or(req.model.as_deref()),
            label,
            &sent,
            answer,
            &secrets,
        );
        log.append(&record).map_err(audit_error)
    }

    /// Record a kubectl run (or a refusal: `approved` false, no exit code). `planned` says the
    /// model planned it, so the record carries that call's id.
    pub fn audit_run(
        &self,
        line: &str,
        planned: bool,
        approved: bool,
        exit_code: Option<i32>,
    ) -> Result<(), CmdError> {
        let Some(log) = &self.audit else {
            return Ok(());
        };
        let id = match (planned, self.last_id.borrow().clone()) {
            (true, Some(id)) => id,
            _ => uuid::Uuid::new_v4().to_string(),
        };
        let record = Record::command(self.profile.as_deref(), &id, line, approved, exit_code);
        log.append(&record).map_err(audit_error)
    }

    /// `args` with the values of the placeholders this run issued put back; a placeholder it
    /// never issued is an error naming it.
    pub fn restore(&self, args: &[String]) -> Result<Vec<String>, CmdError> {
        let redactor = self.redactor.borrow();
        args.iter()
            .map(|a| {
                redactor.restore(a).map_err(|e| {
                    CmdError::new(format!("not running the planned command: {e}")).with_hint(
                        "ask again; vibectl puts back only the values it removed in this run",
                    )
                })
            })
            .collect()
    }
}

fn audit_error(e: audit::AuditError) -> CmdError {
    let hint = e.hint();
    let err = CmdError::new(e.to_string());
    match hint {
        Some(h) => err.with_hint(h),
        None => err,
    }
}
