//! The OpenAI-compatible API: `GET /v1/models` from the catalog and `POST /v1/chat/completions`,
//! whole or streamed as server-sent events (`data: {chunk}` lines, then `data: [DONE]`).
//!
//! A chat request becomes the same [`ExecuteRequest`] fields gRPC checks (system text as system
//! fragments, every other turn's text as user fragments, the schema as `response_model_schema`),
//! so the input bounds and model resolution are gRPC's own; the conversation itself goes
//! upstream as [`ChatRequest::messages`](crate::llm::ChatRequest). Fields this server does not
//! implement are refused with a 400 naming the field, never dropped.

use axum::extract::State as AxState;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use super::{
    Admitted, ApiError, Chat, Http, admit_chat, identify, json_response, provider_failure, timeout,
    tools,
};
use crate::llm::openai::{finish_reason, tool_call_json};
use crate::llm::{Message, Role, StreamEvent, ToolCall, ToolChoice, ToolDef, ToolResult};
use crate::server::cache::Lookup;
use crate::server::exec;
use crate::server::governance::meter::Meter;
use crate::server::governance::usage::{Api, Outcome};
use crate::server::governance::{self, layer};

/// The most messages one request may carry.
pub const MAX_MESSAGES: usize = 1024;
/// The most parts of one message's content.
pub const MAX_PARTS: usize = 256;
/// The most stop sequences (OpenAI's own limit).
pub const MAX_STOP: usize = 4;

/// The fields of a chat request this server implements.
const FIELDS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "response_format",
    "n",
    "tools",
    "tool_choice",
];

/// One message of `messages` (at `param`) into `chat`: system text, a user turn, an assistant
/// turn with its tool calls, or a tool result (which joins the user turn of results before it).
fn message(chat: &mut Chat, m: &Value, param: &str) -> Result<(), ApiError> {
    let Some(obj) = m.as_object() else {
        return Err(ApiError::invalid(param, "a message must be an object"));
    };
    let role = obj.get("role").and_then(Value::as_str);
    let allowed: &[&str] = match role {
        Some("assistant") => &["role", "content", "tool_calls"],
        Some("tool") => &["role", "content", "tool_call_id"],
        _ => &["role", "content"],
    };
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            format!("{param}.{}", super::shown(k)),
            format!(
                "the message field `{}` is not supported by this server",
                super::shown(k)
            ),
        )
        .with_code("unsupported_parameter"));
    }
    let calls = match (role, obj.get("tool_calls")) {
        (Some("assistant"), Some(c)) if !c.is_null() => {
            tool_calls(c, &format!("{param}.tool_calls"))?
        }
        _ => vec![],
    };
    let content = match obj.get("content") {
        // An assistant turn of tool calls alone has no content.
        None | Some(Value::Null) if !calls.is_empty() => vec![],
        None => {
            return Err(ApiError::invalid(
                format!("{param}.content"),
                "a message needs `content`",
            ));
        }
        Some(c) => {
            let mut parts = text_of(c, &format!("{param}.content"))?;
            if !calls.is_empty() {
                parts.retain(|p| !p.is_empty());
            }
            parts
        }
    };
    chat.origin(&format!("{param}.content"), &content);
    let call_text: Vec<String> = calls.iter().map(tools::call_text).collect();
    chat.origin(&format!("{param}.tool_calls"), &call_text);
    match role {
        Some("system" | "developer") => chat.system.extend(content),
        Some("user") => chat.messages.push(Message::text(Role::User, content)),
        Some("assistant") => chat.messages.push(Message {
            role: Role::Assistant,
            content,
            tool_calls: calls,
            tool_results: vec![],
        }),
        Some("tool") => {
            let result = ToolResult {
                call_id: tools::id(obj.get("tool_call_id"), &format!("{param}.tool_call_id"))?,
                content,
                is_error: false,
            };
            match chat.messages.last_mut() {
                Some(last)
                    if last.role == Role::User
                        && last.content.is_empty()
                        && !last.tool_results.is_empty() =>
                {
                    last.tool_results.push(result)
                }
                _ => chat.messages.push(Message {
                    role: Role::User,
                    tool_results: vec![result],
                    ..Message::default()
                }),
            }
        }
        Some(other) => {
            return Err(ApiError::invalid(
                format!("{param}.role"),
                format!(
                    "the role `{}` is not supported; use system, developer, user, assistant or tool",
                    super::shown(other)
                ),
            ));
        }
        None => {
            return Err(ApiError::invalid(
                format!("{param}.role"),
                "a message needs a `role`",
            ));
        }
    }
    Ok(())
}

/// An assistant turn's `tool_calls` (at `param`).
fn tool_calls(v: &Value, param: &str) -> Result<Vec<ToolCall>, ApiError> {
    let calls = match v.as_array() {
        Some(a) if a.len() <= crate::llm::MAX_TOOL_CALLS => a,
        _ => {
            return Err(ApiError::invalid(
                param,
                format!(
                    "`{param}` must be an array of at most {} tool calls",
                    crate::llm::MAX_TOOL_CALLS
                ),
            ));
        }
    };
    calls
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let p = format!("{param}[{j}]");
            let obj = c
                .as_object()
                .ok_or_else(|| ApiError::invalid(&p, "a tool call must be an object"))?;
            tools::known_keys(obj, &["id", "type", "function"], &p)?;
            if obj.get("type").and_then(Value::as_str) != Some("function") {
                return Err(ApiError::invalid(
                    format!("{p}.type"),
                    format!("`{p}.type` must be `function`"),
                ));
            }
            let f = obj
                .get("function")
                .and_then(Value::as_object)
                .ok_or_else(|| {
                    ApiError::invalid(format!("{p}.function"), "a tool call needs `function`")
                })?;
            let fp = format!("{p}.function");
            tools::known_keys(f, &["name", "arguments"], &fp)?;
            Ok(ToolCall {
                id: tools::id(obj.get("id"), &format!("{p}.id"))?,
                name: tools::name(f.get("name"), &format!("{fp}.name"))?,
                arguments: tools::arguments(f.get("arguments"), &format!("{fp}.arguments"))?,
            })
        })
        .collect()
}

/// `tools` and `tool_choice` into `chat`.
fn tool_fields(chat: &mut Chat, body: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(v) = body.get("tools").filter(|v| !v.is_null()) {
        for (i, t) in tools::list(v, "tools")?.iter().enumerate() {
            let p = format!("tools[{i}]");
            let obj = t
                .as_object()
                .ok_or_else(|| ApiError::invalid(&p, "a tool must be an object"))?;
            tools::known_keys(obj, &["type", "function"], &p)?;
            if obj.get("type").and_then(Value::as_str) != Some("function") {
                return Err(ApiError::invalid(
                    format!("{p}.type"),
                    format!("`{p}.type` must be `function`"),
                ));
            }
            let fp = format!("{p}.function");
            let f = obj
                .get("function")
                .and_then(Value::as_object)
                .ok_or_else(|| ApiError::invalid(&fp, format!("`{fp}` must be an object")))?;
            tools::known_keys(f, &["name", "description", "parameters"], &fp)?;
            chat.tools.push(ToolDef {
                name: tools::name(f.get("name"), &format!("{fp}.name"))?,
                description: tools::description(
                    f.get("description"),
                    &format!("{fp}.description"),
                )?,
                parameters: tools::schema(f.get("parameters"), &format!("{fp}.parameters"), false)?,
            });
        }
    }
    chat.tool_choice = match body.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => {
                return Err(ApiError::invalid(
                    "tool_choice",
                    "`tool_choice` must be auto, none, required or {\"type\": \"function\", \"function\": {\"name\": ...}}",
                ));
            }
        }),
        Some(Value::Object(o)) if o.get("type").and_then(Value::as_str) == Some("function") => {
            tools::known_keys(o, &["type", "function"], "tool_choice")?;
            let f = o.get("function").and_then(Value::as_object);
            if let Some(f) = f {
                tools::known_keys(f, &["name"], "tool_choice.function")?;
            }
            Some(ToolChoice::Tool(tools::name(
                f.and_then(|f| f.get("name")),
                "tool_choice.function.name",
            )?))
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "tool_choice",
                "`tool_choice` must be auto, none, required or {\"type\": \"function\", \"function\": {\"name\": ...}}",
            ));
        }
    };
    tools::check(chat, "tools", "tool_choice")
}

/// `GET /v1/models`: the catalog's models.
pub async fn models(AxState(http): AxState<Http>, headers: HeaderMap) -> Response {
    let state = http.state.load_full();
    if let Err(e) = identify(&state, &headers) {
        return e.into_response();
    }
    let data: Vec<Value> = state
        .catalog
        .models
        .values()
        .map(|m| json!({"id": m.id, "object": "model", "created": 0, "owned_by": m.provider}))
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

pub(super) fn text_of(v: &Value, param: &str) -> Result<Vec<String>, ApiError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(parts) => {
            if parts.len() > MAX_PARTS {
                return Err(ApiError::invalid(
                    param,
                    format!("{param} has {} parts; at most {MAX_PARTS}", parts.len()),
                ));
            }
            parts
                .iter()
                .enumerate()
                .map(|(j, part)| text_part(part, &format!("{param}[{j}]")))
                .collect()
        }
        _ => Err(ApiError::invalid(
            param,
            format!("{param} must be a string or an array of text parts"),
        )),
    }
}

/// The text of one content part (at `p`): `{"type": "text", "text": ...}`.
pub(super) fn text_part(part: &Value, p: &str) -> Result<String, ApiError> {
    match (part.get("type").and_then(Value::as_str), part.get("text")) {
        (Some("text"), Some(Value::String(t))) => Ok(t.clone()),
        (Some("text"), _) => Err(ApiError::invalid(
            format!("{p}.text"),
            "a text part needs `text`, a string",
        )),
        (Some(other), _) => Err(ApiError::invalid(
            format!("{p}.type"),
            format!(
                "content parts of type `{}` are not supported; send text parts",
                super::shown(other)
            ),
        )),
        (None, _) => Err(ApiError::invalid(
            format!("{p}.type"),
            "a content part needs a `type`",
        )),
    }
}

fn parse(body: &Map<String, Value>) -> Result<Chat, ApiError> {
    if let Some(field) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            field.as_str(),
            format!(
                "the field `{}` is not supported by this server; remove it",
                super::shown(field)
            ),
        )
        .with_code("unsupported_parameter"));
    }
    let model = match body.get("model") {
        Some(Value::String(m)) if !m.trim().is_empty() => m.clone(),
        _ => {
            return Err(ApiError::invalid(
                "model",
                "`model` is required: a model id from GET /v1/models",
            ));
        }
    };
    let mut chat = Chat {
        model,
        ..Chat::default()
    };
    let messages = match body.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        _ => {
            return Err(ApiError::invalid(
                "messages",
                "`messages` is required: a non-empty array of messages",
            ));
        }
    };
    if messages.len() > MAX_MESSAGES {
        return Err(ApiError::invalid(
            "messages",
            format!("{} messages; at most {MAX_MESSAGES}", messages.len()),
        ));
    }
    for (i, m) in messages.iter().enumerate() {
        message(&mut chat, m, &format!("messages[{i}]"))?;
    }
    if !chat.messages.iter().any(|m| m.role == Role::User) {
        return Err(ApiError::invalid(
            "messages",
            "`messages` has no user message; add one",
        ));
    }
    chat.stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::invalid(
                "stream",
                "`stream` must be true or false",
            ));
        }
    };
    match body.get("stream_options") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            if !chat.stream {
                return Err(ApiError::invalid(
                    "stream_options",
                    "`stream_options` is only allowed with `stream: true`",
                ));
            }
            for (k, v) in o {
                match (k.as_str(), v) {
                    ("include_usage", Value::Bool(b)) => chat.include_usage = *b,
                    ("include_usage", _) => {
                        return Err(ApiError::invalid(
                            "stream_options.include_usage",
                            "must be true or false",
                        ));
                    }
                    (other, _) => {
                        return Err(ApiError::invalid(
                            format!("stream_options.{}", super::shown(other)),
                            "not supported by this server",
                        )
                        .with_code("unsupported_parameter"));
                    }
                }
            }
        }
        Some(_) => return Err(ApiError::invalid("stream_options", "must be an object")),
    }
    chat.temperature = match body.get("temperature") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_f64().filter(|t| (0.0..=2.0).contains(t)) {
            Some(t) => Some(t),
            None => {
                return Err(ApiError::invalid(
                    "temperature",
                    "`temperature` must be a number from 0 to 2",
                ));
            }
        },
    };
    for key in ["max_tokens", "max_completion_tokens"] {
        match body.get(key) {
            None | Some(Value::Null) => {}
            Some(v) => match v
                .as_u64()
                .filter(|n| *n >= 1)
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            {
                Some(n) => chat.max_tokens = Some(chat.max_tokens.map_or(n, |m| m.min(n))),
                None => {
                    return Err(ApiError::invalid(
                        key,
                        format!("`{key}` must be a positive integer"),
                    ));
                }
            },
        }
    }
    chat.stop = match body.get("stop") {
        None | Some(Value::Null) => vec![],
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if a.len() <= MAX_STOP && a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(_) => {
            return Err(ApiError::invalid(
                "stop",
                format!("`stop` must be a string or an array of at most {MAX_STOP} strings"),
            ));
        }
    };
    match body.get("n") {
        None | Some(Value::Null) => {}
        Some(v) if v.as_u64() == Some(1) => {}
        Some(_) => return Err(ApiError::invalid("n", "only `n: 1` is supported")),
    }
    chat.schema = match body.get("response_format") {
        None | Some(Value::Null) => None,
        Some(rf) => match rf.get("type").and_then(Value::as_str) {
            Some("text") => None,
            // Any JSON object: a schema that allows every object.
            Some("json_object") => Some(r#"{"type":"object"}"#.to_owned()),
            Some("json_schema") => match rf.get("json_schema").and_then(|j| j.get("schema")) {
                Some(schema @ Value::Object(_)) => {
                    let text = schema.to_string();
                    chat.origin(super::SCHEMA_PARAM, [&text]);
                    Some(text)
                }
                _ => {
                    return Err(ApiError::invalid(
                        "response_format.json_schema.schema",
                        "a json_schema response format needs `json_schema.schema`, an object",
                    ));
                }
            },
            _ => {
                return Err(ApiError::invalid(
                    "response_format.type",
                    "`response_format.type` must be text, json_object or json_schema",
                ));
            }
        },
    };
    tool_fields(&mut chat, body)?;
    Ok(chat)
}

/// `{"prompt_tokens", "completion_tokens", "total_tokens"}` of what the meter charges.
fn usage_json(used: Option<(u64, u64)>) -> Value {
    let (input, output) = used.unwrap_or_default();
    json!({"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output})
}

fn now_unix() -> i64 {
    governance::usage::now_unix()
}

/// `POST /v1/chat/completions`.
pub async fn chat_completions(
    AxState(http): AxState<Http>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    match run(http, headers, body).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn run(http: Http, headers: HeaderMap, body: axum::body::Body) -> Result<Response, ApiError> {
    let (_, sub, body) = super::request(&http, &headers, body).await?;
    let chat = parse(&body)?;
    let Admitted {
        p,
        meter,
        lookup,
        slot,
        timeout: deadline,
    } = admit_chat(&http, sub, &chat, &headers, Api::Openai, "ChatCompletions").await?;
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    if chat.stream {
        return Ok(stream(
            p,
            lookup,
            meter,
            id,
            chat.include_usage,
            deadline,
            slot,
        ));
    }
    let mut meter = meter;
    let resp = super::complete(&p, &lookup, &mut meter, deadline, slot).await?;
    let mut message = json!({"role": "assistant", "content": resp.text, "refusal": null});
    if !resp.tool_calls.is_empty() {
        message["tool_calls"] = resp.tool_calls.iter().map(tool_call_json).collect();
        if resp.text.is_empty() {
            message["content"] = Value::Null;
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "id": id,
            "object": "chat.completion",
            "created": now_unix(),
            "model": p.served().model.id,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": finish_reason(resp.stop.as_ref()),
            }],
            "usage": usage_json(meter.used()),
        }),
    ))
}

fn sse(v: &Value) -> Result<Bytes, std::convert::Infallible> {
    Ok(Bytes::from(format!("data: {v}\n\n")))
}

/// The streamed answer as server-sent events. The stream holds the call's admission slot and
/// its meter, so a client that goes away drops the upstream call and is charged what it used.
fn stream(
    p: exec::Prepared,
    lookup: Lookup,
    mut meter: Meter,
    id: String,
    include_usage: bool,
    limit: Option<std::time::Duration>,
    slot: layer::Slot,
) -> Response {
    let created = now_unix();
    // The model that answers: the one asked for until a fallback takes the call.
    let served = p.route.served.clone();
    let chunk = move |delta: Value, finish: Value| {
        let model = crate::server::routing::served(&served).model.id;
        json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        })
    };
    let ending = meter.ending();
    let failed = meter.failure();
    let events = async_stream::stream! {
        let _slot = slot;
        yield sse(&chunk(json!({"role": "assistant", "content": ""}), Value::Null));
        let mut upstream = std::pin::pin!(lookup.stream(&p));
        let mut stop = None;
        while let Some(item) = upstream.next().await {
            match item {
                Ok((StreamEvent::Text(t), _)) => {
                    meter.text(&t);
                    yield sse(&chunk(json!({"content": t}), Value::Null));
                }
                Ok((StreamEvent::ToolCall { index, id, name }, _)) => {
                    meter.text(&name);
                    yield sse(&chunk(json!({"tool_calls": [{"index": index, "id": id,
                        "type": "function", "function": {"name": name, "arguments": ""}}]}),
                        Value::Null));
                }
                Ok((StreamEvent::ToolArgs { index, fragment }, _)) => {
                    meter.text(&fragment);
                    yield sse(&chunk(json!({"tool_calls": [{"index": index,
                        "function": {"arguments": fragment}}]}), Value::Null));
                }
                Ok((StreamEvent::Stop(s), _)) => stop = Some(s),
                Ok((StreamEvent::InputTokens(_), _)) => {}
                Ok((StreamEvent::Usage(u), _)) => meter.usage(u),
                Err((e, retries)) => {
                    meter.failed(e.code());
                    meter.end(Outcome::Error);
                    yield sse(&provider_failure(&e, &p.served().model, retries).body());
                    return;
                }
            }
        }
        meter.end(Outcome::Completed);
        let mut last = chunk(json!({}), json!(finish_reason(stop.as_ref())));
        yield sse(&last);
        if include_usage {
            last["choices"] = json!([]);
            last["usage"] = usage_json(meter.used());
            yield sse(&last);
        }
        yield Ok(Bytes::from_static(b"data: [DONE]\n\n"));
    };
    let on_timeout = move || {
        ending.timed_out();
        failed("timeout");
        sse(&timeout(limit.unwrap_or_default()).body())
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
