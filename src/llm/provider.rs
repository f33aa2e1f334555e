//! Provider-neutral request, response and stream types shared by every upstream LLM client.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::config::Secret;

/// One chat call: what the model is told, and how it must answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    /// Fragments for the provider's system slot, in order.
    pub system: Vec<String>,
    /// Fragments of the single user message, in order.
    pub user: Vec<String>,
    /// The model name as the upstream provider spells it.
    pub model: String,
    /// A JSON Schema the answer must follow (structured output), if any.
    pub response_schema: Option<serde_json::Value>,
    /// Upper bound on generated tokens; `None` uses the client's default.
    pub max_tokens: Option<u32>,
    /// The conversation after the system slot, in order. Empty for the gRPC path, whose one
    /// user turn is `user`; when not empty it is sent instead of `user`.
    pub messages: Vec<Message>,
    /// Sampling temperature; `None` uses the provider's default.
    pub temperature: Option<f64>,
    /// Sequences that end the answer when generated.
    pub stop: Vec<String>,
    /// Tools the model may call. Empty for the gRPC path.
    pub tools: Vec<ToolDef>,
    /// Whether and which tool the model must call; `None` leaves it to the provider (auto).
    pub tool_choice: Option<ToolChoice>,
}

impl ChatRequest {
    /// Whether the request defines tools or its conversation carries tool calls or results.
    pub fn uses_tools(&self) -> bool {
        !self.tools.is_empty()
            || self
                .messages
                .iter()
                .any(|m| !m.tool_calls.is_empty() || !m.tool_results.is_empty())
    }
}

/// A tool the model may call: its name, what it does, and the JSON Schema (an object) of its
/// arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: String,
    pub description: Option<String>,
    pub parameters: serde_json::Value,
}

/// Which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides (OpenAI `auto`, Anthropic `auto`).
    Auto,
    /// No tool call (OpenAI `none`, Anthropic `none`).
    None,
    /// At least one tool call, any tool (OpenAI `required`, Anthropic `any`).
    Required,
    /// A call of this tool (OpenAI `{type: function, function: {name}}`, Anthropic
    /// `{type: tool, name}`).
    Tool(String),
}

/// A call of a tool the model made: the call's id, the tool, and its arguments as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// What a tool call gave, sent back to the model in a user turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResult {
    /// The id of the call this answers.
    pub call_id: String,
    /// The result's text parts, in order.
    pub content: Vec<String>,
    /// The tool failed (Anthropic `is_error`).
    pub is_error: bool,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// A natural end (OpenAI `stop`, Anthropic `end_turn`).
    EndTurn,
    /// The token limit (OpenAI `length`, Anthropic `max_tokens`).
    MaxTokens,
    /// One of the request's stop sequences, and which one when the provider says.
    StopSequence(Option<String>),
    /// The model called tools (OpenAI `tool_calls`, Anthropic `tool_use`).
    ToolUse,
    /// The provider withheld the answer (OpenAI `content_filter`, Anthropic `refusal`).
    ContentFilter,
}

/// Who said a turn of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    #[default]
    User,
    Assistant,
}

impl Role {
    /// The role's name in the OpenAI, Anthropic and Ollama message shapes.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One turn of a conversation: its text parts, in order; an assistant turn may carry the tool
/// calls the model made, a user turn the results of those calls (sent before its text).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    pub role: Role,
    pub content: Vec<String>,
    pub tool_calls: Vec<ToolCall>,
    pub tool_results: Vec<ToolResult>,
}

impl Message {
    /// A turn of text only.
    pub fn text(role: Role, content: Vec<String>) -> Message {
        Message {
            role,
            content,
            ..Message::default()
        }
    }
}

/// Token counts reported by the provider; a count it did not report is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: Option<u32>,
    pub output_tokens: Option<u32>,
}

impl Usage {
    /// Input plus output tokens, when both are known.
    pub fn total_tokens(&self) -> Option<u32> {
        Some(self.input_tokens?.saturating_add(self.output_tokens?))
    }
}

/// The whole answer of a non-streaming call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatResponse {
    /// The answer text; for structured output, the JSON document as text.
    pub text: String,
    pub usage: Usage,
    /// The tool calls the model made, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Why the model stopped, when the provider said.
    pub stop: Option<StopReason>,
}

impl ChatResponse {
    /// The answer as the items of a stream (see [`StreamEvent`]).
    pub fn into_events(self) -> Vec<StreamEvent> {
        let mut out = Vec::with_capacity(3 + 2 * self.tool_calls.len());
        if let Some(n) = self.usage.input_tokens {
            out.push(StreamEvent::InputTokens(n));
        }
        if !self.text.is_empty() {
            out.push(StreamEvent::Text(self.text));
        }
        for (index, call) in self.tool_calls.into_iter().enumerate() {
            out.push(StreamEvent::ToolCall {
                index,
                id: call.id,
                name: call.name,
            });
            if !call.arguments.is_empty() {
                out.push(StreamEvent::ToolArgs {
                    index,
                    fragment: call.arguments,
                });
            }
        }
        if let Some(stop) = self.stop {
            out.push(StreamEvent::Stop(stop));
        }
        out.push(StreamEvent::Usage(self.usage));
        out
    }
}

/// The most tool calls read from one answer; a provider sending more fails the call.
pub const MAX_TOOL_CALLS: usize = 128;

/// One item of a streaming answer.
///
/// A stream that succeeds yields, in order: at most one `InputTokens` (when the provider
/// counts the input at the start), any number of `Text`, `ToolCall` and `ToolArgs` items (a
/// `ToolCall` before the `ToolArgs` of its index), at most one `Stop`, then exactly one
/// `Usage` item, then ends. A stream that fails yields one `Err` and then ends.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The provider's count of input tokens, given at the start of the answer.
    InputTokens(u32),
    /// The next piece of the answer text.
    Text(String),
    /// The model starts tool call number `index` (0, 1, ... in the answer).
    ToolCall {
        index: usize,
        id: String,
        name: String,
    },
    /// The next piece of the JSON arguments of tool call `index`.
    ToolArgs { index: usize, fragment: String },
    /// Why the model stopped.
    Stop(StopReason),
    /// Token counts for the whole call, sent once at the end.
    Usage(Usage),
}

impl StreamEvent {
    /// Whether the item is part of the model's answer (text or a tool call), so a retry would
    /// repeat it.
    pub fn is_output(&self) -> bool {
        matches!(
            self,
            StreamEvent::Text(_) | StreamEvent::ToolCall { .. } | StreamEvent::ToolArgs { .. }
        )
    }
}

/// The wire format an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Anthropic Messages API (`POST {base}/v1/messages`, SSE streaming).
    Anthropic,
    /// OpenAI Chat Completions and compatible servers (`POST {base}/chat/completions`,
    /// SSE streaming). The base URL includes the version prefix, as in the OpenAI SDKs.
    #[serde(rename = "openai")]
    OpenAi,
    /// Ollama native chat API (`POST {base}/api/chat`, NDJSON streaming).
    Ollama,
}

impl ProviderKind {
    /// Every kind, in a stable order.
    pub const ALL: [ProviderKind; 3] = [
        ProviderKind::Anthropic,
        ProviderKind::OpenAi,
        ProviderKind::Ollama,
    ];

    /// The public endpoint used when no base URL is configured.
    ///
    /// Anthropic and Ollama base URLs have no version prefix; the OpenAI one ends in `/v1`,
    /// so any OpenAI-compatible server is configured by the same URL its SDK would take.
    pub fn default_base_url(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "https://api.anthropic.com",
            ProviderKind::OpenAi => "https://api.openai.com/v1",
            ProviderKind::Ollama => "http://localhost:11434",
        }
    }

    /// The lower-case name used in config files and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenAi => "openai",
            ProviderKind::Ollama => "ollama",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider name that is not one of `anthropic`, `openai`, `ollama`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider `{0}` (expected anthropic, openai or ollama)")]
pub struct UnknownProvider(pub String);

impl FromStr for ProviderKind {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownProvider(s.to_string()))
    }
}

/// The provider kind a model name implies: `claude-*` is Anthropic; `gpt-*`, `o1*`, `o3*`,
/// `o4*`, `chatgpt-*`, `text-*` are OpenAI; `ollama:*` (the `llm` library's spelling) and
/// anything else with a `:` tag (`llama3.2:3b`) is Ollama. `None` when the name says nothing.
pub fn kind_for_model(name: &str) -> Option<ProviderKind> {
    let n = name.to_ascii_lowercase();
    if n.starts_with("claude") {
        Some(ProviderKind::Anthropic)
    } else if ["gpt-", "o1", "o3", "o4", "chatgpt-", "text-"]
        .iter()
        .any(|p| n.starts_with(p))
    {
        Some(ProviderKind::OpenAi)
    } else if n.starts_with("ollama:") || n.contains(':') {
        Some(ProviderKind::Ollama)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_round_trips_through_its_name() {
        for kind in ProviderKind::ALL {
            assert_eq!(kind.as_str().parse::<ProviderKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert!("gemini".parse::<ProviderKind>().is_err());
    }

    #[test]
    fn total_needs_both_counts() {
        let u = Usage {
            input_tokens: Some(3),
            output_tokens: None,
        };
        assert_eq!(u.total_tokens(), None);
        let u = Usage {
            output_tokens: Some(4),
            ..u
        };
        assert_eq!(u.total_tokens(), Some(7));
    }

    #[test]
    fn a_key_goes_into_its_header_marked_sensitive_and_a_bad_one_is_not_quoted() {
        let http = reqwest::Client::new();
        let post = || http.post("http://127.0.0.1:9/");
        let key = Secret::new("sk-good");
        let req = key_header(post(), "authorization", "Bearer ", Some(&key))
            .build()
            .expect("a valid key");
        let value = &req.headers()["authorization"];
        assert_eq!(value, "Bearer sk-good");
        assert!(value.is_sensitive());
        let none = key_header(post(), "x-api-key", "", None)
            .build()
            .expect("no key");
        assert!(none.headers().get("x-api-key").is_none());

        let bad = Secret::new("sk-bad\nkey");
        let err = key_header(post(), "x-api-key", "", Some(&bad))
            .build()
            .expect_err("a newline cannot be in a header");
        let mut shown = format!("{err} {err:?}");
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            shown.push_str(&s.to_string());
            source = s.source();
        }
        assert!(err.is_builder(), "{shown}");
        assert!(!shown.contains("sk-bad"), "{shown}");
    }

    #[test]
    fn names_imply_providers() {
        assert_eq!(
            kind_for_model("claude-sonnet-4-0"),
            Some(ProviderKind::Anthropic)
        );
        assert_eq!(kind_for_model("gpt-4.1"), Some(ProviderKind::OpenAi));
        assert_eq!(kind_for_model("o3-mini"), Some(ProviderKind::OpenAi));
        assert_eq!(kind_for_model("ollama:llama3"), Some(ProviderKind::Ollama));
        assert_eq!(kind_for_model("llama3.2:3b"), Some(ProviderKind::Ollama));
        assert_eq!(kind_for_model("mystery"), None);
    }
}

/// Fragments serialized as one JSON string, joined by a blank line, without building the
/// joined string first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Joined<'a>(pub &'a [String]);

impl std::fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, part) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            f.write_str(part)?;
        }
        Ok(())
    }
}

impl Serialize for Joined<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `{"role": ..., "content": "..."}`, the message shape of OpenAI and Ollama.
#[derive(Debug, Serialize)]
pub(crate) struct RoleMessage<'a> {
    pub role: &'static str,
    pub content: Joined<'a>,
}

/// The system message (when there are system fragments), then the conversation: the request's
/// messages, or the one user message of its fragments.
pub(crate) fn role_messages(req: &ChatRequest) -> Vec<RoleMessage<'_>> {
    let mut messages = Vec::with_capacity(1 + req.messages.len().max(1));
    if !req.system.is_empty() {
        messages.push(RoleMessage {
            role: "system",
            content: Joined(&req.system),
        });
    }
    if req.messages.is_empty() {
        messages.push(RoleMessage {
            role: "user",
            content: Joined(&req.user),
        });
    }
    messages.extend(req.messages.iter().map(|m| RoleMessage {
        role: m.role.as_str(),
        content: Joined(&m.content),
    }));
    messages
}

/// The schema as sent upstream: the `$schema` dialect marker is dropped, since some providers
/// reject keywords they do not know at the top level.
pub(crate) fn clean_schema(schema: &serde_json::Value) -> serde_json::Value {
    let mut schema = schema.clone();
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("$schema");
    }
    schema
}

/// `builder` with the header `name: PREFIX KEY` when there is a key: the one place a provider key
/// leaves its [`Secret`]. The value is marked sensitive, so no header dump shows it; a key that
/// cannot be a header value fails the request when it is sent, as a `Config` error that does
/// not quote it.
pub(crate) fn key_header(
    builder: reqwest::RequestBuilder,
    name: &'static str,
    prefix: &str,
    key: Option<&Secret>,
) -> reqwest::RequestBuilder {
    let Some(key) = key else {
        return builder;
    };
    let raw = format!("{prefix}{}", key.expose());
    match reqwest::header::HeaderValue::try_from(raw) {
        Ok(mut value) => {
            value.set_sensitive(true);
            builder.header(name, value)
        }
        // The builder keeps the first bad header as its error, and `send` reports it
        // (`failed to parse header value`) without the value.
        Err(_) => builder.header(name, "\n"),
    }
}
