//! Bad TLS input, each refused with an error that names the key and the problem, and never
//! served as plaintext: missing, unreadable, expired and mismatched certificate and key files;
//! `ca init` over an existing CA; host names that are not names.

use std::path::Path;

use rcgen::{CertificateParams, DnType, Issuer, KeyPair};
use time::{Duration, OffsetDateTime};

use super::{Pki, server_cli};
use crate::support::process::Output;

/// A server config that would serve (a provider, a model), plus `tls`, a YAML flow mapping.
fn write_config(dir: &Path, tls: &str) {
    let yaml = format!(
        "server: {{default_model: m}}\n\
         providers: {{openai: {{base_url: \"http://127.0.0.1:9/v1\", key: sk-test}}}}\n\
         models: {{m: {{provider: openai}}}}\n\
         tls: {tls}\n"
    );
    std::fs::write(dir.join("config.yaml"), yaml).expect("write config.yaml");
}

/// `serve --port 0` with `tls`; it must exit 1 without listening, its stderr naming every
/// string of `names`.
fn serve_refuses(pki: &Pki, tls: &str, names: &[&str]) -> Output {
    write_config(pki.dir.path(), tls);
    let out = server_cli(pki.dir.path(), &["serve", "--port", "0"]);
    assert_eq!(out.status.code(), Some(1), "serve must fail\n{out}");
    assert!(
        !out.stdout.contains("listening"),
        "nothing may be served\n{out}"
    );
    for n in names {
        assert!(out.stderr.contains(n), "stderr does not name {n:?}\n{out}");
    }
    out
}

fn tls_yaml(cert: &Path, key: &Path) -> String {
    format!(
        "{{enabled: true, cert_file: \"{}\", key_file: \"{}\"}}",
        cert.display(),
        key.display()
    )
}

#[test]
fn missing_and_unreadable_files() {
    let pki = Pki::new();
    let missing = pki.path("nope/server.crt");
    serve_refuses(
        &pki,
        &tls_yaml(&missing, &pki.key()),
        &["tls.cert_file", "cannot read", "nope/server.crt"],
    );
    serve_refuses(
        &pki,
        &tls_yaml(&pki.cert(), &pki.path("nope/server.key")),
        &["tls.key_file", "cannot read", "nope/server.key"],
    );
    // A directory cannot be read as a file, even by root (which file modes do not stop).
    serve_refuses(
        &pki,
        &tls_yaml(&pki.path("ca"), &pki.key()),
        &["tls.cert_file", "cannot read"],
    );
    // Only a certificate file, no key: refused, not plaintext.
    serve_refuses(
        &pki,
        &format!("{{enabled: true, cert_file: \"{}\"}}", pki.cert().display()),
        &["tls.key_file", "no certificate"],
    );
    // Files that are not PEM.
    let junk = pki.path("junk.pem");
    std::fs::write(&junk, "not a certificate\n").expect("write");
    serve_refuses(
        &pki,
        &tls_yaml(&junk, &pki.key()),
        &["tls.cert_file", "holds no certificate"],
    );
    serve_refuses(&pki, &tls_yaml(&pki.cert(), &junk), &["tls.key_file"]);
}

#[test]
fn a_key_that_does_not_match_the_certificate() {
    let pki = Pki::new();
    let other = Pki::new();
    serve_refuses(
        &pki,
        &tls_yaml(&pki.cert(), &other.key()),
        &["tls.key_file", "does not match the certificate"],
    );
}

/// A leaf signed by the PKI's intermediate, valid from `from` to `until` (relative to now).
fn leaf(pki: &Pki, from: Duration, until: Duration) -> (std::path::PathBuf, std::path::PathBuf) {
    let inter_pem = std::fs::read_to_string(pki.path("ca/intermediate-ca.crt")).expect("read");
    let inter_key =
        KeyPair::from_pem(&std::fs::read_to_string(pki.path("ca/intermediate-ca.key")).unwrap())
            .expect("key");
    let issuer = Issuer::from_ca_cert_pem(&inter_pem, &inter_key).expect("issuer");
    let mut p = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    p.distinguished_name.push(DnType::CommonName, "localhost");
    let now = OffsetDateTime::now_utc();
    p.not_before = now + from;
    p.not_after = now + until;
    let key = KeyPair::generate().expect("key");
    let cert = p.signed_by(&key, &issuer).expect("sign");
    let cert_path = pki.path("dated.crt");
    let key_path = pki.path("dated.key");
    std::fs::write(&cert_path, format!("{}{inter_pem}", cert.pem())).expect("write");
    std::fs::write(&key_path, key.serialize_pem()).expect("write");
    (cert_path, key_path)
}

#[test]
fn an_expired_or_not_yet_valid_certificate() {
    let pki = Pki::new();
    let (cert, key) = leaf(&pki, Duration::days(-30), Duration::days(-1));
    serve_refuses(
        &pki,
        &tls_yaml(&cert, &key),
        &["tls.cert_file", "expired on", "dated.crt"],
    );
    let (cert, key) = leaf(&pki, Duration::days(2), Duration::days(30));
    serve_refuses(
        &pki,
        &tls_yaml(&cert, &key),
        &["tls.cert_file", "is not valid before"],
    );
}

#[test]
fn ca_init_twice_needs_force() {
    let pki = Pki::new();
    let root = std::fs::read_to_string(pki.path("ca/root-ca.crt")).expect("root");
    let out = server_cli(pki.dir.path(), &["ca", "init"]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("already holds a CA"), "{out}");
    assert!(
        out.stderr.contains("--force"),
        "the hint names --force\n{out}"
    );
    assert_eq!(
        std::fs::read_to_string(pki.path("ca/root-ca.crt")).unwrap(),
        root,
        "a refused init changes nothing"
    );
    server_cli(pki.dir.path(), &["ca", "init", "--force"]).assert_success();
    assert_ne!(
        std::fs::read_to_string(pki.path("ca/root-ca.crt")).unwrap(),
        root,
        "--force makes a new root"
    );
    // The same for a server certificate.
    let out = server_cli(pki.dir.path(), &["ca", "create-server-cert", "localhost"]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("--force"), "{out}");
}

#[test]
fn host_names_that_are_not_names() {
    let pki = Pki::new();
    for (args, bad) in [
        (vec!["bad_host!"], "bad_host!"),
        (vec!["a..b"], "a..b"),
        (vec!["trailing-.example"], "trailing-.example"),
        (vec!["ok.example", "--san", "not an ip"], "not an ip"),
    ] {
        let mut all = vec!["ca", "create-server-cert"];
        all.extend(args);
        let out = server_cli(pki.dir.path(), &all);
        assert_eq!(out.status.code(), Some(1), "{out}");
        assert!(
            out.stderr
                .contains(&format!("`{bad}` is not a valid DNS name or IP address")),
            "{out}"
        );
    }
    assert!(
        !pki.path("ca/server_certs/bad_host!.crt").exists(),
        "nothing is written for a bad name"
    );
}
