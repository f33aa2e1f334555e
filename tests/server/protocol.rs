//! The happy path of the wire protocol: GetServerInfo, Execute and StreamExecute.

use vibectl::proto::stream_chunk::ChunkType;
use vibectl::proto::{ExecuteRequest, GetServerInfoRequest, execute_response};

use super::collect_chunks;
use crate::support::mock::MockProvider;
use crate::support::server::{
    GLOBAL_ALIAS, MODEL, MODEL_ALIAS, TestServer, UPSTREAM_MODEL, config, config_pairs, execute,
    from_yaml, request, set, within,
};
use crate::support::yaml::{self, entry};
use vibectl::config::generated::server::key;

/// The mock's default reply, and its word count (the mock's output token count).
const REPLY: &str = "Hello from the mock provider.";
const REPLY_WORDS: i32 = 5;

#[tokio::test]
async fn server_info_reports_models_aliases_and_only_configured_limits() {
    let mock = MockProvider::start(&[]);
    let mut cfg = config(&mock);
    cfg.server.limits.global.max_requests_per_minute = Some(600);
    let server = TestServer::start(cfg).await;
    let mut client = server.client().await;
    let info = within(
        "GetServerInfo",
        client.get_server_info(GetServerInfoRequest {}),
    )
    .await
    .expect("GetServerInfo")
    .into_inner();

    assert_eq!(info.available_models.len(), 1, "{info:?}");
    let m = &info.available_models[0];
    assert_eq!(m.model_id, MODEL);
    assert_eq!(m.display_name, "Mock Model");
    assert_eq!(m.provider, "openai");
    assert!(m.supports_streaming);
    assert_eq!(m.max_context_length, Some(8192));
    assert_eq!(m.aliases, vec![MODEL_ALIAS.to_owned()]);

    assert_eq!(info.default_model, MODEL);
    assert_eq!(info.model_aliases.len(), 2, "{:?}", info.model_aliases);
    assert_eq!(
        info.model_aliases.get(MODEL_ALIAS).map(String::as_str),
        Some(MODEL)
    );
    assert_eq!(
        info.model_aliases.get(GLOBAL_ALIAS).map(String::as_str),
        Some(MODEL)
    );

    let limits = info.limits.expect("limits");
    assert_eq!(limits.max_requests_per_minute, Some(600));
    assert_eq!(limits.max_concurrent_requests, None);
    assert_eq!(limits.max_input_length, None);
    assert_eq!(limits.request_timeout_seconds, None);

    assert!(!info.server_version.is_empty());
    assert!(!info.server_name.is_empty());
}

#[tokio::test]
async fn server_info_says_when_a_model_does_not_stream() {
    let mock = MockProvider::start(&[]);
    let mut pairs = config_pairs(&mock);
    let streaming = entry(key::MODELS_ID_SUPPORTS_STREAMING, MODEL);
    set(&mut pairs, &streaming, "false");
    let server = TestServer::start(from_yaml(&yaml::config(&pairs))).await;
    let mut client = server.client().await;
    let info = within(
        "GetServerInfo",
        client.get_server_info(GetServerInfoRequest {}),
    )
    .await
    .expect("GetServerInfo")
    .into_inner();
    let m = &info.available_models[0];
    assert_eq!(m.model_id, MODEL);
    assert!(!m.supports_streaming, "{streaming} = false: {m:?}");
}

#[tokio::test]
async fn server_info_without_limits_sets_none() {
    let mock = MockProvider::start(&[]);
    let server = TestServer::start(config(&mock)).await;
    let mut client = server.client().await;
    let info = within(
        "GetServerInfo",
        client.get_server_info(GetServerInfoRequest {}),
    )
    .await
    .expect("GetServerInfo")
    .into_inner();
    let limits = info.limits.unwrap_or_default();
    assert_eq!(limits, Default::default(), "no limit is configured");
}

#[tokio::test]
async fn execute_returns_text_model_and_metrics() {
    let mock = MockProvider::start(&[]);
    let server = TestServer::start(config(&mock)).await;
    let mut client = server.client().await;
    let req = ExecuteRequest {
        system_fragments: vec!["be brief".into()],
        user_fragments: vec!["list the pods".into()],
        model_name: Some(MODEL.into()),
        response_model_schema: None,
        request_id: "req-42".into(),
    };
    let (id, result) = execute(&mut client, req).await;
    assert_eq!(id, "req-42");
    let execute_response::Result::Success(s) = result else {
        panic!("expected success: {result:?}");
    };
    assert_eq!(s.response_text, REPLY);
    assert_eq!(s.actual_model_used, MODEL);
    let m = s.metrics.expect("metrics");
    assert_eq!(m.input_tokens, Some(5), "words in the system and user text");
    assert_eq!(m.output_tokens, Some(REPLY_WORDS));
    assert_eq!(m.total_tokens, Some(5 + REPLY_WORDS));
    assert_eq!(m.retry_count, 0);
    assert!(m.duration_ms >= 0);
    assert!(m.timestamp > 1_600_000_000, "unix seconds: {}", m.timestamp);

    // The system fragment went in the system slot, and the upstream model name was used.
    let sent = mock.last_request().await;
    assert_eq!(sent["body"]["model"], UPSTREAM_MODEL);
    assert_eq!(sent["body"]["messages"][0]["role"], "system");
}

#[tokio::test]
async fn a_missing_request_id_is_replaced_by_a_fresh_uuid() {
    let mock = MockProvider::start(&[]);
    let server = TestServer::start(config(&mock)).await;
    let mut client = server.client().await;
    let (a, _) = execute(&mut client, request("one", None)).await;
    let (b, _) = execute(&mut client, request("two", None)).await;
    for id in [&a, &b] {
        assert!(uuid::Uuid::parse_str(id).is_ok(), "not a UUID: {id:?}");
    }
    assert_ne!(a, b, "each request gets its own id");

    let mut stream_req = request("three", None);
    stream_req.request_id = String::new();
    let chunks = within("StreamExecute", client.stream_execute(stream_req))
        .await
        .expect("StreamExecute")
        .into_inner();
    let ids: Vec<String> = within("the stream", async {
        use futures_util::StreamExt;
        chunks
            .map(|c| c.expect("chunk").request_id)
            .collect::<Vec<_>>()
            .await
    })
    .await;
    assert!(uuid::Uuid::parse_str(&ids[0]).is_ok(), "{ids:?}");
    assert!(
        ids.iter().all(|i| i == &ids[0]),
        "one id per stream: {ids:?}"
    );
}

#[tokio::test]
async fn aliases_resolve_to_the_model_id() {
    let mock = MockProvider::start(&[]);
    let server = TestServer::start(config(&mock)).await;
    let mut client = server.client().await;
    for name in [MODEL_ALIAS, GLOBAL_ALIAS, MODEL] {
        match execute(&mut client, request("hi", Some(name))).await.1 {
            execute_response::Result::Success(s) => {
                assert_eq!(s.actual_model_used, MODEL, "requested {name}")
            }
            execute_response::Result::Error(e) => panic!("requested {name}: {e:?}"),
        }
        let sent = mock.last_request().await;
        assert_eq!(sent["body"]["model"], UPSTREAM_MODEL, "requested {name}");
    }
}

#[tokio::test]
async fn stream_sends_text_chunks_then_complete_then_final_metrics() {
    let mock = MockProvider::start(&["--chunks", "3"]);
    let server = TestServer::start(config(&mock)).await;
    let mut client = server.client().await;
    let mut req = request("stream please", Some(MODEL_ALIAS));
    req.request_id = "stream-1".into();
    let resp = within("StreamExecute", client.stream_execute(req))
        .await
        .expect("StreamExecute")
        .into_inner();
    let chunks = collect_chunks(resp).await;
    let n = chunks.len();
    assert!(n >= 4, "{chunks:?}");
    let texts: Vec<&str> = chunks[..n - 2]
        .iter()
        .map(|c| match c {
            ChunkType::TextChunk(t) => t.as_str(),
            other => panic!("expected only text before complete: {other:?}"),
        })
        .collect();
    assert!(texts.len() >= 2, "{texts:?}");
    assert_eq!(texts.concat(), REPLY);
    match &chunks[n - 2] {
        ChunkType::Complete(c) => assert_eq!(c.actual_model_used, MODEL),
        other => panic!("expected complete: {other:?}"),
    }
    match &chunks[n - 1] {
        ChunkType::FinalMetrics(m) => {
            assert_eq!(m.output_tokens, Some(REPLY_WORDS));
            assert_eq!(m.retry_count, 0);
        }
        other => panic!("expected final_metrics: {other:?}"),
    }
}

#[tokio::test]
async fn stream_chunks_arrive_as_they_are_produced() {
    let mock = MockProvider::start(&["--chunks", "3"]);
    let server = TestServer::start(config(&mock)).await;
    let mut client = server.client().await;
    // The mock sends its first chunk and holds the rest at its gate: a proxy that buffered the
    // stream would deliver nothing until the release.
    let mut stream = within(
        "StreamExecute",
        client.stream_execute(request("[[mock:gate=1]] slowly", None)),
    )
    .await
    .expect("StreamExecute")
    .into_inner();
    let first = within("the first chunk", stream.message())
        .await
        .expect("chunk")
        .and_then(|c| c.chunk_type);
    assert!(
        matches!(first, Some(ChunkType::TextChunk(_))),
        "first chunk: {first:?}"
    );
    let stats = mock.stats().await;
    assert_eq!(stats["streams_gated"], 1, "{stats}");
    assert_eq!(stats["releases"], 0, "{stats}");
    mock.release().await;
    let rest = crate::server::collect_chunks(stream).await;
    let texts = rest
        .iter()
        .filter(|c| matches!(c, ChunkType::TextChunk(_)))
        .count();
    assert_eq!(texts, 2, "{rest:?}");
}
