//! The examples stay true: the Kubernetes server config is valid for our schema, and the
//! Grafana dashboard only queries metrics the server exports.
//!
//! - `loadgen`: the benchmarks' load generator times what it says it times.

mod loadgen;

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

#[test]
fn the_kubernetes_server_config_is_valid() {
    let path = root().join("examples/kubernetes/server-config.yaml");
    let loaded = vibectl::config::SERVER
        .load(&path)
        .expect("the example config parses");
    vibectl::config::SERVER
        .validate(&loaded)
        .unwrap_or_else(|e| panic!("examples/kubernetes/server-config.yaml is invalid: {e}"));
    assert!(loaded.text.is_some(), "the example config exists");
}

#[test]
fn the_kubernetes_manifests_parse_and_probe_the_health_endpoints() {
    let text = std::fs::read_to_string(root().join("examples/kubernetes/deployment.yaml"))
        .expect("readable");
    let docs: Vec<serde_json::Value> = text
        .split("\n---\n")
        .map(|d| {
            serde_saphyr::from_str(d).unwrap_or_else(|e| panic!("a manifest does not parse: {e}"))
        })
        .collect();
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        ["Secret", "Deployment", "Service", "Deployment", "Service"]
    );
    let server = &docs[3]["spec"]["template"];
    assert_eq!(
        server["metadata"]["annotations"]["prometheus.io/scrape"],
        "true"
    );
    let container = &server["spec"]["containers"][0];
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(docs[3]["spec"]["replicas"], 3);
}

/// The metrics text after one of everything (families without samples print nothing).
fn sample_metrics() -> String {
    use vibectl::server::catalog::ModelDef;
    use vibectl::server::governance::LimitType;
    let m = vibectl::server::governance::metrics::Metrics::new();
    let model = ModelDef {
        id: "m".into(),
        provider: "openai".into(),
        upstream: "m".into(),
        display_name: "m".into(),
        aliases: Vec::new(),
        max_context_length: None,
        supports_streaming: true,
        input_cost_per_mtok: Some(1.0),
        output_cost_per_mtok: Some(1.0),
        configured: true,
    };
    m.request("alice");
    m.refused("alice", LimitType::Rpm);
    m.in_flight("alice", 1);
    m.request_done("Execute", 0.01);
    m.first_chunk(&model, 0.01);
    m.finished("alice", &model, Some(0.01), 10, 10, Some(0.1));
    m.upstream_error(&model, "timeout", 0.01);
    m.redis_failure(true);
    m.reload(true);
    m.encode()
}

#[test]
fn the_dashboard_queries_only_exported_metrics() {
    let text = std::fs::read_to_string(root().join("examples/grafana/vibectl-server.json"))
        .expect("readable");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let exported = sample_metrics();
    let mut checked = 0;
    for panel in dash["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if !word.starts_with("vibectl_") {
                    continue;
                }
                let base = word
                    .strip_suffix("_bucket")
                    .or_else(|| word.strip_suffix("_total"))
                    .unwrap_or(word);
                assert!(
                    exported.contains(&format!("# TYPE {base} ")),
                    "panel {:?} queries {word}, which the server does not export",
                    panel["title"]
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 8,
        "the dashboard queries the metrics ({checked} found)"
    );
}
