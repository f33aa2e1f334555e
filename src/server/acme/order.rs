//! One ACME order: the identifiers checked, the challenges answered, the CSR finalized, and the
//! key and certificate chain written under `acme/`.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use instant_acme::{
    AuthorizationStatus, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy,
};

use super::challenge::responder;
use super::{AcmeError, CertFiles, account::account, cert_files, fail};
use crate::config::generated::server::{Acme, AcmeChallengeType, key};
use crate::config::store;
use crate::server::ca;

/// How long the CA may take to validate the challenges and to issue the certificate.
const ORDER_TIMEOUT: Duration = Duration::from_secs(120);

/// The settings an order needs, checked before any network traffic.
fn check(cfg: &Acme) -> Result<Vec<Identifier>, AcmeError> {
    if cfg.domains.is_empty() {
        return Err(AcmeError::Config {
            key: key::ACME_DOMAINS,
            detail: "acme is enabled but no domain is listed".into(),
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
        let (kind, what) = match cfg.challenge.r#type {
            AcmeChallengeType::Http01 => (ChallengeType::Http01, "an http-01 challenge"),
            AcmeChallengeType::TlsAlpn01 => (ChallengeType::TlsAlpn01, "a tls-alpn-01 challenge"),
        };
        let mut challenge = authz.challenge(kind).ok_or_else(|| AcmeError::Refused {
            url: cfg.directory_url.clone(),
            what,
            detail: "it offered none".into(),
        })?;
        let identifier = challenge.identifier().identifier.clone();
        let key_authorization = challenge.key_authorization();
        responder.add(
            &identifier,
            &challenge.token,
            key_authorization.as_str(),
            key_authorization.digest().as_ref(),
        )?;
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
