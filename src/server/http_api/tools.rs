//! Tools in the HTTP APIs: the checks both APIs share for tool definitions (name, schema,
//! count), tool choice and tool-call arguments, with their bounds. Each check names the
//! request field at fault in the API's own spelling (`param`), which the caller passes in.

use serde_json::Value;

use super::{ApiError, Chat};
use crate::llm::{ToolCall, ToolChoice, ToolDef, ToolResult};

/// The most tools one request may define (OpenAI's own limit).
pub const MAX_TOOLS: usize = 128;
/// The largest schema of one tool, as JSON text. Every tool's schema also counts towards the
/// request's `max_input_length`.
pub const MAX_TOOL_SCHEMA_BYTES: usize = 64 * 1024;
/// The longest tool name (both APIs' limit).
pub const MAX_NAME_CHARS: usize = 64;
/// The longest tool description.
pub const MAX_DESCRIPTION_CHARS: usize = 16 * 1024;
/// The longest tool call id.
pub const MAX_ID_CHARS: usize = 256;

/// The array of tool definitions at `param`, within [`MAX_TOOLS`].
pub fn list<'a>(v: &'a Value, param: &str) -> Result<&'a [Value], ApiError> {
    match v.as_array() {
        Some(a) if a.len() <= MAX_TOOLS => Ok(a),
        Some(a) => Err(ApiError::invalid(
            param,
            format!(
                "`{param}` has {} tools; at most {MAX_TOOLS}; send fewer",
                a.len()
            ),
        )),
        None => Err(ApiError::invalid(
            param,
            format!("`{param}` must be an array of tools"),
        )),
    }
}

/// A tool name: 1 to 64 ASCII letters, digits, `_` or `-`, as both APIs require.
pub fn name(v: Option<&Value>, param: &str) -> Result<String, ApiError> {
    match v.and_then(Value::as_str) {
        Some(n)
            if !n.is_empty()
                && n.len() <= MAX_NAME_CHARS
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            Ok(n.to_owned())
        }
        _ => Err(ApiError::invalid(
            param,
            format!(
                "`{param}` must be a tool name of 1 to {MAX_NAME_CHARS} ASCII letters, digits, `_` or `-`"
            ),
        )),
    }
}

/// An optional description, a string within [`MAX_DESCRIPTION_CHARS`].
pub fn description(v: Option<&Value>, param: &str) -> Result<Option<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(d)) if d.chars().count() <= MAX_DESCRIPTION_CHARS => Ok(Some(d.clone())),
        Some(_) => Err(ApiError::invalid(
            param,
            format!("`{param}` must be a string of at most {MAX_DESCRIPTION_CHARS} characters"),
        )),
    }
}

/// A tool's JSON Schema: a JSON object of at most [`MAX_TOOL_SCHEMA_BYTES`]; absent (when
/// allowed) it is the schema of no arguments.
pub fn schema(v: Option<&Value>, param: &str, required: bool) -> Result<Value, ApiError> {
    match v {
        None if !required => Ok(serde_json::json!({"type": "object", "properties": {}})),
        Some(s @ Value::Object(_)) => {
            let size = s.to_string().len();
            if size > MAX_TOOL_SCHEMA_BYTES {
                return Err(ApiError::invalid(
                    param,
                    format!(
                        "`{param}` is {size} bytes of JSON; a tool schema may have at most {MAX_TOOL_SCHEMA_BYTES}"
                    ),
                ));
            }
            Ok(s.clone())
        }
        _ => Err(ApiError::invalid(
            param,
            format!("`{param}` must be a JSON Schema object"),
        )),
    }
}

/// The only keys an object at `param` may have; another is refused, named.
pub fn known_keys(
    obj: &serde_json::Map<String, Value>,
    allowed: &[&str],
    param: &str,
) -> Result<(), ApiError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid(
            format!("{param}.{}", super::shown(k)),
            format!(
                "`{param}.{}` is not supported by this server; remove it",
                super::shown(k)
            ),
        )
        .with_code("unsupported_parameter")),
        None => Ok(()),
    }
}

/// A tool call id: a non-empty string within [`MAX_ID_CHARS`].
pub fn id(v: Option<&Value>, param: &str) -> Result<String, ApiError> {
    match v.and_then(Value::as_str) {
        Some(id) if !id.is_empty() && id.chars().count() <= MAX_ID_CHARS => Ok(id.to_owned()),
        _ => Err(ApiError::invalid(
            param,
            format!(
                "`{param}` must be a tool call id (a string of 1 to {MAX_ID_CHARS} characters)"
            ),
        )),
    }
}

/// A tool call's arguments given as JSON text (OpenAI): they must hold a JSON object, since
/// every provider takes them as one.
pub fn arguments(v: Option<&Value>, param: &str) -> Result<String, ApiError> {
    let err = || {
        ApiError::invalid(
            param,
            format!("`{param}` must be a JSON object written as a string"),
        )
    };
    let text = v.and_then(Value::as_str).ok_or_else(err)?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(_)) => Ok(text.to_owned()),
        _ if text.trim().is_empty() => Ok("{}".to_owned()),
        _ => Err(err()),
    }
}

/// The checks on a request's tools as a whole: a named tool choice names a defined tool, a
/// choice needs tools, two tools do not share a name, and structured output is not asked for
/// beside tools.
pub fn check(chat: &Chat, tools_param: &str, choice_param: &str) -> Result<(), ApiError> {
    for (i, t) in chat.tools.iter().enumerate() {
        if chat.tools[..i].iter().any(|u| u.name == t.name) {
            return Err(ApiError::invalid(
                tools_param,
                format!(
                    "two tools are named `{}`; give each tool its own name",
                    t.name
                ),
            ));
        }
    }
    match &chat.tool_choice {
        Some(ToolChoice::Tool(n)) if !chat.tools.iter().any(|t| &t.name == n) => {
            return Err(ApiError::invalid(
                choice_param,
                format!("`{choice_param}` names the tool `{n}`, which is not in `{tools_param}`"),
            ));
        }
        Some(ToolChoice::Required | ToolChoice::Tool(_)) if chat.tools.is_empty() => {
            return Err(ApiError::invalid(
                choice_param,
                format!("`{choice_param}` asks for a tool call but `{tools_param}` is empty"),
            ));
        }
        _ => {}
    }
    if !chat.tools.is_empty() && chat.schema.is_some() {
        return Err(ApiError::invalid(
            "response_format",
            "structured output (`response_format`) together with `tools` is not supported; send one of them",
        ));
    }
    Ok(())
}

/// The JSON text a tool definition adds to the request's input (counted against
/// `max_input_length`, like the system and user text).
pub fn input_text(t: &ToolDef) -> String {
    let mut s = t.name.clone();
    if let Some(d) = &t.description {
        s.push_str(d);
    }
    s.push_str(&t.parameters.to_string());
    s
}

/// The text a tool call in the conversation adds to the request's input.
pub fn call_text(c: &ToolCall) -> String {
    format!("{}{}{}", c.id, c.name, c.arguments)
}

/// The text a tool result in the conversation adds to the request's input.
pub fn result_text(r: &ToolResult) -> impl Iterator<Item = String> + '_ {
    std::iter::once(r.call_id.clone()).chain(r.content.iter().cloned())
}
