//! Anthropic Messages API: request body, response parsing and SSE stream decoding.
//!
//! `POST {base}/v1/messages` with `x-api-key` and `anthropic-version: 2023-06-01`. System
//! fragments go in the top-level `system` field, user fragments are the text blocks of one user
//! message. Structured output uses a forced tool whose `input_schema` is the response schema;
//! the tool input is returned as the answer text.

use serde_json::{Value, json};

use super::error::{ProviderError, error_type};
use super::provider::{ChatRequest, ChatResponse, StreamEvent, Usage, key_header};
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

/// The conversation: the request's messages, or one user message of its fragments.
fn messages(req: &ChatRequest) -> Value {
    if req.messages.is_empty() {
        return json!([{"role": "user", "content": text_blocks(&req.user)}]);
    }
    req.messages
        .iter()
        .map(|m| json!({"role": m.role.as_str(), "content": text_blocks(&m.content)}))
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
    if let Some(schema) = &req.response_schema {
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

pub(crate) fn parse_response(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ProviderError::bad_response(format!("invalid JSON from Anthropic: {e}")))?;
    let content = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::bad_response("Anthropic response has no content array"))?;
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
    Ok(ChatResponse {
        text,
        usage: v.get("usage").map(usage_of).unwrap_or_default(),
    })
}

/// Stream decoder: `message_start` (input tokens), `content_block_delta` (`text_delta` or, for
/// structured output, `input_json_delta`), `message_delta` (cumulative output tokens),
/// `message_stop` (end); `ping` is ignored and `error` ends the stream with an error.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    usage: Usage,
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
                    self.merge(usage_of(u));
                }
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
        use crate::llm::{Message, Role};
        let req = ChatRequest {
            system: vec!["be brief".into()],
            user: vec!["ignored when there are messages".into()],
            model: "claude-x".into(),
            messages: vec![
                Message {
                    role: Role::User,
                    content: vec!["hi".into(), "there".into()],
                },
                Message {
                    role: Role::Assistant,
                    content: vec!["hello".into()],
                },
                Message {
                    role: Role::User,
                    content: vec!["list pods".into()],
                },
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
        )
        .expect("parses");
        assert_eq!(r.text, r#"{"a":1}"#);
        assert_eq!(r.usage.total_tokens(), Some(12));
    }
}
