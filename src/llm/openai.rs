//! OpenAI Chat Completions (and compatible servers): request body, response parsing, SSE decoding.
//!
//! `POST {base}/chat/completions` with `Authorization: Bearer KEY`. The base URL includes the
//! version prefix, as in the OpenAI SDKs (`https://api.openai.com/v1`), so any compatible server
//! is configured by the URL its own docs give. System fragments become one `system` message,
//! user fragments one `user` message (each joined by a blank line). Structured output uses
//! `response_format: {type: json_schema, json_schema: {name, schema, strict: false}}`.
//! Streams ask for `stream_options.include_usage`, read usage from the last chunk, and end at
//! `data: [DONE]`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{ProviderError, error_type};
use super::provider::{
    ChatRequest, ChatResponse, RoleMessage, StreamEvent, Usage, key_header, role_messages,
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

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<RoleMessage<'a>>,
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
    let body = Body {
        model: &req.model,
        messages: role_messages(req),
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
}

#[derive(Debug, Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
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
    let message = c
        .choices
        .into_iter()
        .next()
        .and_then(|choice| choice.message)
        .ok_or_else(|| ProviderError::bad_response("OpenAI response has no choices[0].message"))?;
    let text = match (message.content, message.refusal) {
        (Some(text), _) => text,
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
        let c: Completion = serde_json::from_str(data).map_err(|e| {
            ProviderError::bad_response(format!("invalid JSON in OpenAI stream: {e}"))
        })?;
        if let Some(err) = c.error.as_ref().filter(|e| !e.is_null()) {
            return Err(error_of(err));
        }
        if let Some(t) = c
            .choices
            .into_iter()
            .next()
            .and_then(|choice| choice.message)
            .and_then(|m| m.content)
            && !t.is_empty()
        {
            out.push(StreamEvent::Text(t));
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
        use crate::llm::{Message, Role};
        let req = ChatRequest {
            system: vec!["s".into()],
            model: "m".into(),
            messages: vec![
                Message {
                    role: Role::User,
                    content: vec!["a".into(), "b".into()],
                },
                Message {
                    role: Role::Assistant,
                    content: vec!["c".into()],
                },
                Message {
                    role: Role::User,
                    content: vec!["d".into()],
                },
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
}
