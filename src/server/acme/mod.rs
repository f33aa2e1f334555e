//! Certificates from an ACME certificate authority (`acme.*`, RFC 8555) with instant-acme: the
//! account and the certificate are kept under `acme/` in the server directory, and the
//! certificate is written to files that [`super::tls::ReloadingCert`] watches, so a renewal
//! needs no restart; a failed renewal keeps the last good certificate.
//!
//! - [`account`]: the stored ACME account, or a new one.
//! - [`challenge`]: the http-01 and tls-alpn-01 (RFC 8737) challenge responders.
//! - [`order`]: one order, from the identifiers to the certificate files.
//! - [`renewal`]: the certificate at startup and the background renewal.

mod account;
mod challenge;
mod order;
mod renewal;

use std::path::{Path, PathBuf};

use crate::config::generated::server::{Acme, AcmeChallengeType, key};
use crate::server::tls::CertFiles;

pub use order::obtain;
pub use renewal::{due, ensure, spawn_renewal};

/// The directory under the server directory that holds the account and the certificate.
pub const DIR: &str = "acme";
pub const CERT: &str = "cert.pem";
pub const KEY: &str = "key.pem";

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
    #[error("{key}: cannot listen for {challenge} challenges on {addr}: {source}")]
    Responder {
        key: &'static str,
        challenge: AcmeChallengeType,
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot make the tls-alpn-01 validation certificate for {identifier}: {detail}")]
    Validation { identifier: String, detail: String },
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
pub(super) fn chain(e: &dyn std::error::Error) -> String {
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
pub(super) fn fail<'a>(
    cfg: &'a Acme,
    what: &'static str,
) -> impl Fn(instant_acme::Error) -> AcmeError + 'a {
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
