//! Certificate rotation without a restart: the files are replaced while a slow stream is open;
//! the stream completes on its connection, and new connections get the new certificate.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls_pki_types::pem::PemObject;
use vibectl::proto::stream_chunk::ChunkType;

use super::{Pki, server_cli, tls_client, tls_server};
use crate::support::mock::MockProvider;
use crate::support::server::{request, within};

const REPLY: &str = "one two three four five six seven eight nine ten";

/// The serial number (hex) of the certificate `addr` presents, from a raw TLS handshake that
/// trusts `ca` and checks the name `localhost`.
async fn served_serial(addr: SocketAddr, ca: &Path) -> String {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("read the bundle") {
        roots.add(c.expect("a PEM certificate")).expect("a CA");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let tls = connector
        .connect(name, tcp)
        .await
        .expect("the TLS handshake succeeds");
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .expect("a peer certificate")[0]
        .clone();
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf).expect("X.509");
    cert.raw_serial_as_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connections_get_the_new_certificate_and_open_streams_finish() {
    let mock = MockProvider::start(&["--reply", REPLY, "--chunks", "8", "--chunk-delay-ms", "300"]);
    let pki = Pki::new();
    let server = tls_server(&mock, pki.tls()).await;
    let old = served_serial(server.addr, &pki.bundle()).await;

    // A stream of about 2.4 s, open across the rotation.
    let mut client = tls_client(server.addr, &pki.bundle(), "localhost")
        .await
        .expect("connect");
    let mut stream = within(
        "StreamExecute",
        client.stream_execute(request("count", None)),
    )
    .await
    .expect("StreamExecute")
    .into_inner();
    let first = within("the first chunk", stream.next())
        .await
        .expect("a first chunk")
        .expect("a chunk, not an error");
    let mut text = match first.chunk_type {
        Some(ChunkType::TextChunk(t)) => t,
        other => panic!("expected text first, got {other:?}"),
    };

    // Replace the files (new key, new serial), as a renewal does.
    server_cli(
        pki.dir.path(),
        &[
            "ca",
            "create-server-cert",
            "localhost",
            "--san",
            "127.0.0.1",
            "--force",
        ],
    )
    .assert_success();
    let deadline = Instant::now() + Duration::from_secs(10);
    let new = loop {
        let s = served_serial(server.addr, &pki.bundle()).await;
        if s != old {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "new connections still get the old certificate {old} after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_ne!(new, old);

    // The open stream finishes on its old connection, whole.
    let mut completed = false;
    while let Some(chunk) = within("the rest of the stream", stream.next()).await {
        match chunk.expect("no error across the rotation").chunk_type {
            Some(ChunkType::TextChunk(t)) => text.push_str(&t),
            Some(ChunkType::Complete(_)) => completed = true,
            Some(ChunkType::FinalMetrics(_)) => {}
            other => panic!("unexpected chunk {other:?}"),
        }
    }
    assert!(completed, "the stream ended without its complete chunk");
    assert_eq!(text, REPLY);

    // And a new gRPC connection works with the new certificate.
    let mut client = tls_client(server.addr, &pki.bundle(), "localhost")
        .await
        .expect("connect after the rotation");
    crate::support::server::assert_still_serves(&mut client).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_replacement_keeps_the_last_good_certificate() {
    let mock = MockProvider::start(&["--reply", REPLY]);
    let pki = Pki::new();
    let server = tls_server(&mock, pki.tls()).await;
    let old = served_serial(server.addr, &pki.bundle()).await;
    // A key from another CA: it does not match the certificate.
    let other = Pki::new();
    std::fs::copy(other.key(), pki.key()).expect("copy");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for _ in 0..3 {
        assert_eq!(served_serial(server.addr, &pki.bundle()).await, old);
    }
    let mut client = tls_client(server.addr, &pki.bundle(), "localhost")
        .await
        .expect("connect");
    crate::support::server::assert_still_serves(&mut client).await;
    server.stop().await;
}
