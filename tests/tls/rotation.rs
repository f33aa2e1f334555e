//! Certificate rotation without a restart: the files are replaced while a stream is held open;
//! the stream completes on its connection, new connections get the new certificate, and a
//! broken replacement (seen by `serve`, which says so on stderr) keeps the old one.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use futures_util::StreamExt;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls_pki_types::pem::PemObject;
use vibectl::proto::stream_chunk::ChunkType;

use vibectl::config::generated::server::key;

use super::{Pki, server_cli, tls_client, tls_server};
use crate::support::mock::MockProvider;
use crate::support::server::{LIMIT, config_pairs, request, set, within};
use crate::support::spawned::Spawned;
use crate::support::{wait, yaml};

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
    let mock = MockProvider::start(&["--reply", REPLY, "--chunks", "8"]);
    let pki = Pki::new();
    let server = tls_server(&mock, pki.tls()).await;
    let old = served_serial(server.addr, &pki.bundle()).await;

    // A stream held open at the mock's gate across the rotation.
    let mut client = tls_client(server.addr, &pki.bundle(), "localhost")
        .await
        .expect("connect");
    let mut stream = within(
        "StreamExecute",
        client.stream_execute(request("[[mock:gate=1]] count", None)),
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
    let new = wait::until(
        "new connections getting the new certificate",
        LIMIT,
        async || match served_serial(server.addr, &pki.bundle()).await {
            s if s != old => Ok(s),
            s => Err(s),
        },
    )
    .await;
    assert_ne!(new, old);

    // The open stream finishes on its old connection, whole.
    mock.release().await;
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
    let mut pairs = config_pairs(&mock);
    for (k, v) in [
        (key::TLS_ENABLED, "true".to_owned()),
        (key::TLS_CERT_FILE, format!("\"{}\"", pki.cert().display())),
        (key::TLS_KEY_FILE, format!("\"{}\"", pki.key().display())),
    ] {
        set(&mut pairs, k, &v);
    }
    std::fs::write(pki.path("config.yaml"), yaml::config(&pairs)).expect("write the config");
    let server = Spawned::start_in(pki.dir.path(), &[], |_| {});
    let old = served_serial(server.addr, &pki.bundle()).await;
    // A key from another CA: it does not match the certificate.
    let other = Pki::new();
    std::fs::copy(other.key(), pki.key()).expect("copy");
    // The watcher has read the new files and refused them.
    server.wait_stderr("keeping the current TLS certificate");
    assert_eq!(served_serial(server.addr, &pki.bundle()).await, old);
    let mut client = tls_client(server.addr, &pki.bundle(), "localhost")
        .await
        .expect("connect");
    crate::support::server::assert_still_serves(&mut client).await;
}
