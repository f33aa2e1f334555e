//! The Anthropic-compatible API: `POST /v1/messages`, whole or streamed as Anthropic's
//! server-sent events (`message_start`, `content_block_start`, `content_block_delta`,
//! `content_block_stop`, `message_delta` with the usage, `message_stop`), with errors in
//! Anthropic's shape (`{"type": "error", "error": {"type", "message"}}`); and
//! `POST /v1/messages/count_tokens`, the same request's input tokens by the meter's estimate.
//!
//! The request becomes the same [`Chat`] the OpenAI API builds, so a model served by either
//! kind of provider answers either API. Fields this server does not implement are refused with
//! a 400 naming the field.

use axum::extract::State as AxState;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use super::openai::{MAX_MESSAGES, text_of};
use super::{Admitted, ApiError, Chat, Http, admit_chat, json_response, provider_failure, timeout};
use crate::llm::{Message, Role, StreamEvent};
use crate::server::exec;
use crate::server::governance::meter::Meter;
use crate::server::governance::usage::{Api, Outcome};
use crate::server::governance::{self, Limits, layer};

/// The Messages API's route; an error before routing (HTTP/1.0, the HTTP API off) to a path
/// under it comes in Anthropic's shape.
pub const PATH: &str = "/v1/messages";

/// The most stop sequences.
pub const MAX_STOP: usize = 16;

/// The fields of a Messages request this server implements.
const FIELDS: &[&str] = &[
    "model",
    "messages",
    "system",
    "max_tokens",
    "stream",
    "temperature",
    "stop_sequences",
];

/// The fields of a count_tokens request this server implements.
const COUNT_FIELDS: &[&str] = &["model", "messages", "system"];

/// A Messages request (or a count_tokens one, by `fields`: [`FIELDS`] or [`COUNT_FIELDS`];
/// `max_tokens` is required where it is allowed).
fn parse(body: &Map<String, Value>, fields: &[&str]) -> Result<Chat, ApiError> {
    if let Some(field) = body.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            field.as_str(),
            format!(
                "{}: the field is not supported by this server; remove it",
                super::shown(field)
            ),
        ));
    }
    let model = match body.get("model") {
        Some(Value::String(m)) if !m.trim().is_empty() => m.clone(),
        _ => return Err(ApiError::invalid("model", "model: required, a model id")),
    };
    let max_tokens = match body.get("max_tokens").and_then(Value::as_u64) {
        Some(n) if n >= 1 => Some(u32::try_from(n).unwrap_or(u32::MAX)),
        _ if !fields.contains(&"max_tokens") => None,
        _ => {
            return Err(ApiError::invalid(
                "max_tokens",
                "max_tokens: required, a positive integer",
            ));
        }
    };
    let messages = match body.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() && m.len() <= MAX_MESSAGES => m,
        _ => {
            return Err(ApiError::invalid(
                "messages",
                format!("messages: required, an array of 1 to {MAX_MESSAGES} messages"),
            ));
        }
    };
    let mut chat = Chat {
        model,
        max_tokens,
        ..Chat::default()
    };
    for (i, m) in messages.iter().enumerate() {
        let param = format!("messages.{i}");
        let Some(obj) = m.as_object() else {
            return Err(ApiError::invalid(param, "a message must be an object"));
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !["role", "content"].contains(&k.as_str()))
        {
            return Err(ApiError::invalid(
                format!("{param}.{}", super::shown(k)),
                "the message field is not supported by this server",
            ));
        }
        let content = obj
            .get("content")
            .ok_or_else(|| ApiError::invalid(format!("{param}.content"), "a message needs content"))
            .and_then(|c| text_of(c, &format!("{param}.content")))?;
        chat.origin(&format!("{param}.content"), &content);
        let role = match obj.get("role").and_then(Value::as_str) {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            _ => {
                return Err(ApiError::invalid(
                    format!("{param}.role"),
                    "role: must be user or assistant (the system prompt goes in `system`)",
                ));
            }
        };
        chat.messages.push(Message { role, content });
    }
    if !chat.messages.iter().any(|m| m.role == Role::User) {
        return Err(ApiError::invalid(
            "messages",
            "messages: add a user message",
        ));
    }
    let system = match body.get("system") {
        None | Some(Value::Null) => vec![],
        Some(v) => text_of(v, "system")?,
    };
    chat.origin("system", &system);
    chat.system = system;
    chat.stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::invalid("stream", "stream: must be true or false")),
    };
    chat.include_usage = true;
    chat.temperature = match body.get("temperature") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_f64().filter(|t| (0.0..=1.0).contains(t)) {
            Some(t) => Some(t),
            None => {
                return Err(ApiError::invalid(
                    "temperature",
                    "temperature: must be a number from 0 to 1",
                ));
            }
        },
    };
    chat.stop = match body.get("stop_sequences") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) if a.len() <= MAX_STOP && a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(_) => {
            return Err(ApiError::invalid(
                "stop_sequences",
                format!("stop_sequences: an array of at most {MAX_STOP} strings"),
            ));
        }
    };
    Ok(chat)
}

fn usage_json(used: Option<(u64, u64)>) -> Value {
    let (input, output) = used.unwrap_or_default();
    json!({"input_tokens": input, "output_tokens": output})
}

/// `POST /v1/messages`.
pub async fn messages(
    AxState(http): AxState<Http>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    match run(http, headers, body).await {
        Ok(resp) => resp,
        Err(e) => e.into_anthropic(),
    }
}

async fn run(http: Http, headers: HeaderMap, body: axum::body::Body) -> Result<Response, ApiError> {
    let (_, sub, body) = super::request(&http, &headers, body).await?;
    let chat = parse(&body, FIELDS)?;
    let Admitted {
        p,
        mut meter,
        slot,
        timeout: deadline,
    } = admit_chat(&http, sub, &chat, Api::Anthropic, "Messages").await?;
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    if chat.stream {
        return Ok(stream(p, meter, id, deadline, slot));
    }
    let resp = super::complete(&p, &mut meter, deadline, slot).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": p.served().model.id,
            "content": [{"type": "text", "text": resp.text}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": usage_json(meter.used()),
        }),
    ))
}

/// `POST /v1/messages/count_tokens`: `{"input_tokens": N}`, the tokens of a Messages request
/// by the estimate the meter charges when a provider reports none. The request is checked as
/// `/v1/messages` checks it (token, body, fields, input limit, model) and refused the same way,
/// but no model is called, no rate limit is taken and nothing is metered.
pub async fn count_tokens(
    AxState(http): AxState<Http>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    match count(http, headers, body).await {
        Ok(resp) => resp,
        Err(e) => e.into_anthropic(),
    }
}

async fn count(
    http: Http,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let (state, sub, body) = super::request(&http, &headers, body).await?;
    let chat = parse(&body, COUNT_FIELDS)?;
    let limits = Limits::for_sub(&state.config.server.limits, &sub);
    chat.check(&http.gov, &state, &sub, &limits)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"input_tokens": chat.estimated_input_tokens()}),
    ))
}

fn event(name: &str, v: &Value) -> Result<Bytes, std::convert::Infallible> {
    Ok(Bytes::from(format!("event: {name}\ndata: {v}\n\n")))
}

/// The streamed answer as Anthropic's events; like the OpenAI stream it holds the call's slot
/// and meter, so a client that goes away is charged what it used.
fn stream(
    p: exec::Prepared,
    mut meter: Meter,
    id: String,
    limit: Option<std::time::Duration>,
    slot: layer::Slot,
) -> Response {
    let ending = meter.ending();
    let failed = meter.failure();
    let events = async_stream::stream! {
        let _slot = slot;
        yield event("message_start", &json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": p.model.id,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }}));
        yield event("content_block_start", &json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}));
        let mut upstream = std::pin::pin!(exec::stream(&p));
        while let Some(item) = upstream.next().await {
            match item {
                Ok((StreamEvent::Text(t), _)) => {
                    meter.text(&t);
                    yield event("content_block_delta", &json!({"type": "content_block_delta",
                        "index": 0, "delta": {"type": "text_delta", "text": t}}));
                }
                Ok((StreamEvent::Usage(u), _)) => meter.usage(u),
                Err((e, retries)) => {
                    meter.failed(e.code());
                    meter.end(Outcome::Error);
                    yield event("error", &provider_failure(&e, &p.served().model, retries).anthropic_body());
                    return;
                }
            }
        }
        meter.end(Outcome::Completed);
        yield event("content_block_stop", &json!({"type": "content_block_stop", "index": 0}));
        yield event("message_delta", &json!({"type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": usage_json(meter.used())}));
        yield event("message_stop", &json!({"type": "message_stop"}));
    };
    let on_timeout = move || {
        ending.timed_out();
        failed("timeout");
        event(
            "error",
            &timeout(limit.unwrap_or_default()).anthropic_body(),
        )
    };
    let events = governance::with_deadline(events, limit, on_timeout);
    (
        [
            (http::header::CONTENT_TYPE, "text/event-stream"),
            (http::header::CACHE_CONTROL, "no-cache"),
        ],
        axum::body::Body::from_stream(events),
    )
        .into_response()
}
