//! Hot reload of the config file: [`reload`] reads, validates and builds a new [`State`] and
//! swaps it in, so the next request sees the new limits, tokens, models and keys while calls in
//! flight and open connections carry on. [`watch`] reloads when the file's modification time or
//! size changes (polled) or when it is told to (SIGHUP in `serve`).
//!
//! A reload fails safe: an empty (or missing) file, and one that does not parse or validate, is
//! refused with one log line per problem, and the running config stays. On a server bound to
//! anything but loopback (the addresses actually bound, not the file's `server.host`), a change
//! that weakens it ([`guard`]: auth off, a revocation taken back, a limit raised or removed) is
//! refused too, unless the running config sets `server.reload_allow_weakening`. Every accepted
//! change of auth, revocation or limit keys is logged at info level with its dotted key.
//!
//! The listen addresses, connection limits, TLS and the metrics endpoint are set up at start; a
//! change to them is logged and waits for a restart.

pub mod guard;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::governance::Governance;
use super::state::{KeyProblem, State};
use crate::config::generated::server::key;
use crate::config::{ConfigError, Loaded, Override, SERVER, ServerConfig};
use guard::Change;

/// How often [`watch`] looks at the file.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// A process environment lookup that can move into a task.
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The problem key of a file that cannot be used at all.
const FILE: &str = "(file)";

fn problems_of(e: ConfigError) -> Vec<KeyProblem> {
    match e {
        ConfigError::Invalid { problems, .. } => {
            problems.into_iter().map(|p| (p.key, p.message)).collect()
        }
        other => vec![(FILE.to_owned(), other.to_string())],
    }
}

/// Read and validate `file` with `overrides` (the serve flags) over it; every problem at once.
pub fn load(
    file: &Path,
    overrides: &[Override],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ServerConfig, Vec<KeyProblem>> {
    let loaded = SERVER.load(file).map_err(problems_of)?;
    typed(&loaded, overrides, env)
}

fn typed(
    loaded: &Loaded,
    overrides: &[Override],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ServerConfig, Vec<KeyProblem>> {
    SERVER.validate(loaded).map_err(problems_of)?;
    let effective = SERVER
        .effective(loaded, env, overrides)
        .map_err(problems_of)?;
    SERVER.typed(&effective).map_err(problems_of)
}

/// Reload `file` into `state`, for a server listening on `bound`. On success the new state is
/// in place and its changes of auth, revocation and limit keys are returned (and logged); on
/// failure the old one stays and every problem is returned (and logged, one line per key).
pub fn reload(
    file: &Path,
    overrides: &[Override],
    env: &dyn Fn(&str) -> Option<String>,
    state: &ArcSwap<State>,
    bound: &[SocketAddr],
) -> Result<Vec<Change>, Vec<KeyProblem>> {
    let result = SERVER
        .load(file)
        .map_err(problems_of)
        .and_then(|loaded| {
            if loaded.file.as_object().is_none_or(|m| m.is_empty()) {
                return Err(vec![(
                    FILE.to_owned(),
                    format!("{} is empty or missing", file.display()),
                )]);
            }
            typed(&loaded, overrides, env)
        })
        .and_then(|mut cfg| {
            let current = state.load();
            let running = &current.config;
            if cfg.server.host != running.server.host
                || cfg.server.port != running.server.port
                || cfg.tls != running.tls
                || cfg.metrics != running.metrics
                || cfg.server.connections != running.server.connections
            {
                tracing::warn!(
                    "the listen addresses, connection limits, TLS and metrics settings change only on a restart"
                );
            }
            let changes = guard::changes(running, &cfg);
            if guard::exposed(bound) && !running.server.reload_allow_weakening {
                let listening: Vec<String> = bound.iter().map(ToString::to_string).collect();
                let problems: Vec<KeyProblem> = changes
                    .iter()
                    .filter(|c| c.weakens)
                    .map(|c| {
                        (
                            c.key.clone(),
                            format!(
                                "{} would weaken a server listening on {}; restart to apply it, \
                                 or set {} in the running config",
                                c.detail,
                                listening.join(", "),
                                key::SERVER_RELOAD_ALLOW_WEAKENING
                            ),
                        )
                    })
                    .collect();
                if !problems.is_empty() {
                    return Err(problems);
                }
            }
            cfg.server.host = running.server.host.clone();
            cfg.server.port = running.server.port;
            cfg.tls = running.tls.clone();
            let dir = file.parent().unwrap_or(Path::new("."));
            State::build(cfg, dir, env).map(|s| (s, changes))
        });
    match result {
        Ok((new, changes)) => {
            state.store(Arc::new(new));
            for c in &changes {
                tracing::info!(key = %c.key, "config reload changes {}: {}", c.key, c.detail);
            }
            tracing::info!("config reloaded from {}", file.display());
            Ok(changes)
        }
        Err(problems) => {
            for (key, message) in &problems {
                tracing::error!(
                    "config reload refused, the running config stays: {key}: {message}"
                );
            }
            Err(problems)
        }
    }
}

/// What [`watch`] reloads, and into what.
pub struct Watch {
    pub file: PathBuf,
    pub overrides: Vec<Override>,
    pub env: Env,
    pub state: Arc<ArcSwap<State>>,
    pub gov: Arc<Governance>,
    /// The addresses the server listens on, which decide whether it is exposed.
    pub bound: Vec<SocketAddr>,
    pub interval: Duration,
    /// Reload now, whether or not the file changed (SIGHUP).
    pub nudge: Arc<Notify>,
}

/// The file's modification time and size, or `None` when it cannot be read.
fn fingerprint(file: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(file).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Reload whenever the file changes or a nudge comes, until `stop` is cancelled. A change is
/// reloaded once the file has kept the same time and size for one more interval, so an editor's
/// truncate-then-write is not read half done (and an empty file is refused).
/// The file is looked at when `watch` is called, not when the future first runs.
pub fn watch(w: Watch, stop: CancellationToken) -> impl Future<Output = ()> + Send + 'static {
    let mut seen = fingerprint(&w.file);
    let mut pending = None;
    async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(w.interval) => {
                    let now = fingerprint(&w.file);
                    if now == seen {
                        pending = None;
                        continue;
                    }
                    if pending != Some(now) {
                        pending = Some(now);
                        continue;
                    }
                    seen = now;
                    pending = None;
                }
                _ = w.nudge.notified() => {
                    seen = fingerprint(&w.file);
                    pending = None;
                }
            }
            // Reading, parsing and validating the file is blocking work: keep it off the
            // runtime's workers, which serve the calls meanwhile.
            let (file, overrides, env, state, bound) = (
                w.file.clone(),
                w.overrides.clone(),
                w.env.clone(),
                w.state.clone(),
                w.bound.clone(),
            );
            let ok = tokio::task::spawn_blocking(move || {
                reload(&file, &overrides, &*env, &state, &bound).is_ok()
            })
            .await
            .unwrap_or(false);
            w.gov.metrics.reload(ok);
            if ok {
                w.gov
                    .health
                    .register(super::exec::deployments(&w.state.load()));
                w.gov.sync_health(&w.state.load().config.server.limits);
            }
        }
    }
}
