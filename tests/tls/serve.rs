//! Our server over TLS with a certificate from `vibectl-server ca`: our client trusts the CA's
//! bundle, refuses another CA's with an error naming the problem, and every response carries
//! the HSTS header when `tls.hsts.enabled`.

use std::time::Duration;

use futures_util::StreamExt;
use vibectl::llm::adapter::{AdapterError, LlmRequest, ModelAdapter};
use vibectl::llm::proxy::{ProxyAdapter, ProxySettings};
use vibectl::llm::proxy_url::ProxyUrl;
use vibectl::proto::GetServerInfoRequest;

use super::{Pki, error_chain, tls_client, tls_server};
use crate::support::mock::MockProvider;
use crate::support::server::{MODEL, request, within};

const REPLY: &str = "Hello over TLS from the mock provider.";

fn adapter(port: u16, ca: &std::path::Path) -> ProxyAdapter {
    ProxyAdapter::new(ProxySettings {
        url: ProxyUrl::parse(&format!("vibectl-server://localhost:{port}")).expect("url"),
        token: None,
        ca_bundle: Some(ca.to_owned()),
        client_identity: None,
        timeout: Duration::from_secs(10),
        retry_attempts: 0,
    })
    .expect("the adapter builds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_trusts_our_ca_and_refuses_another() {
    let mock = MockProvider::start(&["--reply", REPLY]);
    let pki = Pki::new();
    let other = Pki::new();
    let server = tls_server(&mock, pki.tls()).await;
    let port = server.addr.port();

    let ours = adapter(port, &pki.bundle());
    let info = within("server info over TLS", ours.server_info())
        .await
        .expect("GetServerInfo over TLS")
        .expect("a proxy has server info");
    assert_eq!(info.default_model, MODEL, "{info:?}");
    let req = LlmRequest {
        system: vec![],
        user: vec!["hi".into()],
        model: None,
        response_schema: None,
        request_id: None,
    };
    let resp = within("Execute over TLS", ours.execute(&req))
        .await
        .expect("Execute over TLS");
    assert_eq!(resp.text, REPLY);

    // Another CA's bundle: refused, and the error names the certificate problem.
    let theirs = adapter(port, &other.bundle());
    let err = within("server info with the wrong CA", theirs.server_info())
        .await
        .expect_err("a certificate from another CA must be refused");
    match &err {
        AdapterError::CertUntrusted { detail } => {
            assert!(detail.contains("UnknownIssuer"), "{detail}")
        }
        other => panic!("expected CertUntrusted, got {other:?}"),
    }
    assert!(
        err.hint().is_some_and(|h| h.contains("--ca-bundle")),
        "{err:?}"
    );

    // The raw tonic client says the same, and so does a wrong host name.
    let e = tls_client(server.addr, &other.bundle(), "localhost")
        .await
        .expect_err("another CA is refused");
    assert!(
        error_chain(&e).contains("UnknownIssuer"),
        "{}",
        error_chain(&e)
    );
    let e = tls_client(server.addr, &pki.bundle(), "not-localhost.example")
        .await
        .expect_err("a name the certificate does not hold is refused");
    assert!(
        error_chain(&e).contains("not valid for name"),
        "{}",
        error_chain(&e)
    );
    // A plaintext client gets nothing from a TLS port.
    assert!(
        within("a plaintext call to TLS", async {
            match server.try_client().await {
                Ok(mut c) => c.get_server_info(GetServerInfoRequest {}).await.is_err(),
                Err(_) => true,
            }
        })
        .await,
        "plaintext must not be served on a TLS port"
    );
    server.stop().await;
}

const HSTS: &str = "strict-transport-security";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_is_on_every_response_unary_and_streaming() {
    let mock = MockProvider::start(&["--reply", REPLY]);
    let pki = Pki::new();
    let mut tls = pki.tls();
    tls.hsts.enabled = true;
    tls.hsts.max_age = 600;
    tls.hsts.include_subdomains = true;
    tls.hsts.preload = true;
    let server = tls_server(&mock, tls).await;
    let mut client = tls_client(server.addr, &pki.bundle(), "localhost")
        .await
        .expect("connect");
    let want = "max-age=600; includeSubDomains; preload";

    let info = client
        .get_server_info(GetServerInfoRequest {})
        .await
        .expect("GetServerInfo");
    assert_eq!(
        info.metadata().get(HSTS).map(|v| v.to_str().unwrap()),
        Some(want)
    );
    let exec = client.execute(request("hi", None)).await.expect("Execute");
    assert_eq!(
        exec.metadata().get(HSTS).map(|v| v.to_str().unwrap()),
        Some(want)
    );
    // Streams too (0.11.6 sent it on unary calls only), in the response headers.
    let stream = client
        .stream_execute(request("hi", None))
        .await
        .expect("StreamExecute");
    assert_eq!(
        stream.metadata().get(HSTS).map(|v| v.to_str().unwrap()),
        Some(want)
    );
    let chunks: Vec<_> = stream.into_inner().collect().await;
    assert!(chunks.iter().all(Result::is_ok), "{chunks:?}");
    server.stop().await;

    // And on an error status: a call without a token when auth is on.
    let mut cfg = crate::support::server::config(&mock);
    cfg.jwt.enabled = true;
    cfg.jwt.secret_key = Some(vibectl::config::Secret::new(
        "hsts-test-secret-0123456789abcdef",
    ));
    cfg.tls.hsts.enabled = true;
    cfg.tls.hsts.max_age = 600;
    let server = super::tls_server_cfg(cfg, pki.tls()).await;
    let mut client = tls_client(server.addr, &pki.bundle(), "localhost")
        .await
        .expect("connect");
    let status = client
        .get_server_info(GetServerInfoRequest {})
        .await
        .expect_err("no token: UNAUTHENTICATED");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert_eq!(
        status.metadata().get(HSTS).map(|v| v.to_str().unwrap()),
        Some("max-age=600; includeSubDomains")
    );
    server.stop().await;

    // Without includeSubDomains.
    let mut tls = pki.tls();
    tls.hsts.enabled = true;
    tls.hsts.max_age = 600;
    tls.hsts.include_subdomains = false;
    let server = tls_server(&mock, tls).await;
    let mut client = tls_client(server.addr, &pki.bundle(), "localhost")
        .await
        .expect("connect");
    let info = client
        .get_server_info(GetServerInfoRequest {})
        .await
        .expect("GetServerInfo");
    assert_eq!(
        info.metadata().get(HSTS).map(|v| v.to_str().unwrap()),
        Some("max-age=600")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_hsts_when_disabled_or_plaintext() {
    let mock = MockProvider::start(&["--reply", REPLY]);
    let pki = Pki::new();
    // TLS, hsts off (the default).
    let server = tls_server(&mock, pki.tls()).await;
    let mut client = tls_client(server.addr, &pki.bundle(), "localhost")
        .await
        .expect("connect");
    let info = client
        .get_server_info(GetServerInfoRequest {})
        .await
        .expect("GetServerInfo");
    assert!(info.metadata().get(HSTS).is_none(), "{:?}", info.metadata());
    server.stop().await;

    // Plaintext, hsts on: never sent over plaintext.
    let mut cfg = crate::support::server::config(&mock);
    cfg.tls.hsts.enabled = true;
    let server = crate::support::server::TestServer::start(cfg).await;
    let mut client = server.client().await;
    let info = client
        .get_server_info(GetServerInfoRequest {})
        .await
        .expect("GetServerInfo");
    assert!(info.metadata().get(HSTS).is_none(), "{:?}", info.metadata());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_without_a_certificate_file_serves_one_from_certs() {
    use crate::interop::harness::{ConfigDir, OurServer, Spec, mock};
    let mock = mock();
    let config = ConfigDir::new(&mock, &Spec::default());
    let mut yaml = std::fs::read_to_string(&config.file).expect("config.yaml");
    yaml.push_str("tls: {enabled: true}\n");
    std::fs::write(&config.file, yaml).expect("write config.yaml");
    let server = OurServer::start_in(config);
    let bundle = server.config.dir.path().join("certs/ca-bundle.crt");
    assert!(
        server.log().contains(&bundle.display().to_string()),
        "serve says which bundle to trust\n{}",
        server.diagnostics()
    );
    let addr: std::net::SocketAddr = server.addr.parse().expect("addr");
    let token = format!("Bearer {}", server.token("alice"));
    let mut client = tls_client(addr, &bundle, "localhost")
        .await
        .unwrap_or_else(|e| panic!("{}\n{}", error_chain(&e), server.diagnostics()));
    client
        .get_server_info(crate::support::server::authorized(
            GetServerInfoRequest {},
            Some(&token),
        ))
        .await
        .expect("GetServerInfo over the certs/ certificate");
}
