//! Audit logs cross both ways: a file vibectl 0.11.6's own `AuditLogger` wrote (all three of its
//! event types, with what its sanitizer found) reads back through `vibectl audit show`, `info`
//! and `export`, extra fields kept; and 0.11.6's reader takes every line our client writes.

use serde_json::Value;

use crate::client::Client;
use crate::support::mock::MockProvider;
use crate::support::python;

#[tokio::test]
async fn a_file_0_11_6_wrote_reads_back_and_0_11_6_reads_ours() {
    let client = Client::with_pods();
    let mock = MockProvider::start(&["--reply", "Two pods run."]);
    client.configure(&mock, true, "memory:\n  enabled: false\n");
    let theirs = client.dir().join("audit-prod.log");
    let wrote = python::run_ok(&mut python::driver(
        "audit_log.py",
        &["write", theirs.to_str().expect("utf-8"), "prod"],
    ));
    let ids: Vec<&str> = wrote["request_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().expect("an id"))
        .collect();
    assert_eq!(ids.len(), 3, "{wrote}");

    let out = client.run(&["audit", "info", "--profile", "prod"]);
    out.assert_success();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("entries:") && l.split_whitespace().nth(1) == Some("3")),
        "three entries\n{out}"
    );
    let out = client.run(&["audit", "show", "--profile", "prod"]);
    out.assert_success();
    assert!(out.stdout.contains("k8s-token"), "{out}");
    assert!(out.stdout.contains("gpt-4o"), "{out}");
    assert!(!out.stderr.contains("warning"), "every line parses\n{out}");
    let out = client.run(&["audit", "export", "--format", "json", "--profile", "prod"]);
    out.assert_success();
    let exported: Value = serde_json::from_str(&out.stdout).expect("a JSON array");
    let records = exported.as_array().expect("an array");
    let got: Vec<&str> = records
        .iter()
        .map(|r| r["request_id"].as_str().expect("an id"))
        .collect();
    assert_eq!(got, ids);
    assert_eq!(
        records[2]["server_url"], "vibectl-server://llm.example.com:443",
        "a field we do not model is kept"
    );
    assert_eq!(records[0]["command_generated"], "kubectl get pods");

    // The other way: our records, read by 0.11.6.
    client.run(&["get", "pods"]).assert_success();
    let ours = client.dir().join("audit.log");
    let read = python::run_ok(&mut python::driver(
        "audit_log.py",
        &["read", ours.to_str().expect("utf-8")],
    ));
    let entries = read["entries"].as_array().expect("entries");
    let lines = std::fs::read_to_string(&ours).expect("our audit log");
    assert_eq!(entries.len(), lines.lines().count(), "{read}");
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["event_type"].as_str().expect("an event type"))
        .collect();
    assert_eq!(kinds, ["command_execution", "llm_request"], "{read}");
}
