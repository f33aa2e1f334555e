//! The upstream provider clients (Anthropic, OpenAI, Ollama) against the mock provider process:
//! text, usage, prompt slots, structured output, error mapping, timeouts and cancellation.
//!
//! Each test runs once per provider (`providers::<provider>::<test>`) and starts its own mock,
//! so counters are never shared. Per-request behaviour is set with `[[mock:...]]` markers in
//! the user text.

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use vibectl::llm::{
    ChatRequest, ChatResponse, ProviderClient, ProviderError, ProviderKind, ProviderOptions,
    StreamEvent, Usage,
};

use crate::support::mock::MockProvider;

/// Bound on any single wait in these tests.
const LIMIT: Duration = Duration::from_secs(15);

async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, fut)
        .await
        .expect("the call did not finish in time")
}

fn options() -> ProviderOptions {
    ProviderOptions {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(10),
        request_timeout: None,
    }
}

fn client(kind: ProviderKind, mock: &MockProvider, key: Option<&str>) -> ProviderClient {
    client_with(kind, mock, key, options())
}

fn client_with(
    kind: ProviderKind,
    mock: &MockProvider,
    key: Option<&str>,
    opts: ProviderOptions,
) -> ProviderClient {
    ProviderClient::new(
        kind,
        Some(&mock.base_url(kind)),
        key.map(vibectl::config::Secret::new),
        opts,
    )
    .expect("client")
}

fn request(system: &[&str], user: &[&str]) -> ChatRequest {
    ChatRequest {
        system: system.iter().map(|s| s.to_string()).collect(),
        user: user.iter().map(|s| s.to_string()).collect(),
        model: "mock-model".into(),
        response_schema: None,
        max_tokens: Some(256),
        ..Default::default()
    }
}

fn api_path(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Anthropic => "/v1/messages",
        ProviderKind::OpenAi => "/v1/chat/completions",
        ProviderKind::Ollama => "/api/chat",
    }
}

async fn complete(c: &ProviderClient, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
    within(c.complete(req)).await
}

async fn collect(c: &ProviderClient, req: &ChatRequest) -> Vec<Result<StreamEvent, ProviderError>> {
    within(c.stream(req).collect::<Vec<_>>()).await
}

/// The text pieces of a stream that must have succeeded, and its single final usage.
fn text_and_usage(items: &[Result<StreamEvent, ProviderError>]) -> (Vec<String>, Usage) {
    let mut pieces = Vec::new();
    let mut usage = Vec::new();
    for item in items {
        match item {
            Ok(StreamEvent::Text(t)) => {
                assert!(usage.is_empty(), "text after usage: {items:?}");
                pieces.push(t.clone());
            }
            Ok(StreamEvent::Usage(u)) => usage.push(*u),
            Ok(StreamEvent::InputTokens(_) | StreamEvent::Stop(_)) => {}
            Ok(e @ (StreamEvent::ToolCall { .. } | StreamEvent::ToolArgs { .. })) => {
                panic!("a tool call in a request without tools: {e:?}")
            }
            Err(e) => panic!("stream failed: {e}"),
        }
    }
    assert_eq!(usage.len(), 1, "exactly one usage item: {items:?}");
    (pieces, usage[0])
}

/// The error a stream ended with; it must be its last item.
fn stream_error(items: &[Result<StreamEvent, ProviderError>]) -> ProviderError {
    match items.last() {
        Some(Err(e)) => {
            let errors = items.iter().filter(|i| i.is_err()).count();
            assert_eq!(errors, 1, "one error, at the end: {items:?}");
            e.clone()
        }
        _ => panic!("the stream did not end with an error: {items:?}"),
    }
}

/// Both modes fail with an error of the given code; returns (complete error, stream error).
async fn both_fail(
    kind: ProviderKind,
    mock: &MockProvider,
    marker: &str,
    code: &str,
) -> (ProviderError, ProviderError) {
    let c = client(kind, mock, None);
    let req = request(&[], &["hello", marker]);
    let e1 = complete(&c, &req).await.expect_err("complete must fail");
    assert_eq!(e1.code(), code, "complete: {e1}");
    let e2 = stream_error(&collect(&c, &req).await);
    assert_eq!(e2.code(), code, "stream: {e2}");
    (e1, e2)
}

fn planner_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "PlannerResponse",
        "type": "object",
        "properties": {
            "action": {"$ref": "#/$defs/CommandAction"}
        },
        "required": ["action"],
        "$defs": {
            "CommandAction": {
                "type": "object",
                "properties": {
                    "action_type": {"const": "COMMAND"},
                    "commands": {"type": "array", "items": {"type": "string"}},
                    "explanation": {"type": "string"}
                },
                "required": ["action_type", "commands"]
            }
        }
    })
}

async fn complete_returns_text_and_usage(kind: ProviderKind) {
    let mock = MockProvider::start(&["--reply", "the quick brown fox"]);
    let c = client(kind, &mock, None);
    let r = complete(&c, &request(&["You are terse."], &["list pods"]))
        .await
        .expect("complete");
    assert_eq!(r.text, "the quick brown fox");
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: Some(5),
            output_tokens: Some(4)
        }
    );
    let stats = mock.stats().await;
    assert_eq!(stats["requests"][api_path(kind)], 1, "{stats}");
    assert_eq!(stats["streams_started"], 0, "{stats}");
}

async fn stream_yields_chunks_then_usage(kind: ProviderKind) {
    let reply = "the quick brown fox jumps";
    let mock = MockProvider::start(&["--reply", reply, "--chunks", "3"]);
    let c = client(kind, &mock, None);
    let items = collect(&c, &request(&["You are terse."], &["list pods"])).await;
    let (pieces, usage) = text_and_usage(&items);
    assert_eq!(pieces.len(), 3, "{pieces:?}");
    assert_eq!(pieces.concat(), reply);
    assert_eq!(usage.input_tokens, Some(5));
    assert_eq!(usage.output_tokens, Some(5));
    assert!(matches!(items.last(), Some(Ok(StreamEvent::Usage(_)))));
    let stats = mock.wait_for_stat("streams_completed", 1, LIMIT).await;
    assert_eq!(stats["streams_cancelled"], 0, "{stats}");
}

const ECHOED: &str = "[system]\nSYS-A\n\nSYS-B\n[user]\nUSER-1\n\nUSER-2";

async fn system_fragments_use_the_system_slot(kind: ProviderKind) {
    let mock = MockProvider::start(&["--reply", "@echo"]);
    let c = client(kind, &mock, None);
    let req = request(&["SYS-A", "SYS-B"], &["USER-1", "USER-2"]);
    assert_eq!(complete(&c, &req).await.expect("complete").text, ECHOED);
    let (pieces, _) = text_and_usage(&collect(&c, &req).await);
    assert_eq!(pieces.concat(), ECHOED);

    let body = mock.last_request().await["body"].clone();
    match kind {
        ProviderKind::Anthropic => {
            assert_eq!(
                body["system"],
                json!([{"type": "text", "text": "SYS-A"}, {"type": "text", "text": "SYS-B"}])
            );
            assert_eq!(body["messages"].as_array().map(Vec::len), Some(1));
            assert_eq!(body["messages"][0]["role"], "user");
        }
        ProviderKind::OpenAi | ProviderKind::Ollama => {
            assert_eq!(
                body["messages"],
                json!([
                    {"role": "system", "content": "SYS-A\n\nSYS-B"},
                    {"role": "user", "content": "USER-1\n\nUSER-2"}
                ])
            );
        }
    }
}

async fn request_carries_key_model_and_stream_flags(kind: ProviderKind) {
    let mock = MockProvider::start(&["--api-key", "sk-test", "--models", "mock-model"]);
    let c = client(kind, &mock, Some("sk-test"));
    let req = request(&[], &["hello"]);
    complete(&c, &req).await.expect("complete");
    let sent = mock.last_request().await;
    assert_eq!(sent["body"]["model"], "mock-model");
    assert_eq!(sent["body"]["stream"], false);
    match kind {
        ProviderKind::Anthropic => {
            assert_eq!(sent["headers"]["x-api-key"], "sk-test");
            assert_eq!(sent["headers"]["anthropic-version"], "2023-06-01");
            assert_eq!(sent["body"]["max_tokens"], 256);
        }
        ProviderKind::OpenAi => {
            assert_eq!(sent["headers"]["authorization"], "Bearer sk-test");
            assert_eq!(sent["body"]["max_completion_tokens"], 256);
        }
        ProviderKind::Ollama => {
            assert_eq!(sent["headers"]["authorization"], "Bearer sk-test");
            assert_eq!(sent["body"]["options"]["num_predict"], 256);
        }
    }

    text_and_usage(&collect(&c, &req).await);
    let sent = mock.last_request().await;
    assert_eq!(sent["body"]["stream"], true);
    if kind == ProviderKind::OpenAi {
        assert_eq!(sent["body"]["stream_options"]["include_usage"], true);
    }
}

async fn structured_output_uses_the_native_mechanism(kind: ProviderKind) {
    let mock = MockProvider::start(&["--chunks", "4"]);
    let c = client(kind, &mock, None);
    let mut req = request(&["plan a kubectl command"], &["show me the pods"]);
    req.response_schema = Some(planner_schema());

    let text = complete(&c, &req).await.expect("complete").text;
    let doc: Value = serde_json::from_str(&text).expect("the answer is JSON");
    assert_eq!(doc["action"]["action_type"], "COMMAND");
    assert!(doc["action"]["commands"].is_array(), "{doc}");

    let mut sent_schema = planner_schema();
    sent_schema
        .as_object_mut()
        .map(|o| o.remove("$schema"))
        .expect("object");
    let body = mock.last_request().await["body"].clone();
    match kind {
        ProviderKind::Anthropic => {
            assert_eq!(body["tools"][0]["name"], "respond");
            assert_eq!(body["tools"][0]["input_schema"], sent_schema);
            assert_eq!(
                body["tool_choice"],
                json!({"type": "tool", "name": "respond"})
            );
        }
        ProviderKind::OpenAi => {
            assert_eq!(body["response_format"]["type"], "json_schema");
            assert_eq!(
                body["response_format"]["json_schema"]["name"],
                "PlannerResponse"
            );
            assert_eq!(
                body["response_format"]["json_schema"]["schema"],
                sent_schema
            );
            assert_eq!(body["response_format"]["json_schema"]["strict"], false);
        }
        ProviderKind::Ollama => assert_eq!(body["format"], sent_schema),
    }

    let (pieces, _) = text_and_usage(&collect(&c, &req).await);
    assert!(pieces.len() > 1, "streamed in pieces: {pieces:?}");
    let streamed: Value = serde_json::from_str(&pieces.concat()).expect("streamed JSON");
    assert_eq!(streamed, doc);
}

async fn http_401_is_auth(kind: ProviderKind) {
    let mock = MockProvider::start(&["--api-key", "right"]);
    let c = client(kind, &mock, Some("wrong"));
    let req = request(&[], &["hello"]);
    let e = complete(&c, &req).await.expect_err("wrong key");
    assert!(matches!(e, ProviderError::Auth { status: 401, .. }), "{e}");
    assert!(!e.is_retryable());
    assert_eq!(stream_error(&collect(&c, &req).await).code(), "auth");
}

async fn http_404_is_not_found(kind: ProviderKind) {
    let mock = MockProvider::start(&["--models", "other-model"]);
    let c = client(kind, &mock, None);
    let req = request(&[], &["hello"]);
    let e = complete(&c, &req).await.expect_err("unknown model");
    assert!(matches!(&e, ProviderError::NotFound { message } if message.contains("mock-model")));
    assert_eq!(stream_error(&collect(&c, &req).await).code(), "not_found");
}

async fn http_429_carries_retry_after(kind: ProviderKind) {
    let mock = MockProvider::start(&[]);
    let (e1, e2) = both_fail(
        kind,
        &mock,
        "[[mock:status=429,retry_after=2]]",
        "rate_limited",
    )
    .await;
    assert_eq!(e1.retry_after(), Some(Duration::from_secs(2)));
    assert_eq!(e2.retry_after(), Some(Duration::from_secs(2)));
    assert!(e1.is_retryable());
    let (e, _) = both_fail(
        kind,
        &mock,
        "[[mock:status=429,retry_after_ms=1500]]",
        "rate_limited",
    )
    .await;
    assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));
}

async fn http_500_is_server_error(kind: ProviderKind) {
    let mock = MockProvider::start(&[]);
    let (e, _) = both_fail(kind, &mock, "[[mock:status=500]]", "server_error").await;
    assert!(
        matches!(e, ProviderError::Server { status: 500, .. }),
        "{e}"
    );
    assert!(e.is_retryable());
}

async fn http_529_and_503_are_overloaded(kind: ProviderKind) {
    let mock = MockProvider::start(&[]);
    both_fail(kind, &mock, "[[mock:status=529]]", "overloaded").await;
    both_fail(kind, &mock, "[[mock:status=503]]", "overloaded").await;
}

async fn garbage_json_is_bad_response(kind: ProviderKind) {
    let mock = MockProvider::start(&[]);
    both_fail(kind, &mock, "[[mock:garbage]]", "bad_response").await;
}

async fn truncated_stream_is_bad_response(kind: ProviderKind) {
    let mock = MockProvider::start(&["--reply", "one two three four", "--chunks", "4"]);
    let c = client(kind, &mock, None);
    for marker in ["[[mock:truncate=1]]", "[[mock:truncate=abort]]"] {
        let items = collect(&c, &request(&[], &["hello", marker])).await;
        let texts = items
            .iter()
            .filter(|i| matches!(i, Ok(StreamEvent::Text(_))))
            .count();
        assert_eq!(
            texts, 2,
            "half the chunks arrive first ({marker}): {items:?}"
        );
        assert_eq!(stream_error(&items).code(), "bad_response", "{marker}");
    }
    let e = complete(&c, &request(&[], &["hello", "[[mock:truncate=1]]"]))
        .await
        .expect_err("half a body");
    assert_eq!(e.code(), "bad_response");
}

async fn error_inside_a_stream_is_mapped(kind: ProviderKind) {
    let mock = MockProvider::start(&["--reply", "one two three four", "--chunks", "4"]);
    let c = client(kind, &mock, None);
    let items = collect(&c, &request(&[], &["hello [[mock:stream_error]]"])).await;
    let answer = items
        .iter()
        .find(|i| !matches!(i, Ok(StreamEvent::InputTokens(_))));
    assert!(
        matches!(answer, Some(Ok(StreamEvent::Text(_)))),
        "{items:?}"
    );
    let e = stream_error(&items);
    let expected = match kind {
        // Ollama's in-stream errors are plain strings with no type.
        ProviderKind::Ollama => "server_error",
        ProviderKind::Anthropic | ProviderKind::OpenAi => "overloaded",
    };
    assert_eq!(e.code(), expected, "{e}");
}

async fn dropping_a_stream_cancels_upstream(kind: ProviderKind) {
    let mock = MockProvider::start(&["--chunks", "20"]);
    let c = client(kind, &mock, None);
    // The mock holds the stream open after its first chunk until the client goes away.
    let mut stream = c.stream(&request(
        &[],
        &["a long answer please [[mock:hold_after=1]]"],
    ));
    let mut first = within(stream.next()).await;
    if let Some(Ok(StreamEvent::InputTokens(_))) = first {
        first = within(stream.next()).await;
    }
    assert!(matches!(first, Some(Ok(StreamEvent::Text(_)))), "{first:?}");
    mock.wait_for_stat("streams_started", 1, LIMIT).await;
    drop(stream);
    let stats = mock.wait_for_stat("streams_cancelled", 1, LIMIT).await;
    assert_eq!(stats["streams_completed"], 0, "{stats}");
}

async fn silent_upstream_times_out(kind: ProviderKind) {
    let mock = MockProvider::start(&[]);
    let opts = ProviderOptions {
        read_timeout: Duration::from_millis(300),
        ..options()
    };
    let c = client_with(kind, &mock, None, opts);
    // A provider that never answers.
    let req = request(&[], &["hello [[mock:hang]]"]);
    let e = complete(&c, &req).await.expect_err("no answer in time");
    assert_eq!(e.code(), "timeout", "{e}");
    assert!(e.is_retryable());
    assert_eq!(stream_error(&collect(&c, &req).await).code(), "timeout");

    // A stream whose body goes silent after the response head times out too.
    let req = request(&[], &["hello [[mock:chunks=2,hold_after=0]]"]);
    assert_eq!(stream_error(&collect(&c, &req).await).code(), "timeout");
}

async fn unknown_override_is_rejected_by_the_mock(kind: ProviderKind) {
    let mock = MockProvider::start(&[]);
    let c = client(kind, &mock, None);
    let e = complete(&c, &request(&[], &["[[mock:nosuch=1]]"]))
        .await
        .expect_err("the mock refuses unknown keys");
    let ProviderError::BadRequest { status, message } = &e else {
        panic!("expected a bad request: {e}");
    };
    assert_eq!(*status, 400);
    assert!(message.contains("nosuch"), "{message}");
}

macro_rules! provider_tests {
    ($module:ident, $kind:expr, $($name:ident),* $(,)?) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($kind).await;
                }
            )*
        }
    };
}

macro_rules! for_each_provider {
    ($($name:ident),* $(,)?) => {
        provider_tests!(anthropic, vibectl::llm::ProviderKind::Anthropic, $($name),*);
        provider_tests!(openai, vibectl::llm::ProviderKind::OpenAi, $($name),*);
        provider_tests!(ollama, vibectl::llm::ProviderKind::Ollama, $($name),*);
    };
}

for_each_provider!(
    complete_returns_text_and_usage,
    stream_yields_chunks_then_usage,
    system_fragments_use_the_system_slot,
    request_carries_key_model_and_stream_flags,
    structured_output_uses_the_native_mechanism,
    http_401_is_auth,
    http_404_is_not_found,
    http_429_carries_retry_after,
    http_500_is_server_error,
    http_529_and_503_are_overloaded,
    garbage_json_is_bad_response,
    truncated_stream_is_bad_response,
    error_inside_a_stream_is_mapped,
    dropping_a_stream_cancels_upstream,
    silent_upstream_times_out,
    unknown_override_is_rejected_by_the_mock,
);

#[tokio::test]
async fn refused_connection_is_connect_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    for kind in ProviderKind::ALL {
        let base = format!("http://127.0.0.1:{port}");
        let c = ProviderClient::new(kind, Some(&base), None, options()).expect("client");
        let req = request(&[], &["hello"]);
        let e = complete(&c, &req).await.expect_err("nothing listens");
        assert_eq!(e.code(), "connect", "{kind}: {e}");
        assert!(e.is_retryable());
        assert_eq!(stream_error(&collect(&c, &req).await).code(), "connect");
    }
}

#[tokio::test]
async fn clients_can_share_one_pool() {
    let mock = MockProvider::start(&["--reply", "shared"]);
    let http = vibectl::llm::HttpClient::new(&options()).expect("pool");
    for kind in ProviderKind::ALL {
        let c = ProviderClient::with_http(kind, Some(&mock.base_url(kind)), None, &http)
            .expect("client");
        let r = complete(&c, &request(&[], &["hi"]))
            .await
            .expect("complete");
        assert_eq!(r.text, "shared");
    }
    assert_eq!(mock.stats().await["requests_total"], 3);
}

// After the macros it uses.
mod tools;
