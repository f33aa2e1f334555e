//! Config edits while serving: a valid one applies to the next request and leaves open streams
//! alone; an invalid or half-written one is refused and the running config stays.

use vibectl::proto::{GetServerInfoRequest, stream_chunk::ChunkType};
use vibectl::server::reload as config_reload;

use super::{config_text, held, refusal};
use crate::support::mock::MockProvider;
use crate::support::server::TestServer;
use crate::support::server::{no_env, request, within};

/// The max_input_length GetServerInfo reports.
async fn reported_input_limit(served: &TestServer) -> Option<i32> {
    let mut client = served.client().await;
    within(
        "GetServerInfo",
        client.get_server_info(GetServerInfoRequest {}),
    )
    .await
    .expect("GetServerInfo")
    .into_inner()
    .limits
    .and_then(|l| l.max_input_length)
}

#[tokio::test]
async fn an_edit_changes_the_limit_for_new_calls_and_keeps_open_streams() {
    let mock = MockProvider::start(&[]);
    let served =
        TestServer::from_text(&config_text(&mock, "global:\n  max_input_length: 1000", "")).await;
    let mut client = served.client().await;
    let mut open = client
        .stream_execute(request(&held(6), None))
        .await
        .expect("admitted")
        .into_inner();
    let first = within("the first chunk", open.message())
        .await
        .expect("ok")
        .expect("a chunk");
    assert!(matches!(first.chunk_type, Some(ChunkType::TextChunk(_))));

    served.write_config(&config_text(&mock, "global:\n  max_input_length: 20", ""));
    served
        .wait_for_metric(r#"vibectl_config_reloads_total{result="ok"} 1"#)
        .await;
    assert_eq!(reported_input_limit(&served).await, Some(20));
    let status = client
        .execute(request("this is longer than twenty characters", None))
        .await
        .expect_err("the new limit applies");
    assert_eq!(refusal(&status).0, "input");

    // The stream opened before the edit runs to its end on the same connection.
    mock.release().await;
    let mut last = None;
    while let Some(c) = within("the open stream", open.message())
        .await
        .expect("not dropped")
    {
        last = c.chunk_type;
    }
    assert!(matches!(last, Some(ChunkType::FinalMetrics(_))), "{last:?}");
    assert_eq!(mock.stats().await["streams_completed"], 1);
}

#[tokio::test]
async fn invalid_or_half_written_edits_leave_the_running_config() {
    let mock = MockProvider::start(&[]);
    let good = config_text(&mock, "global:\n  max_input_length: 500", "");
    let served = TestServer::from_text(&good).await;

    // Out of range, and an unknown per-token field: refused, every key named.
    let bad = config_text(
        &mock,
        "global:\n  max_input_length: 0\nper_token:\n  alice:\n    max_rpm: 3",
        "",
    );
    std::fs::write(&served.file, &bad).expect("write");
    let problems =
        config_reload::reload(&served.file, &[], &no_env, &served.state, &[served.bound])
            .expect_err("an invalid config is refused");
    let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        keys.contains(&"server.limits.global.max_input_length"),
        "{problems:?}"
    );
    assert!(
        keys.contains(&"server.limits.per_token.alice.max_rpm"),
        "{problems:?}"
    );
    assert_eq!(reported_input_limit(&served).await, Some(500));

    // The watcher refuses it too, and then a half-written file.
    served
        .wait_for_metric(r#"vibectl_config_reloads_total{result="refused"} 1"#)
        .await;
    let half = &good[..good.find("providers:").expect("providers section") + 12];
    served.write_config(&format!("{half}\n  mock: [kind"));
    served
        .wait_for_metric(r#"vibectl_config_reloads_total{result="refused"} 2"#)
        .await;
    assert_eq!(reported_input_limit(&served).await, Some(500));
    let mut client = served.client().await;
    let resp = client
        .execute(request("still served", None))
        .await
        .expect("still serving");
    assert!(resp.into_inner().result.is_some());
    assert!(!served.gov.metrics.encode().contains(r#"result="ok""#));
}

#[tokio::test]
async fn a_reload_cannot_turn_auth_off_on_an_open_address() {
    let mock = MockProvider::start(&[]);
    let jwt = "jwt:\n  enabled: true\n  secret_key: reload-test-secret\n";
    let text = |extra: &str| config_text(&mock, "global:\n  max_input_length: 500", extra);
    // Bound to every address (reached through 127.0.0.1 only).
    let served = TestServer::from_text_on(&text(jwt), "0.0.0.0").await;
    std::fs::write(&served.file, text("jwt:\n  enabled: false\n")).expect("write");
    let problems =
        config_reload::reload(&served.file, &[], &no_env, &served.state, &[served.bound])
            .expect_err("auth stays on");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, "jwt.enabled");
    assert!(served.state.load().verifier.is_some());
}
