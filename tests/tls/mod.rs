//! TLS end to end: a CA made by `vibectl-server ca`, served by our server and trusted (or
//! refused) by our client and by vibectl 0.11.6's; bad certificate files; HSTS; certificate
//! rotation under load; and ACME certificates from a local Pebble.

mod acme;
mod bad_input;
mod mutual;
mod python;
mod rotation;
mod serve;
mod served;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use vibectl::config::generated::server::Tls;
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;

use crate::support::mock::MockProvider;
use crate::support::process::{self, Output};
use crate::support::server::{TestServer, config};

/// Longest run of one `vibectl-server` command that does not serve.
pub const CLI_LIMIT: Duration = Duration::from_secs(30);

/// `vibectl-server --config DIR/config.yaml ARGS` in a clean environment (HOME = DIR).
pub fn server_cmd(dir: &Path, args: &[&str]) -> Command {
    crate::support::spawned::command(dir, args)
}

/// Run a non-serving `vibectl-server` command to completion.
pub fn server_cli(dir: &Path, args: &[&str]) -> Output {
    process::run(&mut server_cmd(dir, args), CLI_LIMIT)
}

/// A CA made by `vibectl-server ca init` and a `localhost` (+ 127.0.0.1) certificate from
/// `ca create-server-cert`, in a temp dir that is also the server config dir.
pub struct Pki {
    pub dir: TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("vibectl-tls-")
            .tempdir()
            .expect("temp dir");
        server_cli(dir.path(), &["ca", "init"]).assert_success();
        server_cli(
            dir.path(),
            &[
                "ca",
                "create-server-cert",
                "localhost",
                "--san",
                "127.0.0.1",
            ],
        )
        .assert_success();
        Pki { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// What clients trust: `ca/ca-bundle.crt`.
    pub fn bundle(&self) -> PathBuf {
        self.path("ca/ca-bundle.crt")
    }

    pub fn cert(&self) -> PathBuf {
        self.path("ca/server_certs/localhost.crt")
    }

    pub fn key(&self) -> PathBuf {
        self.path("ca/server_certs/localhost.key")
    }

    /// `tls.*` serving this PKI's server certificate.
    pub fn tls(&self) -> Tls {
        Tls {
            enabled: true,
            cert_file: Some(self.cert()),
            key_file: Some(self.key()),
            ..Tls::default()
        }
    }
}

/// Our server in-process, TLS per `tls` (its `hsts` too), routed to `mock`.
pub async fn tls_server(mock: &MockProvider, tls: Tls) -> TestServer {
    tls_server_cfg(config(mock), tls).await
}

/// Our server in-process serving `cfg` over TLS per `tls`; `cfg.tls.hsts` is kept when `tls`
/// leaves HSTS off.
pub async fn tls_server_cfg(mut cfg: vibectl::config::ServerConfig, mut tls: Tls) -> TestServer {
    if !tls.hsts.enabled {
        tls.hsts = cfg.tls.hsts.clone();
    }
    cfg.tls = tls;
    TestServer::start(cfg).await
}

/// A gRPC client over TLS to `addr`, trusting only the PEM file `ca`, checking the name
/// `domain` (the connection itself goes to `addr`).
pub async fn tls_client(
    addr: std::net::SocketAddr,
    ca: &Path,
    domain: &str,
) -> Result<VibectlLlmProxyClient<Channel>, tonic::transport::Error> {
    let pem = std::fs::read(ca).expect("read the CA bundle");
    let tls = ClientTlsConfig::new()
        .domain_name(domain)
        .ca_certificate(Certificate::from_pem(pem));
    let channel = Endpoint::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    Ok(VibectlLlmProxyClient::new(channel))
}

/// `e` and all its sources, for matching on the innermost cause.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(" / ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}
