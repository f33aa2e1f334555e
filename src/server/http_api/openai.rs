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
};
use crate::llm::{Message, Role, StreamEvent};
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
];

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
                .map(|(j, part)| {
                    let p = format!("{param}[{j}]");
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
                })
                .collect()
        }
        _ => Err(ApiError::invalid(
            param,
            format!("{param} must be a string or an array of text parts"),
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
        let param = format!("messages[{i}]");
        let Some(obj) = m.as_object() else {
            return Err(ApiError::invalid(param, "a message must be an object"));
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !["role", "content"].contains(&k.as_str()))
        {
            return Err(ApiError::invalid(
                format!("{param}.{}", super::shown(k)),
                format!(
                    "the message field `{}` is not supported by this server",
                    super::shown(k)
                ),
            )
            .with_code("unsupported_parameter"));
        }
        let content = obj
            .get("content")
            .ok_or_else(|| {
                ApiError::invalid(format!("{param}.content"), "a message needs `content`")
            })
            .and_then(|c| text_of(c, &format!("{param}.content")))?;
        chat.origin(&format!("{param}.content"), &content);
        match obj.get("role").and_then(Value::as_str) {
            Some("system" | "developer") => chat.system.extend(content),
            Some("user") => chat.messages.push(Message {
                role: Role::User,
                content,
            }),
            Some("assistant") => chat.messages.push(Message {
                role: Role::Assistant,
                content,
            }),
            Some(other) => {
                return Err(ApiError::invalid(
                    format!("{param}.role"),
                    format!(
                        "the role `{}` is not supported; use system, developer, user or assistant",
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
        slot,
        timeout: deadline,
    } = admit_chat(&http, sub, &chat, Api::Openai, "ChatCompletions").await?;
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    if chat.stream {
        return Ok(stream(p, meter, id, chat.include_usage, deadline, slot));
    }
    let mut meter = meter;
    let resp = super::complete(&p, &mut meter, deadline, slot).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "id": id,
            "object": "chat.completion",
            "created": now_unix(),
            "model": p.served().model.id,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": resp.text, "refusal": null},
                "logprobs": null,
                "finish_reason": "stop",
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
        let mut upstream = std::pin::pin!(exec::stream(&p));
        while let Some(item) = upstream.next().await {
            match item {
                Ok((StreamEvent::Text(t), _)) => {
                    meter.text(&t);
                    yield sse(&chunk(json!({"content": t}), Value::Null));
                }
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
        let mut last = chunk(json!({}), json!("stop"));
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
