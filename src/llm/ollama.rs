//! Ollama native chat API: request body, response parsing and NDJSON stream decoding.
//!
//! `POST {base}/api/chat` (base without a version prefix, `http://localhost:11434`). System
//! fragments become one `system` message, user fragments one `user` message. Structured output
//! passes the schema as `format`. `stream` is always sent, since Ollama streams by default.
//! A stream is one JSON object per line and ends with `done: true`, which carries
//! `prompt_eval_count` and `eval_count`.

use serde::Serialize;
use serde_json::Value;

use super::error::ProviderError;
use super::provider::{
    ChatRequest, ChatResponse, RoleMessage, StopReason, StreamEvent, Usage, key_header,
    role_messages,
};
use super::stream::{Frame, FrameDecoder, Step};
use crate::config::Secret;

pub(crate) fn endpoint(base_url: &str) -> String {
    format!("{base_url}/api/chat")
}

/// Ollama has no API key of its own; a key, when set, is sent as a Bearer token for the
/// authenticating reverse proxies often put in front of it.
pub(crate) fn headers(
    builder: reqwest::RequestBuilder,
    api_key: Option<&Secret>,
) -> reqwest::RequestBuilder {
    key_header(builder, "authorization", "Bearer ", api_key)
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<RoleMessage<'a>>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<Options<'a>>,
}

#[derive(Serialize)]
struct Options<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    num_predict: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
}

/// The request body, as JSON bytes.
pub(crate) fn body(req: &ChatRequest, stream: bool) -> Vec<u8> {
    let body = Body {
        model: &req.model,
        messages: role_messages(req),
        stream,
        format: req
            .response_schema
            .as_ref()
            .map(super::provider::clean_schema),
        options: (req.max_tokens.is_some() || req.temperature.is_some() || !req.stop.is_empty())
            .then_some(Options {
                num_predict: req.max_tokens,
                temperature: req.temperature,
                stop: &req.stop,
            }),
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

fn usage_of(v: &Value) -> Usage {
    let count = |k: &str| {
        v.get(k)
            .and_then(Value::as_u64)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    Usage {
        input_tokens: count("prompt_eval_count"),
        output_tokens: count("eval_count"),
    }
}

/// The [`StopReason`] of a final line's `done_reason` (`stop`, `length`).
fn stop_of(v: &Value) -> Option<StopReason> {
    match v.get("done_reason")?.as_str()? {
        "stop" => Some(StopReason::EndTurn),
        "length" => Some(StopReason::MaxTokens),
        _ => None,
    }
}

fn error_of(v: &Value) -> Option<ProviderError> {
    let message = v
        .get("error")?
        .as_str()
        .unwrap_or("error without a message");
    Some(ProviderError::Server {
        status: 500,
        message: super::error::truncate(message),
    })
}

pub(crate) fn parse_response(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ProviderError::bad_response(format!("invalid JSON from Ollama: {e}")))?;
    if let Some(err) = error_of(&v) {
        return Err(err);
    }
    let text = v
        .pointer("/message/content")
        .and_then(Value::as_str)
        .ok_or_else(|| ProviderError::bad_response("Ollama response has no message.content"))?;
    Ok(ChatResponse {
        text: text.to_string(),
        usage: usage_of(&v),
        tool_calls: vec![],
        stop: stop_of(&v),
    })
}

/// Stream decoder: `message.content` pieces until the line with `done: true`; a line carrying
/// `error` ends the stream with an error.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    usage: Usage,
}

impl FrameDecoder for Decoder {
    fn decode(&mut self, frame: &Frame, out: &mut Vec<StreamEvent>) -> Result<Step, ProviderError> {
        let v: Value = serde_json::from_str(&frame.data).map_err(|e| {
            ProviderError::bad_response(format!("invalid JSON in Ollama stream: {e}"))
        })?;
        if let Some(err) = error_of(&v) {
            return Err(err);
        }
        if let Some(t) = v.pointer("/message/content").and_then(Value::as_str)
            && !t.is_empty()
        {
            out.push(StreamEvent::Text(t.to_string()));
        }
        if v.get("done").and_then(Value::as_bool) == Some(true) {
            if let Some(stop) = stop_of(&v) {
                out.push(StreamEvent::Stop(stop));
            }
            self.usage = usage_of(&v);
            return Ok(Step::Finished);
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
    fn body_sends_stream_flag_and_format() {
        let req = ChatRequest {
            system: vec![],
            user: vec!["u1".into(), "u2".into()],
            model: "llama".into(),
            response_schema: Some(json!({"type": "object"})),
            max_tokens: Some(5),
            ..Default::default()
        };
        let b: Value = serde_json::from_slice(&body(&req, false)).expect("JSON");
        assert_eq!(b["stream"], false);
        assert_eq!(
            b["messages"],
            json!([{"role": "user", "content": "u1\n\nu2"}])
        );
        assert_eq!(b["format"], json!({"type": "object"}));
        assert_eq!(b["options"]["num_predict"], 5);
    }

    #[test]
    fn done_line_carries_usage() {
        let r = parse_response(
            br#"{"message":{"role":"assistant","content":"hi"},"done":true,
                 "prompt_eval_count":3,"eval_count":1}"#,
        )
        .expect("parses");
        assert_eq!(r.text, "hi");
        assert_eq!(r.usage.input_tokens, Some(3));
        assert_eq!(r.usage.output_tokens, Some(1));
    }
}
