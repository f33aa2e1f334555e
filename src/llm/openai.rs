//! OpenAI Chat Completions (and compatible servers): request body, response parsing, SSE decoding.
//!
//! `POST {base}/chat/completions` with `Authorization: Bearer KEY`. The base URL includes the
//! version prefix, as in the OpenAI SDKs (`https://api.openai.com/v1`), so any compatible server
//! is configured by the URL its own docs give. System fragments become one `system` message,
//! user fragments one `user` message (each joined by a blank line). Structured output uses
//! `response_format: {type: json_schema, json_schema: {name, schema, strict: false}}`.
//! Streams ask for `stream_options.include_usage`, read usage from the last chunk, and end at
//! `data: [DONE]`.
//!
//! Tools go as `tools[].function{name, description, parameters}` with `tool_choice`; an assistant
//! turn's tool calls as its `tool_calls`, a tool result as a `tool` message (`tool_call_id`)
//! before the rest of its user turn. Tool calls in the answer come from `message.tool_calls`,
//! or streamed from `delta.tool_calls[]` (the first fragment of an index carries `id` and
//! `function.name`, the rest pieces of `function.arguments`). `finish_reason` maps to
//! [`StopReason`] by [`stop_reason`] and back by [`finish_reason`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{ProviderError, error_type};
use super::provider::{
    ChatRequest, ChatResponse, Joined, MAX_TOOL_CALLS, Role, RoleMessage, StopReason, StreamEvent,
    ToolCall, ToolChoice, Usage, key_header, role_messages,
};
use super::stream::{Frame, FrameDecoder, Step};
use crate::config::Secret;

/// Schema name used when the schema has no usable `title`.
const DEFAULT_SCHEMA_NAME: &str = "response";

pub(crate) fn endpoint(base_url: &str) -> String {
    format!("{base_url}/chat/completions")
}

pub(crate) fn headers(
    builder: reqwest::RequestBuilder,
    api_key: Option<&Secret>,
) -> reqwest::RequestBuilder {
    key_header(builder, "authorization", "Bearer ", api_key)
}

/// A `json_schema.name` must match `^[a-zA-Z0-9_-]{1,64}$`.
fn schema_name(schema: &Value) -> &str {
    schema
        .get("title")
        .and_then(Value::as_str)
        .filter(|t| {
            !t.is_empty()
                && t.len() <= 64
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
        .unwrap_or(DEFAULT_SCHEMA_NAME)
}

/// [`StopReason`] of a `finish_reason`; an unknown one is `None`.
pub fn stop_reason(finish: &str) -> Option<StopReason> {
    Some(match finish {
        "stop" => StopReason::EndTurn,
        "length" => StopReason::MaxTokens,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "content_filter" => StopReason::ContentFilter,
        _ => return None,
    })
}

/// The `finish_reason` of a [`StopReason`] (`stop` when the provider gave none).
pub fn finish_reason(stop: Option<&StopReason>) -> &'static str {
    match stop {
        None | Some(StopReason::EndTurn | StopReason::StopSequence(_)) => "stop",
        Some(StopReason::MaxTokens) => "length",
        Some(StopReason::ToolUse) => "tool_calls",
        Some(StopReason::ContentFilter) => "content_filter",
    }
}

/// `tool_choice` as OpenAI spells it.
pub fn tool_choice_json(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => Value::from("auto"),
        ToolChoice::None => Value::from("none"),
        ToolChoice::Required => Value::from("required"),
        ToolChoice::Tool(name) => {
            serde_json::json!({"type": "function", "function": {"name": name}})
        }
    }
}

/// `{id, type: function, function: {name, arguments}}`, a tool call as OpenAI spells it.
pub fn tool_call_json(call: &ToolCall) -> Value {
    serde_json::json!({"id": call.id, "type": "function",
        "function": {"name": call.name, "arguments": call.arguments}})
}

/// The conversation with its tool calls and results: each result a `tool` message (a failed
/// one's text starts `Error: `), then the turn's text, if any, as its own message.
fn tool_messages(req: &ChatRequest) -> Vec<Value> {
    use serde_json::json;
    let mut out = Vec::with_capacity(1 + req.messages.len());
    if !req.system.is_empty() {
        out.push(json!({"role": "system", "content": Joined(&req.system)}));
    }
    for m in &req.messages {
        for r in &m.tool_results {
            let text = Joined(&r.content).to_string();
            let content = if r.is_error {
                format!("Error: {text}")
            } else {
                text
            };
            out.push(json!({"role": "tool", "tool_call_id": r.call_id, "content": content}));
        }
        match m.role {
            Role::Assistant if !m.tool_calls.is_empty() => {
                let calls: Vec<Value> = m.tool_calls.iter().map(tool_call_json).collect();
                let content = (!m.content.is_empty()).then(|| Joined(&m.content).to_string());
                out.push(json!({"role": "assistant", "content": content, "tool_calls": calls}));
            }
            role if !m.content.is_empty() || m.tool_results.is_empty() => {
                out.push(json!({"role": role.as_str(), "content": Joined(&m.content)}));
            }
            _ => {}
        }
    }
    out
}

#[derive(Serialize)]
#[serde(untagged)]
enum Messages<'a> {
    Plain(Vec<RoleMessage<'a>>),
    WithTools(Vec<Value>),
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Messages<'a>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct ResponseFormat<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    json_schema: JsonSchema<'a>,
}

#[derive(Serialize)]
struct JsonSchema<'a> {
    name: &'a str,
    schema: Value,
    strict: bool,
}

/// The request body, as JSON bytes.
pub(crate) fn body(req: &ChatRequest, stream: bool) -> Vec<u8> {
    let messages = if req.uses_tools() {
        Messages::WithTools(tool_messages(req))
    } else {
        Messages::Plain(role_messages(req))
    };
    let body = Body {
        model: &req.model,
        messages,
        stream,
        stream_options: stream.then_some(StreamOptions {
            include_usage: true,
        }),
        max_completion_tokens: req.max_tokens,
        response_format: req.response_schema.as_ref().map(|schema| ResponseFormat {
            kind: "json_schema",
            json_schema: JsonSchema {
                name: schema_name(schema),
                schema: super::provider::clean_schema(schema),
                strict: false,
            },
        }),
        temperature: req.temperature,
        stop: &req.stop,
        tools: req
            .tools
            .iter()
            .map(|t| {
                let mut function = serde_json::json!({"name": t.name, "parameters": t.parameters});
                if let Some(d) = &t.description {
                    function["description"] = Value::from(d.as_str());
                }
                serde_json::json!({"type": "function", "function": function})
            })
            .collect(),
        tool_choice: req.tool_choice.as_ref().map(tool_choice_json),
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Token counts as OpenAI reports them.
#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Usage {
        let count = |n: Option<u64>| n.map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        Usage {
            input_tokens: count(u.prompt_tokens),
            output_tokens: count(u.completion_tokens),
        }
    }
}

/// A whole answer (`choices[].message`) or a stream chunk (`choices[].delta`); fields this
/// client does not use are skipped unparsed.
#[derive(Debug, Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default, alias = "delta")]
    message: Option<Message>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireCall>>,
}

/// A tool call, whole (`message.tool_calls[]`) or a fragment (`delta.tool_calls[]`).
#[derive(Debug, Deserialize)]
struct WireCall {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunction>,
}

#[derive(Debug, Deserialize)]
struct WireFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

fn too_many_calls() -> ProviderError {
    ProviderError::bad_response(format!(
        "the provider sent more than {MAX_TOOL_CALLS} tool calls"
    ))
}

fn error_of(err: &Value) -> ProviderError {
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("error without a message")
        .to_string();
    ProviderError::from_error_type(error_type(err).unwrap_or(""), message)
}

pub(crate) fn parse_response(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    let c: Completion = serde_json::from_slice(body)
        .map_err(|e| ProviderError::bad_response(format!("invalid JSON from OpenAI: {e}")))?;
    if let Some(err) = c.error.as_ref().filter(|e| !e.is_null()) {
        return Err(error_of(err));
    }
    let choice =
        c.choices.into_iter().next().ok_or_else(|| {
            ProviderError::bad_response("OpenAI response has no choices[0].message")
        })?;
    let stop = choice.finish_reason.as_deref().and_then(stop_reason);
    let message = choice
        .message
        .ok_or_else(|| ProviderError::bad_response("OpenAI response has no choices[0].message"))?;
    let calls = message.tool_calls.unwrap_or_default();
    if calls.len() > MAX_TOOL_CALLS {
        return Err(too_many_calls());
    }
    let tool_calls: Vec<ToolCall> = calls
        .into_iter()
        .map(|c| {
            let f = c.function.unwrap_or(WireFunction {
                name: None,
                arguments: None,
            });
            ToolCall {
                id: c.id.unwrap_or_default(),
                name: f.name.unwrap_or_default(),
                arguments: f.arguments.unwrap_or_default(),
            }
        })
        .collect();
    let text = match (message.content, message.refusal) {
        (Some(text), _) => text,
        (None, _) if !tool_calls.is_empty() => String::new(),
        (None, Some(r)) => {
            return Err(ProviderError::bad_response(format!(
                "the model refused: {r}"
            )));
        }
        (None, None) => String::new(),
    };
    Ok(ChatResponse {
        text,
        usage: c.usage.map(Usage::from).unwrap_or_default(),
        tool_calls,
        stop,
    })
}

/// Stream decoder: `choices[0].delta.content` pieces, `delta.tool_calls[]` fragments (their
/// `index` renumbered 0, 1, ... in order of first sight), `finish_reason`, `usage` from the
/// final chunk, `[DONE]` as terminator; a chunk carrying `error` ends the stream with an error.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    usage: Usage,
    /// The provider's `index` of each tool call seen, in order.
    calls: Vec<u64>,
}

impl Decoder {
    fn tool_fragment(
        &mut self,
        call: WireCall,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ProviderError> {
        let wire_index = call.index.unwrap_or(0);
        let f = call.function.unwrap_or(WireFunction {
            name: None,
            arguments: None,
        });
        let index = match self.calls.iter().position(|i| *i == wire_index) {
            Some(i) => i,
            None => {
                if self.calls.len() >= MAX_TOOL_CALLS {
                    return Err(too_many_calls());
                }
                let (Some(id), Some(name)) = (call.id, f.name.clone()) else {
                    return Err(ProviderError::bad_response(
                        "a streamed tool call began without its id and function name",
                    ));
                };
                self.calls.push(wire_index);
                let index = self.calls.len() - 1;
                out.push(StreamEvent::ToolCall { index, id, name });
                index
            }
        };
        if let Some(fragment) = f.arguments.filter(|a| !a.is_empty()) {
            out.push(StreamEvent::ToolArgs { index, fragment });
        }
        Ok(())
    }
}

impl FrameDecoder for Decoder {
    fn decode(&mut self, frame: &Frame, out: &mut Vec<StreamEvent>) -> Result<Step, ProviderError> {
        let data = frame.data.trim();
        if data == "[DONE]" {
            return Ok(Step::Finished);
        }
        if data.is_empty() {
            return Ok(Step::Continue);
        }
        let c: Completion = serde_json::from_str(data).map_err(|e| {
            ProviderError::bad_response(format!("invalid JSON in OpenAI stream: {e}"))
        })?;
        if let Some(err) = c.error.as_ref().filter(|e| !e.is_null()) {
            return Err(error_of(err));
        }
        if let Some(choice) = c.choices.into_iter().next() {
            if let Some(m) = choice.message {
                if let Some(t) = m.content.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::Text(t));
                }
                for call in m.tool_calls.unwrap_or_default() {
                    self.tool_fragment(call, out)?;
                }
            }
            if let Some(stop) = choice.finish_reason.as_deref().and_then(stop_reason) {
                out.push(StreamEvent::Stop(stop));
            }
        }
        if let Some(u) = c.usage {
            self.usage = u.into();
        }
        Ok(Step::Continue)
    }

    fn usage(&self) -> Usage {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn body_has_system_message_and_json_schema() {
        let req = ChatRequest {
            system: vec!["s1".into(), "s2".into()],
            user: vec!["u".into()],
            model: "gpt-x".into(),
            response_schema: Some(json!({"title": "Plan", "type": "object"})),
            max_tokens: Some(9),
            ..Default::default()
        };
        let b: Value = serde_json::from_slice(&body(&req, true)).expect("JSON");
        assert_eq!(
            b["messages"][0],
            json!({"role": "system", "content": "s1\n\ns2"})
        );
        assert_eq!(b["messages"][1]["role"], "user");
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["max_completion_tokens"], 9);
        assert_eq!(b["response_format"]["json_schema"]["name"], "Plan");
        assert_eq!(b["response_format"]["json_schema"]["strict"], false);
    }

    #[test]
    fn schema_name_falls_back() {
        assert_eq!(schema_name(&json!({"title": "has space"})), "response");
        assert_eq!(schema_name(&json!({})), "response");
    }

    #[test]
    fn body_without_options_is_minimal() {
        let req = ChatRequest {
            system: vec![],
            user: vec!["say \"hi\"".into(), "now".into()],
            model: "m".into(),
            response_schema: None,
            max_tokens: None,
            ..Default::default()
        };
        let b: Value = serde_json::from_slice(&body(&req, false)).expect("JSON");
        assert_eq!(
            b,
            json!({"model": "m", "messages": [{"role": "user", "content": "say \"hi\"\n\nnow"}], "stream": false})
        );
    }

    #[test]
    fn a_conversation_goes_as_its_turns_with_temperature_and_stop() {
        use crate::llm::Message;
        let req = ChatRequest {
            system: vec!["s".into()],
            model: "m".into(),
            messages: vec![
                Message::text(Role::User, vec!["a".into(), "b".into()]),
                Message::text(Role::Assistant, vec!["c".into()]),
                Message::text(Role::User, vec!["d".into()]),
            ],
            temperature: Some(0.25),
            stop: vec!["X".into(), "Y".into()],
            ..Default::default()
        };
        let b: Value = serde_json::from_slice(&body(&req, false)).expect("JSON");
        assert_eq!(
            b["messages"],
            json!([
                {"role": "system", "content": "s"},
                {"role": "user", "content": "a\n\nb"},
                {"role": "assistant", "content": "c"},
                {"role": "user", "content": "d"},
            ])
        );
        assert_eq!(b["temperature"], 0.25);
        assert_eq!(b["stop"], json!(["X", "Y"]));
    }

    #[test]
    fn usage_and_text_come_from_the_answer() {
        let r = parse_response(
            br#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],
                 "usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":0}}}"#,
        )
        .expect("parses");
        assert_eq!(r.text, "hi");
        assert_eq!(r.usage.total_tokens(), Some(5));
        let none = parse_response(br#"{"choices":[{"message":{"content":"x"}}],"usage":null}"#);
        assert_eq!(none.expect("parses").usage, Usage::default());
    }

    #[test]
    fn refusal_is_an_error() {
        let r = parse_response(br#"{"choices":[{"message":{"content":null,"refusal":"no"}}]}"#);
        assert!(matches!(r, Err(ProviderError::BadResponse { .. })));
    }

    fn frame(data: &str) -> Frame {
        Frame {
            event: String::new(),
            data: data.to_owned(),
        }
    }

    #[test]
    fn streamed_tool_calls_are_numbered_in_order_and_their_count_is_capped() {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        let start = |i: usize| {
            frame(&format!(
                r#"{{"choices":[{{"delta":{{"tool_calls":[{{"index":{},"id":"c{i}","type":"function","function":{{"name":"f","arguments":"{{"}}}}]}}}}]}}"#,
                1000 + i
            ))
        };
        d.decode(&start(0), &mut out).expect("first call");
        d.decode(
            &frame(r#"{"choices":[{"delta":{"tool_calls":[{"index":1000,"function":{"arguments":"}"}}]},"finish_reason":"tool_calls"}]}"#),
            &mut out,
        )
        .expect("its arguments");
        assert_eq!(
            out,
            vec![
                StreamEvent::ToolCall {
                    index: 0,
                    id: "c0".into(),
                    name: "f".into()
                },
                StreamEvent::ToolArgs {
                    index: 0,
                    fragment: "{".into()
                },
                StreamEvent::ToolArgs {
                    index: 0,
                    fragment: "}".into()
                },
                StreamEvent::Stop(StopReason::ToolUse),
            ]
        );
        for i in 1..MAX_TOOL_CALLS {
            d.decode(&start(i), &mut out).expect("within the cap");
        }
        let e = d.decode(&start(MAX_TOOL_CALLS), &mut out);
        assert!(matches!(e, Err(ProviderError::BadResponse { .. })), "{e:?}");
        // Arguments of a call that never began are a bad answer, not a silent drop.
        let mut fresh = Decoder::default();
        let e = fresh.decode(
            &frame(r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}"#),
            &mut out,
        );
        assert!(matches!(e, Err(ProviderError::BadResponse { .. })), "{e:?}");
    }

    #[test]
    fn a_whole_answer_carries_its_tool_calls_and_finish_reason() {
        let r = parse_response(
            br#"{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[
                {"id":"call_1","type":"function","function":{"name":"get","arguments":"{\"a\":1}"}}]},
                "finish_reason":"tool_calls"}]}"#,
        )
        .expect("parses");
        assert_eq!(r.text, "");
        assert_eq!(
            r.tool_calls,
            vec![ToolCall {
                id: "call_1".into(),
                name: "get".into(),
                arguments: r#"{"a":1}"#.into()
            }]
        );
        assert_eq!(r.stop, Some(StopReason::ToolUse));
        for (wire, stop) in [
            ("stop", StopReason::EndTurn),
            ("length", StopReason::MaxTokens),
            ("tool_calls", StopReason::ToolUse),
            ("content_filter", StopReason::ContentFilter),
        ] {
            assert_eq!(stop_reason(wire), Some(stop.clone()));
            assert_eq!(finish_reason(Some(&stop)), wire);
        }
    }
}
