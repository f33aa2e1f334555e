//! Graceful shutdown: a stream in flight finishes, new connections are refused, and the drain
//! deadline cuts what is still running.

use std::time::Duration;

use tempfile::TempDir;
use tokio::net::TcpStream;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use vibectl::config::generated::server::Tls;
use vibectl::proto::stream_chunk::ChunkType;
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;
use vibectl::server::ca;

use super::collect_chunks;
use crate::support::mock::MockProvider;
use crate::support::server::{LIMIT, MODEL, Options, TestServer, config, request, within};
use crate::support::wait;

/// Whether the very next TCP connection to `addr` is refused (no retry: a retry could pass
/// only because the first attempt made an accept loop notice it should stop).
async fn refused_now(addr: std::net::SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await,
        Ok(Err(_))
    )
}

#[tokio::test]
async fn a_stream_in_flight_completes_after_shutdown_and_new_connections_are_refused() {
    let mock = MockProvider::start(&["--chunks", "4"]);
    let mut server = TestServer::start(config(&mock)).await;
    let mut client = server.client().await;
    let mut stream = within(
        "StreamExecute",
        client.stream_execute(request("[[mock:gate=1]] held", None)),
    )
    .await
    .expect("StreamExecute")
    .into_inner();
    let first = within("the first chunk", stream.message())
        .await
        .expect("the first chunk")
        .and_then(|c| c.chunk_type);
    assert!(
        matches!(first, Some(ChunkType::TextChunk(_))),
        "first chunk: {first:?}"
    );

    server.shutdown();
    // The rest of the stream waits at the mock's gate: the listener closes while it is in flight.
    let addr = server.addr;
    wait::until_true(
        "the listener refusing new connections after shutdown",
        LIMIT,
        async || refused_now(addr).await,
    )
    .await;
    let stats = mock.stats().await;
    assert_eq!(
        stats["streams_completed"], 0,
        "the stream ended before the refusal check: {stats}"
    );
    mock.release().await;

    let rest = collect_chunks(stream).await;
    let n = rest.len();
    assert!(n >= 3, "too few chunks after shutdown: {rest:?}");
    assert!(
        rest[..n - 2]
            .iter()
            .all(|c| matches!(c, ChunkType::TextChunk(_))),
        "{rest:?}"
    );
    assert!(
        matches!(&rest[n - 2], ChunkType::Complete(c) if c.actual_model_used == MODEL),
        "{rest:?}"
    );
    assert!(
        matches!(&rest[n - 1], ChunkType::FinalMetrics(_)),
        "{rest:?}"
    );

    let task = server.take_task();
    within("the server task", task)
        .await
        .expect("the server task panicked")
        .expect("the server failed");
}

#[tokio::test]
async fn an_idle_server_stops_promptly() {
    let mock = MockProvider::start(&[]);
    let server = TestServer::start(config(&mock)).await;
    let mut client = server.client().await;
    crate::support::server::assert_still_serves(&mut client).await;
    drop(client);
    let addr = server.addr;
    server.stop().await;
    assert!(
        refused_now(addr).await,
        "the port still accepts connections after the server task ended"
    );
}

#[tokio::test]
async fn the_drain_deadline_cuts_a_stuck_stream() {
    // Short, so the test does not wait long; the stream below never ends by itself, so the task
    // ending at all shows the deadline cut it.
    const DEADLINE: Duration = Duration::from_millis(300);
    let mock = MockProvider::start(&["--chunks", "2"]);
    let options = Options {
        drain_deadline: DEADLINE,
        ..Options::default()
    };
    let mut server = TestServer::start_with(config(&mock), options).await;
    let mut client = server.client().await;
    let mut stream = within(
        "StreamExecute",
        client.stream_execute(request("[[mock:hold_after=0]] stuck", None)),
    )
    .await
    .expect("StreamExecute")
    .into_inner();
    // The mock has answered and is now sitting on the first chunk.
    mock.wait_for_stat("streams_started", 1, LIMIT).await;

    server.shutdown();
    let task = server.take_task();
    within("the server task", task)
        .await
        .expect("the server task panicked")
        .expect("the server failed");

    // The stuck stream is cut (ends or fails) rather than left running until the mock answers.
    let cut = tokio::time::timeout(LIMIT, async {
        loop {
            match stream.message().await {
                Ok(Some(c)) => match c.chunk_type {
                    Some(ChunkType::TextChunk(_)) => {
                        panic!("the stuck stream produced text")
                    }
                    Some(ChunkType::Error(_)) | None => {}
                    Some(other) => panic!("the cut stream ended as if complete: {other:?}"),
                },
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    assert!(
        cut.is_ok(),
        "the stuck stream was still open after shutdown"
    );
    mock.wait_for_stat("streams_cancelled", 1, LIMIT).await;
}

/// A TLS server over a fresh private CA for `localhost`, and a client that trusts the CA.
async fn tls_server(mock: &MockProvider) -> (TestServer, TempDir, Certificate) {
    let dir = tempfile::tempdir().expect("temp dir");
    ca::init(dir.path(), false).expect("ca init");
    let (cert, key) = ca::server_cert(dir.path(), "localhost", &[], 1, false).expect("server cert");
    let mut cfg = config(mock);
    cfg.tls = Tls {
        enabled: true,
        cert_file: Some(cert),
        key_file: Some(key),
        ..Tls::default()
    };
    let server = TestServer::start(cfg).await;
    let bundle = std::fs::read(dir.path().join(ca::BUNDLE)).expect("ca bundle");
    (server, dir, Certificate::from_pem(bundle))
}

#[tokio::test]
async fn a_tls_server_stops_accepting_on_shutdown() {
    let mock = MockProvider::start(&[]);
    let (server, _dir, ca_cert) = tls_server(&mock).await;
    let channel = within(
        "a TLS connection",
        Endpoint::from_shared(format!("https://localhost:{}", server.addr.port()))
            .expect("endpoint")
            .tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(ca_cert)
                    .domain_name("localhost"),
            )
            .expect("client tls")
            .connect(),
    )
    .await
    .expect("TLS connect");
    let mut client = VibectlLlmProxyClient::new(channel);
    crate::support::server::assert_still_serves(&mut client).await;
    drop(client);

    let addr = server.addr;
    server.stop().await;
    assert!(
        refused_now(addr).await,
        "the TLS listener still accepts connections after the server task ended"
    );
}
