//! Tools through the provider clients against the mock: tool definitions and tool choice in each
//! provider's request shape, tool calls in the answer (whole and streamed), tool calls and
//! results of the conversation sent back, and stop reasons mapped from each provider's own.

use base64::Engine;
use serde_json::{Value, json};
use vibectl::llm::{
    ChatRequest, Message, ProviderError, ProviderKind, Role, StopReason, StreamEvent, ToolCall,
    ToolChoice, ToolDef, ToolResult,
};

use super::{api_path, client, collect, complete, request};
use crate::support::mock::MockProvider;

const ARGS: &str = r#"{"city":"Paris","days":3}"#;

fn weather() -> ToolDef {
    ToolDef {
        name: "get_weather".into(),
        description: Some("The weather of a city".into()),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}),
    }
}

/// A request with the weather tool whose user text asks the mock for a call of it.
fn asking_for_a_call() -> ChatRequest {
    let b64 = base64::engine::general_purpose::STANDARD.encode(ARGS);
    let mut req = request(
        &["You are terse."],
        &[&format!(
            "weather? [[mock:tool_call=get_weather,tool_args_b64={b64},chunks=4]]"
        )],
    );
    req.messages = vec![Message::text(Role::User, std::mem::take(&mut req.user))];
    req.tools = vec![weather()];
    req.tool_choice = Some(ToolChoice::Required);
    req
}

/// The tool calls of a stream: (id, name, arguments joined), its stop reason, and the number of
/// argument pieces.
fn calls_of(
    items: &[Result<StreamEvent, ProviderError>],
) -> (Vec<ToolCall>, Option<StopReason>, usize) {
    let mut calls: Vec<ToolCall> = Vec::new();
    let mut stop = None;
    let mut pieces = 0;
    for item in items {
        match item {
            Ok(StreamEvent::ToolCall { index, id, name }) => {
                assert_eq!(*index, calls.len(), "{items:?}");
                calls.push(ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                });
            }
            Ok(StreamEvent::ToolArgs { index, fragment }) => {
                calls[*index].arguments.push_str(fragment);
                pieces += 1;
            }
            Ok(StreamEvent::Stop(s)) => stop = Some(s.clone()),
            Ok(_) => {}
            Err(e) => panic!("stream failed: {e}"),
        }
    }
    (calls, stop, pieces)
}

async fn a_tool_call_comes_back_whole_and_streamed(kind: ProviderKind) {
    let mock = MockProvider::start(&[]);
    let c = client(kind, &mock, None);
    let req = asking_for_a_call();

    let r = complete(&c, &req).await.expect("complete");
    assert_eq!(r.tool_calls.len(), 1, "{r:?}");
    assert_eq!(r.tool_calls[0].name, "get_weather");
    assert!(!r.tool_calls[0].id.is_empty(), "{r:?}");
    let args: Value = serde_json::from_str(&r.tool_calls[0].arguments).expect("JSON arguments");
    assert_eq!(args, serde_json::from_str::<Value>(ARGS).unwrap());
    assert_eq!(r.stop, Some(StopReason::ToolUse));

    // The tools went in the provider's own shape.
    let sent = mock.last_request().await;
    assert_eq!(sent["path"], api_path(kind));
    let body = &sent["body"];
    match kind {
        ProviderKind::OpenAi => {
            assert_eq!(body["tools"][0]["type"], "function", "{body}");
            assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
            assert_eq!(
                body["tools"][0]["function"]["description"],
                "The weather of a city"
            );
            assert_eq!(
                body["tools"][0]["function"]["parameters"]["required"],
                json!(["city"])
            );
            assert_eq!(body["tool_choice"], "required");
        }
        _ => {
            assert_eq!(body["tools"][0]["name"], "get_weather", "{body}");
            assert_eq!(
                body["tools"][0]["input_schema"]["required"],
                json!(["city"])
            );
            assert_eq!(body["tool_choice"], json!({"type": "any"}));
        }
    }

    let items = collect(&c, &req).await;
    let (calls, stop, pieces) = calls_of(&items);
    assert_eq!(calls.len(), 1, "{items:?}");
    assert_eq!(calls[0].name, "get_weather");
    assert_eq!(calls[0].arguments, ARGS, "the pieces, in order: {items:?}");
    assert!(pieces > 1, "the arguments came in pieces: {items:?}");
    assert_eq!(stop, Some(StopReason::ToolUse));
    assert!(matches!(items.last(), Some(Ok(StreamEvent::Usage(_)))));
}

async fn tool_calls_and_results_go_back_in_the_provider_shape(kind: ProviderKind) {
    let mock = MockProvider::start(&[]);
    let c = client(kind, &mock, None);
    let mut req = asking_for_a_call();
    req.tool_choice = Some(ToolChoice::Tool("get_weather".into()));
    req.messages.push(Message {
        role: Role::Assistant,
        content: vec!["Let me look.".into()],
        tool_calls: vec![ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: ARGS.into(),
        }],
        tool_results: vec![],
    });
    req.messages.push(Message {
        role: Role::User,
        tool_results: vec![ToolResult {
            call_id: "call_1".into(),
            content: vec!["sunny, 21C".into()],
            is_error: false,
        }],
        ..Message::default()
    });
    req.messages
        .push(Message::text(Role::User, vec!["and tomorrow?".into()]));

    // The mock answers a request carrying tool results with their text, not another call.
    let r = complete(&c, &req).await.expect("complete");
    assert_eq!(r.text, "Tool result: sunny, 21C", "{r:?}");
    assert!(r.tool_calls.is_empty());
    assert_eq!(r.stop, Some(StopReason::EndTurn));

    let body = mock.last_request().await["body"].clone();
    let m = &body["messages"];
    match kind {
        ProviderKind::OpenAi => {
            assert_eq!(
                body["tool_choice"]["function"]["name"], "get_weather",
                "{body}"
            );
            assert_eq!(m[2]["role"], "assistant", "{body}");
            assert_eq!(m[2]["content"], "Let me look.");
            assert_eq!(m[2]["tool_calls"][0]["id"], "call_1");
            assert_eq!(m[2]["tool_calls"][0]["function"]["arguments"], ARGS);
            assert_eq!(
                m[3],
                json!({"role": "tool", "tool_call_id": "call_1",
                                    "content": "sunny, 21C"})
            );
            assert_eq!(m[4]["role"], "user");
            assert_eq!(m[4]["content"], "and tomorrow?");
        }
        _ => {
            assert_eq!(
                body["tool_choice"],
                json!({"type": "tool", "name": "get_weather"})
            );
            assert_eq!(m[1]["role"], "assistant", "{body}");
            assert_eq!(
                m[1]["content"][0],
                json!({"type": "text", "text": "Let me look."})
            );
            assert_eq!(m[1]["content"][1]["type"], "tool_use");
            assert_eq!(m[1]["content"][1]["id"], "call_1");
            assert_eq!(
                m[1]["content"][1]["input"],
                serde_json::from_str::<Value>(ARGS).unwrap()
            );
            // The result and the next words are one user turn, the result first.
            assert_eq!(m.as_array().map(Vec::len), Some(3), "{body}");
            assert_eq!(m[2]["role"], "user");
            assert_eq!(m[2]["content"][0]["type"], "tool_result");
            assert_eq!(m[2]["content"][0]["tool_use_id"], "call_1");
            assert_eq!(m[2]["content"][0]["content"][0]["text"], "sunny, 21C");
            assert_eq!(m[2]["content"][1]["text"], "and tomorrow?");
        }
    }
}

/// Each provider's stop reasons, whole and streamed.
async fn stop_reasons_are_mapped(kind: ProviderKind) {
    let mock = MockProvider::start(&[]);
    let c = client(kind, &mock, None);
    let cases: &[(&str, StopReason)] = match kind {
        ProviderKind::Anthropic => &[
            ("", StopReason::EndTurn),
            ("max_tokens", StopReason::MaxTokens),
            (
                "stop_sequence",
                StopReason::StopSequence(Some("HALT".into())),
            ),
            ("refusal", StopReason::ContentFilter),
        ],
        ProviderKind::OpenAi => &[
            ("", StopReason::EndTurn),
            ("max_tokens", StopReason::MaxTokens),
            ("refusal", StopReason::ContentFilter),
        ],
        ProviderKind::Ollama => &[("", StopReason::EndTurn)],
    };
    for (marker, want) in cases {
        let user = if marker.is_empty() {
            "hi".to_owned()
        } else {
            format!("hi [[mock:stop_reason={marker}]]")
        };
        let mut req = request(&[], &[&user]);
        req.stop = vec!["HALT".into()];
        let r = complete(&c, &req).await.expect("complete");
        assert_eq!(r.stop.as_ref(), Some(want), "{marker}");
        let items = collect(&c, &req).await;
        let stops: Vec<_> = items
            .iter()
            .filter_map(|i| match i {
                Ok(StreamEvent::Stop(s)) => Some(s),
                _ => None,
            })
            .collect();
        assert_eq!(stops, vec![want], "{marker}: {items:?}");
    }
}

/// Anthropic counts the input at the start of a stream; OpenAI only at its end.
async fn the_input_count_comes_first_when_the_provider_gives_it_first(kind: ProviderKind) {
    let mock = MockProvider::start(&[]);
    let c = client(kind, &mock, None);
    let items = collect(&c, &request(&["You are terse."], &["list pods"])).await;
    let first = items.first().and_then(|i| i.as_ref().ok());
    match kind {
        ProviderKind::Anthropic => {
            assert_eq!(first, Some(&StreamEvent::InputTokens(5)), "{items:?}")
        }
        _ => assert!(
            !items
                .iter()
                .any(|i| matches!(i, Ok(StreamEvent::InputTokens(_)))),
            "{items:?}"
        ),
    }
}

/// A hostile provider's tool-call argument piece longer than the stream's line/event cap fails
/// the stream as a bad answer; nothing gathers it.
async fn a_tool_argument_piece_over_the_frame_cap_fails_the_stream(kind: ProviderKind) {
    let mock = MockProvider::start(&[]);
    let c = client(kind, &mock, None);
    let huge = format!(
        r#"{{"blob":"{}"}}"#,
        "x".repeat(vibectl::llm::stream::MAX_FRAME_BYTES + 1024)
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(&huge);
    let mut req = asking_for_a_call();
    req.messages = vec![Message::text(
        Role::User,
        vec![format!(
            "go [[mock:tool_call=get_weather,tool_args_b64={b64},chunks=1]]"
        )],
    )];
    let items = collect(&c, &req).await;
    // (The items are not printed: one of them may be megabytes long.)
    assert!(
        matches!(items.last(), Some(Err(_))),
        "the stream did not fail ({} items)",
        items.len()
    );
    let e = super::stream_error(&items);
    assert_eq!(e.code(), "bad_response", "{e}");
    assert!(e.to_string().contains("longer than"), "{e}");
    assert!(
        !items
            .iter()
            .any(|i| matches!(i, Ok(StreamEvent::ToolArgs { .. }))),
        "no piece of it passed"
    );
}

macro_rules! tool_tests {
    ($($name:ident),* $(,)?) => {
        provider_tests!(anthropic, vibectl::llm::ProviderKind::Anthropic, $($name),*);
        provider_tests!(openai, vibectl::llm::ProviderKind::OpenAi, $($name),*);
    };
}

tool_tests!(
    a_tool_call_comes_back_whole_and_streamed,
    tool_calls_and_results_go_back_in_the_provider_shape,
    the_input_count_comes_first_when_the_provider_gives_it_first,
    a_tool_argument_piece_over_the_frame_cap_fails_the_stream,
);

provider_tests!(
    anthropic_stops,
    vibectl::llm::ProviderKind::Anthropic,
    stop_reasons_are_mapped
);
provider_tests!(
    openai_stops,
    vibectl::llm::ProviderKind::OpenAi,
    stop_reasons_are_mapped
);
provider_tests!(
    ollama_stops,
    vibectl::llm::ProviderKind::Ollama,
    stop_reasons_are_mapped
);
