//! Secrets never leave the machine (`security.sanitize_requests`, a profile's
//! `security.sanitize_requests`): `get secret -o yaml`, `describe pod` with secret env values
//! and `logs` with tokens go to the model, directly and through our server, with 20 planted
//! secret values replaced by placeholders; the audit log (`security.audit_logging`, the
//! profile's) records one line per model call and per kubectl run with the kinds found; a
//! placeholder the model echoes in a planned command gets its value back only for kubectl.

use std::collections::BTreeMap;

use serde_json::Value;
use vibectl::config::generated::client::key;

use super::proxy::Server;
use super::{Client, plan_json};
use crate::support::mock::MockProvider;

/// `kubectl get secret -A -o yaml`: two Secrets (data and stringData) and a ConfigMap.
const SECRETS_YAML: &str = "\
apiVersion: v1
items:
- apiVersion: v1
  data:
    password: aHVudGVyMi1wbGFudGVkLTAx
    username: YWRtaW4tcGxhbnRlZC0wMg==
  kind: Secret
  metadata:
    creationTimestamp: \"2026-11-30T08:12:45Z\"
    name: db-creds
    namespace: shop
    resourceVersion: \"48213\"
    uid: 6f1c2b9e-0d4a-4e61-9a57-3b8e2f7c1d05
  type: Opaque
- apiVersion: v1
  data:
    .dockerconfigjson: eyJhdXRocyI6eyJyZWdpc3RyeS5leGFtcGxlLmNvbSI6eyJhdXRoIjoicGxhbnRlZDA0In19fQ==
  kind: Secret
  metadata:
    name: pull-secret
    namespace: shop
  stringData:
    api-key: planted-api-key-03
  type: kubernetes.io/dockerconfigjson
- apiVersion: v1
  data:
    log-level: debug
  kind: ConfigMap
  metadata:
    name: shop-settings
    namespace: shop
kind: List
metadata:
  resourceVersion: \"\"
";

/// `kubectl describe pod`: secret env values, a URL with a password, an argument.
const DESCRIBE_POD: &str = "\
Name:             checkout-7d9f8b6c5-x2k4p
Namespace:        shop
Status:           Running
IP:               10.244.1.17
Containers:
  checkout:
    Image:          registry.example.com/shop/checkout@sha256:4d2f9c1e8b7a6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c
    Args:
      --listen=:8080
      --password=planted-arg-pass-12
    Environment:
      DB_PASSWORD:                      s3cr3t-Planted-Pass-05
      API_TOKEN:                        tok-planted-06-4f9a8b7c6d5e
      AWS_ACCESS_KEY_ID:                AKIAPLANTED000000007
      AWS_SECRET_ACCESS_KEY:            wJalrXUtnFEMI/K7MDENG/bPxRfiCYPLANTED008
      DATABASE_URL:                     postgres://app:Planted-Url-Pass-09@db.shop:5432/shop
      AZURE_STORAGE_CONNECTION_STRING:  DefaultEndpointsProtocol=https;AccountName=shopacct;AccountKey=PlantedAzureKey10abcdefghijklmnopqrstuv==;EndpointSuffix=core.windows.net
      REDIS_URL:                        redis://cache:planted-redis-11@redis.shop:6379
      LOG_LEVEL:                        info
Events:
  Type    Reason   Age   From     Message
  ----    ------   ----  ----     -------
  Normal  Started  5m    kubelet  Started container checkout
";

/// `kubectl logs`: tokens, pairs, a URL with credentials and a private key.
const LOGS: &str = "\
2026-12-02T10:00:00Z INFO request GET /api/orders Authorization: Bearer planted-bearer-13-Zx9Yw8Vu7
2026-12-02T10:00:01Z INFO session eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkLTE0In0.c2lnbmF0dXJlLXBsYW50ZWQtMTQ
2026-12-02T10:00:02Z DEBUG refresh token=planted-token-15-qwerty secret=planted-secret-16 passwd=planted-passwd-17
2026-12-02T10:00:03Z INFO cloning https://deploy:planted-gh-18@git.example.com/shop/config.git
2026-12-02T10:00:04Z DEBUG loaded key
-----BEGIN RSA PRIVATE KEY-----
MIIEplanted19AKCAQEAxk3mA8r7PLANTEDPLANTEDPLANTEDPLANTEDPLANTED0019
-----END RSA PRIVATE KEY-----
2026-12-02T10:00:05Z INFO calling billing api_key=planted-apikey-20 retries=3
";

/// The 20 planted values; none may reach the model.
const PLANTED: [&str; 20] = [
    "aHVudGVyMi1wbGFudGVkLTAx",
    "YWRtaW4tcGxhbnRlZC0wMg==",
    "planted-api-key-03",
    "eyJhdXRocyI6eyJyZWdpc3RyeS5leGFtcGxlLmNvbSI6eyJhdXRoIjoicGxhbnRlZDA0In19fQ==",
    "s3cr3t-Planted-Pass-05",
    "tok-planted-06-4f9a8b7c6d5e",
    "AKIAPLANTED000000007",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYPLANTED008",
    "Planted-Url-Pass-09",
    "PlantedAzureKey10abcdefghijklmnopqrstuv==",
    "planted-redis-11",
    "planted-arg-pass-12",
    "planted-bearer-13-Zx9Yw8Vu7",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkLTE0In0.c2lnbmF0dXJlLXBsYW50ZWQtMTQ",
    "planted-token-15-qwerty",
    "planted-secret-16",
    "planted-passwd-17",
    "planted-gh-18",
    "MIIEplanted19AKCAQEAxk3mA8r7PLANTEDPLANTEDPLANTEDPLANTEDPLANTED0019",
    "planted-apikey-20",
];

/// A command's arguments, what kubectl prints for it, and the secrets its summary request must
/// have had removed, by kind.
type Case = (
    &'static [&'static str],
    &'static str,
    &'static [(&'static str, u64)],
);

/// The three commands.
fn commands() -> [Case; 3] {
    [
        (
            &["get", "secret", "-A", "-o", "yaml"],
            SECRETS_YAML,
            &[("k8s-secret-data", 4)],
        ),
        (
            &["describe", "pod", "checkout-7d9f8b6c5-x2k4p"],
            DESCRIBE_POD,
            &[
                ("aws-access-key", 1),
                ("aws-secret-key", 1),
                ("azure-connection-string", 1),
                ("password", 3),
                ("url-credentials", 2),
            ],
        ),
        (
            &["logs", "checkout-7d9f8b6c5-x2k4p"],
            LOGS,
            &[
                ("bearer-token", 1),
                ("jwt", 1),
                ("password", 4),
                ("private-key", 1),
                ("url-credentials", 1),
            ],
        ),
    ]
}

/// Run the three commands; return every request body the mock received, as text.
async fn run_all(client: &Client, mock: &MockProvider) -> Vec<String> {
    for (args, stdout, _) in commands() {
        std::fs::write(client.path().join("kubectl-stdout"), stdout).expect("write");
        let out = client.run(args);
        out.assert_success();
        assert!(
            out.stderr.contains("warning: removed") && out.stderr.contains("secret"),
            "warn_sanitization is on by default\n{out}"
        );
    }
    mock.requests()
        .await
        .iter()
        .map(|r| r["body"].to_string())
        .collect()
}

fn assert_no_planted_value(requests: &[String]) {
    assert_eq!(requests.len(), 3, "one summary call per command");
    for body in requests {
        for value in PLANTED {
            assert!(
                !body.contains(value),
                "the planted secret {value} reached the model:\n{body}"
            );
        }
    }
    let all = requests.join("\n");
    assert!(all.contains("[REDACTED:k8s-secret-data:1]"), "{all}");
    assert!(all.contains("[REDACTED:bearer-token:1]"), "{all}");
    assert!(
        all.contains("log-level: debug"),
        "a ConfigMap is not a Secret"
    );
}

/// The audit file's records.
fn audit_records(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the audit log {}: {e}", path.display()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the audit log is 0600");
    }
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a torn line {l:?}: {e}")))
        .collect()
}

fn assert_audited(path: &std::path::Path, profile: Option<&str>) {
    let records = audit_records(path);
    let calls: Vec<&Value> = records
        .iter()
        .filter(|r| r["event_type"] == "llm_request")
        .collect();
    let runs: Vec<&Value> = records
        .iter()
        .filter(|r| r["event_type"] == "command_execution")
        .collect();
    assert_eq!(calls.len(), 3, "one line per model call: {records:#?}");
    assert_eq!(runs.len(), 3, "one line per kubectl run: {records:#?}");
    for ((_, _, kinds), call) in commands().iter().zip(&calls) {
        let mut found: BTreeMap<String, u64> = BTreeMap::new();
        for t in call["secrets_types"].as_array().expect("secrets_types") {
            *found
                .entry(t.as_str().expect("a kind").to_owned())
                .or_default() += 1;
        }
        let expected: BTreeMap<String, u64> =
            kinds.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect();
        assert_eq!(found, expected, "{call}");
        assert_eq!(
            call["secrets_detected"].as_u64(),
            Some(expected.values().sum()),
            "{call}"
        );
        assert_eq!(call["proxy_profile"].as_str(), profile, "{call}");
        assert_eq!(call["request_hash"].as_str().map(str::len), Some(64));
        assert_eq!(call["response_hash"].as_str().map(str::len), Some(64));
    }
    for run in runs {
        assert_eq!(run["exit_code"], 0, "{run}");
        assert_eq!(run["user_approved"], true, "{run}");
    }
    let text = std::fs::read_to_string(path).expect("read");
    for value in PLANTED {
        assert!(!text.contains(value), "{value} is in the audit log");
    }
}

#[tokio::test]
async fn planted_secrets_never_reach_the_model_directly_or_through_our_server() {
    let mock = MockProvider::start(&["--reply", "Looks fine."]);
    let client = Client::with_pods();
    client.configure(&mock, true, "memory:\n  enabled: false\n");
    let requests = run_all(&client, &mock).await;
    assert_no_planted_value(&requests);
    assert_audited(&client.dir().join("audit.log"), None);

    // Through our server, with the profile's defaults: the same protection and its own file.
    let mock = MockProvider::start(&["--reply", "Looks fine.", "--api-key", super::API_KEY]);
    let server = Server::start(&mock);
    let url = format!(
        "vibectl-server-insecure://{}@{}",
        server.token(),
        server.addr
    );
    client.configure(&mock, false, "memory:\n  enabled: false\n");
    client
        .run(&["setup-proxy", "configure", "prod", &url])
        .assert_success();
    let requests = run_all(&client, &mock).await;
    assert_no_planted_value(&requests);
    assert_audited(&client.dir().join("audit-prod.log"), Some("prod"));
}

#[tokio::test]
async fn sanitize_requests_off_sends_the_output_as_it_is() {
    let mock = MockProvider::start(&["--reply", "Looks fine."]);
    let client = Client::new(LOGS, "", 0);
    client.configure(&mock, true, "memory:\n  enabled: false\n");
    client
        .run(&["config", "set", key::SECURITY_SANITIZE_REQUESTS, "false"])
        .assert_success();
    let out = client.run(&["logs", "web-1"]);
    out.assert_success();
    assert!(!out.stderr.contains("warning"), "{out}");
    let body = mock.last_request().await["body"].to_string();
    assert!(body.contains("planted-bearer-13-Zx9Yw8Vu7"), "{body}");
}

#[tokio::test]
async fn warn_sanitization_off_keeps_quiet_but_still_redacts() {
    let mock = MockProvider::start(&["--reply", "Looks fine."]);
    let client = Client::new(LOGS, "", 0);
    client.configure(&mock, true, "memory:\n  enabled: false\n");
    client
        .run(&["config", "set", key::WARNINGS_WARN_SANITIZATION, "false"])
        .assert_success();
    let out = client.run(&["logs", "web-1"]);
    out.assert_success();
    assert!(!out.stderr.contains("warning"), "{out}");
    let body = mock.last_request().await["body"].to_string();
    assert!(!body.contains("planted-bearer-13-Zx9Yw8Vu7"), "{body}");
}

#[tokio::test]
async fn a_placeholder_in_a_plan_gets_its_value_back_for_kubectl_only() {
    // The request holds a password; the model plans a command that uses its placeholder.
    let plan = plan_json(
        &[
            "create",
            "secret",
            "generic",
            "db",
            "--from-literal=password=[REDACTED:password:1]",
        ],
        "store [REDACTED:password:1] in a Secret",
    );
    let mock = MockProvider::start(&["--reply", &plan]);
    let client = Client::with_pods();
    client.configure(&mock, true, "memory:\n  enabled: false\n");
    let out = client.run(&[
        "vibe",
        "create a secret db with password=hunter2-xyz",
        "--yes",
    ]);
    out.assert_success();
    assert_eq!(
        client.kubectl_runs(),
        ["create secret generic db --from-literal=password=hunter2-xyz"]
    );
    assert!(!out.stdout.contains("hunter2-xyz"), "never shown\n{out}");
    assert!(out.stdout.contains("[REDACTED:password:1]"), "{out}");
    for r in mock.requests().await {
        assert!(!r["body"].to_string().contains("hunter2-xyz"), "{r}");
    }
    let audit = std::fs::read_to_string(client.dir().join("audit.log")).expect("audit");
    assert!(!audit.contains("hunter2-xyz"), "{audit}");
}

#[tokio::test]
async fn a_placeholder_the_model_invented_runs_nothing() {
    let plan = plan_json(
        &["delete", "secret", "[REDACTED:k8s-secret-data:7]"],
        "delete it",
    );
    let mock = MockProvider::start(&["--reply", &plan]);
    let client = Client::with_pods();
    client.configure(&mock, true, "memory:\n  enabled: false\n");
    let out = client.fails(&["vibe", "delete the secret", "--yes"]);
    assert!(
        out.stderr.contains("[REDACTED:k8s-secret-data:7]"),
        "the error names the placeholder\n{out}"
    );
    assert!(client.kubectl_runs().is_empty());
}

#[tokio::test]
async fn an_unwritable_audit_log_stops_the_command_before_the_model_is_called() {
    let mock = MockProvider::start(&["--reply", "Looks fine."]);
    let client = Client::with_pods();
    let blocked = client.path().join("not-a-dir");
    std::fs::write(&blocked, "a file where a directory should be").expect("write");
    client.configure(
        &mock,
        true,
        &format!(
            "memory:\n  enabled: false\nsecurity:\n  audit_log_path: {}\n",
            blocked.join("audit.log").display()
        ),
    );
    let out = client.fails(&["get", "pods"]);
    assert!(out.stderr.contains("audit"), "{out}");
    assert!(out.stderr.contains(key::SECURITY_AUDIT_LOG_PATH), "{out}");
    assert_eq!(mock.stats().await["requests_total"], 0, "no unaudited call");
    assert!(client.kubectl_runs().is_empty());

    // With auditing off, the same config runs.
    client
        .run(&["config", "set", key::SECURITY_AUDIT_LOGGING, "false"])
        .assert_success();
    client.run(&["get", "pods"]).assert_success();
    assert!(!client.dir().join("audit.log").exists());
}

#[tokio::test]
async fn fifty_megabytes_of_output_with_bytes_that_are_not_utf8_go_out_bounded_and_redacted() {
    let mock = MockProvider::start(&["--reply", "Looks fine."]);
    let client = Client::with_pods();
    client.configure(&mock, true, "memory:\n  enabled: false\n");
    // A Secret first, 50 MB of pods (one line with bytes that are not UTF-8), a token last.
    let mut big = SECRETS_YAML.as_bytes().to_vec();
    big.extend_from_slice(b"---\nmessage: \xff\xfe not utf-8 \xc3\x28\n");
    let pod = "- name: web-7d9f8b6c5-x2k4p\n  image: registry.example.com/web@sha256:4d2f9c1e8b7a6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c\n  resourceVersion: \"48213\"\n";
    while big.len() < 50 * 1024 * 1024 {
        big.extend_from_slice(pod.as_bytes());
    }
    big.extend_from_slice(LOGS.as_bytes());
    std::fs::write(client.path().join("kubectl-stdout"), &big).expect("write");
    drop(big);
    // Redacting 50 MB takes about 0.5 s in a release build (docs/benchmarks.md) but some 40 s
    // in the debug build the tests run, longer on a loaded CI machine: a wider limit.
    let out = client.run_within(
        &["get", "secrets", "-A", "-o", "yaml"],
        std::time::Duration::from_secs(300),
    );
    out.assert_success();
    let body = mock.last_request().await["body"].to_string();
    assert!(
        body.len() < 2 * vibectl::prompts::MAX_FRAGMENT_CHARS,
        "the request is cut to size: {} bytes",
        body.len()
    );
    assert!(body.contains("characters left out"), "the cut is marked");
    assert!(
        body.contains('\u{fffd}') || body.contains("\\ufffd"),
        "lossy, not refused"
    );
    for value in PLANTED {
        assert!(!body.contains(value), "{value} reached the model");
    }
    assert!(
        body.contains("[REDACTED:k8s-secret-data:1]"),
        "the head kept its Secret, redacted"
    );
}

#[tokio::test]
async fn every_kubectl_run_is_audited_version_and_a_failed_one_included() {
    let mock = MockProvider::start(&["--reply", "Looks fine."]);
    let client = Client::new("Client Version: v1.31.0\n", "boom\n", 0);
    client.configure(&mock, true, "memory:\n  enabled: false\n");
    client.run(&["version"]).assert_success();
    let failing = Client::new("", "boom\n", 3);
    failing.configure(&mock, true, "memory:\n  enabled: false\n");
    failing.fails(&["get", "pods"]);
    let runs = |c: &Client| -> Vec<Value> {
        audit_records(&c.dir().join("audit.log"))
            .into_iter()
            .filter(|r| r["event_type"] == "command_execution")
            .collect()
    };
    let ok = runs(&client);
    assert_eq!(ok.len(), 1, "{ok:?}");
    assert_eq!(ok[0]["command_generated"], "kubectl version");
    assert_eq!(ok[0]["exit_code"], 0);
    let failed = runs(&failing);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["exit_code"], 3, "{failed:?}");
}
