//! Anthropic Messages API: request body, response parsing and SSE stream decoding.
//!
//! `POST {base}/v1/messages` with `x-api-key` and `anthropic-version: 2023-06-01`. System
//! fragments go in the top-level `system` field, user fragments are the text blocks of one user
//! message. Structured output uses a forced tool whose `input_schema` is the response schema;
//! the tool input is returned as the answer text.
//!
//! Tools the caller defines go as `tools[]{name, description, input_schema}` with
//! `tool_choice`; an assistant turn's tool calls as `tool_use` blocks, tool results as
//! `tool_result` blocks at the start of their user turn (consecutive user turns are sent as
//! one). In the answer, `tool_use` blocks are tool calls (their `input` as JSON text), streamed
//! as `content_block_start` of a `tool_use` block, then its `input_json_delta` pieces. With no
//! tools of the caller's, a `tool_use` block is the structured-output tool, read as text.
//! `stop_reason` maps to [`StopReason`] by [`stop_reason`] and back by [`stop_reason_name`].

use serde_json::{Value, json};

use super::error::{ProviderError, error_type};
use super::provider::{
    ChatRequest, ChatResponse, MAX_TOOL_CALLS, Role, StopReason, StreamEvent, ToolCall, ToolChoice,
    Usage, key_header,
};
use super::stream::{Frame, FrameDecoder, Step};
use crate::config::Secret;

/// The API version this client speaks.
pub const API_VERSION: &str = "2023-06-01";

/// `max_tokens` is required by the Messages API; this is used when the request has none.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Name of the forced tool that carries structured output.
pub const RESPONSE_TOOL: &str = "respond";

/// The endpoint for a base URL without a version prefix (`https://api.anthropic.com`).
pub(crate) fn endpoint(base_url: &str) -> String {
    format!("{base_url}/v1/messages")
}

pub(crate) fn headers(
    builder: reqwest::RequestBuilder,
    api_key: Option<&Secret>,
) -> reqwest::RequestBuilder {
    let builder = builder.header("anthropic-version", API_VERSION);
    key_header(builder, "x-api-key", "", api_key)
}

fn text_blocks(fragments: &[String]) -> Vec<Value> {
    fragments
        .iter()
        .map(|t| json!({"type": "text", "text": t}))
        .collect()
}

/// [`StopReason`] of a `stop_reason` (with the `stop_sequence` it names); an unknown one is
/// `None`.
pub fn stop_reason(name: &str, sequence: Option<&str>) -> Option<StopReason> {
    Some(match name {
        "end_turn" | "pause_turn" => StopReason::EndTurn,
        "max_tokens" | "model_context_window_exceeded" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence(sequence.map(str::to_owned)),
        "tool_use" => StopReason::ToolUse,
        "refusal" => StopReason::ContentFilter,
        _ => return None,
    })
}

/// The `stop_reason` of a [`StopReason`] (`end_turn` when the provider gave none).
pub fn stop_reason_name(stop: Option<&StopReason>) -> &'static str {
    match stop {
        None | Some(StopReason::EndTurn) => "end_turn",
        Some(StopReason::MaxTokens) => "max_tokens",
        Some(StopReason::StopSequence(_)) => "stop_sequence",
        Some(StopReason::ToolUse) => "tool_use",
        Some(StopReason::ContentFilter) => "refusal",
    }
}

/// `tool_choice` as Anthropic spells it.
pub fn tool_choice_json(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => json!({"type": "auto"}),
        ToolChoice::None => json!({"type": "none"}),
        ToolChoice::Required => json!({"type": "any"}),
        ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
    }
}

/// A tool call's arguments as a `tool_use` input: the JSON object they hold; arguments that
/// are not one (a model's broken JSON) are `None`.
pub fn tool_input(arguments: &str) -> Option<Value> {
    if arguments.trim().is_empty() {
        return Some(json!({}));
    }
    serde_json::from_str::<Value>(arguments)
        .ok()
        .filter(Value::is_object)
}

/// `{type: tool_use, id, name, input}`.
pub fn tool_use_block(call: &ToolCall) -> Value {
    json!({"type": "tool_use", "id": call.id, "name": call.name,
        "input": tool_input(&call.arguments).unwrap_or_else(|| json!({}))})
}

/// The content blocks of one turn: tool results first, then text, then tool calls.
fn blocks(m: &crate::llm::Message) -> Vec<Value> {
    let mut out = Vec::with_capacity(m.tool_results.len() + m.content.len() + m.tool_calls.len());
    for r in &m.tool_results {
        let mut block = json!({"type": "tool_result", "tool_use_id": r.call_id,
            "content": text_blocks(&r.content)});
        if r.is_error {
            block["is_error"] = json!(true);
        }
        out.push(block);
    }
    out.extend(text_blocks(&m.content));
    out.extend(m.tool_calls.iter().map(tool_use_block));
    out
}

/// The conversation: the request's messages, or one user message of its fragments.
/// Consecutive turns of one role are sent as one (a tool result and the user's next words).
fn messages(req: &ChatRequest) -> Value {
    if req.messages.is_empty() {
        return json!([{"role": "user", "content": text_blocks(&req.user)}]);
    }
    let mut out: Vec<(Role, Vec<Value>)> = Vec::with_capacity(req.messages.len());
    for m in &req.messages {
        match out.last_mut() {
            Some((role, content)) if *role == m.role && req.uses_tools() => {
                content.extend(blocks(m))
            }
            _ => out.push((m.role, blocks(m))),
        }
    }
    out.into_iter()
        .map(|(role, content)| json!({"role": role.as_str(), "content": content}))
        .collect()
}

/// The request body, as JSON bytes.
pub(crate) fn body(req: &ChatRequest, stream: bool) -> Vec<u8> {
    serde_json::to_vec(&body_value(req, stream)).unwrap_or_default()
}

fn body_value(req: &ChatRequest, stream: bool) -> Value {
    let mut body = json!({
        "model": req.model,
        "max_tokens": req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages(req),
        "stream": stream,
    });
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    if !req.stop.is_empty() {
        body["stop_sequences"] = json!(req.stop);
    }
    if !req.system.is_empty() {
        body["system"] = Value::Array(text_blocks(&req.system));
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| {
                let mut tool = json!({"name": t.name, "input_schema": t.parameters});
                if let Some(d) = &t.description {
                    tool["description"] = json!(d);
                }
                tool
            })
            .collect();
        if let Some(choice) = &req.tool_choice {
            body["tool_choice"] = tool_choice_json(choice);
        }
    } else if let Some(schema) = &req.response_schema {
        body["tools"] = json!([{
            "name": RESPONSE_TOOL,
            "description": "Give the answer as a JSON document that follows the input schema.",
            "input_schema": super::provider::clean_schema(schema),
        }]);
        body["tool_choice"] = json!({"type": "tool", "name": RESPONSE_TOOL});
    }
    body
}

fn usage_of(v: &Value) -> Usage {
    let count = |k: &str| {
        v.get(k)
            .and_then(Value::as_u64)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    Usage {
        input_tokens: count("input_tokens"),
        output_tokens: count("output_tokens"),
    }
}

fn too_many_calls() -> ProviderError {
    ProviderError::bad_response(format!(
        "the provider sent more than {MAX_TOOL_CALLS} tool calls"
    ))
}

fn stop_of(v: &Value) -> Option<StopReason> {
    stop_reason(
        v.get("stop_reason")?.as_str()?,
        v.get("stop_sequence").and_then(Value::as_str),
    )
}

/// The whole answer of a request; `tools` says whether it defined tools of the caller's (then
/// `tool_use` blocks are tool calls, else the structured-output tool's input is the text).
pub(crate) fn parse_response(body: &[u8], tools: bool) -> Result<ChatResponse, ProviderError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ProviderError::bad_response(format!("invalid JSON from Anthropic: {e}")))?;
    let content = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::bad_response("Anthropic response has no content array"))?;
    let usage = v.get("usage").map(usage_of).unwrap_or_default();
    let stop = stop_of(&v);
    if tools {
        let kind = |b: &Value, k: &str| b.get("type").and_then(Value::as_str) == Some(k);
        let text = content
            .iter()
            .filter(|b| kind(b, "text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect();
        let calls: Vec<&Value> = content.iter().filter(|b| kind(b, "tool_use")).collect();
        if calls.len() > MAX_TOOL_CALLS {
            return Err(too_many_calls());
        }
        let field = |b: &Value, k: &str| b.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let tool_calls = calls
            .into_iter()
            .map(|b| ToolCall {
                id: field(b, "id"),
                name: field(b, "name"),
                arguments: b.get("input").map(Value::to_string).unwrap_or_default(),
            })
            .collect();
        return Ok(ChatResponse {
            text,
            usage,
            tool_calls,
            stop,
        });
    }
    let tool_input = content
        .iter()
        .find(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
        .and_then(|b| b.get("input"));
    let text = match tool_input {
        Some(input) => input.to_string(),
        None => content
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect(),
    };
    // The structured-output tool's call is the answer: the model stopped to give it.
    let stop = match stop {
        Some(StopReason::ToolUse) if tool_input.is_some() => Some(StopReason::EndTurn),
        other => other,
    };
    Ok(ChatResponse {
        text,
        usage,
        tool_calls: vec![],
        stop,
    })
}

/// Stream decoder: `message_start` (input tokens), `content_block_start` (a `tool_use` block
/// starts a tool call when the request has tools), `content_block_delta` (`text_delta`;
/// `input_json_delta` is the arguments of the block's tool call, or for structured output the
/// text), `message_delta` (stop reason, cumulative output tokens), `message_stop` (end);
/// `ping` is ignored and `error` ends the stream with an error.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    usage: Usage,
    /// The request defined tools of the caller's.
    tools: bool,
    /// The block index of each tool call, in order.
    calls: Vec<u64>,
}

impl FrameDecoder for Decoder {
    fn decode(&mut self, frame: &Frame, out: &mut Vec<StreamEvent>) -> Result<Step, ProviderError> {
        if frame.data.trim().is_empty() {
            return Ok(Step::Continue);
        }
        let v: Value = serde_json::from_str(&frame.data).map_err(|e| {
            ProviderError::bad_response(format!("invalid JSON in Anthropic stream: {e}"))
        })?;
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(frame.event.as_str());
        match kind {
            "message_start" => {
                if let Some(u) = v.pointer("/message/usage") {
                    let u = usage_of(u);
                    if let Some(n) = u.input_tokens {
                        out.push(StreamEvent::InputTokens(n));
                    }
                    self.merge(u);
                }
            }
            "content_block_start"
                if self.tools
                    && v.pointer("/content_block/type").and_then(Value::as_str)
                        == Some("tool_use") =>
            {
                if self.calls.len() >= MAX_TOOL_CALLS {
                    return Err(too_many_calls());
                }
                let block = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                let field = |k: &str| {
                    v.pointer(&format!("/content_block/{k}"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                let (Some(id), Some(name)) = (field("id"), field("name")) else {
                    return Err(ProviderError::bad_response(
                        "a tool_use block began without its id and name",
                    ));
                };
                self.calls.push(block);
                out.push(StreamEvent::ToolCall {
                    index: self.calls.len() - 1,
                    id,
                    name,
                });
            }
            "content_block_start" => {
                if let Some(t) = v.pointer("/content_block/text").and_then(Value::as_str)
                    && !t.is_empty()
                {
                    out.push(StreamEvent::Text(t.to_string()));
                }
            }
            "content_block_delta" => {
                let delta = v.get("delta").unwrap_or(&Value::Null);
                let block = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                if self.tools
                    && delta.get("type").and_then(Value::as_str) == Some("input_json_delta")
                {
                    let Some(index) = self.calls.iter().position(|b| *b == block) else {
                        return Err(ProviderError::bad_response(
                            "tool input for a block that is not a tool_use block",
                        ));
                    };
                    if let Some(fragment) = delta
                        .get("partial_json")
                        .and_then(Value::as_str)
                        .filter(|t| !t.is_empty())
                    {
                        out.push(StreamEvent::ToolArgs {
                            index,
                            fragment: fragment.to_owned(),
                        });
                    }
                    return Ok(Step::Continue);
                }
                let piece = match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => delta.get("text"),
                    Some("input_json_delta") => delta.get("partial_json"),
                    _ => None,
                };
                if let Some(t) = piece.and_then(Value::as_str)
                    && !t.is_empty()
                {
                    out.push(StreamEvent::Text(t.to_string()));
                }
            }
            "message_delta" => {
                if let Some(stop) = v.get("delta").and_then(stop_of) {
                    // Structured output's forced tool call is the answer, not a tool call.
                    let stop = match stop {
                        StopReason::ToolUse if !self.tools => StopReason::EndTurn,
                        other => other,
                    };
                    out.push(StreamEvent::Stop(stop));
                }
                if let Some(u) = v.get("usage") {
                    self.merge(usage_of(u));
                }
            }
            "message_stop" => return Ok(Step::Finished),
            "error" => {
                let err = v.get("error").unwrap_or(&Value::Null);
                let message = err
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("error event without a message")
                    .to_string();
                return Err(ProviderError::from_error_type(
                    error_type(err).unwrap_or(""),
                    message,
                ));
            }
            _ => {}
        }
        Ok(Step::Continue)
    }

    fn usage(&self) -> Usage {
        self.usage
    }
}

impl Decoder {
    /// A decoder for the answer of a request that defines tools of the caller's (`tools`), or
    /// not.
    pub(crate) fn new(tools: bool) -> Decoder {
        Decoder {
            tools,
            ..Decoder::default()
        }
    }

    fn merge(&mut self, u: Usage) {
        self.usage.input_tokens = u.input_tokens.or(self.usage.input_tokens);
        self.usage.output_tokens = u.output_tokens.or(self.usage.output_tokens);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_places_system_and_forces_the_tool() {
        let req = ChatRequest {
            system: vec!["be brief".into()],
            user: vec!["a".into(), "b".into()],
            model: "claude-x".into(),
            response_schema: Some(json!({"$schema": "x", "type": "object"})),
            max_tokens: None,
            ..Default::default()
        };
        let b = body_value(&req, true);
        assert_eq!(b["system"][0]["text"], "be brief");
        assert_eq!(b["messages"][0]["content"][1]["text"], "b");
        assert_eq!(b["max_tokens"], DEFAULT_MAX_TOKENS);
        assert_eq!(b["tool_choice"]["name"], RESPONSE_TOOL);
        assert_eq!(b["tools"][0]["input_schema"], json!({"type": "object"}));
    }

    #[test]
    fn a_conversation_goes_as_its_turns_with_temperature_and_stop() {
        use crate::llm::Message;
        let req = ChatRequest {
            system: vec!["be brief".into()],
            user: vec!["ignored when there are messages".into()],
            model: "claude-x".into(),
            messages: vec![
                Message::text(Role::User, vec!["hi".into(), "there".into()]),
                Message::text(Role::Assistant, vec!["hello".into()]),
                Message::text(Role::User, vec!["list pods".into()]),
            ],
            temperature: Some(0.5),
            stop: vec!["END".into()],
            ..Default::default()
        };
        let b = body_value(&req, false);
        let roles: Vec<_> = b["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].clone())
            .collect();
        assert_eq!(
            roles,
            vec![json!("user"), json!("assistant"), json!("user")]
        );
        assert_eq!(b["messages"][0]["content"][1]["text"], "there");
        assert_eq!(b["messages"][2]["content"][0]["text"], "list pods");
        assert_eq!(b["temperature"], 0.5);
        assert_eq!(b["stop_sequences"], json!(["END"]));
        let plain = body_value(
            &ChatRequest {
                user: vec!["u".into()],
                ..Default::default()
            },
            false,
        );
        assert!(plain.get("temperature").is_none() && plain.get("stop_sequences").is_none());
    }

    #[test]
    fn tool_input_wins_over_text() {
        let r = parse_response(
            br#"{"content":[{"type":"tool_use","name":"respond","input":{"a":1}}],
                 "usage":{"input_tokens":5,"output_tokens":7}}"#,
            false,
        )
        .expect("parses");
        assert_eq!(r.text, r#"{"a":1}"#);
        assert_eq!(r.usage.total_tokens(), Some(12));
    }

    fn frame(data: serde_json::Value) -> Frame {
        Frame {
            event: String::new(),
            data: data.to_string(),
        }
    }

    fn tool_start(block: usize) -> Frame {
        frame(json!({"type": "content_block_start", "index": block,
            "content_block": {"type": "tool_use", "id": format!("t{block}"), "name": "f", "input": {}}}))
    }

    #[test]
    fn with_tools_a_tool_use_block_is_a_call_and_their_count_is_capped() {
        let mut d = Decoder::new(true);
        let mut out = Vec::new();
        d.decode(&tool_start(1), &mut out).expect("a call");
        d.decode(
            &frame(json!({"type": "content_block_delta", "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": "{}"}})),
            &mut out,
        )
        .expect("its input");
        d.decode(
            &frame(
                json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                "usage": {"output_tokens": 3}}),
            ),
            &mut out,
        )
        .expect("the stop");
        assert_eq!(
            out,
            vec![
                StreamEvent::ToolCall {
                    index: 0,
                    id: "t1".into(),
                    name: "f".into()
                },
                StreamEvent::ToolArgs {
                    index: 0,
                    fragment: "{}".into()
                },
                StreamEvent::Stop(StopReason::ToolUse),
            ]
        );
        for block in 2..=MAX_TOOL_CALLS {
            d.decode(&tool_start(block), &mut out)
                .expect("within the cap");
        }
        let e = d.decode(&tool_start(MAX_TOOL_CALLS + 1), &mut out);
        assert!(matches!(e, Err(ProviderError::BadResponse { .. })), "{e:?}");
        // Input for a block that is not a tool call is a bad answer.
        let e = Decoder::new(true).decode(
            &frame(json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": "{}"}})),
            &mut out,
        );
        assert!(matches!(e, Err(ProviderError::BadResponse { .. })), "{e:?}");
    }

    #[test]
    fn without_tools_the_forced_tool_is_the_answer_text() {
        let mut d = Decoder::new(false);
        let mut out = Vec::new();
        for f in [
            tool_start(0),
            frame(json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": "{\"a\":1}"}})),
            frame(json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}})),
        ] {
            d.decode(&f, &mut out).expect("decodes");
        }
        assert_eq!(
            out,
            vec![
                StreamEvent::Text(r#"{"a":1}"#.into()),
                StreamEvent::Stop(StopReason::EndTurn)
            ]
        );
    }
}
