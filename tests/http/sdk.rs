//! The official `openai` SDK against our server: models, whole and streamed answers with the
//! usage the mock reported (recorded once, marked `openai`), JSON schema output, its own retry
//! after our 429, a revoked token, gRPC and HTTP sharing one rate limit and one quota (in
//! memory and in Redis), and tool round trips and stop reasons with models served in either
//! format.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use serde_json::{Value, json};
use tonic::Code;
use vibectl::config::generated::server::key;
use vibectl::llm::ProviderKind;
use vibectl::proto::execute_response;

use super::{Served, token};
use crate::governance::redis::RedisServer;
use crate::support::mock::MockProvider;
use crate::support::process::KillOnDrop;
use crate::support::python::{DRIVER_LIMIT, driver, run_ok};
use crate::support::server::{MODEL, authorized, request, within};

/// The mock's default answer and its word count (the mock's output tokens).
const HELLO: &str = "Hello from the mock provider.";
const HELLO_WORDS: u64 = 5;
/// The driver's system text ("You are terse.") and default prompt ("say hello"): five words,
/// the mock's input tokens.
const PROMPT_WORDS: u64 = 5;

/// Run `openai_sdk.py BASE TOKEN SCENARIO ARGS` off the runtime; its JSON.
async fn sdk(served: &Served, token: &str, scenario: &str, args: &[&str]) -> Value {
    let mut all = vec![served.base(), token.to_owned(), scenario.to_owned()];
    all.extend(args.iter().map(|s| s.to_string()));
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        run_ok(&mut driver("openai_sdk.py", &refs))
    })
    .await
    .expect("the driver task")
}

/// `openai_sdk.py BASE TOKEN session` running beside the test: the SDK loaded once, its calls
/// made when the test asks, so they can fall between the test's own calls in one rate window.
struct Session {
    child: KillOnDrop,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Session {
    /// Start the driver and wait (bounded) until the SDK is loaded.
    fn start(served: &Served, token: &str) -> Session {
        let base = served.base();
        let mut cmd = driver("openai_sdk.py", &[&base, token, "session"]);
        let child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start openai_sdk.py session");
        let mut child = KillOnDrop(child);
        let stdin = child.0.stdin.take();
        let stdout = child.0.stdout.take().expect("its stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut session = Session {
            child,
            stdin,
            lines,
        };
        let ready = session.next();
        assert_eq!(ready["ready"], true, "{ready}");
        session
    }

    /// The driver's next JSON line, within [`DRIVER_LIMIT`].
    fn next(&mut self) -> Value {
        let line = self
            .lines
            .recv_timeout(DRIVER_LIMIT)
            .unwrap_or_else(|e| panic!("no line from openai_sdk.py session: {e}"));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Make `count` calls through the SDK: `{"succeeded", "errors"}` as the `calls` scenario.
    async fn calls(&mut self, count: u32) -> Value {
        let stdin = self.stdin.as_mut().expect("the session is open");
        writeln!(stdin, "{count}")
            .and_then(|()| stdin.flush())
            .expect("ask the driver");
        tokio::task::block_in_place(|| self.next())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        drop(self.stdin.take());
        self.child.wait_or_kill(DRIVER_LIMIT);
    }
}

fn openai_records(served: &Served) -> Vec<Value> {
    served
        .usage()
        .into_iter()
        .filter(|r| r["api"] == "openai")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_sdk_lists_models_and_gets_whole_and_streamed_answers_with_exact_usage() {
    let mock = MockProvider::start(&[]);
    let served = Served::start(&mock, true, &[]).await;
    let t = token("sdk-user");

    let models = sdk(&served, &t, "models", &[]).await;
    assert_eq!(models["ids"], json!([MODEL]), "{models}");

    let chat = sdk(&served, &t, "chat", &[]).await;
    assert_eq!(chat["text"], HELLO, "{chat}");
    assert_eq!(chat["model"], MODEL);
    assert_eq!(chat["finish_reason"], "stop");
    let usage = json!({"prompt_tokens": PROMPT_WORDS, "completion_tokens": HELLO_WORDS,
                       "total_tokens": PROMPT_WORDS + HELLO_WORDS});
    assert_eq!(chat["usage"], usage, "{chat}");
    // The conversation went upstream as messages, with temperature and max_tokens.
    let sent = mock.last_request().await;
    let body = &sent["body"];
    assert_eq!(body["messages"][0]["role"], "system", "{sent}");
    assert_eq!(body["messages"][1]["content"], "say hello", "{sent}");
    assert_eq!(body["temperature"], 0.2, "{sent}");
    assert_eq!(body["max_completion_tokens"], 64, "{sent}");

    let stream = sdk(&served, &t, "stream", &[]).await;
    assert_eq!(stream["text"], HELLO, "{stream}");
    assert_eq!(stream["usage_chunks"], 1, "usage comes once: {stream}");
    assert_eq!(stream["usage"], usage, "{stream}");

    // One usage record per call, equal to what the mock reported, marked as OpenAI API calls.
    let records = openai_records(&served);
    assert_eq!(records.len(), 2, "{records:?}");
    for r in &records {
        assert_eq!(r["sub"], "sdk-user");
        assert_eq!(r["input_tokens"], PROMPT_WORDS, "{r}");
        assert_eq!(r["output_tokens"], HELLO_WORDS, "{r}");
        assert_eq!(r["status"], "completed", "{r}");
    }
    served
        .wait_for_metric(r#"vibectl_usage_records_by_api_total{api="openai",status="completed"} 2"#)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_sdk_gets_json_that_follows_its_schema() {
    let mock = MockProvider::start(&[]);
    let served = Served::start(&mock, false, &[]).await;
    let out = sdk(&served, "unused", "schema", &[]).await;
    let parsed = &out["parsed"];
    assert!(parsed["name"].is_string(), "{out}");
    assert!(parsed["replicas"].is_i64(), "{out}");
    let sent = mock.last_request().await;
    assert_eq!(
        sent["body"]["response_format"]["json_schema"]["schema"]["required"],
        json!(["name", "replicas"]),
        "{sent}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_sdk_retries_our_429_after_its_retry_after() {
    let mock = MockProvider::start(&[]);
    let served = Served::start(
        &mock,
        false,
        &[(key::SERVER_LIMITS_GLOBAL_MAX_CONCURRENT_REQUESTS, "1")],
    )
    .await;
    let out = sdk(&served, "unused", "retry", &["--max-retries", "3"]).await;
    assert_eq!(out["text"], HELLO, "{out}");
    let statuses = out["statuses"].as_array().expect("statuses");
    assert_eq!(statuses.first(), Some(&json!(429)), "{out}");
    assert_eq!(statuses.last(), Some(&json!(200)), "{out}");
    assert_eq!(
        out["retry_after_ms"][0], "250",
        "the concurrency retry hint: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_on_http_as_on_grpc() {
    let mock = MockProvider::start(&[]);
    let served = Served::start(&mock, true, &[(key::JWT_REVOKED_SUBS, "[mallory]")]).await;
    let out = sdk(&served, &token("mallory"), "chat", &[]).await;
    assert_eq!(out["error"]["status"], 401, "{out}");
    assert_eq!(out["error"]["type"], "authentication_error", "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("revoked"),
        "{out}"
    );
    assert_eq!(mock.stats().await["requests_total"], 0);
}

/// Three calls over gRPC and two over HTTP (the openai SDK) with the same token exhaust a limit
/// of five: the sixth is refused over HTTP with 429 and `retry-after`, as the SDK's
/// `RateLimitError`, and the seventh over gRPC with RESOURCE_EXHAUSTED. With `redis` (a Redis
/// server behind `server.limits.backend: redis`), the limits live in Redis, so the seventh goes
/// to a second replica; the usage reaches Redis's quota counters just after each call, so the
/// sixth call waits for the five writes.
async fn shared_limit(extra: &[(&str, &str)], code: &str, redis: Option<&RedisServer>) {
    let mock = MockProvider::start(&["--reply", "ok"]);
    let url = redis.map(RedisServer::url);
    let mut keys = extra.to_vec();
    if let Some(url) = &url {
        keys.extend([
            (key::SERVER_LIMITS_BACKEND, "redis"),
            (key::SERVER_LIMITS_REDIS_URL, url.as_str()),
            (key::SERVER_LIMITS_REDIS_FAILURE_MODE, "closed"),
        ]);
    }
    let served = Served::start(&mock, true, &keys).await;
    let t = token("shared");
    let header = format!("Bearer {t}");
    let mut client = served.server.client().await;
    // The SDK is loaded before the first call: at 5 a minute a slot comes free every 12 s,
    // so the six calls must not wait for Python to start.
    let mut session = tokio::task::block_in_place(|| Session::start(&served, &t));
    for i in 0..3 {
        let req = authorized(request(&format!("grpc {i}"), None), Some(&header));
        let resp = within("Execute", client.execute(req))
            .await
            .unwrap_or_else(|s| panic!("gRPC call {i} refused: {s:?}"));
        assert!(matches!(
            resp.into_inner().result,
            Some(execute_response::Result::Success(_))
        ));
    }
    let out = session.calls(2).await;
    assert_eq!(out["succeeded"], 2, "{out}");
    if redis.is_some() {
        served
            .wait_for_metric(r#"vibectl_redis_usage_writes_total{result="ok"} 5"#)
            .await;
    }
    let out = session.calls(1).await;
    assert_eq!(out["succeeded"], 0, "{out}");
    let refused = &out["errors"][0];
    assert_eq!(refused["status"], 429, "{out}");
    assert_eq!(refused["class"], "RateLimitError", "{out}");
    assert_eq!(refused["code"], code, "{out}");
    let after: u64 = refused["retry_after"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no retry-after: {out}"));
    assert!(after >= 1, "{out}");
    // In Redis the limit holds for every replica: the seventh call goes to a second one.
    let replica = match redis {
        Some(_) => Some(Served::start(&mock, true, &keys).await),
        None => None,
    };
    let mut client = match &replica {
        Some(r) => r.server.client().await,
        None => client,
    };
    let req = authorized(request("grpc again", None), Some(&header));
    let status = within("Execute", client.execute(req))
        .await
        .expect_err("the shared limit is spent");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let upstream = mock.stats().await["requests_total"].clone();
    assert_eq!(upstream, 5, "only the five admitted calls went upstream");
}

const RPM_OF_5: [(&str, &str); 1] = [(key::SERVER_LIMITS_GLOBAL_MAX_REQUESTS_PER_MINUTE, "5")];
// The mock counts words: each call here is 6 words of system and user text ("You are a test."
// + "grpc N", "You are terse." + "say hello N") and the 1-word reply, 7 tokens; so four calls
// (28) leave room and five (35) spend a quota of 35.
const QUOTA_OF_5_CALLS: [(&str, &str); 1] = [(key::SERVER_LIMITS_GLOBAL_MAX_TOKENS_PER_DAY, "35")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_and_http_share_one_rpm_limit() {
    shared_limit(&RPM_OF_5, "rate_limit_exceeded", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_and_http_share_one_daily_quota() {
    shared_limit(&QUOTA_OF_5_CALLS, "insufficient_quota", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_and_http_share_one_rpm_limit_in_redis() {
    let redis = RedisServer::start();
    shared_limit(&RPM_OF_5, "rate_limit_exceeded", Some(&redis)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_and_http_share_one_daily_quota_in_redis() {
    let redis = RedisServer::start();
    shared_limit(&QUOTA_OF_5_CALLS, "insufficient_quota", Some(&redis)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_sdk_reaches_a_model_served_in_anthropic_format() {
    let mock = MockProvider::start(&[]);
    let served = Served::start_on(&mock, ProviderKind::Anthropic, false).await;
    let chat = sdk(&served, "unused", "chat", &[]).await;
    assert_eq!(chat["text"], HELLO, "{chat}");
    let usage = json!({"prompt_tokens": PROMPT_WORDS, "completion_tokens": HELLO_WORDS,
                       "total_tokens": PROMPT_WORDS + HELLO_WORDS});
    assert_eq!(chat["usage"], usage, "{chat}");
    let sent = mock.last_request().await;
    assert_eq!(sent["path"], "/v1/messages", "{sent}");
    assert_eq!(
        sent["body"]["system"][0]["text"], "You are terse.",
        "{sent}"
    );
    assert_eq!(sent["body"]["messages"][0]["role"], "user", "{sent}");
    assert_eq!(
        sent["body"]["messages"][0]["content"][0]["text"], "say hello",
        "{sent}"
    );
    assert_eq!(sent["body"]["temperature"], 0.2, "{sent}");
    assert_eq!(sent["body"]["max_tokens"], 64, "{sent}");

    let stream = sdk(&served, "unused", "stream", &[]).await;
    assert_eq!(stream["text"], HELLO, "{stream}");
    assert_eq!(stream["usage_chunks"], 1, "{stream}");
    assert_eq!(stream["usage"], usage, "{stream}");

    let out = sdk(&served, "unused", "schema", &[]).await;
    assert!(out["parsed"]["replicas"].is_i64(), "{out}");
}

/// The SDK's tool round trip, whole and streamed, with the model served in `kind`'s format: the
/// model's call reaches the SDK as `tool_calls` (streamed: `delta.tool_calls` fragments), the
/// SDK's `tool` message reaches the provider in its own shape, and the model's answer ends it.
async fn tool_round_trip(kind: ProviderKind) {
    let mock = MockProvider::start(&[]);
    let served = Served::start_on(&mock, kind, true).await;
    let t = token("tool-user");
    for scenario in ["tools", "tools_stream"] {
        let out = sdk(&served, &t, scenario, &[]).await;
        let first = &out["first"];
        assert_eq!(first["finish_reason"], "tool_calls", "{scenario}: {out}");
        assert_eq!(first["calls"].as_array().map(Vec::len), Some(1), "{out}");
        let call = &first["calls"][0];
        assert_eq!(call["name"], "get_weather", "{out}");
        let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap_or(""))
            .unwrap_or_else(|e| panic!("arguments not JSON ({e}): {out}"));
        assert_eq!(args, json!({"city": "Paris"}), "{out}");
        let id = call["id"].as_str().expect("a call id").to_owned();
        let second = &out["second"];
        assert_eq!(
            second["text"], "Tool result: sunny, 21C",
            "{scenario}: {out}"
        );
        assert_eq!(second["finish_reason"], "stop", "{out}");

        // What reached the provider on the second call.
        let sent = mock.last_request().await;
        let body = &sent["body"];
        let m = &body["messages"];
        match kind {
            ProviderKind::Anthropic => {
                assert_eq!(sent["path"], "/v1/messages");
                assert_eq!(body["tools"][0]["name"], "get_weather", "{sent}");
                assert_eq!(body["tools"][0]["description"], "The weather of a city");
                assert_eq!(
                    body["tools"][0]["input_schema"]["required"],
                    json!(["city"])
                );
                assert_eq!(body["tool_choice"], json!({"type": "auto"}), "{sent}");
                assert_eq!(m[1]["role"], "assistant", "{sent}");
                assert_eq!(
                    m[1]["content"],
                    json!([{"type": "tool_use", "id": id, "name": "get_weather",
                            "input": {"city": "Paris"}}]),
                    "{sent}"
                );
                assert_eq!(m[2]["role"], "user", "{sent}");
                assert_eq!(
                    m[2]["content"],
                    json!([{"type": "tool_result", "tool_use_id": id,
                            "content": [{"type": "text", "text": "sunny, 21C"}]}]),
                    "{sent}"
                );
            }
            _ => {
                assert_eq!(sent["path"], "/v1/chat/completions");
                assert_eq!(
                    body["tools"][0]["function"]["name"], "get_weather",
                    "{sent}"
                );
                assert_eq!(body["tool_choice"], "auto", "{sent}");
                assert_eq!(m[2]["tool_calls"][0]["id"], id.as_str(), "{sent}");
                assert_eq!(
                    m[3],
                    json!({"role": "tool", "tool_call_id": id, "content": "sunny, 21C"}),
                    "{sent}"
                );
            }
        }
    }
    let records = openai_records(&served);
    assert_eq!(records.len(), 4, "{records:?}");
    assert!(
        records.iter().all(|r| r["status"] == "completed"),
        "{records:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_sdk_makes_a_tool_round_trip_with_a_model_served_in_openai_format() {
    tool_round_trip(ProviderKind::OpenAi).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_sdk_makes_a_tool_round_trip_with_a_model_served_in_anthropic_format() {
    tool_round_trip(ProviderKind::Anthropic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_sdk_sees_the_providers_stop_reasons() {
    let mock = MockProvider::start(&[]);
    for kind in [ProviderKind::OpenAi, ProviderKind::Anthropic] {
        let served = Served::start_on(&mock, kind, false).await;
        for (marker, finish) in [("max_tokens", "length"), ("refusal", "content_filter")] {
            let prompt = format!("say hello [[mock:stop_reason={marker}]]");
            for scenario in ["chat", "stream"] {
                let out = sdk(&served, "unused", scenario, &["--prompt", &prompt]).await;
                assert_eq!(out["finish_reason"], finish, "{kind} {scenario}: {out}");
            }
        }
    }
}
