//! A cache TTL of 0 is refused by `config validate`, by `serve` at start and by a reload (the
//! running config kept), each naming the key; a reload that turns the cache on applies to the
//! next call.

use vibectl::config::generated::server::key;
use vibectl::server::reload as config_reload;

use super::{on, serve, upstream_calls};
use crate::support::mock::MockProvider;
use crate::support::process;
use crate::support::server::{LIMIT, MODEL, TestServer, config_pairs, no_env, request, set};
use crate::support::spawned::command;
use crate::support::yaml::{self, entry};

/// The default test config with the cache on and a TTL of `ttl`.
fn text(mock: &MockProvider, ttl: &str) -> String {
    let mut pairs = config_pairs(mock);
    set(
        &mut pairs,
        &entry(key::MODELS_ID_CACHE_ENABLED, MODEL),
        "true",
    );
    set(
        &mut pairs,
        &entry(key::MODELS_ID_CACHE_TTL_SECONDS, MODEL),
        ttl,
    );
    yaml::config(&pairs)
}

#[tokio::test]
async fn a_ttl_of_zero_is_refused_at_validate_start_and_reload_naming_the_key() {
    let mock = MockProvider::start(&[]);
    let named = entry(key::MODELS_ID_CACHE_TTL_SECONDS, MODEL);
    let bad = text(&mock, "0");

    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("config.yaml"), &bad).expect("write");
    for args in [&["config", "validate"][..], &["serve", "--port", "0"][..]] {
        let out = process::run(&mut command(dir.path(), args), LIMIT);
        assert!(!out.status.success(), "{args:?} accepted a TTL of 0");
        assert!(out.stderr.contains(&named), "{args:?}: {}", out.stderr);
    }

    let served = serve(&mock, false, &on(300)).await;
    std::fs::write(&served.server.file, &bad).expect("write");
    let problems = config_reload::reload(
        &served.server.file,
        &[],
        &no_env,
        &served.server.state,
        &[served.server.bound],
    )
    .expect_err("a TTL of 0 is refused");
    assert!(problems.iter().any(|(k, _)| *k == named), "{problems:?}");
    let kept = &served.server.state.load().config.models[MODEL].cache;
    assert_eq!((kept.enabled, kept.ttl_seconds), (true, 300));
    let mut client = served.server.client().await;
    for _ in 0..2 {
        super::grpc_text(&mut client, request("still cached", None), &[]).await;
    }
    assert_eq!(upstream_calls(&mock).await, 1);
}

#[tokio::test]
async fn a_reload_that_turns_the_cache_on_applies_to_the_next_call() {
    let mock = MockProvider::start(&[]);
    let served = TestServer::from_text(&yaml::config(&config_pairs(&mock))).await;
    let mut client = served.client().await;
    for calls in [1, 2] {
        super::grpc_text(&mut client, request("cache me", None), &[]).await;
        assert_eq!(upstream_calls(&mock).await, calls);
    }
    served.write_config(&text(&mock, "300"));
    served
        .wait_for_metric(r#"vibectl_config_reloads_total{result="ok"} 1"#)
        .await;
    for _ in 0..2 {
        super::grpc_text(&mut client, request("cache me", None), &[]).await;
    }
    assert_eq!(upstream_calls(&mock).await, 3, "one miss, then a hit");
    // Another reload keeps the answers stored.
    served.write_config(&text(&mock, "600"));
    served
        .wait_for_metric(r#"vibectl_config_reloads_total{result="ok"} 2"#)
        .await;
    super::grpc_text(&mut client, request("cache me", None), &[]).await;
    assert_eq!(upstream_calls(&mock).await, 3, "still a hit");
}
