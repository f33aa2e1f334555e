//! vibectl 0.11.6 (Python, grpc) over TLS to our `vibectl-server serve`: its raw stubs with
//! `--tls-ca` and its CLI's `setup-proxy configure ... --ca-bundle` trust a CA made by
//! `vibectl-server ca init`; another CA's bundle is refused.

use crate::interop::harness::{ClientDirs, ConfigDir, MODEL, OurServer, Spec, mock, s};
use crate::support::process;
use crate::support::python;

use super::{Pki, server_cli};

/// Our server binary over TLS with a `localhost` certificate from its own `ca` commands, HSTS
/// on; the PKI lives in the server's config dir.
fn tls_server(mock: &crate::support::mock::MockProvider) -> OurServer {
    let config = ConfigDir::new(mock, &Spec::default());
    let dir = config.dir.path();
    server_cli(dir, &["ca", "init"]).assert_success();
    server_cli(
        dir,
        &[
            "ca",
            "create-server-cert",
            "localhost",
            "--san",
            "127.0.0.1",
        ],
    )
    .assert_success();
    let mut yaml = std::fs::read_to_string(&config.file).expect("config.yaml");
    yaml.push_str(&format!(
        "tls: {{enabled: true, cert_file: \"{}\", key_file: \"{}\", hsts: {{enabled: true, max_age: 600}}}}\n",
        dir.join("ca/server_certs/localhost.crt").display(),
        dir.join("ca/server_certs/localhost.key").display(),
    ));
    std::fs::write(&config.file, yaml).expect("write config.yaml");
    OurServer::start_in(config)
}

fn port(server: &OurServer) -> &str {
    server.addr.rsplit_once(':').expect("host:port").1
}

#[test]
fn raw_stubs_over_tls_trust_our_ca() {
    let mock = mock();
    let server = tls_server(&mock);
    let bundle = server.config.dir.path().join("ca/ca-bundle.crt");
    let token = server.token("alice");
    let target = format!("localhost:{}", port(&server));
    let out = server.driver_ok(
        "raw_stubs.py",
        &[&target, "--tls-ca", s(&bundle), "--token", &token],
    );
    assert_eq!(out["tls"], true, "{out}");
    assert_eq!(out["server_info"]["default_model"], MODEL, "{out}");
    assert_eq!(out["execute"]["result"], "success", "{out}");
    assert_eq!(
        out["server_info"]["response_metadata"]["initial"]["strict-transport-security"],
        "max-age=600; includeSubDomains",
        "HSTS reaches 0.11.6's client as initial metadata: {out}"
    );

    // The bundle of another CA: the call fails.
    let other = Pki::new();
    let mut cmd = python::driver(
        "raw_stubs.py",
        &[
            &target,
            "--tls-ca",
            s(&other.bundle()),
            "--token",
            &token,
            "--mode",
            "info",
            "--timeout",
            "10",
        ],
    );
    let (out, json) = python::run_json(&mut cmd);
    assert!(!out.success(), "another CA must be refused\n{out}");
    assert_eq!(
        json["rpc_errors"]["GetServerInfo"]["status"], "UNAVAILABLE",
        "{json}"
    );
}

#[test]
fn setup_proxy_configure_with_our_ca_bundle() {
    let mock = mock();
    let server = tls_server(&mock);
    let bundle = server.config.dir.path().join("ca/ca-bundle.crt");
    let token = server.token("alice");
    let url = format!("vibectl-server://{token}@localhost:{}", port(&server));
    let dirs = ClientDirs::new();
    let out = server.run(
        &mut dirs.vibectl(&[
            "setup-proxy",
            "configure",
            "tls1",
            &url,
            "--ca-bundle",
            s(&bundle),
        ]),
        true,
    );
    for line in [
        "✓ Connection test successful!",
        "✓ Proxy profile 'tls1' configured successfully",
    ] {
        assert!(out.stdout.contains(line), "no {line:?}\n{out}");
    }
    assert!(out.stdout.contains(MODEL), "{out}");
    let config = std::fs::read_to_string(dirs.path("client/config.yaml")).expect("config.yaml");
    assert!(
        config.contains(s(&bundle)),
        "the bundle is stored\n{config}"
    );
    let out = server.run(&mut dirs.vibectl(&["setup-proxy", "test"]), true);
    assert!(out.stdout.contains("✓ Connection successful!"), "{out}");

    // Another CA's bundle: 0.11.6 fails the test and reports the certificate problem.
    let other = Pki::new();
    let fresh = ClientDirs::new();
    let mut cmd = fresh.vibectl(&["setup-proxy", "test", &url]);
    cmd.env("VIBECTL_CA_BUNDLE", other.bundle());
    let out = process::run(&mut cmd, python::DRIVER_LIMIT);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("Connection failed"), "{out}");
}
