//! Our `vibectl` against vibectl 0.11.6's own `vibectl-server` (`py_server.py`, on its mini
//! OpenAI mock), plaintext and TLS: `setup-proxy configure` / `test` list 0.11.6's models, and
//! `get pods` prints the summary 0.11.6's server got from its mock. 0.11.6's quirks on the way:
//! `limits` always present (empty), ~40 models with provider `unknown`, a provider failure as
//! `EXECUTION_FAILED` (never `MODEL_NOT_FOUND`), a version that is not ours.

use super::harness::{PyServer, SECRET};
use crate::client::Client;

/// What 0.11.6's mock answers every prompt with.
const SUMMARY: &str = "Two pods are running, web-2 restarted 3 times.";

/// A client with the fake kubectl listing two pods, memory off (one model call per command).
fn client() -> Client {
    let client = Client::with_pods();
    client.write(&format!(
        "core:\n  kubectl_command: {}\nmemory:\n  enabled: false\n",
        client.kubectl().display()
    ));
    client
}

fn info<'a>(py: &'a PyServer, key: &str) -> &'a str {
    py.info[key]
        .as_str()
        .unwrap_or_else(|| panic!("py_server.py printed no {key}: {}", py.info))
}

/// What `setup-proxy configure` / `test` print about 0.11.6's server.
fn assert_describes_0_11_6(out: &crate::support::process::Output) {
    assert!(
        out.stdout.contains("vibectl-llm-proxy 0.11.6"),
        "no server name and version\n{out}"
    );
    assert!(
        out.stdout.contains("default:  mock-gpt"),
        "no default model\n{out}"
    );
    assert!(
        out.stdout.contains("  mock-gpt [unknown] (aliases: mock)"),
        "the mock model is not listed\n{out}"
    );
    // `limits` is present but empty: nothing to show, and no zeros made up.
    assert!(out.stdout.contains("limits:   none"), "{out}");
}

#[test]
fn setup_proxy_and_get_pods_against_0_11_6_server() {
    let py = PyServer::start_with(SECRET, &["--reply", SUMMARY]);
    let client = client();

    let out = client.run(&[
        "setup-proxy",
        "configure",
        "prod",
        info(&py, "url_with_token"),
    ]);
    out.assert_success();
    assert_describes_0_11_6(&out);
    let config = client.text();
    assert!(
        !config.contains(info(&py, "token")),
        "the token went into config.yaml\n{config}"
    );

    let out = client.run(&["setup-proxy", "test"]);
    out.assert_success();
    assert_describes_0_11_6(&out);

    let out = client.run(&["get", "pods"]);
    out.assert_success();
    assert_eq!(out.stdout, format!("{SUMMARY}\n"), "{out}");
    assert_eq!(client.kubectl_runs(), ["get pods"]);
    // The kubectl output reached 0.11.6's mock, through 0.11.6's server.
    let seen = std::fs::read_to_string(info(&py, "mock_log")).unwrap_or_default();
    assert!(
        seen.contains("web-2   1/1     Running   3"),
        "0.11.6's mock never saw the pods\n{seen}\n--- py_server ---\n{}",
        py.stderr()
    );

    // A provider failure: 0.11.6 answers EXECUTION_FAILED in-band, with the provider's text.
    let out = client.fails(&["--model", "mock-error", "get", "pods"]);
    assert!(
        out.stderr
            .contains("the server answered EXECUTION_FAILED: Error code: 500"),
        "{out}"
    );
    // A model 0.11.6 does not list is refused before anything is sent.
    let out = client.fails(&["--model", "no-such-model", "get", "pods"]);
    assert!(
        out.stderr
            .contains("model `no-such-model` is not available"),
        "{out}"
    );
    // 0.11.6's refusal of a token it did not sign.
    let bad = format!("vibectl-server-insecure://not.a.token@{}", py.addr());
    let out = client.fails(&["setup-proxy", "test", &bad]);
    assert!(out.stderr.contains("the server refused the token"), "{out}");
}

#[test]
fn setup_proxy_and_get_pods_against_0_11_6_server_over_tls() {
    let py = PyServer::start_with(SECRET, &["--tls", "--reply", SUMMARY]);
    let client = client();
    let url = info(&py, "url");
    assert!(url.starts_with("vibectl-server://localhost:"), "{url}");
    let (token, ca) = (info(&py, "token_path"), info(&py, "ca_bundle"));

    // Without its CA, the self-signed certificate of `generate-certs` is refused.
    let out = client.fails(&["setup-proxy", "test", url, "--jwt-path", token]);
    assert!(
        out.stderr.contains("certificate is not trusted")
            && out.stderr.contains("hint: pass --ca-bundle"),
        "{out}"
    );

    let out = client.run(&[
        "setup-proxy",
        "configure",
        "prod",
        url,
        "--jwt-path",
        token,
        "--ca-bundle",
        ca,
    ]);
    out.assert_success();
    assert_describes_0_11_6(&out);
    client.run(&["setup-proxy", "test"]).assert_success();

    let out = client.run(&["get", "pods"]);
    out.assert_success();
    assert_eq!(out.stdout, format!("{SUMMARY}\n"), "{out}");
    assert!(
        client.text().contains(ca),
        "the profile keeps no CA bundle\n{}",
        client.text()
    );
}
