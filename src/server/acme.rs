//! Certificates from an ACME certificate authority (`acme.*`, RFC 8555) with instant-acme: the
//! account and the certificate are kept under `acme/` in the server directory, http-01
//! challenges are answered from memory by a small HTTP responder, and a background task renews
//! the certificate `acme.renew_days_before_expiry` days before it expires. The certificate is
//! written to files that [`super::tls::ReloadingCert`] watches, so a renewal needs no restart;
//! a failed renewal keeps the last good certificate.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State as AxState};
use axum::http::StatusCode;
use axum::routing::get;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use time::OffsetDateTime;

use super::ca;
use super::tls::CertFiles;
use crate::config::generated::server::{Acme, AcmeChallengeType, key};
use crate::config::store;

/// The directory, beside the server config file, holding the account and the certificate.
pub const DIR: &str = "acme";
const ACCOUNT: &str = "account.json";
pub const CERT: &str = "cert.pem";
pub const KEY: &str = "key.pem";

/// How long the CA may take to validate the challenges and to issue the certificate.
const ORDER_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest sleep of the renewal task between two looks at the certificate.
const RENEW_CHECK: Duration = Duration::from_secs(12 * 3600);
/// How long the renewal task waits after a failed renewal before trying again.
const RENEW_RETRY: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("{key}: {detail}")]
    Config { key: &'static str, detail: String },
    #[error(
        "{}: cannot reach the ACME server at {url}: {detail}",
        key::ACME_DIRECTORY_URL
    )]
    Unreachable { url: String, detail: String },
    #[error("the ACME server at {url} refused {what}: {detail}")]
    Refused {
        url: String,
        what: &'static str,
        detail: String,
    },
    #[error(
        "{}: cannot listen for http-01 challenges on {addr}: {source}",
        key::ACME_CHALLENGE_HTTP_PORT
    )]
    Responder {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot keep the ACME {what} in {}: {detail}", path.display())]
    Store {
        what: &'static str,
        path: PathBuf,
        detail: String,
    },
}

/// The certificate and key files of the ACME certificate under server directory `dir`.
pub fn cert_files(dir: &Path) -> CertFiles {
    CertFiles {
        cert: dir.join(DIR).join(CERT),
        key: dir.join(DIR).join(KEY),
        chain: None,
    }
}

/// `e` and its sources, joined: hyper's outer errors say little ("client error (Connect)").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        src = s.source();
    }
    out
}

/// Map a library error: a problem document is a refusal, anything else means no answer.
fn fail<'a>(cfg: &'a Acme, what: &'static str) -> impl Fn(instant_acme::Error) -> AcmeError + 'a {
    move |e| match e {
        instant_acme::Error::Api(p) => AcmeError::Refused {
            url: cfg.directory_url.clone(),
            what,
            detail: p.to_string(),
        },
        other => AcmeError::Unreachable {
            url: cfg.directory_url.clone(),
            detail: chain(&other),
        },
    }
}

/// The settings an order needs, checked before any network traffic.
fn check(cfg: &Acme) -> Result<Vec<Identifier>, AcmeError> {
    if cfg.domains.is_empty() {
        return Err(AcmeError::Config {
            key: key::ACME_DOMAINS,
            detail: "acme is enabled but no domain is listed".into(),
        });
    }
    if cfg.challenge.r#type != AcmeChallengeType::Http01 {
        return Err(AcmeError::Config {
            key: key::ACME_CHALLENGE_TYPE,
            detail: format!("{} is not supported yet; use http-01", cfg.challenge.r#type),
        });
    }
    cfg.domains
        .iter()
        .map(|d| {
            if let Ok(ip) = d.parse::<IpAddr>() {
                Ok(Identifier::Ip(ip))
            } else if ca::valid_name(d) {
                Ok(Identifier::Dns(d.clone()))
            } else {
                Err(AcmeError::Config {
                    key: key::ACME_DOMAINS,
                    detail: format!("`{d}` is not a valid DNS name or IP address"),
                })
            }
        })
        .collect()
}

/// The stored account for this directory, or a new one (then stored, 0600).
async fn account(cfg: &Acme, dir: &Path) -> Result<Account, AcmeError> {
    let builder = || match &cfg.ca_cert_file {
        Some(p) => Account::builder_with_root(p).map_err(|e| AcmeError::Config {
            key: key::ACME_CA_CERT_FILE,
            detail: format!("cannot use {}: {}", p.display(), chain(&e)),
        }),
        None => Account::builder().map_err(|e| AcmeError::Config {
            key: key::ACME_DIRECTORY_URL,
            detail: format!("no system trust store: {}", chain(&e)),
        }),
    };
    let path = dir.join(DIR).join(ACCOUNT);
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(stored) = serde_json::from_str::<serde_json::Value>(&text)
        && stored["directory_url"] == cfg.directory_url.as_str()
        && let Ok(creds) =
            serde_json::from_value::<AccountCredentials>(stored["credentials"].clone())
    {
        return builder()?
            .from_credentials(creds)
            .await
            .map_err(fail(cfg, "the stored account"));
    }
    let contact: Vec<String> = cfg.email.iter().map(|e| format!("mailto:{e}")).collect();
    let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
    let new = NewAccount {
        contact: &contact,
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    let (account, creds) = builder()?
        .create(&new, cfg.directory_url.clone(), None)
        .await
        .map_err(fail(cfg, "a new account"))?;
    let stored = serde_json::json!({ "directory_url": cfg.directory_url, "credentials": creds });
    store::write_atomic(&path, &stored.to_string(), true).map_err(|e| AcmeError::Store {
        what: "account",
        path: path.clone(),
        detail: e.to_string(),
    })?;
    Ok(account)
}

type Tokens = Arc<Mutex<HashMap<String, String>>>;

async fn answer(
    AxState(tokens): AxState<Tokens>,
    UrlPath(token): UrlPath<String>,
) -> Result<String, StatusCode> {
    let tokens = tokens
        .lock()
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    tokens.get(&token).cloned().ok_or(StatusCode::NOT_FOUND)
}

/// The http-01 responder, serving key authorizations until dropped.
struct Responder {
    tokens: Tokens,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn responder(cfg: &Acme) -> Result<Responder, AcmeError> {
    let addr = format!("{}:{}", cfg.challenge.http_host, cfg.challenge.http_port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| AcmeError::Responder {
            addr: addr.clone(),
            source,
        })?;
    let tokens = Tokens::default();
    let app = axum::Router::new()
        .route("/.well-known/acme-challenge/{token}", get(answer))
        .with_state(tokens.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(Responder {
        tokens,
        _stop: stop,
    })
}

/// Obtain a new certificate now and write it (key first, then chain) under `dir/acme/`.
pub async fn obtain(cfg: &Acme, dir: &Path) -> Result<CertFiles, AcmeError> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let identifiers = check(cfg)?;
    let account = account(cfg, dir).await?;
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(fail(cfg, "the order"))?;
    let responder = responder(cfg).await?;
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(fail(cfg, "the authorization"))?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => {
                return Err(AcmeError::Refused {
                    url: cfg.directory_url.clone(),
                    what: "the authorization",
                    detail: format!("it is {other:?}"),
                });
            }
        }
        let mut challenge =
            authz
                .challenge(ChallengeType::Http01)
                .ok_or_else(|| AcmeError::Refused {
                    url: cfg.directory_url.clone(),
                    what: "an http-01 challenge",
                    detail: "it offered none".into(),
                })?;
        if let Ok(mut t) = responder.tokens.lock() {
            t.insert(
                challenge.token.clone(),
                challenge.key_authorization().as_str().to_owned(),
            );
        }
        challenge
            .set_ready()
            .await
            .map_err(fail(cfg, "the challenge"))?;
    }
    let retries = RetryPolicy::new().timeout(ORDER_TIMEOUT);
    let status = order
        .poll_ready(&retries)
        .await
        .map_err(fail(cfg, "the order"))?;
    if status != OrderStatus::Ready {
        return Err(AcmeError::Refused {
            url: cfg.directory_url.clone(),
            what: "the order",
            detail: format!("it is {status:?} after the challenges"),
        });
    }
    let key_pem = order.finalize().await.map_err(fail(cfg, "the CSR"))?;
    let chain_pem = order
        .poll_certificate(&retries)
        .await
        .map_err(fail(cfg, "the certificate"))?;
    drop(responder);
    let files = cert_files(dir);
    for (path, text, secret) in [
        (&files.key, &key_pem, true),
        (&files.cert, &chain_pem, false),
    ] {
        store::write_atomic(path, text, secret).map_err(|e| AcmeError::Store {
            what: "certificate",
            path: path.clone(),
            detail: e.to_string(),
        })?;
    }
    tracing::info!(domains = ?cfg.domains, cert = %files.cert.display(), "obtained an ACME certificate");
    Ok(files)
}

/// When the stored certificate expires, if there is one that loads with its key.
fn stored_expiry(files: &CertFiles) -> Option<OffsetDateTime> {
    files.load().ok()?;
    ca::inspect(&files.cert).ok().map(|c| c.not_after)
}

/// Whether a certificate expiring at `not_after` is due for renewal.
pub fn due(not_after: OffsetDateTime, renew_days_before_expiry: i64) -> bool {
    not_after - time::Duration::days(renew_days_before_expiry) <= OffsetDateTime::now_utc()
}

/// The certificate to serve at startup: the stored one unless it is missing or due, else a new
/// one. When a renewal fails but the stored certificate is still valid, it is kept.
pub async fn ensure(cfg: &Acme, dir: &Path) -> Result<CertFiles, AcmeError> {
    let files = cert_files(dir);
    match stored_expiry(&files) {
        Some(t) if !due(t, cfg.renew_days_before_expiry) => Ok(files),
        Some(t) => match obtain(cfg, dir).await {
            Ok(f) => Ok(f),
            Err(e) => {
                tracing::warn!(
                    "keeping the ACME certificate that expires {t}: renewal failed: {e}"
                );
                Ok(files)
            }
        },
        None => obtain(cfg, dir).await,
    }
}

/// Renew in the background before expiry; a failure is logged and retried, and the last good
/// certificate stays in place meanwhile.
pub fn spawn_renewal(cfg: Acme, dir: PathBuf) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let files = cert_files(&dir);
            let wait = match stored_expiry(&files) {
                Some(t) => {
                    let renew_at = t - time::Duration::days(cfg.renew_days_before_expiry);
                    let left = (renew_at - OffsetDateTime::now_utc()).max(time::Duration::ZERO);
                    Duration::try_from(left).unwrap_or(Duration::ZERO)
                }
                None => Duration::ZERO,
            };
            if !wait.is_zero() {
                tokio::time::sleep(wait.min(RENEW_CHECK)).await;
                continue;
            }
            if let Err(e) = obtain(&cfg, &dir).await {
                tracing::warn!("ACME renewal failed, keeping the current certificate: {e}");
                tokio::time::sleep(RENEW_RETRY).await;
            }
        }
    })
}
