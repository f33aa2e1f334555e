//! OpenAI Chat Completions (and compatible servers): request body, response parsing, SSE decoding.
//!
//! `POST {base}/chat/completions` with `Authorization: Bearer KEY`. The base URL includes the
//! version prefix, as in the OpenAI SDKs (`https://api.openai.com/v1`), so any compatible server
//! is configured by the URL its own docs give. System fragments become one `system` message,
//! user fragments one `user` message (each joined by a blank line). Structured output uses
//! `response_format: {type: json_schema, json_schema: {name, schema, strict: false}}`.
//! Streams ask for `stream_options.include_usage`, read usage from the last chunk, and end at
//! `data: [DONE]`.

use serde_json::{Value, json};

use super::error::{ProviderError, error_type};
use super::provider::{ChatRequest, ChatResponse, StreamEvent, Usage};
use super::stream::{Frame, FrameDecoder, Step};

/// Schema name used when the schema has no usable `title`.
const DEFAULT_SCHEMA_NAME: &str = "response";

pub(crate) fn endpoint(base_url: &str) -> String {
    format!("{base_url}/chat/completions")
}

pub(crate) fn headers(
    builder: reqwest::RequestBuilder,
    api_key: Option<&str>,
) -> reqwest::RequestBuilder {
    match api_key {
        Some(key) => builder.bearer_auth(key),
        None => builder,
    }
}

/// A `json_schema.name` must match `^[a-zA-Z0-9_-]{1,64}$`.
fn schema_name(schema: &Value) -> String {
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
        .to_string()
}

pub(crate) fn body(req: &ChatRequest, stream: bool) -> Value {
    let mut messages = Vec::with_capacity(2);
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": req.system.join("\n\n")}));
    }
    messages.push(json!({"role": "user", "content": req.user.join("\n\n")}));
    let mut body = json!({
        "model": req.model,
        "messages": messages,
        "stream": stream,
    });
    if stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    if let Some(n) = req.max_tokens {
        body["max_completion_tokens"] = json!(n);
    }
    if let Some(schema) = &req.response_schema {
        body["response_format"] = json!({
            "type": "json_schema",
            "json_schema": {
                "name": schema_name(schema),
                "schema": super::client::clean_schema(schema),
                "strict": false,
            },
        });
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
        input_tokens: count("prompt_tokens"),
        output_tokens: count("completion_tokens"),
    }
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
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ProviderError::bad_response(format!("invalid JSON from OpenAI: {e}")))?;
    if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
        return Err(error_of(err));
    }
    let message = v
        .pointer("/choices/0/message")
        .ok_or_else(|| ProviderError::bad_response("OpenAI response has no choices[0].message"))?;
    let text = match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        _ => match message.get("refusal").and_then(Value::as_str) {
            Some(r) => {
                return Err(ProviderError::bad_response(format!(
                    "the model refused: {r}"
                )));
            }
            None => String::new(),
        },
    };
    Ok(ChatResponse {
        text,
        usage: v.get("usage").map(usage_of).unwrap_or_default(),
    })
}

/// Stream decoder: `choices[0].delta.content` pieces, `usage` from the final chunk,
/// `[DONE]` as terminator; a chunk carrying `error` ends the stream with an error.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    usage: Usage,
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
        let v: Value = serde_json::from_str(data).map_err(|e| {
            ProviderError::bad_response(format!("invalid JSON in OpenAI stream: {e}"))
        })?;
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            return Err(error_of(err));
        }
        if let Some(t) = v
            .pointer("/choices/0/delta/content")
            .and_then(Value::as_str)
            && !t.is_empty()
        {
            out.push(StreamEvent::Text(t.to_string()));
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage = usage_of(u);
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

    #[test]
    fn body_has_system_message_and_json_schema() {
        let req = ChatRequest {
            system: vec!["s1".into(), "s2".into()],
            user: vec!["u".into()],
            model: "gpt-x".into(),
            response_schema: Some(json!({"title": "Plan", "type": "object"})),
            max_tokens: Some(9),
        };
        let b = body(&req, true);
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
    fn refusal_is_an_error() {
        let r = parse_response(br#"{"choices":[{"message":{"content":null,"refusal":"no"}}]}"#);
        assert!(matches!(r, Err(ProviderError::BadResponse { .. })));
    }
}
