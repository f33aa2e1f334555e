//! TLS serving with rustls: the full chain, a minimum version, optional client certificates,
//! and certificate files re-read when they change, so a renewal needs no restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use std::time::{Duration, SystemTime};

use rustls::crypto::aws_lc_rs;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::generated::server::{Tls, TlsMinVersion, key};

/// How often, at most, the certificate files are checked for changes.
const RECHECK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key}: TLS is on but no certificate file is set")]
    Missing { key: &'static str },
    #[error("{key}: cannot read {}: {source}", path.display())]
    Read {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{key}: {} holds no {what}", path.display())]
    Empty {
        key: &'static str,
        path: PathBuf,
        what: &'static str,
    },
    #[error("{key}: {} is not valid PEM: {detail}", path.display())]
    Pem {
        key: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error("{}: the private key does not match the certificate in {}", key::TLS_KEY_FILE, cert.display())]
    Mismatch { cert: PathBuf },
    #[error("{}: the certificate in {} expired on {not_after}", key::TLS_CERT_FILE, path.display())]
    Expired { path: PathBuf, not_after: String },
    #[error("{}: the certificate in {} is not valid before {not_before}", key::TLS_CERT_FILE, path.display())]
    NotYetValid { path: PathBuf, not_before: String },
    #[error("TLS setup failed: {0}")]
    Rustls(String),
}

fn certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_owned(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            key,
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            key,
            path: path.to_owned(),
            what: "certificate",
        });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let key = key::TLS_KEY_FILE;
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_owned(),
        source,
    })?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Pem {
        key,
        path: path.to_owned(),
        detail: e.to_string(),
    })
}

/// The certificate files of a server.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Intermediates sent after the leaf, when `cert` holds only the leaf.
    pub chain: Option<PathBuf>,
}

impl CertFiles {
    pub fn from_config(tls: &Tls) -> Result<CertFiles, TlsError> {
        Ok(CertFiles {
            cert: tls.cert_file.clone().ok_or(TlsError::Missing {
                key: key::TLS_CERT_FILE,
            })?,
            key: tls.key_file.clone().ok_or(TlsError::Missing {
                key: key::TLS_KEY_FILE,
            })?,
            chain: tls.ca_bundle_file.clone(),
        })
    }

    /// Load and check: the leaf must be valid now and the key must match it.
    pub fn load(&self) -> Result<Arc<CertifiedKey>, TlsError> {
        let mut chain = certs(key::TLS_CERT_FILE, &self.cert)?;
        check_validity(&self.cert, &chain[0])?;
        if let Some(extra) = &self.chain {
            chain.extend(certs(key::TLS_CA_BUNDLE_FILE, extra)?);
        }
        let key = private_key(&self.key)?;
        let ck = CertifiedKey::from_der(chain, key, &aws_lc_rs::default_provider()).map_err(
            |e| match e {
                rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
                    cert: self.cert.clone(),
                },
                other => TlsError::Rustls(other.to_string()),
            },
        )?;
        Ok(Arc::new(ck))
    }

    /// The modification times of the files, to notice a replacement.
    fn mtimes(&self) -> Vec<Option<SystemTime>> {
        [Some(&self.cert), Some(&self.key), self.chain.as_ref()]
            .into_iter()
            .flatten()
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect()
    }
}

/// Refuse a leaf certificate that has expired or is not valid yet: clients would refuse it.
fn check_validity(path: &Path, leaf: &CertificateDer<'_>) -> Result<(), TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).map_err(|e| TlsError::Pem {
        key: key::TLS_CERT_FILE,
        path: path.to_owned(),
        detail: format!("not an X.509 certificate: {e}"),
    })?;
    let validity = cert.validity();
    let now = x509_parser::time::ASN1Time::now();
    if validity.not_after < now {
        return Err(TlsError::Expired {
            path: path.to_owned(),
            not_after: validity.not_after.to_string(),
        });
    }
    if validity.not_before > now {
        return Err(TlsError::NotYetValid {
            path: path.to_owned(),
            not_before: validity.not_before.to_string(),
        });
    }
    Ok(())
}

/// Serves the current certificate, a ready `CertifiedKey` swapped in by a watcher thread that
/// looks at the files' modification times once a second and re-reads them when they change
/// (a bad new file keeps the last good one, with one warning per change). Handshakes only load
/// the current key: no file access and no lock on the runtime's workers. The watcher ends
/// with the resolver.
#[derive(Debug)]
pub struct ReloadingCert {
    current: Arc<ArcSwap<CertifiedKey>>,
}

impl ReloadingCert {
    pub fn new(files: CertFiles) -> Result<ReloadingCert, TlsError> {
        let current = Arc::new(ArcSwap::new(files.load()?));
        let weak = Arc::downgrade(&current);
        let mut seen = files.mtimes();
        std::thread::Builder::new()
            .name("tls-cert-watch".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(RECHECK);
                    let Some(current) = weak.upgrade() else {
                        return;
                    };
                    let now = files.mtimes();
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    match files.load() {
                        Ok(ck) => {
                            tracing::info!(cert = %files.cert.display(), "loaded the renewed TLS certificate");
                            current.store(ck);
                        }
                        Err(e) => tracing::warn!("keeping the current TLS certificate: {e}"),
                    }
                }
            })
            .map_err(|e| TlsError::Rustls(format!("cannot start the certificate watcher: {e}")))?;
        Ok(ReloadingCert { current })
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The rustls server config of `tls`.
pub fn server_config(tls: &Tls) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.min_version {
        TlsMinVersion::V12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsMinVersion::V13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match &tls.client_ca_file {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for c in certs(key::TLS_CLIENT_CA_FILE, path)? {
                roots.add(c).map_err(|e| TlsError::Rustls(e.to_string()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Rustls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let resolver = ReloadingCert::new(CertFiles::from_config(tls)?)?;
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    // HTTP/2 for gRPC and the HTTP API, HTTP/1.1 for HTTP API clients that do not speak h2.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
