//! What may run: which kubectl commands can change the cluster or reach into it, read-only
//! mode (refused before anything runs, failing closed on verbs it does not know), and when a
//! planned command needs the user's confirmation (`security.confirmation_mode`).

use crate::cli::CmdError;
use crate::config::ClientConfig;
use crate::config::generated::client::{
    ProxyProfilesEntrySecurityConfirmationMode as ProfileMode, SecurityConfirmationMode, key,
};
use crate::llm::choose::Mode;

/// Verbs that only read the cluster (or nothing at all), with no subcommand to check.
const READ_VERBS: &[&str] = &[
    "get",
    "describe",
    "logs",
    "events",
    "top",
    "explain",
    "api-resources",
    "api-versions",
    "version",
    "cluster-info",
    "diff",
    "wait",
    "kustomize",
    "completion",
    "help",
];

/// Verbs whose subcommand decides, with the subcommands that only read.
const READ_SUBCOMMANDS: &[(&str, &[&str])] = &[
    ("auth", &["can-i", "whoami"]),
    ("rollout", &["status", "history"]),
    (
        "config",
        &[
            "view",
            "current-context",
            "get-contexts",
            "get-clusters",
            "get-users",
        ],
    ),
];

/// Verbs known to change the cluster or reach into it.
const CHANGING_VERBS: &[&str] = &[
    "apply",
    "create",
    "delete",
    "edit",
    "patch",
    "replace",
    "scale",
    "autoscale",
    "rollout",
    "label",
    "annotate",
    "set",
    "taint",
    "cordon",
    "uncordon",
    "drain",
    "exec",
    "cp",
    "attach",
    "port-forward",
    "proxy",
    "debug",
    "run",
    "expose",
    "certificate",
    "auth",
    "config",
];

/// kubectl's global flags that take a value as the next word (`-n shop get pods`).
const VALUE_FLAGS: &[&str] = &[
    "-n",
    "--namespace",
    "--context",
    "--cluster",
    "--user",
    "--kubeconfig",
    "-s",
    "--server",
    "--token",
    "--as",
    "--as-group",
    "--as-uid",
    "--certificate-authority",
    "--client-certificate",
    "--client-key",
    "--request-timeout",
    "--tls-server-name",
    "--cache-dir",
    "-v",
    "--v",
    "--vmodule",
    "--log-file",
    "--profile",
    "--profile-output",
];

/// kubectl verbs that are neither reads nor changes vibectl tracks, but are kubectl's own.
const OTHER_VERBS: &[&str] = &["plugin", "alpha", "options", "replace"];

/// Whether `word` is a kubectl verb (a plan whose first word is not one names another
/// program).
pub fn is_kubectl_verb(word: &str) -> bool {
    READ_VERBS.contains(&word)
        || CHANGING_VERBS.contains(&word)
        || OTHER_VERBS.contains(&word)
        || READ_SUBCOMMANDS.iter().any(|(v, _)| *v == word)
}

/// What a kubectl command can do to the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// It only reads.
    Reads,
    /// It can change the cluster or reach into it; `verb` as the user would name it
    /// (`delete`, `rollout restart`).
    Changes { verb: String },
    /// vibectl cannot tell (an unknown verb, or a flag before the verb it does not know).
    Unknown { verb: String },
}

impl Class {
    pub fn reads(&self) -> bool {
        matches!(self, Class::Reads)
    }
}

/// The verb of `kubectl ARGS` (`args` without `kubectl`): the first word that is not a flag
/// or a known flag's value. `None` when there is none or an unknown flag comes first.
pub fn verb(args: &[String]) -> Option<&str> {
    let mut words = args.iter().map(String::as_str);
    loop {
        let w = words.next()?;
        if !w.starts_with('-') {
            return Some(w);
        }
        if w.contains('=') {
            continue;
        }
        if VALUE_FLAGS.contains(&w) {
            words.next();
            continue;
        }
        return None;
    }
}

/// The class of `kubectl ARGS` (`args` without `kubectl`).
pub fn classify(args: &[String]) -> Class {
    let mut words = args.iter().map(String::as_str);
    let verb = loop {
        let Some(w) = words.next() else {
            return Class::Unknown {
                verb: "(none)".to_owned(),
            };
        };
        if !w.starts_with('-') {
            break w;
        }
        if w.contains('=') {
            continue;
        }
        if VALUE_FLAGS.contains(&w) {
            words.next();
            continue;
        }
        // A flag we do not know may or may not take the next word: we cannot tell the verb.
        return Class::Unknown { verb: w.to_owned() };
    };
    if let Some((_, reads)) = READ_SUBCOMMANDS.iter().find(|(v, _)| *v == verb) {
        let sub = words.find(|w| !w.starts_with('-')).unwrap_or("");
        let name = format!("{verb} {sub}").trim().to_owned();
        return if reads.contains(&sub) {
            Class::Reads
        } else {
            Class::Changes { verb: name }
        };
    }
    if READ_VERBS.contains(&verb) {
        return Class::Reads;
    }
    if verb == "certificate" {
        let sub = words.find(|w| !w.starts_with('-')).unwrap_or("");
        return Class::Changes {
            verb: format!("certificate {sub}").trim().to_owned(),
        };
    }
    if CHANGING_VERBS.contains(&verb) {
        return Class::Changes {
            verb: verb.to_owned(),
        };
    }
    Class::Unknown {
        verb: verb.to_owned(),
    }
}

/// When a planned command needs the user's yes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    /// Only before commands that can change the cluster (the default, as 0.11.6).
    Changes,
    /// Before every planned command.
    PerCommand,
    /// Once per vibectl run.
    PerSession,
    /// Never.
    Never,
}

/// The rules a command runs under, from the effective config, the mode and the flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Which switch turned read-only mode on (a flag or a dotted key), when it is on.
    pub read_only: Option<String>,
    pub confirm: Confirm,
    /// `--yes`.
    pub yes: bool,
}

impl Policy {
    pub fn new(cfg: &ClientConfig, mode: &Mode, read_only_flag: bool, yes: bool) -> Policy {
        let profile = match mode {
            Mode::Proxy { profile } => cfg.proxy.profiles.get(profile).map(|p| (profile, p)),
            Mode::Direct => None,
        };
        let read_only = if read_only_flag {
            Some("--read-only".to_owned())
        } else if cfg.security.read_only {
            Some(key::SECURITY_READ_ONLY.to_owned())
        } else {
            profile
                .filter(|(_, p)| p.security.read_only == Some(true))
                .map(|(name, _)| profile_key(name))
        };
        let profile_mode = profile.and_then(|(_, p)| p.security.confirmation_mode);
        let confirm = match profile_mode {
            Some(ProfileMode::None) => Confirm::Never,
            Some(ProfileMode::PerSession) => Confirm::PerSession,
            Some(ProfileMode::PerCommand) => Confirm::PerCommand,
            None => match cfg.security.confirmation_mode {
                Some(SecurityConfirmationMode::None) => Confirm::Never,
                Some(SecurityConfirmationMode::PerSession) => Confirm::PerSession,
                Some(SecurityConfirmationMode::PerCommand) => Confirm::PerCommand,
                None => Confirm::Changes,
            },
        };
        Policy {
            read_only,
            confirm,
            yes,
        }
    }

    /// Refuse `args` in read-only mode unless it only reads; the error names the verb and the
    /// switch that turned read-only mode on.
    pub fn allow(&self, args: &[String]) -> Result<Class, CmdError> {
        let class = classify(args);
        let Some(source) = &self.read_only else {
            return Ok(class);
        };
        let line = super::kubectl::display(args);
        match &class {
            Class::Reads => Ok(class),
            Class::Changes { verb } => Err(CmdError::new(format!(
                "read-only mode ({source}) refuses `{line}`: `{verb}` can change the cluster"
            ))
            .with_hint(read_only_hint(source))),
            Class::Unknown { verb } => Err(CmdError::new(format!(
                "read-only mode ({source}) refuses `{line}`: vibectl does not know what `{verb}` does, so it does not run it"
            ))
            .with_hint(read_only_hint(source))),
        }
    }

    /// Whether a command of `class` must be confirmed, given whether this run already had a
    /// yes (for per-session).
    pub fn must_ask(&self, class: &Class, approved_before: bool) -> bool {
        if self.yes {
            return false;
        }
        match self.confirm {
            Confirm::Never => false,
            Confirm::PerCommand => true,
            Confirm::PerSession => !approved_before,
            Confirm::Changes => !class.reads(),
        }
    }
}

/// `proxy.profiles.NAME.security.read_only` for a profile.
fn profile_key(profile: &str) -> String {
    crate::config::KeyPath::fill(key::PROXY_PROFILES_PROFILE_SECURITY_READ_ONLY, &[profile])
        .to_string()
}

fn read_only_hint(source: &str) -> String {
    if source == "--read-only" {
        "run it without --read-only, or use `vibectl just` outside read-only mode".to_owned()
    } else {
        format!(
            "{source} is on; only get, describe, logs, events, top, explain and other reads run"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn flags_before_the_verb_are_skipped_and_unknown_ones_fail_closed() {
        assert_eq!(classify(&words("-n shop get pods")), Class::Reads);
        assert_eq!(classify(&words("--context=prod get pods")), Class::Reads);
        assert_eq!(
            classify(&words("-n shop delete pod x")),
            Class::Changes {
                verb: "delete".into()
            }
        );
        assert!(matches!(
            classify(&words("--mystery get pods")),
            Class::Unknown { .. }
        ));
        assert!(matches!(classify(&[]), Class::Unknown { .. }));
    }

    #[test]
    fn subcommands_decide_for_rollout_auth_and_config() {
        assert_eq!(classify(&words("rollout status deploy/web")), Class::Reads);
        assert_eq!(
            classify(&words("rollout restart deploy/web")),
            Class::Changes {
                verb: "rollout restart".into()
            }
        );
        assert_eq!(classify(&words("auth can-i get pods")), Class::Reads);
        assert_eq!(
            classify(&words("auth reconcile -f x.yaml")),
            Class::Changes {
                verb: "auth reconcile".into()
            }
        );
        assert_eq!(classify(&words("config view")), Class::Reads);
        assert!(!classify(&words("config use-context prod")).reads());
        assert_eq!(
            classify(&words("certificate approve csr-1")),
            Class::Changes {
                verb: "certificate approve".into()
            }
        );
    }

    #[test]
    fn the_default_asks_only_before_changes_and_yes_never_asks() {
        let p = Policy::new(&ClientConfig::default(), &Mode::Direct, false, false);
        assert_eq!(p.confirm, Confirm::Changes);
        assert!(!p.must_ask(&Class::Reads, false));
        let del = classify(&words("delete pod x"));
        assert!(p.must_ask(&del, false));
        let yes = Policy { yes: true, ..p };
        assert!(!yes.must_ask(&del, false));
    }

    #[test]
    fn a_profile_can_turn_read_only_on_but_never_off() {
        let mut cfg = ClientConfig::default();
        let mut profile = crate::config::generated::client::ProxyProfile::default();
        profile.security.read_only = Some(true);
        cfg.proxy.profiles.insert("ro".into(), profile.clone());
        profile.security.read_only = Some(false);
        cfg.proxy.profiles.insert("rw".into(), profile);
        let ro = Mode::Proxy {
            profile: "ro".into(),
        };
        let rw = Mode::Proxy {
            profile: "rw".into(),
        };
        let p = Policy::new(&cfg, &ro, false, false);
        assert_eq!(p.read_only, Some(profile_key("ro")));
        assert!(profile_key("ro").starts_with("proxy.profiles.ro."));
        assert!(p.allow(&words("delete pod x")).is_err());
        assert!(Policy::new(&cfg, &rw, false, false).read_only.is_none());
        cfg.security.read_only = true;
        assert_eq!(
            Policy::new(&cfg, &rw, false, false).read_only.as_deref(),
            Some(key::SECURITY_READ_ONLY)
        );
    }
}
