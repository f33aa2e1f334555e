//! Certificates from an ACME certificate authority (`acme.*`, RFC 8555) with instant-acme: the
//! account and the certificate are kept under `acme/` in the server directory, http-01
//! challenges are answered from memory by a small HTTP responder and tls-alpn-01 challenges
//! (RFC 8737) by a TLS listener on `acme.challenge.tls_port` that presents a self-signed
//! validation certificate to `acme-tls/1` clients only, and a background task renews
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
use rustls::crypto::aws_lc_rs;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;

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
/// The ALPN protocol of tls-alpn-01 validation connections (RFC 8737, section 6.2).
const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
/// How long a tls-alpn-01 validation connection may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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

/// The tls-alpn-01 validation certificates by the server name a validation connection asks for
/// (the domain, or the reverse-DNS name of an IP address, RFC 8738). Only a ClientHello that
/// offers `acme-tls/1` gets one; any other handshake fails.
#[derive(Debug, Default)]
struct ValidationCerts(Mutex<HashMap<String, Arc<CertifiedKey>>>);

impl ResolvesServerCert for ValidationCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if !hello.alpn()?.any(|p| p == ACME_TLS_ALPN) {
            return None;
        }
        let certs = self.0.lock().ok()?;
        match hello.server_name() {
            Some(name) => certs.get(&name.to_ascii_lowercase()).cloned(),
            None if certs.len() == 1 => certs.values().next().cloned(),
            None => None,
        }
    }
}

/// The server name a tls-alpn-01 validation of `identifier` sends (the domain, or for an IP
/// address its reverse-DNS name, RFC 8738 section 6) and the subject alternative name of its
/// validation certificate.
fn validation_names(identifier: &Identifier) -> Option<(String, String)> {
    match identifier {
        Identifier::Dns(d) => Some((d.to_ascii_lowercase(), d.clone())),
        Identifier::Ip(IpAddr::V4(ip)) => {
            let o = ip.octets();
            let name = format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0]);
            Some((name, ip.to_string()))
        }
        Identifier::Ip(IpAddr::V6(ip)) => {
            let mut name = String::new();
            for b in ip.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            name.push_str("ip6.arpa");
            Some((name, ip.to_string()))
        }
        _ => None,
    }
}

/// The self-signed tls-alpn-01 validation certificate (RFC 8737, section 3): the identifier as
/// its only subject alternative name and the critical acmeIdentifier extension holding the
/// SHA-256 digest of the key authorization.
fn validation_cert(san: String, digest: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    let mut params = rcgen::CertificateParams::new(vec![san]).map_err(|e| e.to_string())?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let der: CertificateDer<'static> = cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    // Not `CertifiedKey::from_der`: its key check parses the certificate with webpki, which
    // refuses the critical acmeIdentifier extension.
    let signer = aws_lc_rs::default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(CertifiedKey::new(vec![der], signer)))
}

/// What the responder answers with.
enum Answers {
    Http(Tokens),
    TlsAlpn(Arc<ValidationCerts>),
}

/// The challenge responder of `acme.challenge.type`, answering until dropped.
struct Responder {
    answers: Answers,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Responder {
    /// Answer the challenge `token` of the authorization for `identifier` from now on, with its
    /// key authorization (http-01) or the SHA-256 `digest` of it (tls-alpn-01).
    fn add(
        &self,
        identifier: &Identifier,
        token: &str,
        key_authorization: &str,
        digest: &[u8],
    ) -> Result<(), AcmeError> {
        match &self.answers {
            Answers::Http(tokens) => {
                if let Ok(mut t) = tokens.lock() {
                    t.insert(token.to_owned(), key_authorization.to_owned());
                }
            }
            Answers::TlsAlpn(certs) => {
                let invalid = |detail: String| AcmeError::Validation {
                    identifier: format!("{identifier:?}"),
                    detail,
                };
                let (name, san) = validation_names(identifier)
                    .ok_or_else(|| invalid("an unknown identifier type".into()))?;
                let cert = validation_cert(san, digest).map_err(invalid)?;
                if let Ok(mut c) = certs.0.lock() {
                    c.insert(name, cert);
                }
            }
        }
        Ok(())
    }
}

async fn bind(
    cfg: &Acme,
    key: &'static str,
    port: i64,
) -> Result<tokio::net::TcpListener, AcmeError> {
    let addr = format!("{}:{}", cfg.challenge.http_host, port);
    tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| AcmeError::Responder {
            key,
            challenge: cfg.challenge.r#type,
            addr,
            source,
        })
}

async fn responder(cfg: &Acme) -> Result<Responder, AcmeError> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let answers = match cfg.challenge.r#type {
        AcmeChallengeType::Http01 => {
            let listener =
                bind(cfg, key::ACME_CHALLENGE_HTTP_PORT, cfg.challenge.http_port).await?;
            let tokens = Tokens::default();
            let app = axum::Router::new()
                .route("/.well-known/acme-challenge/{token}", get(answer))
                .with_state(tokens.clone());
            let listener = super::conn::LimitedListener::new(listener, super::conn::SIDE_LIMITS)
                .map_err(|source| AcmeError::Responder {
                    key: key::ACME_CHALLENGE_HTTP_PORT,
                    challenge: cfg.challenge.r#type,
                    addr: format!("{}:{}", cfg.challenge.http_host, cfg.challenge.http_port),
                    source,
                })?;
            tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await;
            });
            Answers::Http(tokens)
        }
        AcmeChallengeType::TlsAlpn01 => {
            let listener = bind(cfg, key::ACME_CHALLENGE_TLS_PORT, cfg.challenge.tls_port).await?;
            let certs = Arc::new(ValidationCerts::default());
            let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
                aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| AcmeError::Validation {
                identifier: "every identifier".into(),
                detail: e.to_string(),
            })?
            .with_no_client_auth()
            .with_cert_resolver(certs.clone());
            config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
            tokio::spawn(serve_validations(
                listener,
                tokio_rustls::TlsAcceptor::from(Arc::new(config)),
                stopped,
            ));
            Answers::TlsAlpn(certs)
        }
    };
    Ok(Responder {
        answers,
        _stop: stop,
    })
}

/// Complete the TLS handshakes of tls-alpn-01 validation connections, then close them, until
/// `stopped` fires or its sender is dropped. The connections go through the server's one
/// accept loop ([`super::conn::incoming`]), with its limits and accept backoff.
async fn serve_validations(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    use futures_util::StreamExt;
    let limits = super::conn::Limits {
        preface_timeout: HANDSHAKE_TIMEOUT,
        ..super::conn::SIDE_LIMITS
    };
    let mut conns = Box::pin(super::conn::incoming(listener, limits, move |tcp| {
        acceptor.accept(tcp)
    }));
    loop {
        let conn = tokio::select! {
            _ = &mut stopped => return,
            conn = conns.next() => conn,
        };
        match conn {
            Some(Ok(mut tls)) => {
                tokio::spawn(async move {
                    tracing::debug!("answered a tls-alpn-01 validation");
                    let _ = tls.shutdown().await;
                });
            }
            Some(Err(e)) => tracing::debug!("tls-alpn-01 responder: {e}"),
            None => return,
        }
    }
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
            match obtain(&cfg, &dir).await {
                Err(e) => {
                    tracing::warn!("ACME renewal failed, keeping the current certificate: {e}");
                    tokio::time::sleep(RENEW_RETRY).await;
                }
                // A CA issuing certificates shorter than the renewal window would otherwise be
                // asked again at once, for ever.
                Ok(_) => {
                    if stored_expiry(&cert_files(&dir))
                        .is_some_and(|t| due(t, cfg.renew_days_before_expiry))
                    {
                        tracing::warn!(
                            "the renewed certificate is already due for renewal: the CA issues \
                             certificates shorter than {}; next try in {RENEW_RETRY:?}",
                            key::ACME_RENEW_DAYS_BEFORE_EXPIRY
                        );
                        tokio::time::sleep(RENEW_RETRY).await;
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::DigitallySignedStruct;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls_pki_types::{ServerName, SubjectPublicKeyInfoDer, UnixTime};

    /// Accepts any certificate, as a tls-alpn-01 validator does (it checks the contents itself),
    /// and checks the TLS 1.3 handshake signature against its key without webpki, which refuses
    /// the critical acmeIdentifier extension.
    #[derive(Debug)]
    struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

    impl ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::General("TLS 1.3 only".into()))
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let (_, x509) = x509_parser::parse_x509_certificate(cert)
                .map_err(|e| rustls::Error::General(e.to_string()))?;
            rustls::crypto::verify_tls13_signature_with_raw_key(
                message,
                &SubjectPublicKeyInfoDer::from(x509.public_key().raw),
                dss,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    /// A handshake with the responder on `port` offering `alpn` for `name`: the negotiated
    /// protocol and the certificate presented.
    async fn handshake(
        port: u16,
        name: &str,
        alpn: &[&[u8]],
    ) -> std::io::Result<(Option<Vec<u8>>, CertificateDer<'static>)> {
        let provider = Arc::new(aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let name = ServerName::try_from(name.to_owned()).expect("name");
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        let conn = tls.get_ref().1;
        let cert = conn.peer_certificates().expect("a certificate")[0].clone();
        Ok((conn.alpn_protocol().map(<[u8]>::to_vec), cert))
    }

    #[tokio::test]
    async fn the_validation_certificate_is_presented_to_acme_tls_clients_only() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut cfg = Acme::default();
        cfg.challenge.r#type = AcmeChallengeType::TlsAlpn01;
        cfg.challenge.http_host = "127.0.0.1".into();
        cfg.challenge.tls_port = i64::from(port);
        let responder = responder(&cfg).await.expect("listen");
        let digest = [7u8; 32];
        responder
            .add(&Identifier::Dns("LocalHost".into()), "t", "t.k", &digest)
            .expect("a validation certificate");

        let (alpn, cert) = handshake(port, "localhost", &[ACME_TLS_ALPN])
            .await
            .expect("an acme-tls/1 handshake");
        assert_eq!(alpn.as_deref(), Some(ACME_TLS_ALPN));
        let (_, x509) = x509_parser::parse_x509_certificate(&cert).expect("X.509");
        let san = x509
            .subject_alternative_name()
            .expect("SAN")
            .expect("a SAN extension");
        assert_eq!(
            format!("{:?}", san.value.general_names),
            r#"[DNSName("LocalHost")]"#
        );
        let acme = x509
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("the acmeIdentifier extension");
        assert!(acme.critical);
        // DER OCTET STRING of the 32-byte digest.
        assert_eq!(acme.value, [&[0x04, 32][..], &digest[..]].concat());

        for (name, alpn) in [
            ("localhost", &[b"h2".as_slice()][..]),
            ("localhost", &[][..]),
            ("other.example", &[ACME_TLS_ALPN][..]),
        ] {
            let offered: Vec<String> = alpn
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            assert!(
                handshake(port, name, alpn).await.is_err(),
                "{name} with ALPN {offered:?} is refused"
            );
        }

        drop(responder);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the listener stops with the responder"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
