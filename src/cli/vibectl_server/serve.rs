//! `serve`: validate the whole config, then serve the gRPC proxy until SIGINT or SIGTERM.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use clap::Args;

use crate::cli::{CmdError, CmdResult, process_env};
use crate::config::generated::server::key;
use crate::config::{KeyPath, Override, SERVER, ServerConfig, value};
use crate::server::wiring::{self, Wiring, WiringError};
use crate::server::{self, State, ca};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to bind (overrides server.host)
    #[arg(long)]
    pub host: Option<String>,
    /// Port to bind; 0 picks a free one (overrides server.port)
    #[arg(long)]
    pub port: Option<u16>,
    /// Default model (overrides server.default_model)
    #[arg(long)]
    pub model: Option<String>,
    /// Require a valid token on every call (sets jwt.enabled)
    #[arg(long)]
    pub require_auth: bool,
    /// Serve TLS (sets tls.enabled)
    #[arg(long, conflicts_with = "no_tls")]
    pub tls: bool,
    /// Serve plaintext HTTP/2 (clears tls.enabled)
    #[arg(long)]
    pub no_tls: bool,
    /// Requests per minute per client (overrides server.limits.global.max_requests_per_minute)
    #[arg(long, value_name = "N")]
    pub max_rpm: Option<u32>,
    /// Concurrent requests per client (overrides server.limits.global.max_concurrent_requests)
    #[arg(long, value_name = "N")]
    pub max_concurrent: Option<u32>,
    /// Metrics listen address (sets metrics.listen and metrics.enabled)
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
    /// Allow serving a non-loopback address with authentication off
    #[arg(long)]
    pub allow_unauthenticated: bool,
}

impl ServeArgs {
    /// The flags as config overrides (also re-applied on every reload).
    pub fn overrides(&self) -> Result<Vec<Override>, CmdError> {
        let mut out = Vec::new();
        let mut add = |k: &str, raw: String, flag: &str| -> Result<(), CmdError> {
            let path = KeyPath::template(k);
            let spec = SERVER.leaf(&path)?;
            let v =
                value::parse(spec, k, &raw).map_err(|e| CmdError::new(format!("{flag}: {e}")))?;
            out.push(Override {
                key: path,
                value: v,
                flag: flag.to_owned(),
            });
            Ok(())
        };
        if let Some(h) = &self.host {
            add(key::SERVER_HOST, h.clone(), "--host")?;
        }
        if let Some(m) = &self.model {
            add(key::SERVER_DEFAULT_MODEL, m.clone(), "--model")?;
        }
        if self.require_auth {
            add(key::JWT_ENABLED, "true".into(), "--require-auth")?;
        }
        if self.tls || self.no_tls {
            add(
                key::TLS_ENABLED,
                self.tls.to_string(),
                if self.tls { "--tls" } else { "--no-tls" },
            )?;
        }
        if let Some(n) = self.max_rpm {
            add(
                key::SERVER_LIMITS_GLOBAL_MAX_REQUESTS_PER_MINUTE,
                n.to_string(),
                "--max-rpm",
            )?;
        }
        if let Some(n) = self.max_concurrent {
            add(
                key::SERVER_LIMITS_GLOBAL_MAX_CONCURRENT_REQUESTS,
                n.to_string(),
                "--max-concurrent",
            )?;
        }
        if let Some(a) = &self.metrics_addr {
            add(key::METRICS_LISTEN, a.clone(), "--metrics-addr")?;
            add(key::METRICS_ENABLED, "true".into(), "--metrics-addr")?;
        }
        Ok(out)
    }
}

/// Whether a host string names only this machine.
fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Load, layer and check the config; every bad key is named at once.
pub fn load_config(file: &Path, args: &ServeArgs) -> Result<ServerConfig, CmdError> {
    let loaded = SERVER.load(file)?;
    SERVER.validate(&loaded)?;
    let effective = SERVER.effective(&loaded, &process_env, &args.overrides()?)?;
    let mut cfg: ServerConfig = SERVER.typed(&effective)?;
    if let Some(p) = args.port {
        cfg.server.port = i64::from(p);
    }
    if !is_loopback(&cfg.server.host) && !cfg.jwt.enabled && !args.allow_unauthenticated {
        return Err(CmdError::new(format!(
            "refusing to serve {} with authentication off ({} is false)",
            cfg.server.host,
            key::JWT_ENABLED
        ))
        .with_hint(format!(
            "pass --require-auth (or set {}: true), or --allow-unauthenticated if you mean it",
            key::JWT_ENABLED
        )));
    }
    Ok(cfg)
}

/// A warning when the config file holds a key (the JWT secret, a provider's API key, a token
/// in a URL) and its group or others can read it; `None` when it holds none or is private.
pub fn key_file_warning(file: &Path) -> Option<String> {
    let loaded = SERVER.load(file).ok()?;
    if !SERVER.holds_secret(&loaded.file) || crate::config::store::mode_ok(file, true) {
        return None;
    }
    Some(format!(
        "{} holds a key and can be read by other users; run `chmod 600 {}`",
        file.display(),
        file.display()
    ))
}

pub fn run(file: &Path, args: &ServeArgs) -> CmdResult {
    let cfg = load_config(file, args)?;
    if let Some(warning) = key_file_warning(file) {
        crate::cli::warn(&warning);
    }
    let dir = file.parent().unwrap_or(Path::new(".")).to_owned();
    let state = State::build(cfg.clone(), &dir, &process_env).map_err(|problems| {
        let list: Vec<String> = problems
            .iter()
            .map(|(k, m)| format!("  {k}: {m}"))
            .collect();
        CmdError::new(format!("the config cannot be served:\n{}", list.join("\n")))
            .with_hint(format!("fix the keys above in {}", file.display()))
    })?;
    let mut cfg = cfg;
    let acme = tls_certificate(&mut cfg, &dir)?;
    crate::cli::init_logging(cfg.server.log_level.as_str());
    check_open_files(&cfg);
    let workers = usize::try_from(cfg.server.max_workers).unwrap_or(1).clamp(
        1,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    );
    tracing::debug!(
        config = %file.display(),
        "{} is {}; running {workers} worker threads, at most one per CPU",
        key::SERVER_MAX_WORKERS,
        cfg.server.max_workers
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(|e| CmdError::new(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        let auth = match &state.secret_origin {
            Some(origin) => format!("auth on, secret from {origin}"),
            None => "auth off".to_owned(),
        };
        let wiring = Wiring::new(file, args.overrides()?, Arc::new(process_env));
        let nudge = wiring.nudge.clone();
        let stop = tokio_util::sync::CancellationToken::new();
        let started = wiring::start(&cfg, state, wiring, &stop)
            .await
            .map_err(wiring_error)?;
        let auth = format!(
            "{}, {auth}, {workers} worker thread{}",
            if started.tls() { "TLS" } else { "plaintext" },
            if workers == 1 { "" } else { "s" }
        );
        crate::cli::out(&format!(
            "vibectl-server listening on {} ({auth})\n",
            started.addr
        ));
        if let Some(local) = started.metrics_addr {
            crate::cli::out(&format!("metrics on http://{local}/metrics\n"));
        }
        if acme && cfg.acme.auto_renew {
            server::acme::spawn_renewal(cfg.acme.clone(), dir.clone());
        }
        reload_on_hangup(nudge);
        let served = started
            .serve(shutdown_signal())
            .await
            .map_err(|e| CmdError::new(e.to_string()));
        stop.cancel();
        served
    })
}

/// The message and hint of a failed start.
fn wiring_error(e: WiringError) -> CmdError {
    let hint = match &e {
        WiringError::Listen { .. } => "pick another --port or --host".to_owned(),
        WiringError::Metrics { .. } => "pick another --metrics-addr".to_owned(),
        WiringError::Tls { .. } => format!(
            "fix {} and {}, or make them with `vibectl-server ca init` and `ca create-server-cert`",
            key::TLS_CERT_FILE,
            key::TLS_KEY_FILE
        ),
    };
    CmdError::new(e.to_string()).with_hint(hint)
}

/// Nudge the config watcher on every SIGHUP.
fn reload_on_hangup(nudge: Arc<tokio::sync::Notify>) {
    #[cfg(unix)]
    if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the config");
                nudge.notify_one();
            }
        });
    }
    #[cfg(not(unix))]
    let _ = nudge;
}

/// File descriptors the server needs besides its gRPC connections: metrics connections, the
/// usage and audit files, upstream connections, the runtime.
const OTHER_FILES: u64 = 256;

/// Raise the open-file limit to the hard limit and warn when the connection limit does not fit
/// under it, since accept then fails with EMFILE before the connection limit is reached.
fn check_open_files(cfg: &ServerConfig) {
    match server::conn::raise_open_files_limit() {
        Ok(limit) => {
            let max = u64::try_from(cfg.server.connections.max).unwrap_or(0);
            if max.saturating_add(OTHER_FILES) > limit {
                tracing::warn!(
                    "{} is {max} but the open-file limit is {limit}; connections past about {} fail with EMFILE",
                    key::SERVER_CONNECTIONS_MAX,
                    limit.saturating_sub(OTHER_FILES)
                );
            }
        }
        Err(e) => tracing::warn!("cannot raise the open-file limit: {e}"),
    }
}

/// TLS on without `tls.cert_file`: with `acme.enabled`, obtain (or reuse) the ACME certificate
/// under `acme/` (true: ACME supplies the certificate); else [`quick_certificate`].
fn tls_certificate(cfg: &mut ServerConfig, dir: &Path) -> Result<bool, CmdError> {
    if !cfg.tls.enabled && !cfg.acme.enabled {
        return Ok(false);
    }
    if !cfg.tls.enabled {
        return Err(CmdError::new(format!(
            "{} is true but {} is false",
            key::ACME_ENABLED,
            key::TLS_ENABLED
        ))
        .with_hint(format!(
            "set {} to true (or pass --tls) to serve the ACME certificate",
            key::TLS_ENABLED
        )));
    }
    if cfg.tls.cert_file.is_some() {
        return Ok(false);
    }
    if !cfg.acme.enabled {
        quick_certificate(cfg, dir)?;
        return Ok(false);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CmdError::new(format!("cannot start the runtime: {e}")))?;
    let files = runtime
        .block_on(server::acme::ensure(&cfg.acme, dir))
        .map_err(|e| {
            CmdError::new(format!("cannot get the ACME certificate: {e}")).with_hint(format!(
                "check {}, {} and {}, or set {}",
                key::ACME_DIRECTORY_URL,
                key::ACME_DOMAINS,
                key::ACME_CA_CERT_FILE,
                key::TLS_CERT_FILE
            ))
        })?;
    cfg.tls.cert_file = Some(files.cert);
    cfg.tls.key_file = Some(files.key);
    Ok(true)
}

/// TLS on without a certificate file or ACME: serve a `localhost` certificate from a CA under
/// `certs/` beside the config (made on first use, the layout `generate-certs` writes), and say
/// which bundle clients must trust.
fn quick_certificate(cfg: &mut ServerConfig, dir: &Path) -> Result<(), CmdError> {
    let certs = dir.join("certs");
    let cert = certs.join(ca::SERVER_DIR).join("localhost.crt");
    let key_file = certs.join(ca::SERVER_DIR).join("localhost.key");
    if !cert.exists() || !key_file.exists() {
        if !certs.join(ca::ROOT_CERT).exists() {
            ca::init(&certs, false)?;
        }
        let sans = ["127.0.0.1".to_owned(), "::1".to_owned()];
        ca::server_cert(&certs, "localhost", &sans, ca::SERVER_DAYS, true)?;
    }
    crate::cli::warn(&format!(
        "{} is not set: serving {} (localhost, 127.0.0.1, ::1); clients trust {}",
        key::TLS_CERT_FILE,
        cert.display(),
        certs.join(ca::BUNDLE).display()
    ));
    cfg.tls.cert_file = Some(cert);
    cfg.tls.key_file = Some(key_file);
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: no new connections; draining calls in flight");
}
