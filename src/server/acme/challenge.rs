//! The challenge responders of `acme.challenge.type`: http-01 answered from memory by a small
//! HTTP server, and tls-alpn-01 (RFC 8737) by a TLS listener on `acme.challenge.tls_port` that
//! presents a self-signed validation certificate to `acme-tls/1` clients only.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State as AxState};
use axum::http::StatusCode;
use axum::routing::get;
use instant_acme::Identifier;
use rustls::crypto::aws_lc_rs;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::AsyncWriteExt;

use super::AcmeError;
use crate::config::generated::server::{Acme, AcmeChallengeType, key};
use crate::server::conn;

/// The ALPN protocol of tls-alpn-01 validation connections (RFC 8737, section 6.2).
const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
/// How long a tls-alpn-01 validation connection may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
pub(super) struct Responder {
    answers: Answers,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Responder {
    /// Answer the challenge `token` of the authorization for `identifier` from now on, with its
    /// key authorization (http-01) or the SHA-256 `digest` of it (tls-alpn-01).
    pub(super) fn add(
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

pub(super) async fn responder(cfg: &Acme) -> Result<Responder, AcmeError> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let answers = match cfg.challenge.r#type {
        AcmeChallengeType::Http01 => {
            let listener =
                bind(cfg, key::ACME_CHALLENGE_HTTP_PORT, cfg.challenge.http_port).await?;
            let tokens = Tokens::default();
            let app = axum::Router::new()
                .route("/.well-known/acme-challenge/{token}", get(answer))
                .with_state(tokens.clone());
            let listener =
                conn::LimitedListener::new(listener, conn::SIDE_LIMITS).map_err(|source| {
                    AcmeError::Responder {
                        key: key::ACME_CHALLENGE_HTTP_PORT,
                        challenge: cfg.challenge.r#type,
                        addr: format!("{}:{}", cfg.challenge.http_host, cfg.challenge.http_port),
                        source,
                    }
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
/// accept loop ([`conn::incoming`]), with its limits and accept backoff.
async fn serve_validations(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    use futures_util::StreamExt;
    let limits = conn::Limits {
        preface_timeout: HANDSHAKE_TIMEOUT,
        ..conn::SIDE_LIMITS
    };
    let mut conns = Box::pin(conn::incoming(listener, limits, move |tcp| {
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
