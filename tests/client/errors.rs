//! What `vibectl` says when the proxy fails it: server down, token refused, certificate from
//! another CA, rate limited (retried, then a message with the wait). Every failure exits 1 with
//! an `error:` line and a `hint:`, and leaves the config file as it was. Servers are our
//! `vibectl-server` binary (`interop::harness`); retries are counted from the client's debug log.

use std::net::TcpListener;

use vibectl::config::generated::client::key;

use crate::client::{Client, LIMIT};
use crate::interop::harness::{ConfigDir, OTHER_SECRET, OurServer, Spec, mock, s};
use crate::support::mock::MockProvider;
use crate::support::process::{self, Output};
use crate::support::yaml::{self, entry};
use crate::tls::Pki;

/// What the client logs (at debug) before each retry of a proxy call.
const RETRY_LINE: &str = "retrying the proxy call";

/// A client with the fake kubectl, memory off, `proxy.retry_attempts` as given, and (when
/// `url` is given) an active profile `prod` for it.
fn client_with(kubectl_stdout: &str, retries: u32, url: Option<&str>) -> Client {
    let mut client = Client::new(kubectl_stdout, "", 0);
    let mut pairs = vec![
        (
            key::CORE_KUBECTL_COMMAND.to_owned(),
            client.kubectl().display().to_string(),
        ),
        (key::MEMORY_ENABLED.to_owned(), "false".to_owned()),
        (key::PROXY_RETRY_ATTEMPTS.to_owned(), retries.to_string()),
    ];
    if let Some(u) = url {
        pairs.push((key::PROXY_ACTIVE.to_owned(), "prod".to_owned()));
        pairs.push((
            entry(key::PROXY_PROFILES_PROFILE_SERVER_URL, "prod"),
            u.to_owned(),
        ));
    }
    client.write(&yaml::config(&pairs));
    client.env = vec![("RUST_LOG".into(), "vibectl=debug".into())];
    client
}

fn client(retries: u32, url: Option<&str>) -> Client {
    client_with(crate::client::PODS, retries, url)
}

/// Fails (exit 1, config untouched) with `what` on stderr and a hint containing `hint`.
fn fails_with(client: &Client, args: &[&str], what: &str, hint: &str) -> Output {
    let out = client.fails(args);
    assert!(out.stderr.contains(what), "no {what:?} on stderr\n{out}");
    let hint_line = out.stderr.lines().find(|l| l.starts_with("hint: "));
    assert!(
        hint_line.is_some_and(|l| l.contains(hint)),
        "no hint with {hint:?}\n{out}"
    );
    out
}

fn retries(out: &Output) -> usize {
    out.stderr.matches(RETRY_LINE).count()
}

/// A loopback port nothing listens on (bound, then released).
fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("addr").port()
}

#[test]
fn a_profile_retry_attempts_overrides_the_proxy_default() {
    let url = format!("vibectl-server-insecure://127.0.0.1:{}", dead_port());
    let client = client(0, Some(&url));
    let unreachable = format!("cannot reach the vibectl server at {url}");
    let hint = "check the server is running";
    let out = fails_with(&client, &["get", "pods"], &unreachable, hint);
    assert_eq!(retries(&out), 0, "{} = 0\n{out}", key::PROXY_RETRY_ATTEMPTS);
    let profile = entry(key::PROXY_PROFILES_PROFILE_RETRY_ATTEMPTS, "prod");
    client
        .run(&["config", "set", &profile, "2"])
        .assert_success();
    let out = fails_with(&client, &["get", "pods"], &unreachable, hint);
    assert_eq!(retries(&out), 2, "{profile} = 2 over the default\n{out}");
}

#[test]
fn server_down() {
    let url = format!("vibectl-server-insecure://127.0.0.1:{}", dead_port());
    let client = client(1, Some(&url));
    let unreachable = format!("cannot reach the vibectl server at {url}");
    let hint = "check the server is running";

    let out = fails_with(&client, &["setup-proxy", "test", &url], &unreachable, hint);
    assert_eq!(retries(&out), 1, "UNAVAILABLE is retried once\n{out}");
    fails_with(&client, &["setup-proxy", "test"], &unreachable, hint);
    fails_with(&client, &["get", "pods"], &unreachable, hint);
    // Nothing is saved for a server that does not answer.
    fails_with(
        &client,
        &["setup-proxy", "configure", "other", &url],
        &unreachable,
        hint,
    );
    assert!(!client.text().contains("other"), "{}", client.text());
}

#[test]
fn bad_token() {
    let mock = mock();
    let server = OurServer::start(&mock, &Spec::default());
    let foreign = ConfigDir::new(
        &mock,
        &Spec {
            secret: OTHER_SECRET,
            ..Spec::default()
        },
    )
    .generate_token("mallory");
    let client = client(2, Some(&server.url(Some(&foreign))));
    let refused = "the server refused the token";
    let hint = "generate-token";

    let out = fails_with(&client, &["get", "pods"], refused, hint);
    assert_eq!(retries(&out), 0, "a refused token is not retried\n{out}");
    assert!(
        !out.stderr.contains(&foreign),
        "the token was printed\n{out}"
    );
    let garbage = server.url(Some("not.a.token"));
    fails_with(&client, &["setup-proxy", "test", &garbage], refused, hint);
    fails_with(
        &client,
        &["setup-proxy", "test", &server.url(None)],
        refused,
        hint,
    );
    // The same client with a token this server signed gets through.
    let good = server.url(Some(&server.token("alice")));
    client.run(&["setup-proxy", "test", &good]).assert_success();
}

#[test]
fn wrong_ca() {
    let mock = mock();
    let (served, other) = (Pki::new(), Pki::new());
    let config = ConfigDir::new(&mock, &Spec::default());
    let yaml = std::fs::read_to_string(&config.file).expect("config.yaml");
    std::fs::write(
        &config.file,
        format!(
            "{yaml}tls: {{enabled: true, cert_file: \"{}\", key_file: \"{}\"}}\n",
            s(&served.cert()),
            s(&served.key())
        ),
    )
    .expect("write config.yaml");
    let server = OurServer::start_in(config);
    let url = format!(
        "vibectl-server://{}@localhost:{}",
        server.token("alice"),
        server.port()
    );
    let client = client(2, None);
    let untrusted = "the server's TLS certificate is not trusted";
    let hint = "--ca-bundle";

    let wrong = s(&other.bundle()).to_owned();
    let out = fails_with(
        &client,
        &["setup-proxy", "test", &url, "--ca-bundle", &wrong],
        untrusted,
        hint,
    );
    assert!(out.stderr.contains("UnknownIssuer"), "{out}");
    assert_eq!(
        retries(&out),
        0,
        "a certificate problem is not retried\n{out}"
    );
    // The system roots do not know the private CA either.
    fails_with(&client, &["setup-proxy", "test", &url], untrusted, hint);
    fails_with(
        &client,
        &[
            "setup-proxy",
            "configure",
            "prod",
            &url,
            "--ca-bundle",
            &wrong,
        ],
        untrusted,
        hint,
    );
    // The right bundle works.
    let right = s(&served.bundle()).to_owned();
    client
        .run(&["setup-proxy", "test", &url, "--ca-bundle", &right])
        .assert_success();
}

/// Our server with `server.limits.global` as given.
fn limited(mock: &MockProvider, limits: &'static str) -> (OurServer, String) {
    let server = OurServer::start(
        mock,
        &Spec {
            limits: Some(limits),
            ..Spec::default()
        },
    );
    let url = server.url(Some(&server.token("alice")));
    (server, url)
}

/// The `N` of `retry in N ms` on stderr.
fn retry_in_ms(out: &Output) -> u64 {
    out.stderr
        .split("retry in ")
        .nth(1)
        .and_then(|rest| rest.split(" ms").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `retry in N ms`\n{out}"))
}

#[test]
fn rate_limited_per_minute() {
    let mock = mock();
    let (_server, url) = limited(&mock, "{max_requests_per_minute: 1}");
    let client = client(2, Some(&url));

    client.run(&["get", "pods"]).assert_success();
    // The next call would pass in about a minute, longer than the client waits for a retry:
    // it stops at once and says how long to wait.
    for _ in 0..2 {
        let out = fails_with(
            &client,
            &["get", "pods"],
            "rate limited by the server (rpm); retry in ",
            "wait ",
        );
        let ms = retry_in_ms(&out);
        assert!((30_000..=60_000).contains(&ms), "retry in {ms} ms\n{out}");
        assert_eq!(
            retries(&out),
            0,
            "retried a call refused for a minute\n{out}"
        );
    }
    assert_eq!(client.kubectl_runs().len(), 3);
}

#[test]
fn rate_limited_concurrency_is_retried() {
    let mock = mock();
    let (_server, url) = limited(&mock, "{max_concurrent_requests: 1}");
    // One client holds the only slot for 2 s (the mock delays its answer); it retries too, in
    // case the other one holds the slot when it arrives.
    let slow = client_with(
        &format!("{}[[mock:delay_ms=2000]]\n", crate::client::PODS),
        10,
        Some(&url),
    );
    let mut cmd = slow.command(&["get", "pods"]);
    let holder = std::thread::spawn(move || process::run(&mut cmd, LIMIT));

    // Meanwhile another, with 2 retries 250 ms apart, is refused three times and gives up
    // with the wait. (Until the slow call reaches the server, the quick one gets through.)
    let quick = client(2, Some(&url));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let refused = loop {
        let out = quick.run(&["get", "pods"]);
        if !out.success() {
            break out;
        }
        if holder.is_finished() || std::time::Instant::now() > deadline {
            let held = holder.join().expect("the slow client's thread");
            panic!("the quick client was never refused\n{out}\n--- the slow one ---\n{held}");
        }
    };
    assert_eq!(refused.status.code(), Some(1), "{refused}");
    assert!(
        refused
            .stderr
            .contains("rate limited by the server (concurrency); retry in 250 ms"),
        "{refused}"
    );
    assert!(refused.stderr.contains("hint: wait "), "{refused}");
    assert_eq!(retries(&refused), 2, "{refused}");

    // With enough retries, a client waits for the slot and gets through.
    let patient = client(10, Some(&url));
    let holding = !holder.is_finished();
    let out = patient.run(&["get", "pods"]);
    out.assert_success();
    if holding {
        assert!(
            retries(&out) >= 1,
            "the patient client was never refused\n{out}"
        );
    }
    let held = holder.join().expect("the slow client's thread");
    held.assert_success();
}
