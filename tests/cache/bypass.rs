//! Skipping the cache: `Cache-Control: no-cache` on HTTP and `x-vibectl-cache: no-cache` on
//! gRPC send the call upstream even when an answer is cached, and store the fresh answer.

use vibectl::server::cache::BYPASS_METADATA;

use super::{chat, grpc_text, http_text, lookups, on, serve, upstream_calls};
use crate::support::mock::MockProvider;
use crate::support::server::request;

/// A mock whose answers to text with `http` and `grpc` in it change from call to call.
fn changing_mock(dir: &std::path::Path) -> MockProvider {
    let script = dir.join("script.json");
    let rules = serde_json::json!([
        {"when": "http", "replies": ["http one", "http two"]},
        {"when": "grpc", "replies": ["grpc one", "grpc two"]},
    ]);
    std::fs::write(&script, rules.to_string()).expect("write the script");
    MockProvider::start(&["--script", script.to_str().expect("UTF-8 path")])
}

#[tokio::test]
async fn no_cache_goes_upstream_and_refreshes_the_answer_on_either_ingress() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mock = changing_mock(dir.path());
    let served = serve(&mock, false, &on(300)).await;

    let body = chat("http question");
    let no_cache = [("cache-control", "no-cache")];
    assert_eq!(http_text(&served, None, &[], &body).await, "http one");
    assert_eq!(http_text(&served, None, &[], &body).await, "http one");
    assert_eq!(upstream_calls(&mock).await, 1);
    assert_eq!(http_text(&served, None, &no_cache, &body).await, "http two");
    assert_eq!(upstream_calls(&mock).await, 2);
    assert_eq!(http_text(&served, None, &[], &body).await, "http two");
    assert_eq!(upstream_calls(&mock).await, 2);

    let mut client = served.server.client().await;
    let ask = || request("grpc question", None);
    let bypass = [(BYPASS_METADATA, "no-cache")];
    assert_eq!(grpc_text(&mut client, ask(), &[]).await, "grpc one");
    assert_eq!(grpc_text(&mut client, ask(), &[]).await, "grpc one");
    assert_eq!(upstream_calls(&mock).await, 3);
    assert_eq!(grpc_text(&mut client, ask(), &bypass).await, "grpc two");
    assert_eq!(upstream_calls(&mock).await, 4);
    assert_eq!(grpc_text(&mut client, ask(), &[]).await, "grpc two");
    assert_eq!(upstream_calls(&mock).await, 4);

    let text = served.gov.metrics.encode();
    assert!(text.lines().any(|l| l == lookups("bypass", 2)), "{text}");
}
