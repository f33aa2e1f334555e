//! vibectl 0.11.6's client over TLS (`vibectl-server://`) against our server serving the
//! certificate `vibectl-server generate-certs` makes, trusted through its CA bundle. (The raw
//! stubs and `setup-proxy` over TLS with `ca init` certificates, and refusals, are in
//! `tests/tls/python.rs`; this adds the adapter, the path `vibectl` itself takes.)

use serde_json::json;

use super::harness::{ClientDirs, MODEL, OurServer, REPLY, Spec, mock, s};

fn tls_server() -> (crate::support::mock::MockProvider, OurServer) {
    let mock = mock();
    let spec = Spec {
        tls: true,
        ..Spec::default()
    };
    let server = OurServer::start(&mock, &spec);
    (mock, server)
}

#[test]
fn stubs_and_adapter_over_tls() {
    let (_mock, server) = tls_server();
    let token = server.token("alice");
    let ca = server.ca_bundle();

    // 0.11.6's TLS channel options, to the IP (generate-certs names 127.0.0.1 too).
    let target = format!("127.0.0.1:{}", server.port());
    let out = server.driver_ok(
        "raw_stubs.py",
        &[&target, "--tls-ca", ca, "--token", &token],
    );
    assert_eq!(out["tls"], true);
    assert_eq!(out["execute"]["response_text"], REPLY, "{out}");
    assert_eq!(
        out["stream"]["order"],
        json!(["text_chunk", "complete", "final_metrics"])
    );

    // The adapter with a profile as `setup-proxy configure` writes it: URL, jwt_path, CA.
    let dirs = ClientDirs::new();
    let token_file = dirs.write("token.jwt", &format!("{token}\n"));
    let url = server.url(None);
    let out = server.driver_ok(
        "proxy_adapter.py",
        &[
            &url,
            MODEL,
            "hi",
            "--jwt-path",
            s(&token_file),
            "--ca-bundle",
            ca,
        ],
    );
    assert_eq!(out["use_tls"], true);
    assert_eq!(out["execute"]["text"], REPLY, "{out}");
    assert_eq!(out["stream"]["text"], REPLY, "{out}");
}
