//! Through a proxy profile, the profile's `security.*` keys decide over the global ones:
//! sanitizing, its warning, the audit file, confirmation, and read-only mode (which a profile
//! can turn on but never off).

use vibectl::config::KeyPath;
use vibectl::config::generated::client::key;

use super::proxy::Server;
use super::{Client, plan_json};
use crate::support::mock::MockProvider;

const TOKEN: &str = "planted-bearer-31-Qz8Xy7";

/// `proxy.profiles.prod.<leaf>` from the key template.
fn prod(template: &str) -> String {
    KeyPath::fill(template, &["prod"]).to_string()
}

fn set(client: &Client, key: &str, value: &str) {
    client.run(&["config", "set", key, value]).assert_success();
}

#[tokio::test]
async fn a_profiles_security_keys_decide_through_that_profile() {
    let plan = plan_json(&["get", "pods"], "list the pods");
    let mock = MockProvider::start(&["--reply", &plan, "--api-key", super::API_KEY]);
    let server = Server::start(&mock);
    let client = Client::new(&format!("GET /x Authorization: Bearer {TOKEN}\n"), "", 0);
    client.configure(&mock, false, "memory:\n  enabled: false\n");
    let url = format!(
        "vibectl-server-insecure://{}@{}",
        server.token(),
        server.addr
    );
    client
        .run(&["setup-proxy", "configure", "prod", &url])
        .assert_success();

    // The profile's audit file, and its warning switch over the global one.
    let audit = client.path().join("prod-audit.log");
    set(
        &client,
        &prod(key::PROXY_PROFILES_PROFILE_SECURITY_AUDIT_LOG_PATH),
        audit.to_str().expect("utf-8"),
    );
    set(
        &client,
        &prod(key::PROXY_PROFILES_PROFILE_SECURITY_WARN_SANITIZATION),
        "false",
    );
    let out = client.run(&["logs", "web-1"]);
    out.assert_success();
    assert!(!out.stderr.contains("warning"), "{out}");
    assert!(
        !mock.last_request().await["body"]
            .to_string()
            .contains(TOKEN),
        "still redacted"
    );
    let records = std::fs::read_to_string(&audit).expect("the profile's audit file");
    assert_eq!(records.lines().count(), 2, "a call and a run\n{records}");
    assert!(records.contains("\"proxy_profile\":\"prod\""), "{records}");
    assert!(!client.dir().join("audit-prod.log").exists());

    // The profile's sanitize switch wins over the global one (on by default).
    set(
        &client,
        &prod(key::PROXY_PROFILES_PROFILE_SECURITY_SANITIZE_REQUESTS),
        "false",
    );
    client.run(&["logs", "web-1"]).assert_success();
    assert!(
        mock.last_request().await["body"]
            .to_string()
            .contains(TOKEN),
        "the profile turned sanitizing off"
    );

    // Confirmation: the profile's `none` wins over a global `per-command`.
    set(&client, key::SECURITY_CONFIRMATION_MODE, "per-command");
    let out = client.fails(&["vibe", "show pods"]);
    assert!(out.stderr.contains("without confirmation"), "{out}");
    set(
        &client,
        &prod(key::PROXY_PROFILES_PROFILE_SECURITY_CONFIRMATION_MODE),
        "none",
    );
    client.run(&["vibe", "show pods"]).assert_success();

    // Read-only: on through the profile, named in the error; `--no-proxy` leaves the profile.
    set(
        &client,
        &prod(key::PROXY_PROFILES_PROFILE_SECURITY_READ_ONLY),
        "true",
    );
    let runs = client.kubectl_runs().len();
    let out = client.fails(&["just", "delete", "pod", "web-1"]);
    assert!(
        out.stderr.contains(&format!(
            "read-only mode ({})",
            prod(key::PROXY_PROFILES_PROFILE_SECURITY_READ_ONLY)
        )),
        "{out}"
    );
    assert_eq!(client.kubectl_runs().len(), runs, "nothing ran");
    client
        .run(&["--no-proxy", "just", "delete", "pod", "web-1"])
        .assert_success();
    // A profile's false does not turn the global switch off.
    set(
        &client,
        &prod(key::PROXY_PROFILES_PROFILE_SECURITY_READ_ONLY),
        "false",
    );
    set(&client, key::SECURITY_READ_ONLY, "true");
    let out = client.fails(&["just", "delete", "pod", "web-1"]);
    assert!(
        out.stderr
            .contains(&format!("read-only mode ({})", key::SECURITY_READ_ONLY)),
        "{out}"
    );
}

#[tokio::test]
async fn setup_proxy_configure_read_only_makes_a_read_only_profile() {
    let client = Client::with_pods();
    client.write(&format!(
        "core:\n  kubectl_command: {}\n",
        client.kubectl().display()
    ));
    client
        .run(&[
            "setup-proxy",
            "configure",
            "ops",
            "vibectl-server-insecure://127.0.0.1:1",
            "--no-test",
            "--read-only",
        ])
        .assert_success();
    let ops = KeyPath::fill(key::PROXY_PROFILES_PROFILE_SECURITY_READ_ONLY, &["ops"]).to_string();
    let out = client.run(&["config", "get", &ops]);
    assert_eq!(out.stdout.trim(), "true", "{out}");
    let out = client.fails(&["just", "scale", "deployment/web", "--replicas=0"]);
    assert!(
        out.stderr.contains(&format!("read-only mode ({ops})")),
        "{out}"
    );
    client.run(&["just", "get", "pods"]).assert_success();
    assert_eq!(client.kubectl_runs(), ["get pods"]);
}
