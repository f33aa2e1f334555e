//! `vibectl check` side by side with 0.11.6's: the same scripted model (the mock, behind our
//! server) gives both clients the same answers, and both exit with the same code: the verdict
//! 0/1/2/3, 3 for a DONE without an exit code, for a command that could change the cluster, and
//! for a model that never decides within `check_max_iterations`.

use serde_json::json;
use vibectl::config::generated::client::key;

use super::harness::{ClientDirs, OurServer, Spec};
use crate::client::Client;
use crate::client::scripted::{command, done, step};
use crate::support::mock::MockProvider;

/// A mock answering a request that names `case-N` with the replies of case N.
fn scripted(dir: &std::path::Path, cases: &[(Vec<String>, i32)]) -> MockProvider {
    let path = dir.join("script.json");
    let rules: Vec<_> = cases
        .iter()
        .enumerate()
        .map(|(i, (replies, _))| json!({ "when": format!("case-{i}:"), "replies": replies }))
        .collect();
    std::fs::write(&path, json!(rules).to_string()).expect("write the script");
    MockProvider::start(&["--script", path.to_str().expect("utf-8")])
}

#[test]
fn check_exits_as_0_11_6_does() {
    let thought = step(json!({"action_type": "THOUGHT", "text": "hmm"}));
    let cases: Vec<(Vec<String>, i32)> = vec![
        (vec![done(Some(0), "yes")], 0),
        (vec![done(Some(1), "no")], 1),
        (vec![done(Some(2), "vague")], 2),
        (vec![done(Some(3), "unknown")], 3),
        (vec![done(None, "no code")], 3),
        (vec![command(&["delete", "pod", "web-1"])], 3),
        (vec![thought], 3),
    ];
    let tmp = tempfile::tempdir().expect("temp dir");
    let mock = scripted(tmp.path(), &cases);
    let server = OurServer::start(&mock, &Spec::default());

    // 0.11.6, memory off, at most 2 steps, through our server.
    let dirs = ClientDirs::new();
    let url = server.url(Some(&server.token("py")));
    server.run(
        &mut dirs.vibectl(&["setup-proxy", "configure", "p1", &url]),
        true,
    );
    for (k, v) in [
        ("llm.model", super::harness::MODEL),
        ("memory.enabled", "false"),
        ("features.check_max_iterations", "2"),
        ("core.kubectl_command", "/bin/false"),
    ] {
        server.run(&mut dirs.vibectl(&["config", "set", k, v]), true);
    }
    // Ours, the same way.
    let client = Client::with_pods();
    client.write(&crate::support::yaml::config(&[
        (
            key::CORE_KUBECTL_COMMAND,
            client.kubectl().display().to_string(),
        ),
        (key::MEMORY_ENABLED, "false".to_owned()),
        (key::FEATURES_CHECK_MAX_ITERATIONS, "2".to_owned()),
    ]));
    let url = server.url(Some(&server.token("rs")));
    client
        .run(&["setup-proxy", "configure", "p1", &url])
        .assert_success();

    for (i, (replies, expected)) in cases.iter().enumerate() {
        let predicate = format!("case-{i}: the pods run");
        let py = server.run(&mut dirs.vibectl(&["check", &predicate]), false);
        assert_eq!(
            py.status.code(),
            Some(*expected),
            "0.11.6 on {replies:?}\n{py}"
        );
        let rs = client.run(&["check", &predicate]);
        assert_eq!(
            rs.status.code(),
            Some(*expected),
            "ours on {replies:?}\n{rs}"
        );
    }
    assert!(client.kubectl_runs().is_empty(), "the delete never ran");
}
