//! Tools translated across formats, in raw HTTP against the mock: what an OpenAI-format request
//! becomes for an Anthropic provider (a tool without parameters, several tool results and the
//! next words in one user turn) and the reverse (a failed tool result), stop reasons across
//! formats, and a provider's tool arguments that cannot become a `tool_use` block.

use serde_json::{Value, json};
use vibectl::llm::ProviderKind;

use super::Served;
use crate::support::mock::MockProvider;
use crate::support::server::{MODEL, within};

async fn post(url: &str, body: &Value) -> (u16, Value) {
    let c = reqwest::Client::new();
    let resp = within("an HTTP call", c.post(url).json(body).send())
        .await
        .expect("the call");
    let status = resp.status().as_u16();
    let v = within("the body", resp.json()).await.expect("JSON");
    (status, v)
}

#[tokio::test]
async fn an_openai_request_with_tools_becomes_an_anthropic_one() {
    let mock = MockProvider::start(&[]);
    let served = Served::start_on(&mock, ProviderKind::Anthropic, false).await;
    let url = format!("{}/chat/completions", served.base());
    let body = json!({"model": MODEL, "messages": [
        {"role": "user", "content": "time and weather?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "now", "arguments": ""}},
            {"id": "call_b", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_a", "content": "noon"},
        {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "rain"}]},
        {"role": "user", "content": "so?"},
    ], "tools": [
        {"type": "function", "function": {"name": "now"}},
        {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}},
    ]});
    let (status, v) = post(&url, &body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["choices"][0]["message"]["content"], "Tool result: noon; rain",
        "{v}"
    );
    let sent = mock.last_request().await["body"].clone();
    // A tool without parameters takes no arguments.
    assert_eq!(
        sent["tools"][0],
        json!({"name": "now", "input_schema": {"type": "object", "properties": {}}}),
        "{sent}"
    );
    let m = &sent["messages"];
    assert_eq!(m.as_array().map(Vec::len), Some(3), "{sent}");
    // Empty text is dropped beside tool calls; empty arguments are an empty object.
    assert_eq!(
        m[1]["content"],
        json!([{"type": "tool_use", "id": "call_a", "name": "now", "input": {}},
               {"type": "tool_use", "id": "call_b", "name": "weather", "input": {"city": "Oslo"}}]),
        "{sent}"
    );
    // Both results, then the next words, in one user turn.
    assert_eq!(
        m[2]["content"],
        json!([{"type": "tool_result", "tool_use_id": "call_a", "content": [{"type": "text", "text": "noon"}]},
               {"type": "tool_result", "tool_use_id": "call_b", "content": [{"type": "text", "text": "rain"}]},
               {"type": "text", "text": "so?"}]),
        "{sent}"
    );

    // An Anthropic stop sequence is OpenAI's `stop`.
    let body = json!({"model": MODEL, "stop": "HALT",
        "messages": [{"role": "user", "content": "hi [[mock:stop_reason=stop_sequence]]"}]});
    let (status, v) = post(&url, &body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
    let sent = mock.last_request().await;
    assert_eq!(sent["body"]["stop_sequences"], json!(["HALT"]), "{sent}");
}

#[tokio::test]
async fn an_anthropic_request_with_tools_becomes_an_openai_one() {
    let mock = MockProvider::start(&[]);
    let served = Served::start(&mock, false, &[]).await;
    let url = format!("http://{}/v1/messages", served.server.addr);
    let body = json!({"model": MODEL, "max_tokens": 32, "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Looking."},
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
            "content": "no such city", "is_error": true}]},
    ], "tools": [{"name": "weather", "input_schema": {"type": "object"}}],
       "tool_choice": {"type": "tool", "name": "weather"}});
    let (status, v) = post(&url, &body).await;
    assert_eq!(status, 200, "{v}");
    let sent = mock.last_request().await["body"].clone();
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "function", "function": {"name": "weather"}}),
        "{sent}"
    );
    let m = &sent["messages"];
    assert_eq!(m[1]["content"], "Looking.", "{sent}");
    assert_eq!(
        m[1]["tool_calls"][0]["function"]["arguments"],
        r#"{"city":"Oslo"}"#
    );
    // OpenAI has no error flag: the text says it.
    assert_eq!(
        m[2],
        json!({"role": "tool", "tool_call_id": "toolu_1", "content": "Error: no such city"}),
        "{sent}"
    );

    // An OpenAI provider's arguments that are not a JSON object cannot be a tool_use block.
    let body = json!({"model": MODEL, "max_tokens": 32,
        "messages": [{"role": "user", "content": "go [[mock:tool_call=weather,tool_args=oops]]"}],
        "tools": [{"name": "weather", "input_schema": {"type": "object"}}]});
    let (status, v) = post(&url, &body).await;
    assert_eq!(status, 502, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("weather"),
        "{v}"
    );
    // ... while a stream passes the pieces on as they came.
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let c = reqwest::Client::new();
    let text = within("the stream", async {
        c.post(&url).json(&streamed).send().await?.text().await
    })
    .await
    .expect("a stream");
    assert!(text.contains(r#""type":"tool_use""#), "{text}");
    assert!(text.contains("input_json_delta"), "{text}");
    assert!(text.contains(r#""stop_reason":"tool_use""#), "{text}");
}
