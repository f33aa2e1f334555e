//! The official `anthropic` SDK against `/v1/messages`: whole and streamed answers with the
//! usage the mock reported, from a model served in OpenAI format (translated both ways) and one
//! served in Anthropic format; tool round trips and stop reasons in both; errors in Anthropic's
//! shape; `count_tokens`.

use serde_json::{Value, json};
use vibectl::config::generated::server::key;
use vibectl::llm::ProviderKind;

use super::{Served, token};
use crate::support::mock::MockProvider;
use crate::support::python::{driver, run_ok};
use crate::support::server::{MODEL, within};

const HELLO: &str = "Hello from the mock provider.";

async fn sdk(served: &Served, token: &str, scenario: &str) -> Value {
    sdk_with(served, token, scenario, &[]).await
}

/// Run `anthropic_sdk.py BASE TOKEN SCENARIO ARGS` off the runtime; its JSON.
async fn sdk_with(served: &Served, token: &str, scenario: &str, args: &[&str]) -> Value {
    let mut all = vec![
        format!("http://{}", served.server.addr),
        token.to_owned(),
        scenario.to_owned(),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        run_ok(&mut driver("anthropic_sdk.py", &refs))
    })
    .await
    .expect("the driver task")
}

async fn whole_and_streamed(mock: &MockProvider, served: &Served, upstream_path: &str) {
    let t = token("claude-user");
    // "You are terse." + "say hello": 5 words in, the 5-word reply out (the mock's counts).
    let usage = json!({"input_tokens": 5, "output_tokens": 5});
    let m = sdk(served, &t, "message").await;
    assert_eq!(m["text"], HELLO, "{m}");
    assert_eq!(m["usage"], usage, "{m}");
    assert_eq!(m["model"], MODEL);
    assert_eq!(m["stop_reason"], "end_turn");
    let sent = mock.last_request().await;
    assert_eq!(sent["path"], upstream_path, "{sent}");

    let s = sdk(served, &t, "stream").await;
    assert_eq!(s["text"], HELLO, "{s}");
    assert_eq!(s["usage"], usage, "{s}");
    assert_eq!(s["stop_reason"], "end_turn", "{s}");
    // `message_start` carries the input count when the provider gave it at the start
    // (Anthropic); an OpenAI provider counts it only at the end: 0, then the count in
    // `message_delta` (the usage above).
    let start = if upstream_path == "/v1/messages" {
        5
    } else {
        0
    };
    assert_eq!(s["start_input_tokens"], start, "{s}");
    let events: Vec<&str> = s["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for wanted in [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ] {
        assert!(events.contains(&wanted), "no {wanted}: {events:?}");
    }
    let records: Vec<Value> = served
        .usage()
        .into_iter()
        .filter(|r| r["api"] == "anthropic")
        .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    for r in &records {
        assert_eq!(
            (r["input_tokens"].clone(), r["output_tokens"].clone()),
            (json!(5), json!(5))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anthropic_sdk_reaches_a_model_served_in_openai_format() {
    let mock = MockProvider::start(&[]);
    let served = Served::start(&mock, true, &[]).await;
    whole_and_streamed(&mock, &served, "/v1/chat/completions").await;
    let sent = mock.last_request().await;
    assert_eq!(
        sent["body"]["messages"][0]["content"], "You are terse.",
        "{sent}"
    );
    assert_eq!(sent["body"]["max_completion_tokens"], 64, "{sent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anthropic_sdk_reaches_a_model_served_in_anthropic_format() {
    let mock = MockProvider::start(&[]);
    let served = Served::start_on(&mock, ProviderKind::Anthropic, true).await;
    whole_and_streamed(&mock, &served, "/v1/messages").await;
}

/// The SDK's tool round trip, whole and streamed, with the model served in `kind`'s format: the
/// model's call reaches the SDK as a `tool_use` block, the SDK's `tool_result` reaches the
/// provider (in its own shape), and the model's answer ends the turn.
async fn tool_round_trip(kind: ProviderKind) {
    let mock = MockProvider::start(&[]);
    let served = Served::start_on(&mock, kind, true).await;
    let t = token("tool-user");
    for scenario in ["tools", "tools_stream"] {
        let out = sdk(&served, &t, scenario).await;
        let first = &out["first"];
        assert_eq!(first["stop_reason"], "tool_use", "{scenario}: {out}");
        assert_eq!(first["calls"].as_array().map(Vec::len), Some(1), "{out}");
        assert_eq!(first["calls"][0]["name"], "get_weather", "{out}");
        assert_eq!(
            first["calls"][0]["input"],
            json!({"city": "Paris"}),
            "{out}"
        );
        let id = first["calls"][0]["id"]
            .as_str()
            .expect("a call id")
            .to_owned();
        let second = &out["second"];
        assert_eq!(
            second["text"], "Tool result: sunny, 21C",
            "{scenario}: {out}"
        );
        assert_eq!(second["stop_reason"], "end_turn", "{out}");
        if scenario == "tools_stream" {
            let events = first["events"].to_string();
            assert!(events.contains("content_block_start"), "{out}");
            assert!(
                events.contains("input_json"),
                "the arguments came as deltas: {out}"
            );
        }

        // What reached the provider on the second call: the tool, and the call and its result
        // in the provider's shape.
        let sent = mock.last_request().await;
        let body = &sent["body"];
        let m = &body["messages"];
        match kind {
            ProviderKind::OpenAi => {
                assert_eq!(sent["path"], "/v1/chat/completions");
                assert_eq!(
                    body["tools"][0]["function"]["name"], "get_weather",
                    "{sent}"
                );
                assert_eq!(
                    body["tools"][0]["function"]["parameters"]["required"],
                    json!(["city"])
                );
                assert_eq!(body["tool_choice"], "auto", "{sent}");
                assert_eq!(m[2]["role"], "assistant", "{sent}");
                assert_eq!(m[2]["tool_calls"][0]["id"], id.as_str());
                let args: Value = serde_json::from_str(
                    m[2]["tool_calls"][0]["function"]["arguments"]
                        .as_str()
                        .unwrap_or(""),
                )
                .expect("arguments as JSON text");
                assert_eq!(args, json!({"city": "Paris"}), "{sent}");
                assert_eq!(
                    m[3],
                    json!({"role": "tool", "tool_call_id": id, "content": "sunny, 21C"}),
                    "{sent}"
                );
            }
            _ => {
                assert_eq!(sent["path"], "/v1/messages");
                assert_eq!(body["tools"][0]["name"], "get_weather", "{sent}");
                assert_eq!(body["tool_choice"], json!({"type": "auto"}), "{sent}");
                assert_eq!(m[1]["content"][0]["type"], "tool_use", "{sent}");
                assert_eq!(m[1]["content"][0]["id"], id.as_str());
                assert_eq!(m[1]["content"][0]["input"], json!({"city": "Paris"}));
                assert_eq!(m[2]["content"][0]["type"], "tool_result", "{sent}");
                assert_eq!(m[2]["content"][0]["tool_use_id"], id.as_str());
                assert_eq!(m[2]["content"][0]["content"][0]["text"], "sunny, 21C");
            }
        }
    }
    // Each call charged once, as an Anthropic API call.
    let records: Vec<Value> = served
        .usage()
        .into_iter()
        .filter(|r| r["api"] == "anthropic" && r["status"] == "completed")
        .collect();
    assert_eq!(records.len(), 4, "{records:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anthropic_sdk_makes_a_tool_round_trip_with_a_model_served_in_anthropic_format() {
    tool_round_trip(ProviderKind::Anthropic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anthropic_sdk_makes_a_tool_round_trip_with_a_model_served_in_openai_format() {
    tool_round_trip(ProviderKind::OpenAi).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anthropic_sdk_sees_the_providers_stop_reasons() {
    let mock = MockProvider::start(&[]);
    for kind in [ProviderKind::Anthropic, ProviderKind::OpenAi] {
        let served = Served::start_on(&mock, kind, true).await;
        let t = token("stops");
        let args = ["--prompt", "say hello [[mock:stop_reason=max_tokens]]"];
        let m = sdk_with(&served, &t, "message", &args).await;
        assert_eq!(m["stop_reason"], "max_tokens", "{kind}: {m}");
        let s = sdk_with(&served, &t, "stream", &args).await;
        assert_eq!(s["stop_reason"], "max_tokens", "{kind}: {s}");
        let args = ["--prompt", "say hello [[mock:stop_reason=refusal]]"];
        let m = sdk_with(&served, &t, "message", &args).await;
        assert_eq!(m["stop_reason"], "refusal", "{kind}: {m}");
    }
    // An Anthropic provider names the stop sequence; it reaches the SDK.
    let served = Served::start_on(&mock, ProviderKind::Anthropic, true).await;
    let args = [
        "--prompt",
        "say hello [[mock:stop_reason=stop_sequence]]",
        "--stop",
        "HALT",
    ];
    let m = sdk_with(&served, &token("stops"), "message", &args).await;
    assert_eq!(m["stop_reason"], "stop_sequence", "{m}");
    assert_eq!(m["stop_sequence"], "HALT", "{m}");
    let sent = mock.last_request().await;
    assert_eq!(sent["body"]["stop_sequences"], json!(["HALT"]), "{sent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_errors_come_in_anthropic_shape() {
    let mock = MockProvider::start(&[]);
    let served = Served::start(&mock, true, &[(key::JWT_REVOKED_SUBS, "[mallory]")]).await;
    let out = sdk(&served, &token("mallory"), "message").await;
    assert_eq!(out["error"]["status"], 401, "{out}");
    assert_eq!(out["error"]["type"], "authentication_error", "{out}");

    let c = reqwest::Client::new();
    let url = format!("http://{}/v1/messages", served.server.addr);
    let t = token("tester");
    let send = |body: Value| c.post(&url).header("x-api-key", &t).json(&body).send();
    let bad = [
        (
            json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}),
            400,
            "max_tokens",
        ),
        (
            json!({"model": "nope", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
            404,
            "not_found_error",
        ),
        (
            json!({"model": MODEL, "max_tokens": 5, "tools": [{"name": "t", "input_schema": []}],
                   "messages": [{"role": "user", "content": "hi"}]}),
            400,
            "tools.0.input_schema",
        ),
        (
            json!({"model": MODEL, "max_tokens": 5, "messages": [{"role": "assistant", "content": "hi"}]}),
            400,
            "user message",
        ),
    ];
    for (body, status, needle) in bad {
        let resp = within("a messages call", send(body.clone()))
            .await
            .expect("the call");
        assert_eq!(resp.status().as_u16(), status, "{body}");
        let v: Value = within("the body", resp.json()).await.expect("JSON");
        assert_eq!(v["type"], "error", "{v}");
        let text = v.to_string();
        assert!(text.contains(needle), "{needle} not in {v}");
    }
    assert_eq!(mock.stats().await["requests_total"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_tokens_counts_by_the_meters_estimate_checked_like_messages_and_unmetered() {
    let mock = MockProvider::start(&[]);
    let served = Served::start(
        &mock,
        true,
        &[
            (key::JWT_REVOKED_SUBS, "[mallory]"),
            (key::SERVER_LIMITS_GLOBAL_MAX_REQUESTS_PER_MINUTE, "1"),
            (key::SERVER_LIMITS_GLOBAL_MAX_INPUT_LENGTH, "200"),
            (key::SERVER_HTTP_MAX_BODY_BYTES, "2048"),
        ],
    )
    .await;
    let t = token("counter");
    // "You are terse." (14) and "say hello" (9): 23 characters, 4 a token rounded up.
    let out = sdk(&served, &t, "count").await;
    assert_eq!(out["input_tokens"], 6, "{out}");
    let long = "word ".repeat(30);
    let out = sdk_with(&served, &t, "count", &["--prompt", &long]).await;
    assert_eq!(out["input_tokens"], (14 + 150_u64).div_ceil(4), "{out}");
    // The same token check as /v1/messages.
    let out = sdk(&served, &token("mallory"), "count").await;
    assert_eq!(out["error"]["status"], 401, "{out}");
    assert_eq!(out["error"]["type"], "authentication_error", "{out}");

    let c = reqwest::Client::new();
    let url = format!("http://{}/v1/messages/count_tokens", served.server.addr);
    let hi = json!([{"role": "user", "content": "hi"}]);
    let bad = [
        (
            json!({"model": "nope", "messages": hi}),
            404,
            "not_found_error",
            "nope",
        ),
        (
            json!({"model": MODEL, "max_tokens": 5, "messages": hi}),
            400,
            "invalid_request_error",
            "max_tokens",
        ),
        (
            json!({"model": MODEL, "messages": [{"role": "assistant", "content": "hi"}]}),
            400,
            "invalid_request_error",
            "user message",
        ),
        (
            json!({"model": MODEL, "messages": [{"role": "user", "content": "x".repeat(300)}]}),
            400,
            "invalid_request_error",
            "messages.0.content",
        ),
        (
            json!({"model": MODEL, "messages": [{"role": "user", "content": "x".repeat(3000)}]}),
            413,
            "request_too_large",
            "max_body_bytes",
        ),
    ];
    for (body, status, kind, needle) in bad {
        let resp = within(
            "a count_tokens call",
            c.post(&url).header("x-api-key", &t).json(&body).send(),
        )
        .await
        .expect("the call");
        assert_eq!(resp.status().as_u16(), status, "{body}");
        let v: Value = within("the body", resp.json()).await.expect("JSON");
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["error"]["type"], kind, "{v}");
        assert!(v.to_string().contains(needle), "{needle} not in {v}");
    }
    // Tools count: "hi" (2), "t0" and its schema `{"type":"object"}` (2 + 17): 21 characters;
    // a tool over the input limit is the part named.
    let tool = |description: &str| {
        json!({"model": MODEL, "messages": hi, "tools": [{"name": "t0",
            "description": description, "input_schema": {"type": "object"}}]})
    };
    let count = |body: Value| {
        let (c, url, t) = (&c, &url, &t);
        async move {
            let resp = within(
                "a count_tokens call with tools",
                c.post(url).header("x-api-key", t).json(&body).send(),
            )
            .await
            .expect("the call");
            let status = resp.status().as_u16();
            (
                status,
                within("the body", resp.json::<Value>())
                    .await
                    .expect("JSON"),
            )
        }
    };
    let (status, v) = count(tool("")).await;
    assert_eq!((status, &v["input_tokens"]), (200, &json!(6)), "{v}");
    let (status, v) = count(tool(&"d".repeat(300))).await;
    assert_eq!(status, 400, "{v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("the longest part is tools"), "{v}");
    // No model was called, nothing was metered, and the one request a minute is still free.
    assert_eq!(mock.stats().await["requests_total"], 0);
    assert!(served.usage().is_empty(), "{:?}", served.usage());
    let m = sdk(&served, &t, "message").await;
    assert_eq!(m["text"], HELLO, "{m}");
}
