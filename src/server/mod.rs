//! `vibectl-server`: the gRPC LLM proxy. [`run`] serves a prepared [`State`] on a listener until
//! the shutdown future resolves, then drains in-flight calls up to a deadline.
//!
//! - [`auth`]: JWT secret lookup, minting and verification.
//! - [`catalog`]: models, aliases and routing to providers.
//! - [`upstream`]: the provider clients and their API keys.
//! - [`exec`]: one request upstream, with retries, metrics and wire errors.
//! - [`cache`]: the exact response cache in front of [`exec`], for both ingresses.
//! - [`conn`]: connection limits, handshake and idle timeouts, the accept loop.
//! - [`tls`], [`hsts`], [`ca`], [`acme`]: TLS serving, the HSTS header, the private CA, ACME.
//! - [`service`]: the gRPC service.
//! - [`http_api`]: the OpenAI-compatible HTTP API on the same listener.
//! - [`governance`]: auth and limits as a tower layer, usage and quotas, metrics.
//! - [`reload`]: hot reload of the config file.
//! - [`state`]: everything built from one config.
//! - [`wiring`]: what `serve` starts around [`run`] (listener, TLS, usage, metrics, watcher).

pub mod acme;
pub mod auth;
pub mod ca;
pub mod cache;
pub mod catalog;
pub mod conn;
mod drain;
pub mod exec;
pub mod governance;
pub mod hsts;
pub mod http_api;
pub mod reload;
pub mod routing;
pub mod service;
pub mod state;
pub mod tls;
pub mod upstream;
pub mod wiring;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use futures_util::StreamExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::proto::vibectl_llm_proxy_server::VibectlLlmProxyServer;
pub use governance::Governance;
pub use service::ProxyService;
pub use state::State;

/// How long in-flight calls may run on after shutdown is asked for.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("cannot set up reflection: {0}")]
    Reflection(String),
}

/// How often an HTTP/2 ping checks a connection that has sent nothing for that long.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
/// How long a ping may go unanswered before its connection is closed as dead.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Options of a running server that are not in the config file.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub drain_deadline: Duration,
    /// Serve TLS with this config; plaintext HTTP/2 when `None`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Limit counters, usage and metrics to share; a fresh in-memory set when `None`.
    pub governance: Option<Arc<Governance>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            drain_deadline: DRAIN_DEADLINE,
            tls: None,
            governance: None,
        }
    }
}

/// Serve until `shutdown` resolves; then stop accepting, let calls finish up to the deadline.
pub async fn run(
    state: Arc<ArcSwap<State>>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: RunOptions,
) -> Result<(), ServerError> {
    let gov = options
        .governance
        .clone()
        .unwrap_or_else(|| Arc::new(Governance::new(None)));
    let service = ProxyService {
        state: state.clone(),
        gov: gov.clone(),
    };
    // Auth and limits run in `governance::layer`, before the service.
    let proxy = VibectlLlmProxyServer::new(service);
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<VibectlLlmProxyServer<ProxyService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServerError::Reflection(e.to_string()))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut stop_rx2 = stop_rx.clone();
    let govern = governance::layer::GovernLayer::new(state.clone(), gov.clone());
    let hsts = hsts::HstsLayer::new(options.tls.is_some(), &state.load().config.tls.hsts);
    let limits = conn::Limits::from_config(&state.load().config.server.connections);
    let steer = http_api::SteerLayer::new(http_api::Http {
        state: state.clone(),
        gov: gov.clone(),
    });
    let router = tonic::transport::Server::builder()
        // HTTP/1.1 for the HTTP API; gRPC still needs HTTP/2.
        .accept_http1(true)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .max_concurrent_streams(limits.max_streams)
        // Outermost, so every call is counted, refused ones too.
        .layer(conn::CallCountLayer)
        .layer(hsts)
        // Requests that are not gRPC leave here for the HTTP API.
        .layer(steer)
        .layer(govern)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(proxy);
    let stopped = async move {
        let mut rx = stop_rx;
        let _ = rx.wait_for(|s| *s).await;
    };
    // Every connection can be cut when the drain deadline passes.
    let cut = CancellationToken::new();
    let cut_conns = cut.clone();
    let server: std::pin::Pin<
        Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>,
    > = match options.tls.clone() {
        Some(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let incoming = conn::incoming(listener, limits, move |tcp| acceptor.accept(tcp))
                .map(move |conn| conn.map(|io| drain::Cuttable::new(io, &cut_conns)));
            Box::pin(router.serve_with_incoming_shutdown(incoming, stopped))
        }
        None => {
            let incoming = conn::incoming(listener, limits, conn::first_byte)
                .map(move |conn| conn.map(|io| drain::Cuttable::new(io, &cut_conns)));
            Box::pin(router.serve_with_incoming_shutdown(incoming, stopped))
        }
    };
    gov.set_ready(true);
    let flush_at_end = gov.clone();
    tokio::spawn(async move {
        shutdown.await;
        gov.set_ready(false);
        let _ = stop_tx.send(true);
    });
    let deadline = options.drain_deadline;
    let result = tokio::select! {
        r = server => r.map_err(ServerError::from),
        _ = async move {
            let _ = stop_rx2.wait_for(|s| *s).await;
            tokio::time::sleep(deadline).await;
        } => {
            cut.cancel();
            tracing::warn!("calls still running after the {deadline:?} drain deadline were stopped");
            Ok(())
        }
    };
    flush_at_end.usage.flush();
    result
}
