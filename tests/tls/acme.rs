//! ACME against Debian's Pebble (`/usr/bin/pebble`, installed by `scripts/ci-deps`): our server
//! obtains a certificate for `localhost` at startup and serves it; the stored certificate is
//! reused while the CA is down; an unreachable or refusing CA fails with a specific error;
//! http-01 and tls-alpn-01 are answered to a Pebble that really validates them.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use time::OffsetDateTime;
use vibectl::config::generated::server::{Acme, AcmeChallenge, AcmeChallengeType, key};
use vibectl::proto::GetServerInfoRequest;
use vibectl::server::acme::{self, AcmeError};

use super::{Pki, error_chain, server_cli, tls_client};
use crate::interop::harness::{ConfigDir, OurServer, Spec, mock};
use crate::support::process::KillOnDrop;
use crate::support::server::authorized;
use crate::support::wait;
use crate::support::yaml::config as yaml_config;

const PEBBLE: &str = "/usr/bin/pebble";
/// Longest wait for Pebble to listen.
const PEBBLE_START: Duration = Duration::from_secs(20);
/// Longest wait for a background renewal.
const RENEWAL_LIMIT: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A Pebble on 127.0.0.1, its HTTPS certificate from our own `ca` commands.
struct Pebble {
    /// What to trust for Pebble's own HTTPS listener (`acme.ca_cert_file`).
    pki: Pki,
    dir_url: String,
    mgmt: SocketAddr,
    /// Where Pebble connects for http-01 validation.
    http_port: u16,
    /// Where Pebble connects for tls-alpn-01 validation.
    tls_port: u16,
    _child: KillOnDrop,
}

impl Pebble {
    /// `validate`: really check the challenges (off: `PEBBLE_VA_ALWAYS_VALID`, no connection
    /// back); `eab_required`: refuse accounts without external account binding.
    fn start(eab_required: bool, validate: bool) -> Pebble {
        Pebble::start_with(eab_required, validate, None)
    }

    /// As [`Pebble::start`], issuing certificates valid `validity` seconds when given.
    fn start_with(eab_required: bool, validate: bool, validity: Option<u64>) -> Pebble {
        assert!(
            Path::new(PEBBLE).exists(),
            "{PEBBLE} is not installed: run scripts/ci-deps (it installs Debian's pebble package)"
        );
        let pki = Pki::new();
        let (listen, mgmt) = (free_port(), free_port());
        let (http_port, tls_port) = (free_port(), free_port());
        let mut config = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{listen}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt}"),
            "certificate": pki.cert(),
            "privateKey": pki.key(),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": eab_required,
        }});
        if let Some(v) = validity {
            config["pebble"]["certificateValidityPeriod"] = v.into();
        }
        let file = pki.path("pebble.json");
        std::fs::write(&file, config.to_string()).expect("write pebble.json");
        let log = pki.path("pebble.log");
        let mut cmd = Command::new(PEBBLE);
        cmd.arg("-config").arg(&file).env_clear();
        if !validate {
            cmd.env("PEBBLE_VA_ALWAYS_VALID", "1");
        }
        let child = cmd
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .expect("start pebble");
        let mut child = KillOnDrop(child);
        let addr: SocketAddr = format!("127.0.0.1:{listen}").parse().unwrap();
        let listening = wait::poll_blocking(PEBBLE_START, || {
            assert!(
                child.running(),
                "pebble exited\n--- pebble log ---\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            TcpStream::connect(addr)
        });
        if let Err(e) = listening {
            panic!(
                "pebble did not listen on {addr}: {e}\n--- pebble log ---\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        Pebble {
            dir_url: format!("https://127.0.0.1:{listen}/dir"),
            mgmt: format!("127.0.0.1:{mgmt}").parse().unwrap(),
            http_port,
            tls_port,
            pki,
            _child: child,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.pki.path("pebble.log")).unwrap_or_default()
    }

    /// The root that issues Pebble's certificates, from its management interface, as a file.
    async fn issuing_root(&self) -> PathBuf {
        let pem = std::fs::read(self.pki.bundle()).expect("bundle");
        let certs = reqwest::Certificate::from_pem_bundle(&pem).expect("PEM");
        let client = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only(certs)
            .build()
            .expect("client");
        let root = client
            .get(format!("https://{}/roots/0", self.mgmt))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("GET /roots/0")
            .text()
            .await
            .expect("the root PEM");
        let path = self.pki.path("pebble-root.pem");
        std::fs::write(&path, root).expect("write");
        path
    }

    /// `acme.*` for `localhost` at this Pebble, the http-01 and tls-alpn-01 responders on the
    /// free local ports Pebble validates on.
    fn acme(&self) -> Acme {
        Acme {
            enabled: true,
            email: Some("ops@example.com".into()),
            domains: vec!["localhost".into()],
            directory_url: self.dir_url.clone(),
            ca_cert_file: Some(self.pki.bundle()),
            challenge: AcmeChallenge {
                http_host: "127.0.0.1".into(),
                http_port: i64::from(self.http_port),
                tls_port: i64::from(self.tls_port),
                ..AcmeChallenge::default()
            },
            ..Acme::default()
        }
    }
}

/// A server config dir serving TLS with `acme` and no `tls.cert_file`.
fn acme_config(acme: &Acme) -> ConfigDir {
    let config = ConfigDir::new(&mock(), &Spec::default());
    let mut yaml = std::fs::read_to_string(&config.file).expect("config.yaml");
    let mut pairs = vec![
        (key::TLS_ENABLED, "true".to_owned()),
        (key::ACME_ENABLED, "true".to_owned()),
        (
            key::ACME_EMAIL,
            acme.email
                .as_deref()
                .unwrap_or("ops@example.com")
                .to_owned(),
        ),
        (key::ACME_DOMAINS, "[localhost]".to_owned()),
        (
            key::ACME_DIRECTORY_URL,
            format!("\"{}\"", acme.directory_url),
        ),
    ];
    if let Some(p) = &acme.ca_cert_file {
        pairs.push((key::ACME_CA_CERT_FILE, format!("\"{}\"", p.display())));
    }
    pairs.push((
        key::ACME_RENEW_DAYS_BEFORE_EXPIRY,
        acme.renew_days_before_expiry.to_string(),
    ));
    pairs.push((key::ACME_AUTO_RENEW, acme.auto_renew.to_string()));
    pairs.extend([
        (key::ACME_CHALLENGE_TYPE, acme.challenge.r#type.to_string()),
        (key::ACME_CHALLENGE_HTTP_HOST, "127.0.0.1".to_owned()),
        (
            key::ACME_CHALLENGE_HTTP_PORT,
            acme.challenge.http_port.to_string(),
        ),
        (
            key::ACME_CHALLENGE_TLS_PORT,
            acme.challenge.tls_port.to_string(),
        ),
    ]);
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    yaml.push_str(&yaml_config(&pairs));
    std::fs::write(&config.file, yaml).expect("write config.yaml");
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_obtains_a_certificate_from_pebble_and_serves_it() {
    let pebble = Pebble::start(false, false);
    let config = acme_config(&pebble.acme());
    let dir = config.dir.path().to_owned();
    let server = OurServer::start_in(config);
    let addr: SocketAddr = server.addr.parse().expect("addr");
    let root = pebble.issuing_root().await;

    let mut client = tls_client(addr, &root, "localhost")
        .await
        .unwrap_or_else(|e| panic!("{}\n{}", error_chain(&e), server.diagnostics()));
    let token = format!("Bearer {}", server.token("alice"));
    let info = client
        .get_server_info(authorized(GetServerInfoRequest {}, Some(&token)))
        .await
        .expect("GetServerInfo over the ACME certificate");
    assert!(!info.get_ref().available_models.is_empty());
    // Pebble issued it, not the CA of Pebble's own listener.
    let e = tls_client(addr, &pebble.pki.bundle(), "localhost")
        .await
        .expect_err("another CA");
    assert!(
        error_chain(&e).contains("UnknownIssuer"),
        "{}",
        error_chain(&e)
    );
    for f in ["acme/cert.pem", "acme/key.pem", "acme/account.json"] {
        assert!(dir.join(f).exists(), "{f} is kept");
    }
    #[cfg(unix)]
    for f in ["acme/key.pem", "acme/account.json"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f} is private");
    }
    let cert = std::fs::read(dir.join("acme/cert.pem")).unwrap();
    let info = vibectl::server::ca::inspect(&dir.join("acme/cert.pem")).expect("inspect");
    assert!(info.days_left() > 30, "{info:?}");

    // Pebble gone: the stored certificate, not due for renewal, is served again.
    let kept_root = dir.join("pebble-root.pem");
    std::fs::copy(&root, &kept_root).expect("copy");
    let OurServer { config, .. } = server;
    drop(pebble);
    let server = OurServer::start_in(config);
    let addr: SocketAddr = server.addr.parse().expect("addr");
    let mut client = tls_client(addr, &kept_root, "localhost")
        .await
        .unwrap_or_else(|e| panic!("{}\n{}", error_chain(&e), server.diagnostics()));
    client
        .get_server_info(authorized(GetServerInfoRequest {}, Some(&token)))
        .await
        .expect("GetServerInfo with the stored certificate");
    assert_eq!(std::fs::read(dir.join("acme/cert.pem")).unwrap(), cert);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_that_is_down_or_refuses_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Nothing listens there.
    let mut cfg = Acme {
        enabled: true,
        domains: vec!["localhost".into()],
        directory_url: format!("https://127.0.0.1:{}/dir", free_port()),
        ..Acme::default()
    };
    cfg.challenge.http_host = "127.0.0.1".into();
    cfg.challenge.http_port = i64::from(free_port());
    match acme::obtain(&cfg, dir.path()).await {
        Err(e @ AcmeError::Unreachable { .. }) => {
            let text = e.to_string();
            assert!(
                text.starts_with("acme.directory_url: cannot reach"),
                "{text}"
            );
            assert!(text.contains("Connection refused"), "{text}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }

    // Pebble, but its HTTPS certificate is not from the CA we trust.
    let pebble = Pebble::start(false, false);
    let other_ca = Pki::new();
    let mut wrong = pebble.acme();
    wrong.ca_cert_file = Some(other_ca.bundle());
    let e = acme::obtain(&wrong, dir.path())
        .await
        .expect_err("untrusted");
    assert!(
        matches!(e, AcmeError::Unreachable { .. }) && e.to_string().contains("UnknownIssuer"),
        "{e}"
    );

    // A Pebble that requires external account binding refuses the account.
    let strict = Pebble::start(true, false);
    let e = acme::obtain(&strict.acme(), dir.path())
        .await
        .expect_err("refused");
    match &e {
        AcmeError::Refused { what, detail, .. } => {
            assert_eq!(*what, "a new account", "{e}");
            assert!(detail.contains("externalAccountRequired"), "{e}");
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert!(
        !dir.path().join("acme/cert.pem").exists(),
        "nothing is written"
    );

    // Through `serve`: exit 1 naming the key, never plaintext.
    let config = acme_config(&cfg);
    let out = server_cli(config.dir.path(), &["serve", "--port", "0"]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains("acme.directory_url: cannot reach"),
        "{out}"
    );
    assert!(!out.stdout.contains("listening"), "{out}");
}

#[test]
fn renewal_is_due_the_configured_days_before_expiry() {
    let now = OffsetDateTime::now_utc();
    assert!(!acme::due(now + time::Duration::days(31), 30));
    assert!(acme::due(now + time::Duration::days(29), 30));
    assert!(acme::due(now - time::Duration::days(1), 30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_01_is_answered_to_a_pebble_that_validates() {
    // Pebble connects back to localhost:http_port for the key authorization.
    let pebble = Pebble::start(false, true);
    let dir = tempfile::tempdir().expect("temp dir");
    let files = acme::obtain(&pebble.acme(), dir.path())
        .await
        .unwrap_or_else(|e| panic!("{e}\n--- pebble log ---\n{}", pebble.log()));
    files
        .load()
        .expect("the certificate and key load and match");
    let log = pebble.log();
    assert!(
        log.contains("Attempting to validate w/ HTTP") && log.contains("set VALID by completed"),
        "Pebble validated over HTTP\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn_01_is_answered_to_a_pebble_that_validates_and_the_certificate_is_served() {
    // Pebble connects back to localhost:tls_port asking for acme-tls/1 and checks the
    // validation certificate: its only name and the digest of the key authorization.
    let pebble = Pebble::start(false, true);
    let mut cfg = pebble.acme();
    cfg.challenge.r#type = AcmeChallengeType::TlsAlpn01;
    let config = acme_config(&cfg);
    let dir = config.dir.path().to_owned();
    let server = OurServer::start_in(config);
    let log = pebble.log();
    assert!(
        log.contains("set VALID by completed") && !log.contains("Attempting to validate w/ HTTP"),
        "Pebble validated over TLS-ALPN, not HTTP\n{log}"
    );

    let addr: SocketAddr = server.addr.parse().expect("addr");
    let root = pebble.issuing_root().await;
    let mut client = tls_client(addr, &root, "localhost")
        .await
        .unwrap_or_else(|e| panic!("{}\n{}", error_chain(&e), server.diagnostics()));
    let token = format!("Bearer {}", server.token("alice"));
    client
        .get_server_info(authorized(GetServerInfoRequest {}, Some(&token)))
        .await
        .expect("GetServerInfo over the certificate obtained by tls-alpn-01");
    let info = vibectl::server::ca::inspect(&dir.join("acme/cert.pem")).expect("inspect");
    assert!(info.days_left() > 30, "{info:?}");
    // The challenge listener is gone once the order is done.
    assert!(
        TcpStream::connect(("127.0.0.1", pebble.tls_port)).is_err(),
        "nothing listens on the tls-alpn-01 port any more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_certificate_is_kept_while_the_ca_is_down_and_renewed_when_it_is_back() {
    // A certificate 10 days from expiry, with renewal due 30 days before.
    let pki = Pki::new();
    server_cli(
        pki.dir.path(),
        &["ca", "create-server-cert", "soon.example", "--days", "10"],
    )
    .assert_success();
    let dir = tempfile::tempdir().expect("temp dir");
    let files = acme::cert_files(dir.path());
    std::fs::create_dir_all(dir.path().join(acme::DIR)).expect("mkdir");
    std::fs::copy(pki.path("ca/server_certs/soon.example.crt"), &files.cert).expect("copy");
    std::fs::copy(pki.path("ca/server_certs/soon.example.key"), &files.key).expect("copy");
    let old = std::fs::read(&files.cert).unwrap();

    let mut down = Acme {
        enabled: true,
        domains: vec!["localhost".into()],
        directory_url: format!("https://127.0.0.1:{}/dir", free_port()),
        ..Acme::default()
    };
    down.challenge.http_host = "127.0.0.1".into();
    down.challenge.http_port = i64::from(free_port());
    let kept = acme::ensure(&down, dir.path())
        .await
        .expect("a failed renewal keeps the still valid certificate");
    assert_eq!(std::fs::read(&kept.cert).unwrap(), old);

    let pebble = Pebble::start(false, false);
    let renewed = acme::ensure(&pebble.acme(), dir.path())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", pebble.log()));
    assert_ne!(std::fs::read(&renewed.cert).unwrap(), old, "renewed");
    let info = vibectl::server::ca::inspect(&renewed.cert).expect("inspect");
    assert!(info.days_left() > 30, "{info:?}");
    renewed.load().expect("the new certificate and key match");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_renews_a_stored_certificate_only_within_renew_days_before_expiry() {
    // A stored certificate 10 days from expiry: kept when renewal is due 5 days before expiry,
    // replaced by Pebble's at startup when it is due 30 days before.
    let pki = Pki::new();
    server_cli(
        pki.dir.path(),
        &["ca", "create-server-cert", "soon.example", "--days", "10"],
    )
    .assert_success();
    let pebble = Pebble::start(false, false);
    for (days, renewed) in [(5, false), (30, true)] {
        let mut cfg = pebble.acme();
        cfg.renew_days_before_expiry = days;
        let config = acme_config(&cfg);
        let dir = config.dir.path().to_owned();
        let files = acme::cert_files(&dir);
        std::fs::create_dir_all(dir.join(acme::DIR)).expect("mkdir");
        std::fs::copy(pki.path("ca/server_certs/soon.example.crt"), &files.cert).expect("copy");
        std::fs::copy(pki.path("ca/server_certs/soon.example.key"), &files.key).expect("copy");
        let old = std::fs::read(&files.cert).unwrap();
        // The startup decision is made before the server listens.
        let server = OurServer::start_in(config);
        let now = std::fs::read(&files.cert).unwrap();
        assert_eq!(
            now != old,
            renewed,
            "{} {days}\n{}",
            key::ACME_RENEW_DAYS_BEFORE_EXPIRY,
            server.diagnostics()
        );
        let days_left = vibectl::server::ca::inspect(&files.cert)
            .expect("inspect")
            .days_left();
        assert_eq!(days_left > 10, renewed, "{days_left} days left");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_renew_renews_a_due_certificate_in_the_background_and_off_leaves_it() {
    // Pebble issues certificates for 10 days and renewal is due 30 days before expiry, so each
    // server's first certificate is due the moment it is served. The server with renewal off
    // starts first: had it a renewal loop, it would have renewed before the other one does.
    let pebble = Pebble::start_with(false, false, Some(10 * 24 * 3600));
    let start = |auto_renew: bool| {
        let mut cfg = pebble.acme();
        cfg.renew_days_before_expiry = 30;
        cfg.auto_renew = auto_renew;
        let config = acme_config(&cfg);
        let files = acme::cert_files(config.dir.path());
        let server = OurServer::start_in(config);
        let first = std::fs::read(&files.cert).expect("the certificate obtained at startup");
        (server, files, first)
    };
    let (off, off_files, off_first) = start(false);
    let (on, on_files, on_first) = start(true);
    let renewed = wait::until(
        "a renewed certificate",
        RENEWAL_LIMIT,
        async || match std::fs::read(&on_files.cert).expect("read") {
            now if now != on_first => Ok(()),
            _ => Err(format!(
                "{} true: no renewal\n{}\n{}",
                key::ACME_AUTO_RENEW,
                on.diagnostics(),
                pebble.log()
            )),
        },
    );
    renewed.await;
    assert_eq!(
        std::fs::read(&off_files.cert).expect("read"),
        off_first,
        "{} false: renewed anyway\n{}",
        key::ACME_AUTO_RENEW,
        off.diagnostics()
    );
}
