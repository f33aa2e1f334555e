//! What our server sends in the handshake: the intermediates of `tls.ca_bundle_file` after a
//! leaf-only certificate, and no TLS 1.2 when `tls.min_version` is 1.3.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use tokio_rustls::TlsConnector;
use vibectl::config::generated::server::TlsMinVersion;
use vibectl::proto::GetServerInfoRequest;

use super::{Pki, error_chain, tls_client, tls_server};
use crate::support::mock::MockProvider;
use crate::support::server::within;

#[tokio::test]
async fn a_leaf_only_certificate_is_trusted_from_the_root_with_ca_bundle_file() {
    let mock = MockProvider::start(&[]);
    let pki = Pki::new();
    // `ca create-server-cert` writes the leaf and the intermediate; keep only the leaf.
    let pem = std::fs::read_to_string(pki.cert()).expect("read the certificate");
    let end = "-----END CERTIFICATE-----\n";
    let leaf_only = &pem[..pem.find(end).expect("a PEM certificate") + end.len()];
    let leaf = pki.path("leaf.crt");
    std::fs::write(&leaf, leaf_only).expect("write the leaf");
    let root = pki.path("ca/root-ca.crt");

    let mut tls = pki.tls();
    tls.cert_file = Some(leaf);
    let server = tls_server(&mock, tls.clone()).await;
    let e = tls_client(server.addr, &root, "localhost")
        .await
        .expect_err("no intermediate is sent");
    assert!(
        error_chain(&e).contains("UnknownIssuer"),
        "{}",
        error_chain(&e)
    );

    tls.ca_bundle_file = Some(pki.path("ca/intermediate-ca.crt"));
    let server = tls_server(&mock, tls).await;
    let mut client = tls_client(server.addr, &root, "localhost")
        .await
        .unwrap_or_else(|e| panic!("the intermediate is sent: {}", error_chain(&e)));
    within(
        "GetServerInfo",
        client.get_server_info(GetServerInfoRequest {}),
    )
    .await
    .expect("GetServerInfo over the full chain");
}

/// A TLS 1.2-only handshake with `addr`, trusting `pki`'s bundle.
async fn tls12_handshake(pki: &Pki, addr: std::net::SocketAddr) -> Result<(), std::io::Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(pki.bundle()).expect("bundle") {
        roots.add(cert.expect("a certificate")).expect("add a root");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("TLS 1.2")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("a name");
    within(
        "a TLS 1.2 handshake",
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .map(drop)
}

#[tokio::test]
async fn a_tls12_client_is_refused_at_min_version_13_and_admitted_at_12() {
    let mock = MockProvider::start(&[]);
    let pki = Pki::new();
    let mut tls = pki.tls();

    tls.min_version = TlsMinVersion::V13;
    let server = tls_server(&mock, tls.clone()).await;
    let e = tls12_handshake(&pki, server.addr)
        .await
        .expect_err("TLS 1.2 is refused");
    assert!(
        error_chain(&e).contains("ProtocolVersion"),
        "{}",
        error_chain(&e)
    );

    tls.min_version = TlsMinVersion::V12;
    let server = tls_server(&mock, tls).await;
    tls12_handshake(&pki, server.addr)
        .await
        .expect("TLS 1.2 is admitted");
}
