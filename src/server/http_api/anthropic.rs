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

use super::openai::{MAX_MESSAGES, MAX_PARTS, text_of, text_part};
use super::{
    Admitted, ApiError, Chat, Http, admit_chat, json_response, provider_failure, timeout, tools,
};
use crate::llm::anthropic::{stop_reason_name, tool_input};
use crate::llm::{
    MAX_TOOL_CALLS, Message, Role, StopReason, StreamEvent, ToolCall, ToolChoice, ToolDef,
    ToolResult,
};
use crate::server::cache::Lookup;
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
    "tools",
    "tool_choice",
];

/// A message's `content` (at `param`) of `role`: a string, or blocks of `text`, `tool_use`
/// (assistant) and `tool_result` (user).
fn content(v: &Value, param: &str, role: Role) -> Result<Message, ApiError> {
    let mut m = Message {
        role,
        ..Message::default()
    };
    let Value::Array(blocks) = v else {
        m.content = text_of(v, param)?;
        return Ok(m);
    };
    if blocks.len() > MAX_PARTS {
        return Err(ApiError::invalid(
            param,
            format!("{param} has {} blocks; at most {MAX_PARTS}", blocks.len()),
        ));
    }
    for (j, b) in blocks.iter().enumerate() {
        let p = format!("{param}.{j}");
        let obj = b
            .as_object()
            .ok_or_else(|| ApiError::invalid(&p, "a content block must be an object"))?;
        match (obj.get("type").and_then(Value::as_str), role) {
            (Some("tool_use"), Role::Assistant) => {
                tools::known_keys(obj, &["type", "id", "name", "input"], &p)?;
                let input = match obj.get("input") {
                    Some(i @ Value::Object(_)) => i.to_string(),
                    _ => {
                        return Err(ApiError::invalid(
                            format!("{p}.input"),
                            format!("`{p}.input` must be a JSON object"),
                        ));
                    }
                };
                m.tool_calls.push(ToolCall {
                    id: tools::id(obj.get("id"), &format!("{p}.id"))?,
                    name: tools::name(obj.get("name"), &format!("{p}.name"))?,
                    arguments: input,
                });
            }
            (Some("tool_result"), Role::User) => {
                tools::known_keys(obj, &["type", "tool_use_id", "content", "is_error"], &p)?;
                let content = match obj.get("content") {
                    None | Some(Value::Null) => vec![],
                    Some(c) => text_of(c, &format!("{p}.content"))?,
                };
                let is_error = match obj.get("is_error") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => {
                        return Err(ApiError::invalid(
                            format!("{p}.is_error"),
                            format!("`{p}.is_error` must be true or false"),
                        ));
                    }
                };
                m.tool_results.push(ToolResult {
                    call_id: tools::id(obj.get("tool_use_id"), &format!("{p}.tool_use_id"))?,
                    content,
                    is_error,
                });
            }
            (Some(kind @ ("tool_use" | "tool_result")), _) => {
                return Err(ApiError::invalid(
                    format!("{p}.type"),
                    format!(
                        "a `{kind}` block belongs in {} message",
                        if kind == "tool_use" {
                            "an assistant"
                        } else {
                            "a user"
                        }
                    ),
                ));
            }
            _ => m.content.push(text_part(b, &p)?),
        }
    }
    if m.tool_calls.len() > MAX_TOOL_CALLS {
        return Err(ApiError::invalid(
            param,
            format!(
                "{param} has {} tool_use blocks; at most {MAX_TOOL_CALLS}",
                m.tool_calls.len()
            ),
        ));
    }
    Ok(m)
}

/// `tools` and `tool_choice` into `chat`.
fn tool_fields(chat: &mut Chat, body: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(v) = body.get("tools").filter(|v| !v.is_null()) {
        for (i, t) in tools::list(v, "tools")?.iter().enumerate() {
            let p = format!("tools.{i}");
            let obj = t
                .as_object()
                .ok_or_else(|| ApiError::invalid(&p, "a tool must be an object"))?;
            tools::known_keys(obj, &["type", "name", "description", "input_schema"], &p)?;
            match obj.get("type") {
                None | Some(Value::Null) => {}
                Some(Value::String(t)) if t == "custom" => {}
                Some(_) => {
                    return Err(ApiError::invalid(
                        format!("{p}.type"),
                        "only custom tools (with `input_schema`) are supported; server tools are not",
                    ));
                }
            }
            chat.tools.push(ToolDef {
                name: tools::name(obj.get("name"), &format!("{p}.name"))?,
                description: tools::description(
                    obj.get("description"),
                    &format!("{p}.description"),
                )?,
                parameters: tools::schema(
                    obj.get("input_schema"),
                    &format!("{p}.input_schema"),
                    true,
                )?,
            });
        }
    }
    chat.tool_choice = match body.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => {
            tools::known_keys(o, &["type", "name"], "tool_choice")?;
            Some(match o.get("type").and_then(Value::as_str) {
                Some("auto") => ToolChoice::Auto,
                Some("any") => ToolChoice::Required,
                Some("none") => ToolChoice::None,
                Some("tool") => ToolChoice::Tool(tools::name(o.get("name"), "tool_choice.name")?),
                _ => {
                    return Err(ApiError::invalid(
                        "tool_choice.type",
                        "`tool_choice.type` must be auto, any, tool or none",
                    ));
                }
            })
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "tool_choice",
                "`tool_choice` must be an object: {\"type\": \"auto\" | \"any\" | \"tool\" | \"none\"}",
            ));
        }
    };
    tools::check(chat, "tools", "tool_choice")
}

/// The fields of a count_tokens request this server implements.
const COUNT_FIELDS: &[&str] = &["model", "messages", "system", "tools", "tool_choice"];

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
        let message = obj
            .get("content")
            .ok_or_else(|| ApiError::invalid(format!("{param}.content"), "a message needs content"))
            .and_then(|c| content(c, &format!("{param}.content"), role))?;
        chat.origin(&format!("{param}.content"), &message.content);
        let tool_text: Vec<String> = message
            .tool_calls
            .iter()
            .map(tools::call_text)
            .chain(message.tool_results.iter().flat_map(tools::result_text))
            .collect();
        chat.origin(&format!("{param}.content"), &tool_text);
        chat.messages.push(message);
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
    tool_fields(&mut chat, body)?;
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
        lookup,
        slot,
        timeout: deadline,
    } = admit_chat(&http, sub, &chat, &headers, Api::Anthropic, "Messages").await?;
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    if chat.stream {
        return Ok(stream(p, lookup, meter, id, deadline, slot));
    }
    let resp = super::complete(&p, &lookup, &mut meter, deadline, slot).await?;
    let mut content = Vec::with_capacity(1 + resp.tool_calls.len());
    if !resp.text.is_empty() || resp.tool_calls.is_empty() {
        content.push(json!({"type": "text", "text": resp.text}));
    }
    for call in &resp.tool_calls {
        let Some(input) = tool_input(&call.arguments) else {
            return Err(bad_arguments(&call.name));
        };
        content.push(json!({"type": "tool_use", "id": call.id, "name": call.name,
            "input": input}));
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": p.served().model.id,
            "content": content,
            "stop_reason": stop_reason_name(resp.stop.as_ref()),
            "stop_sequence": stop_sequence(resp.stop.as_ref()),
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

/// The model's arguments for a tool call are not a JSON object (a provider whose arguments
/// are JSON text can send any text); a `tool_use` block cannot carry them.
fn bad_arguments(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "api_error",
        format!(
            "the model's arguments for the tool `{}` are not a JSON object",
            super::shown(name)
        ),
    )
}

/// `stop_sequence`: the sequence that stopped the answer, when the provider named it.
fn stop_sequence(stop: Option<&StopReason>) -> Value {
    match stop {
        Some(StopReason::StopSequence(Some(s))) => json!(s),
        _ => Value::Null,
    }
}

fn event(name: &str, v: &Value) -> Result<Bytes, std::convert::Infallible> {
    Ok(Bytes::from(format!("event: {name}\ndata: {v}\n\n")))
}

fn block_stop(index: usize) -> Result<Bytes, std::convert::Infallible> {
    event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": index}),
    )
}

/// The streamed answer as Anthropic's events; like the OpenAI stream it holds the call's slot
/// and meter, so a client that goes away is charged what it used.
fn stream(
    p: exec::Prepared,
    lookup: Lookup,
    mut meter: Meter,
    id: String,
    limit: Option<std::time::Duration>,
    slot: layer::Slot,
) -> Response {
    let ending = meter.ending();
    let failed = meter.failure();
    let events = async_stream::stream! {
        let _slot = slot;
        let mut upstream = std::pin::pin!(lookup.stream(&p));
        // `message_start` waits for the provider's first item: an Anthropic provider counts
        // the input there; an OpenAI one only at the end (then 0 here, the count in
        // `message_delta`).
        let first = upstream.next().await;
        let input = match &first {
            Some(Ok((StreamEvent::InputTokens(n), _))) => *n,
            _ => 0,
        };
        yield event("message_start", &json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": p.model.id,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input, "output_tokens": 0},
        }}));
        // The open content block (its index, and whether it is text), the next block's
        // index, and the block of each tool call.
        let mut open: Option<(usize, bool)> = None;
        let mut next_block = 0usize;
        let mut tool_blocks: Vec<usize> = Vec::new();
        let mut stop = None;
        let mut items = futures_util::stream::iter(first).chain(upstream);
        while let Some(item) = items.next().await {
            match item {
                Ok((StreamEvent::Text(t), _)) => {
                    meter.text(&t);
                    let block = match open {
                        Some((b, true)) => b,
                        _ => {
                            if let Some((b, _)) = open {
                                yield block_stop(b);
                            }
                            let b = next_block;
                            next_block += 1;
                            open = Some((b, true));
                            yield event("content_block_start", &json!({"type": "content_block_start",
                                "index": b, "content_block": {"type": "text", "text": ""}}));
                            b
                        }
                    };
                    yield event("content_block_delta", &json!({"type": "content_block_delta",
                        "index": block, "delta": {"type": "text_delta", "text": t}}));
                }
                Ok((StreamEvent::ToolCall { id, name, .. }, _)) => {
                    meter.text(&name);
                    if let Some((b, _)) = open {
                        yield block_stop(b);
                    }
                    let b = next_block;
                    next_block += 1;
                    open = Some((b, false));
                    tool_blocks.push(b);
                    yield event("content_block_start", &json!({"type": "content_block_start",
                        "index": b, "content_block": {"type": "tool_use", "id": id, "name": name,
                        "input": {}}}));
                }
                Ok((StreamEvent::ToolArgs { index, fragment }, _)) => {
                    meter.text(&fragment);
                    if let Some(b) = tool_blocks.get(index) {
                        yield event("content_block_delta", &json!({"type": "content_block_delta",
                            "index": b, "delta": {"type": "input_json_delta",
                            "partial_json": fragment}}));
                    }
                }
                Ok((StreamEvent::Stop(s), _)) => stop = Some(s),
                Ok((StreamEvent::InputTokens(_), _)) => {}
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
        match open {
            Some((b, _)) => yield block_stop(b),
            None => {
                // An empty answer is one empty text block.
                yield event("content_block_start", &json!({"type": "content_block_start",
                    "index": 0, "content_block": {"type": "text", "text": ""}}));
                yield block_stop(0);
            }
        }
        yield event("message_delta", &json!({"type": "message_delta",
            "delta": {"stop_reason": stop_reason_name(stop.as_ref()),
                      "stop_sequence": stop_sequence(stop.as_ref())},
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
