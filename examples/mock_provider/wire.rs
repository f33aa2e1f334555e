//! The three wire formats the mock speaks: reading a request, and writing answers, stream
//! frames and error bodies the way Anthropic, OpenAI and Ollama do.

use bytes::Bytes;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Anthropic,
    OpenAi,
    Ollama,
}

/// Whether (and how) the request asked for structured output.
#[derive(Debug, Clone, PartialEq)]
pub enum Structured {
    No,
    /// A schema: the Anthropic forced tool's `input_schema`, OpenAI `json_schema.schema`,
    /// Ollama `format`.
    Schema(Value),
    /// JSON without a schema (OpenAI `json_object`, Ollama `format: "json"`).
    Json,
}

/// What the mock needs from a request body.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub model: String,
    pub system: Vec<String>,
    pub user: Vec<String>,
    pub stream: bool,
    pub structured: Structured,
    /// Anthropic: the forced tool's name.
    pub tool: Option<String>,
    /// OpenAI: `stream_options.include_usage`.
    pub include_usage: bool,
    /// The names of the tools the request defines.
    pub tools: Vec<String>,
    /// The text of each tool result in the request (OpenAI `tool` messages, Anthropic
    /// `tool_result` blocks).
    pub tool_results: Vec<String>,
    /// OpenAI: answer with a call of this tool (set by the `tool_call` override).
    pub call: Option<String>,
    /// The stop reason to report (the `stop_reason` override), in Anthropic's spelling.
    pub stop_reason: Option<String>,
    /// Anthropic: the request's first stop sequence.
    pub stop_sequence: Option<String>,
}

/// The text of each tool result in `body`.
fn tool_results(format: Format, body: &Value) -> Vec<String> {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    match format {
        Format::OpenAi => messages
            .filter(|m| m.get("role").and_then(Value::as_str) == Some("tool"))
            .filter_map(|m| m.get("content").and_then(content_text))
            .collect(),
        Format::Anthropic => messages
            .filter_map(|m| m.get("content").and_then(Value::as_array))
            .flatten()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
            .map(|b| b.get("content").and_then(content_text).unwrap_or_default())
            .collect(),
        Format::Ollama => Vec::new(),
    }
}

/// The names of the tools `body` defines.
fn tool_names(format: Format, body: &Value) -> Vec<String> {
    let pointer = match format {
        Format::OpenAi => "/function/name",
        _ => "/name",
    };
    body.get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.pointer(pointer).and_then(Value::as_str).map(String::from))
        .collect()
}

/// Text of a `content` value: a string, or the `text` of each text block joined by a blank line.
fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(blocks) => Some(
            blocks
                .iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n\n"),
        ),
        _ => None,
    }
}

fn messages_by_role(body: &Value, role: &str) -> Vec<String> {
    body.get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some(role))
        .filter_map(|m| m.get("content").and_then(content_text))
        .collect()
}

pub fn parse(format: Format, body: &Value) -> Result<Parsed, String> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or("field `model` is required")?
        .to_string();
    if !body.get("messages").is_some_and(Value::is_array) {
        return Err("field `messages` must be an array".into());
    }
    let stream_flag = body.get("stream").and_then(Value::as_bool);
    let user = messages_by_role(body, "user");
    let mut parsed = Parsed {
        model,
        system: Vec::new(),
        user,
        stream: stream_flag.unwrap_or(false),
        structured: Structured::No,
        tool: None,
        include_usage: false,
        tools: tool_names(format, body),
        tool_results: tool_results(format, body),
        call: None,
        stop_reason: None,
        stop_sequence: body
            .pointer("/stop_sequences/0")
            .and_then(Value::as_str)
            .map(String::from),
    };
    match format {
        Format::Anthropic => {
            if body.get("max_tokens").and_then(Value::as_u64).is_none() {
                return Err("max_tokens: Field required".into());
            }
            parsed.system = match body.get("system") {
                Some(Value::Array(blocks)) => blocks
                    .iter()
                    .filter_map(|b| b.get("text").and_then(Value::as_str).map(String::from))
                    .collect(),
                Some(Value::String(s)) => vec![s.clone()],
                _ => Vec::new(),
            };
            if body.pointer("/tool_choice/type").and_then(Value::as_str) == Some("tool") {
                let name = body
                    .pointer("/tool_choice/name")
                    .and_then(Value::as_str)
                    .ok_or("tool_choice.name is required")?;
                let schema = body
                    .get("tools")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|t| t.get("name").and_then(Value::as_str) == Some(name))
                    .and_then(|t| t.get("input_schema"))
                    .ok_or("tool_choice names a tool that is not in tools")?;
                parsed.structured = Structured::Schema(schema.clone());
                parsed.tool = Some(name.to_string());
            }
        }
        Format::OpenAi => {
            parsed.system = messages_by_role(body, "system");
            parsed.include_usage = body
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            parsed.structured = match body
                .pointer("/response_format/type")
                .and_then(Value::as_str)
            {
                Some("json_schema") => Structured::Schema(
                    body.pointer("/response_format/json_schema/schema")
                        .cloned()
                        .ok_or("response_format.json_schema.schema is required")?,
                ),
                Some("json_object") => Structured::Json,
                _ => Structured::No,
            };
        }
        Format::Ollama => {
            parsed.system = messages_by_role(body, "system");
            parsed.stream = stream_flag.unwrap_or(true);
            parsed.structured = match body.get("format") {
                Some(Value::Object(_)) => Structured::Schema(body["format"].clone()),
                Some(Value::String(s)) if s == "json" => Structured::Json,
                _ => Structured::No,
            };
        }
    }
    Ok(parsed)
}

/// Token counts the mock reports.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub input: u64,
    pub output: u64,
}

/// The whole (non-streaming) answer.
pub fn complete_body(format: Format, p: &Parsed, reply: &str, n: Counts) -> Value {
    match format {
        Format::Anthropic => {
            let (content, stop) = match &p.tool {
                Some(name) => (
                    json!([{"type": "tool_use", "id": "toolu_mock", "name": name,
                            "input": tool_input(reply)}]),
                    "tool_use",
                ),
                None => (json!([{"type": "text", "text": reply}]), "end_turn"),
            };
            let (stop, sequence) = anthropic_stop(p, stop);
            json!({
                "id": "msg_mock", "type": "message", "role": "assistant", "model": p.model,
                "content": content, "stop_reason": stop, "stop_sequence": sequence,
                "usage": {"input_tokens": n.input, "output_tokens": n.output},
            })
        }
        Format::OpenAi => json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": p.model,
            "choices": [{"index": 0, "message": match &p.call {
                Some(name) => json!({"role": "assistant", "content": null, "refusal": null,
                    "tool_calls": [{"id": OPENAI_CALL_ID, "type": "function",
                                    "function": {"name": name, "arguments": reply}}]}),
                None => json!({"role": "assistant", "content": reply, "refusal": null}),
            }, "finish_reason": openai_finish(p)}],
            "usage": {"prompt_tokens": n.input, "completion_tokens": n.output,
                      "total_tokens": n.input + n.output},
        }),
        Format::Ollama => json!({
            "model": p.model, "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": reply},
            "done": true, "done_reason": "stop", "total_duration": 1000,
            "prompt_eval_count": n.input, "eval_count": n.output,
        }),
    }
}

/// The id of the mock's OpenAI tool calls.
pub const OPENAI_CALL_ID: &str = "call_mock";

/// The OpenAI `finish_reason`: `tool_calls` for a tool call, else the `stop_reason` override
/// in OpenAI's spelling, else `stop`.
fn openai_finish(p: &Parsed) -> &'static str {
    if p.call.is_some() {
        return "tool_calls";
    }
    match p.stop_reason.as_deref() {
        Some("max_tokens") => "length",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// The Anthropic `stop_reason` and `stop_sequence`: the `stop_reason` override (a stop
/// sequence is the request's first, or `STOP`), else `natural`.
fn anthropic_stop(p: &Parsed, natural: &'static str) -> (Value, Value) {
    match p.stop_reason.as_deref() {
        Some("stop_sequence") => (
            json!("stop_sequence"),
            json!(p.stop_sequence.as_deref().unwrap_or("STOP")),
        ),
        Some(other) => (json!(other), Value::Null),
        None => (json!(natural), Value::Null),
    }
}

/// The tool input for an Anthropic forced tool: the reply when it is a JSON object, else
/// `{"reply": TEXT}` (a tool input is always an object).
pub fn tool_input(reply: &str) -> Value {
    match serde_json::from_str::<Value>(reply) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({"reply": reply}),
    }
}

fn sse(event: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

fn sse_data(data: &str) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

fn ndjson(v: &Value) -> Bytes {
    Bytes::from(format!("{v}\n"))
}

/// A stream, as frames: the opening ones, one per text piece, and the closing ones (which hold
/// usage and the end-of-stream marker).
pub struct Frames {
    pub start: Vec<Bytes>,
    pub pieces: Vec<Bytes>,
    pub end: Vec<Bytes>,
}

pub fn stream_frames(format: Format, p: &Parsed, pieces: &[String], n: Counts) -> Frames {
    match format {
        Format::Anthropic => {
            let block = match &p.tool {
                Some(name) => {
                    json!({"type": "tool_use", "id": "toolu_mock", "name": name, "input": {}})
                }
                None => json!({"type": "text", "text": ""}),
            };
            let delta = |t: &str| match p.tool {
                Some(_) => json!({"type": "input_json_delta", "partial_json": t}),
                None => json!({"type": "text_delta", "text": t}),
            };
            let (stop, sequence) = anthropic_stop(
                p,
                if p.tool.is_some() {
                    "tool_use"
                } else {
                    "end_turn"
                },
            );
            Frames {
                start: vec![
                    sse(
                        "message_start",
                        &json!({"type": "message_start", "message": {
                            "id": "msg_mock", "type": "message", "role": "assistant",
                            "model": p.model, "content": [], "stop_reason": null,
                            "stop_sequence": null,
                            "usage": {"input_tokens": n.input, "output_tokens": 1}}}),
                    ),
                    sse(
                        "content_block_start",
                        &json!({"type": "content_block_start", "index": 0, "content_block": block}),
                    ),
                    sse("ping", &json!({"type": "ping"})),
                ],
                pieces: pieces
                    .iter()
                    .map(|t| {
                        sse(
                            "content_block_delta",
                            &json!({"type": "content_block_delta", "index": 0, "delta": delta(t)}),
                        )
                    })
                    .collect(),
                end: vec![
                    sse(
                        "content_block_stop",
                        &json!({"type": "content_block_stop", "index": 0}),
                    ),
                    sse(
                        "message_delta",
                        &json!({"type": "message_delta",
                                "delta": {"stop_reason": stop, "stop_sequence": sequence},
                                "usage": {"output_tokens": n.output}}),
                    ),
                    sse("message_stop", &json!({"type": "message_stop"})),
                ],
            }
        }
        Format::OpenAi => {
            let chunk = |delta: Value, finish: Value| {
                let mut c = json!({
                    "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0,
                    "model": p.model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                });
                if p.include_usage {
                    c["usage"] = Value::Null;
                }
                sse_data(&c.to_string())
            };
            let mut end = vec![chunk(json!({}), json!(openai_finish(p)))];
            if p.include_usage {
                end.push(sse_data(
                    &json!({
                        "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0,
                        "model": p.model, "choices": [],
                        "usage": {"prompt_tokens": n.input, "completion_tokens": n.output,
                                  "total_tokens": n.input + n.output},
                    })
                    .to_string(),
                ));
            }
            end.push(sse_data("[DONE]"));
            let mut start = vec![chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
            )];
            let piece = |t: &str| match &p.call {
                Some(_) => json!({"tool_calls": [{"index": 0, "function": {"arguments": t}}]}),
                None => json!({"content": t}),
            };
            if let Some(name) = &p.call {
                start.push(chunk(
                    json!({"tool_calls": [{"index": 0, "id": OPENAI_CALL_ID, "type": "function",
                                           "function": {"name": name, "arguments": ""}}]}),
                    Value::Null,
                ));
            }
            Frames {
                start,
                pieces: pieces
                    .iter()
                    .map(|t| chunk(piece(t), Value::Null))
                    .collect(),
                end,
            }
        }
        Format::Ollama => {
            let line = |content: &str| {
                ndjson(&json!({
                    "model": p.model, "created_at": "2026-01-01T00:00:00Z",
                    "message": {"role": "assistant", "content": content}, "done": false,
                }))
            };
            Frames {
                start: Vec::new(),
                pieces: pieces.iter().map(|t| line(t)).collect(),
                end: vec![ndjson(&json!({
                    "model": p.model, "created_at": "2026-01-01T00:00:00Z",
                    "message": {"role": "assistant", "content": ""},
                    "done": true, "done_reason": "stop", "total_duration": 1000,
                    "prompt_eval_count": n.input, "eval_count": n.output,
                }))],
            }
        }
    }
}

/// An error reported inside a stream that has already started (an overload).
pub fn stream_error_frame(format: Format) -> Bytes {
    match format {
        Format::Anthropic => sse(
            "error",
            &json!({"type": "error", "error": {"type": "overloaded_error",
                                               "message": "Overloaded (mock)"}}),
        ),
        Format::OpenAi => sse_data(
            &json!({"error": {"message": "The server is overloaded (mock)",
                              "type": "server_overloaded", "param": null, "code": null}})
            .to_string(),
        ),
        Format::Ollama => ndjson(&json!({"error": "server overloaded (mock)"})),
    }
}

/// A frame whose payload is not JSON.
pub fn garbage_frame(format: Format) -> Bytes {
    match format {
        Format::Anthropic => Bytes::from_static(b"event: content_block_delta\ndata: {garbage\n\n"),
        Format::OpenAi => Bytes::from_static(b"data: {garbage\n\n"),
        Format::Ollama => Bytes::from_static(b"{garbage\n"),
    }
}

pub fn content_type(format: Format, stream: bool) -> &'static str {
    match (format, stream) {
        (_, false) => "application/json",
        (Format::Ollama, true) => "application/x-ndjson",
        (_, true) => "text/event-stream",
    }
}

/// An error body in the provider's own shape.
pub fn error_body(format: Format, status: u16, message: &str) -> Value {
    match format {
        Format::Anthropic => {
            let kind = match status {
                400 => "invalid_request_error",
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                413 => "request_too_large",
                429 => "rate_limit_error",
                529 | 503 => "overloaded_error",
                _ => "api_error",
            };
            json!({"type": "error", "error": {"type": kind, "message": message}})
        }
        Format::OpenAi => {
            let (kind, code) = match status {
                400 => ("invalid_request_error", Value::Null),
                401 => ("invalid_request_error", json!("invalid_api_key")),
                404 => ("invalid_request_error", json!("model_not_found")),
                429 => ("requests", json!("rate_limit_exceeded")),
                _ => ("server_error", Value::Null),
            };
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
        }
        Format::Ollama => json!({"error": message}),
    }
}
