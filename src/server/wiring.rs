//! What `vibectl-server serve` starts around the gRPC service once its config is loaded: the
//! listener on `server.host:server.port`, TLS from `tls.*`, the usage log and limit counters,
//! the metrics endpoint (when `metrics.enabled`) and the config watcher. The binary and the
//! integration tests' in-process server both go through [`start`], so tests run the wiring
//! operators run.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::tls::TlsError;
use super::{DRAIN_DEADLINE, Governance, RunOptions, ServerError, State, governance, reload};
use crate::config::generated::server::key;
use crate::config::{Override, ServerConfig};

/// How a server is started, besides its config.
pub struct Wiring {
    /// The config file: watched for edits (and re-read on [`Wiring::nudge`]); the usage log is
    /// kept beside it.
    pub file: PathBuf,
    /// Values from the command line, laid over the file again on every reload.
    pub overrides: Vec<Override>,
    /// Where environment keys are read.
    pub env: reload::Env,
    /// How often the watcher looks at the file.
    pub reload_interval: Duration,
    /// Reload now, whether or not the file changed (the binary nudges on SIGHUP).
    pub nudge: Arc<Notify>,
    /// How long calls in flight may run on after shutdown is asked for.
    pub drain_deadline: Duration,
}

impl Wiring {
    /// The wiring of `serve`: the watcher's usual interval and the usual drain deadline.
    pub fn new(file: &Path, overrides: Vec<Override>, env: reload::Env) -> Wiring {
        Wiring {
            file: file.to_owned(),
            overrides,
            env,
            reload_interval: reload::POLL_INTERVAL,
            nudge: Arc::new(Notify::new()),
            drain_deadline: DRAIN_DEADLINE,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr} ({}): {source}", key::METRICS_LISTEN)]
    Metrics {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS is on ({}) but cannot be set up: {source}", key::TLS_ENABLED)]
    Tls {
        #[from]
        source: TlsError,
    },
}

/// A server bound and wired, not yet serving calls.
pub struct Started {
    /// The address the gRPC listener is bound to.
    pub addr: SocketAddr,
    /// The metrics endpoint's address, when `metrics.enabled`.
    pub metrics_addr: Option<SocketAddr>,
    /// The config and everything built from it, swapped by reloads.
    pub state: Arc<ArcSwap<State>>,
    /// Limit counters, usage and metrics.
    pub gov: Arc<Governance>,
    listener: TcpListener,
    options: RunOptions,
}

impl Started {
    /// Whether the listener serves TLS.
    pub fn tls(&self) -> bool {
        self.options.tls.is_some()
    }

    /// Serve until `shutdown` resolves, then drain (see [`super::run`]).
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        super::run(self.state, self.listener, shutdown, self.options).await
    }
}

/// Bind the listener of `cfg` (built into `state`), set up TLS when `tls.enabled`, and start the
/// usage log, the metrics endpoint and the config watcher, which run until `stop` is cancelled.
pub async fn start(
    cfg: &ServerConfig,
    state: State,
    wiring: Wiring,
    stop: &CancellationToken,
) -> Result<Started, WiringError> {
    let tls = if cfg.tls.enabled {
        Some(Arc::new(super::tls::server_config(&cfg.tls)?))
    } else {
        None
    };
    let addr = format!("{}:{}", cfg.server.host, cfg.server.port);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| WiringError::Listen {
            addr: addr.clone(),
            source,
        })?;
    let bound = listener
        .local_addr()
        .map_err(|source| WiringError::Listen { addr, source })?;
    let dir = wiring.file.parent().unwrap_or(Path::new("."));
    let gov = Arc::new(Governance::new(Some(dir.join(governance::USAGE_FILE))));
    let metrics_addr = if cfg.metrics.enabled {
        Some(start_metrics(&cfg.metrics.listen, &gov, stop).await?)
    } else {
        None
    };
    gov.health.register(super::exec::deployments(&state));
    gov.sync_health(&cfg.server.limits);
    let state = Arc::new(ArcSwap::from_pointee(state));
    tokio::spawn(reload::watch(
        reload::Watch {
            file: wiring.file,
            overrides: wiring.overrides,
            env: wiring.env,
            state: state.clone(),
            gov: gov.clone(),
            bound: vec![bound],
            interval: wiring.reload_interval,
            nudge: wiring.nudge,
        },
        stop.clone(),
    ));
    let options = RunOptions {
        drain_deadline: wiring.drain_deadline,
        tls,
        governance: Some(gov.clone()),
    };
    Ok(Started {
        addr: bound,
        metrics_addr,
        state,
        gov,
        listener,
        options,
    })
}

/// Serve `/metrics`, `/healthz` and `/readyz` on `addr` until `stop`; the bound address.
async fn start_metrics(
    addr: &str,
    gov: &Arc<Governance>,
    stop: &CancellationToken,
) -> Result<SocketAddr, WiringError> {
    let failed = |source| WiringError::Metrics {
        addr: addr.to_owned(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(failed)?;
    let local = listener.local_addr().map_err(failed)?;
    let served = governance::metrics::serve(gov.clone(), listener, stop.clone().cancelled_owned());
    tokio::spawn(async move {
        if let Err(e) = served.await {
            tracing::warn!("the metrics endpoint stopped: {e}");
        }
    });
    Ok(local)
}
