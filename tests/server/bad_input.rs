//! Bad requests and upstream failures: each becomes an in-band error with its own code (gRPC
//! status OK), or an `error` chunk in a stream; none hangs, and the server keeps serving.

use serde_json::Value;
use tonic::transport::Channel;
use vibectl::config::generated::server::{ModelEntry, ProviderEntry, key};
use vibectl::proto::stream_chunk::ChunkType;
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;
use vibectl::proto::{ExecuteError, ExecuteRequest, execute_response};
use vibectl::server::exec::code;

use super::collect_chunks;
use crate::support::mock::MockProvider;
use crate::support::server::{
    LIMIT, MODEL, PROVIDER, TestServer, assert_still_serves, config, config_pairs, execute,
    from_yaml, request, set, unset, within,
};
use crate::support::yaml::{self, entry};

/// Execute `req` and return its in-band error (panics on success or a gRPC status).
async fn execute_error(
    client: &mut VibectlLlmProxyClient<Channel>,
    req: ExecuteRequest,
) -> ExecuteError {
    match execute(client, req).await.1 {
        execute_response::Result::Error(e) => e,
        execute_response::Result::Success(s) => panic!("expected an error, got {s:?}"),
    }
}

/// Stream `req`; the stream must end with one `error` chunk (after any text), and no
/// `complete` or `final_metrics`.
async fn stream_error(
    client: &mut VibectlLlmProxyClient<Channel>,
    req: ExecuteRequest,
) -> ExecuteError {
    let resp = within("StreamExecute", client.stream_execute(req))
        .await
        .expect("StreamExecute")
        .into_inner();
    let mut chunks = collect_chunks(resp).await;
    match chunks.pop() {
        Some(ChunkType::Error(e)) => {
            assert!(
                chunks.iter().all(|c| matches!(c, ChunkType::TextChunk(_))),
                "only text may come before the error: {chunks:?}"
            );
            e
        }
        other => panic!("the stream did not end with an error chunk: {other:?} after {chunks:?}"),
    }
}

fn details(e: &ExecuteError) -> Value {
    let text = e.error_details.as_deref().expect("error details");
    serde_json::from_str(text).unwrap_or_else(|_| panic!("details are not JSON: {text}"))
}

/// How many API requests the mock has received.
async fn upstream_calls(mock: &MockProvider) -> u64 {
    mock.stats().await["requests_total"]
        .as_u64()
        .expect("requests_total")
}

async fn start(mock: &MockProvider, max_retries: i64) -> TestServer {
    let mut pairs = config_pairs(mock);
    let retries = entry(key::PROVIDERS_PROVIDER_MAX_RETRIES, PROVIDER);
    set(&mut pairs, &retries, &max_retries.to_string());
    TestServer::start(from_yaml(&yaml::config(&pairs))).await
}

#[tokio::test]
async fn no_fragments_is_an_invalid_request() {
    let mock = MockProvider::start(&[]);
    let server = start(&mock, 0).await;
    let mut client = server.client().await;
    let mut req = request("", None);
    req.system_fragments.clear();
    req.user_fragments.clear();
    req.request_id = "empty-1".into();
    let resp = within("Execute", client.execute(req.clone()))
        .await
        .expect("an in-band error, not a gRPC status")
        .into_inner();
    assert_eq!(resp.request_id, "empty-1");
    match resp.result {
        Some(execute_response::Result::Error(e)) => assert_eq!(e.error_code, code::INVALID_REQUEST),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        stream_error(&mut client, req).await.error_code,
        code::INVALID_REQUEST
    );
    assert_eq!(upstream_calls(&mock).await, 0, "nothing was sent upstream");
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn an_unknown_model_is_model_not_found_listing_the_available_ones() {
    let mock = MockProvider::start(&[]);
    let server = start(&mock, 0).await;
    let mut client = server.client().await;
    let e = execute_error(&mut client, request("hi", Some("no-such-model"))).await;
    assert_eq!(e.error_code, code::MODEL_NOT_FOUND);
    assert!(e.error_message.contains("no-such-model"), "{e:?}");
    assert!(
        e.error_message.contains(MODEL),
        "the available models are listed: {e:?}"
    );
    let s = stream_error(&mut client, request("hi", Some("no-such-model"))).await;
    assert_eq!(s.error_code, code::MODEL_NOT_FOUND);
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn no_model_and_no_default_is_no_model() {
    let mock = MockProvider::start(&[]);
    let mut cfg = config(&mock);
    cfg.server.default_model = None;
    let server = TestServer::start(cfg).await;
    let mut client = server.client().await;
    let e = execute_error(&mut client, request("hi", None)).await;
    assert_eq!(e.error_code, code::NO_MODEL);
    let e = execute_error(&mut client, request("hi", Some(""))).await;
    assert_eq!(e.error_code, code::NO_MODEL, "an empty name is no name");
    match execute(&mut client, request("hi", Some(MODEL))).await.1 {
        execute_response::Result::Success(s) => assert_eq!(s.actual_model_used, MODEL),
        other => panic!("naming the model still works: {other:?}"),
    }
}

#[tokio::test]
async fn a_provider_without_a_key_is_provider_not_configured_and_says_how_to_fix_it() {
    let mock = MockProvider::start(&[]);
    let mut cfg = config(&mock);
    // The public OpenAI endpoint and no key anywhere (the test server's environment is empty,
    // so OPENAI_API_KEY and VIBECTL_OPENAI_API_KEY of this machine are not read).
    cfg.providers
        .insert("openai".into(), ProviderEntry::default());
    cfg.models.insert(
        "gpt-4o".into(),
        ModelEntry {
            provider: Some("openai".into()),
            ..ModelEntry::default()
        },
    );
    let server = TestServer::start(cfg).await;
    let mut client = server.client().await;
    let e = execute_error(&mut client, request("hi", Some("gpt-4o"))).await;
    assert_eq!(e.error_code, code::PROVIDER_NOT_CONFIGURED);
    assert!(e.error_message.contains("providers.openai.key"), "{e:?}");
    assert!(e.error_message.contains("VIBECTL_OPENAI_API_KEY"), "{e:?}");
    let s = stream_error(&mut client, request("hi", Some("gpt-4o"))).await;
    assert_eq!(s.error_code, code::PROVIDER_NOT_CONFIGURED);
    assert_eq!(upstream_calls(&mock).await, 0);
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn a_three_megabyte_fragment_goes_through_whole() {
    const WORDS: usize = 600_000; // "word " x 600 000 = 3 MB
    let mock = MockProvider::start(&[]);
    let server = start(&mock, 0).await;
    let mut client = server.client().await;
    let req = ExecuteRequest {
        user_fragments: vec!["word ".repeat(WORDS)],
        ..ExecuteRequest::default()
    };
    match execute(&mut client, req).await.1 {
        execute_response::Result::Success(s) => {
            let m = s.metrics.expect("metrics");
            assert_eq!(
                m.input_tokens,
                Some(WORDS as i32),
                "every word reached the provider"
            );
        }
        execute_response::Result::Error(e) => panic!("{e:?}"),
    }
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn a_fragment_over_the_message_limit_is_refused_cleanly() {
    let mock = MockProvider::start(&[]);
    let server = start(&mock, 0).await;
    let mut client = server.client().await;
    let req = ExecuteRequest {
        user_fragments: vec!["x".repeat(5 * 1024 * 1024)],
        ..ExecuteRequest::default()
    };
    let status = within("Execute", client.execute(req))
        .await
        .expect_err("a 5 MB message is over the gRPC limit");
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    assert_eq!(upstream_calls(&mock).await, 0);
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn upstream_401_is_provider_auth_failed_and_not_retried() {
    let mock = MockProvider::start(&[]);
    let server = start(&mock, 2).await;
    let mut client = server.client().await;
    let e = execute_error(&mut client, request("[[mock:status=401]] hi", None)).await;
    assert_eq!(e.error_code, code::PROVIDER_AUTH_FAILED);
    assert_eq!(details(&e)["retry_count"], 0);
    assert_eq!(
        upstream_calls(&mock).await,
        1,
        "a refused key is not retried"
    );
    let s = stream_error(&mut client, request("[[mock:status=401]] hi", None)).await;
    assert_eq!(s.error_code, code::PROVIDER_AUTH_FAILED);
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn upstream_404_is_upstream_model_not_found() {
    let mock = MockProvider::start(&[]);
    let server = start(&mock, 2).await;
    let mut client = server.client().await;
    let e = execute_error(&mut client, request("[[mock:status=404]] hi", None)).await;
    assert_eq!(e.error_code, code::UPSTREAM_MODEL_NOT_FOUND);
    assert_eq!(details(&e)["model"], MODEL);
    assert_eq!(upstream_calls(&mock).await, 1);
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn upstream_429_is_retried_per_max_retries_then_provider_rate_limited() {
    let mock = MockProvider::start(&[]);
    let server = start(&mock, 2).await;
    let mut client = server.client().await;
    let marker = "[[mock:status=429,retry_after_ms=20]] hi";
    let e = execute_error(&mut client, request(marker, None)).await;
    assert_eq!(e.error_code, code::PROVIDER_RATE_LIMITED);
    let d = details(&e);
    assert_eq!(d["retry_count"], 2, "{d}");
    assert_eq!(d["retry_after_ms"], 20, "{d}");
    assert_eq!(d["provider"], PROVIDER, "{d}");
    assert_eq!(
        upstream_calls(&mock).await,
        3,
        "one call and max_retries = 2 retries"
    );

    let s = stream_error(&mut client, request(marker, None)).await;
    assert_eq!(s.error_code, code::PROVIDER_RATE_LIMITED);
    assert_eq!(details(&s)["retry_count"], 2);
    assert_eq!(upstream_calls(&mock).await, 6);
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn a_transient_500_is_retried_and_the_retry_is_counted() {
    let mock = MockProvider::start(&[]);
    let server = start(&mock, 2).await;
    let mut client = server.client().await;
    let req = request("[[mock:status=500,fail_times=1,fail_id=unary]] hi", None);
    match execute(&mut client, req).await.1 {
        execute_response::Result::Success(s) => {
            assert_eq!(s.metrics.expect("metrics").retry_count, 1)
        }
        execute_response::Result::Error(e) => panic!("the retry should have succeeded: {e:?}"),
    }
    assert_eq!(upstream_calls(&mock).await, 2);

    let req = request("[[mock:status=500,fail_times=1,fail_id=stream]] hi", None);
    let resp = within("StreamExecute", client.stream_execute(req))
        .await
        .expect("StreamExecute")
        .into_inner();
    match collect_chunks(resp).await.last() {
        Some(ChunkType::FinalMetrics(m)) => assert_eq!(m.retry_count, 1),
        other => panic!("the retried stream did not complete: {other:?}"),
    }
    assert_eq!(upstream_calls(&mock).await, 4);
}

#[tokio::test]
async fn upstream_500_is_provider_unavailable_after_the_retries() {
    let mock = MockProvider::start(&[]);
    let server = start(&mock, 1).await;
    let mut client = server.client().await;
    let e = execute_error(&mut client, request("[[mock:status=500]] hi", None)).await;
    assert_eq!(e.error_code, code::PROVIDER_UNAVAILABLE);
    assert_eq!(details(&e)["retry_count"], 1);
    assert_eq!(upstream_calls(&mock).await, 2);
    let s = stream_error(&mut client, request("[[mock:status=500]] hi", None)).await;
    assert_eq!(s.error_code, code::PROVIDER_UNAVAILABLE);
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn garbage_json_is_bad_provider_response() {
    let mock = MockProvider::start(&[]);
    let server = start(&mock, 2).await;
    let mut client = server.client().await;
    let e = execute_error(&mut client, request("[[mock:garbage=1]] hi", None)).await;
    assert_eq!(e.error_code, code::BAD_PROVIDER_RESPONSE);
    assert_eq!(
        upstream_calls(&mock).await,
        1,
        "a bad answer is not retried"
    );
    let s = stream_error(&mut client, request("[[mock:garbage=1]] hi", None)).await;
    assert_eq!(s.error_code, code::BAD_PROVIDER_RESPONSE);
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn a_stream_cut_half_way_ends_with_an_error_chunk() {
    let mock = MockProvider::start(&["--chunks", "4"]);
    let server = start(&mock, 2).await;
    let mut client = server.client().await;
    for how in ["1", "abort"] {
        let req = request(&format!("[[mock:truncate={how}]] hi"), None);
        let e = stream_error(&mut client, req).await;
        assert!(
            [code::BAD_PROVIDER_RESPONSE, code::PROVIDER_UNAVAILABLE]
                .contains(&e.error_code.as_str()),
            "truncate={how}: {e:?}"
        );
    }
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn a_client_that_goes_away_mid_stream_cancels_the_upstream_stream() {
    let mock = MockProvider::start(&["--chunks", "4"]);
    let server = start(&mock, 0).await;
    let mut client = server.client().await;
    let mut stream = within(
        "StreamExecute",
        client.stream_execute(request("[[mock:hold_after=1]] hi", None)),
    )
    .await
    .expect("StreamExecute")
    .into_inner();
    let first = within("the first chunk", stream.message())
        .await
        .expect("the first chunk")
        .and_then(|c| c.chunk_type);
    assert!(matches!(first, Some(ChunkType::TextChunk(_))), "{first:?}");
    drop(stream);
    let stats = mock.wait_for_stat("streams_cancelled", 1, LIMIT).await;
    assert_eq!(stats["streams_completed"], 0, "{stats}");
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn a_provider_slower_than_its_timeout_seconds_fails_and_a_patient_one_waits() {
    let mock = MockProvider::start(&[]);
    let mut pairs = config_pairs(&mock);
    let timeout = entry(key::PROVIDERS_PROVIDER_TIMEOUT_SECONDS, PROVIDER);
    set(&mut pairs, &timeout, "0.2");
    let server = TestServer::start(from_yaml(&yaml::config(&pairs))).await;
    let mut client = server.client().await;
    // A provider that never answers: any answer at all shows the timeout did not wait.
    let e = execute_error(&mut client, request("[[mock:hang]] are you there", None)).await;
    assert!(
        [code::TIMEOUT, code::PROVIDER_UNAVAILABLE].contains(&e.error_code.as_str()),
        "{timeout} = 0.2 and no answer ever: {e:?}"
    );
    // The fixture's 10 seconds wait for a provider that answers after 1.5 s (the delay is the
    // scenario, a slow provider, not a synchronisation).
    let slow = "[[mock:delay_ms=1500]] take your time";
    let server = TestServer::start(config(&mock)).await;
    let mut client = server.client().await;
    match execute(&mut client, request(slow, None)).await.1 {
        execute_response::Result::Success(s) => assert_eq!(s.actual_model_used, MODEL),
        execute_response::Result::Error(e) => panic!("{timeout} = 10 did not wait: {e:?}"),
    }
}

#[tokio::test]
async fn a_provider_key_file_is_the_key_sent_upstream() {
    const FILE_KEY: &str = "sk-from-a-file";
    let mock = MockProvider::start(&["--api-key", FILE_KEY]);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("provider.key");
    std::fs::write(&file, format!("{FILE_KEY}\n")).expect("write the key file");
    let mut pairs = config_pairs(&mock);
    unset(&mut pairs, &entry(key::PROVIDERS_PROVIDER_KEY, PROVIDER));
    let key_file = entry(key::PROVIDERS_PROVIDER_KEY_FILE, PROVIDER);
    set(
        &mut pairs,
        &key_file,
        &format!("{:?}", file.display().to_string()),
    );
    let server = TestServer::start(from_yaml(&yaml::config(&pairs))).await;
    let mut client = server.client().await;
    match execute(&mut client, request("hi", None)).await.1 {
        execute_response::Result::Success(s) => assert_eq!(s.actual_model_used, MODEL),
        execute_response::Result::Error(e) => panic!("the key of {key_file} was not sent: {e:?}"),
    }
    let sent = mock.last_request().await;
    assert_eq!(
        sent["headers"]["authorization"],
        format!("Bearer {FILE_KEY}"),
        "{sent}"
    );
    // Without the file the mock refuses the call.
    let mut pairs = config_pairs(&mock);
    unset(&mut pairs, &entry(key::PROVIDERS_PROVIDER_KEY, PROVIDER));
    let server = TestServer::start(from_yaml(&yaml::config(&pairs))).await;
    let mut client = server.client().await;
    let e = execute_error(&mut client, request("hi", None)).await;
    assert_eq!(e.error_code, code::PROVIDER_AUTH_FAILED, "{e:?}");
}
