//! The HTTP API over TLS on the gRPC port: HTTP/1.1 and HTTP/2 by ALPN, beside gRPC.

use serde_json::json;

use crate::support::mock::MockProvider;
use crate::support::server::{MODEL, assert_still_serves, within};
use crate::tls::{Pki, tls_client, tls_server};

#[tokio::test]
async fn https_serves_the_http_api_over_http1_and_http2_beside_grpc() {
    let mock = MockProvider::start(&[]);
    let pki = Pki::new();
    let server = tls_server(&mock, pki.tls()).await;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(pki.bundle()).expect("the CA bundle"))
        .expect("a PEM certificate");
    let url = format!(
        "https://localhost:{}/v1/chat/completions",
        server.addr.port()
    );
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]});
    for (h1, version) in [
        (true, reqwest::Version::HTTP_11),
        (false, reqwest::Version::HTTP_2),
    ] {
        let mut builder = reqwest::Client::builder()
            .tls_certs_only([ca.clone()])
            .resolve("localhost", server.addr);
        if h1 {
            builder = builder.http1_only();
        }
        let client = builder.build().expect("a client");
        let resp = within("an HTTPS call", client.post(&url).json(&body).send())
            .await
            .expect("the call");
        assert_eq!(resp.version(), version);
        assert_eq!(resp.status(), 200);
        let v: serde_json::Value = within("the body", resp.json()).await.expect("JSON");
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "Hello from the mock provider."
        );
    }
    let mut grpc = tls_client(server.addr, &pki.bundle(), "localhost")
        .await
        .expect("a gRPC client over TLS");
    assert_still_serves(&mut grpc).await;
}
