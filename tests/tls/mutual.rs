//! Mutual TLS: with `tls.client_ca_file` set, the server asks for a client certificate and
//! lets in only clients whose certificate chains to that file's CAs. A client without a
//! certificate, or with one from another CA, fails the handshake; a client with a good one is
//! served, token or not.

use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use vibectl::proto::GetServerInfoRequest;
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;

use super::{Pki, error_chain, tls_server};
use crate::support::mock::MockProvider;
use crate::support::server::{MODEL, request, within};

/// A CA for client certificates, made with rcgen (the server's own CA signs server names only).
struct ClientCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl ClientCa {
    fn new(name: &str) -> ClientCa {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("key");
        let cert = p.self_signed(&key).expect("self-signed CA");
        ClientCa {
            pem: cert.pem(),
            issuer: Issuer::new(p, key),
        }
    }

    /// A client certificate for `name` and its key, both PEM.
    fn client(&self, name: &str) -> (String, String) {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::ExplicitNoCa;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().expect("key");
        let cert = p.signed_by(&key, &self.issuer).expect("signed");
        (cert.pem(), key.serialize_pem())
    }
}

/// Our server requiring client certificates from a [`ClientCa`] of its own, routed to a mock
/// answering `reply`.
struct Mutual {
    _mock: MockProvider,
    pki: Pki,
    clients: ClientCa,
    server: crate::support::server::TestServer,
}

impl Mutual {
    async fn start(reply: &str) -> Mutual {
        let mock = MockProvider::start(&["--reply", reply]);
        let pki = Pki::new();
        let clients = ClientCa::new("vibectl test client CA");
        let ca_file = pki.path("client-ca.pem");
        std::fs::write(&ca_file, &clients.pem).expect("write the client CA");
        let mut tls = pki.tls();
        tls.client_ca_file = Some(ca_file);
        let server = tls_server(&mock, tls).await;
        Mutual {
            _mock: mock,
            pki,
            clients,
            server,
        }
    }

    /// A client certificate for `name` written to NAME.crt and NAME.key: their paths.
    fn client_files(&self, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let (cert, key) = self.clients.client(name);
        let files = (
            self.pki.path(&format!("{name}.crt")),
            self.pki.path(&format!("{name}.key")),
        );
        std::fs::write(&files.0, cert).expect("write the client cert");
        std::fs::write(&files.1, key).expect("write the client key");
        files
    }
}

async fn connect(
    addr: std::net::SocketAddr,
    server_ca: &Path,
    identity: Option<(String, String)>,
) -> Result<VibectlLlmProxyClient<Channel>, String> {
    let pem = std::fs::read(server_ca).expect("read the CA bundle");
    let mut tls = ClientTlsConfig::new()
        .domain_name("localhost")
        .ca_certificate(Certificate::from_pem(pem));
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let channel = Endpoint::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(tls)
        .map_err(|e| error_chain(&e))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| error_chain(&e))?;
    Ok(VibectlLlmProxyClient::new(channel))
}

/// One GetServerInfo over a fresh connection: the default model, or the error chain.
async fn info(
    addr: std::net::SocketAddr,
    server_ca: &Path,
    identity: Option<(String, String)>,
) -> Result<String, String> {
    let mut client = connect(addr, server_ca, identity).await?;
    client
        .get_server_info(GetServerInfoRequest {})
        .await
        .map(|r| r.into_inner().default_model)
        .map_err(|s| format!("{s:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_required_and_checked() {
    let m = Mutual::start("mutual").await;
    let (pki, clients) = (&m.pki, &m.clients);
    let strangers = ClientCa::new("someone else's CA");
    let addr = m.server.addr;

    let good = within("a call with a good client cert", async {
        let mut client = connect(addr, &pki.bundle(), Some(clients.client("alice")))
            .await
            .expect("connects with a client certificate");
        client.execute(request("hello", Some(MODEL))).await
    })
    .await
    .expect("Execute with a client certificate");
    assert!(good.into_inner().result.is_some());
    assert_eq!(
        within(
            "info",
            info(addr, &pki.bundle(), Some(clients.client("bob")))
        )
        .await,
        Ok(MODEL.to_owned())
    );

    // Under TLS 1.3 the server checks the client's certificate after the client has sent its
    // finished message, so the client learns of the refusal as a closed connection on its first
    // call rather than as a handshake error; the calls above, on the same server, are the control.
    let none = within(
        "a call without a client cert",
        info(addr, &pki.bundle(), None),
    )
    .await;
    none.expect_err("a client without a certificate must be refused");
    let other = within(
        "a call with another CA's client cert",
        info(addr, &pki.bundle(), Some(strangers.client("mallory"))),
    )
    .await;
    other.expect_err("a certificate from another CA must be refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_presents_the_profile_certificate() {
    use vibectl::llm::adapter::{LlmRequest, ModelAdapter};
    use vibectl::llm::proxy::{ClientIdentity, ProxyAdapter, ProxySettings};
    use vibectl::llm::proxy_url::ProxyUrl;

    let m = Mutual::start("hello, certified client").await;
    let (pki, server) = (&m.pki, &m.server);
    let (cert_file, key_file) = m.client_files("carol");
    let adapter = |identity: Option<ClientIdentity>| {
        ProxyAdapter::new(ProxySettings {
            url: ProxyUrl::parse(&format!(
                "vibectl-server://localhost:{}",
                server.addr.port()
            ))
            .expect("url"),
            token: None,
            ca_bundle: Some(pki.bundle()),
            client_identity: identity,
            timeout: Duration::from_secs(10),
            retry_attempts: 0,
        })
        .expect("the adapter builds")
    };
    let req = LlmRequest {
        system: vec![],
        user: vec!["hi".into()],
        model: None,
        response_schema: None,
        request_id: None,
    };
    let with = adapter(Some(ClientIdentity {
        cert: cert_file,
        key: key_file,
    }));
    let resp = within("Execute with a client certificate", with.execute(&req))
        .await
        .expect("served with a client certificate");
    assert_eq!(resp.text, "hello, certified client");
    let without = adapter(None);
    within("Execute without one", without.execute(&req))
        .await
        .expect_err("refused without a client certificate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_proxy_saves_the_client_certificate_it_tested_with() {
    let m = Mutual::start("mutual").await;
    let (pki, server) = (&m.pki, &m.server);
    let (cert_file, key_file) = m.client_files("dave");
    let url = format!("vibectl-server://localhost:{}", server.addr.port());

    let client = crate::client::Client::new("", "", 0);
    client.write("# mutual TLS\n");
    let bundle = pki.bundle().display().to_string();
    let (cert_arg, key_arg) = (
        cert_file.display().to_string(),
        key_file.display().to_string(),
    );
    let run = |args: Vec<String>| {
        let cmd = client.command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        tokio::task::block_in_place(move || {
            let mut cmd = cmd;
            crate::support::process::run(&mut cmd, crate::client::LIMIT)
        })
    };
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();

    // Without a certificate the connection test fails and nothing is saved.
    let before = client.text();
    let out = run(s(&[
        "setup-proxy",
        "configure",
        "bare",
        &url,
        "--ca-bundle",
        &bundle,
    ]));
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("nothing was saved"), "{out}");
    assert_eq!(client.text(), before, "a failed configure changes no file");

    let out = run(s(&[
        "setup-proxy",
        "configure",
        "prod",
        &url,
        "--ca-bundle",
        &bundle,
        "--client-cert",
        &cert_arg,
        "--client-key",
        &key_arg,
    ]));
    out.assert_success();
    let text = client.text();
    assert!(
        text.contains(&format!("client_cert_path: {cert_arg}"))
            && text.contains(&format!("client_key_path: {key_arg}")),
        "{text}"
    );
    use vibectl::config::generated::client::key;
    for (template, want) in [
        (key::PROXY_PROFILES_PROFILE_CA_BUNDLE_PATH, &bundle),
        (key::PROXY_PROFILES_PROFILE_CLIENT_CERT_PATH, &cert_arg),
        (key::PROXY_PROFILES_PROFILE_CLIENT_KEY_PATH, &key_arg),
    ] {
        let saved = crate::support::yaml::entry(template, "prod");
        let out = run(s(&["config", "get", &saved]));
        out.assert_success();
        assert_eq!(out.stdout.trim(), want.as_str(), "{saved}\n{out}");
    }
    // The saved profile carries the CA and the certificate on later calls.
    let out = run(s(&["setup-proxy", "test"]));
    out.assert_success();
    assert!(out.stdout.contains("succeeded"), "{out}");
    let out = run(s(&["setup-proxy", "status"]));
    assert!(
        out.stdout.contains(&format!("cert:     {cert_arg}")),
        "{out}"
    );

    let out = run(s(&[
        "setup-proxy",
        "configure",
        "half",
        &url,
        "--client-cert",
        &cert_arg,
    ]));
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap refuses a certificate without its key\n{out}"
    );
}
