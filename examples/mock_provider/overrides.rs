//! What the mock does for one request: the command-line defaults, overridden per request by
//! `[[mock:key=value,...]]` markers in the prompt text, then by `x-mock-<key>` headers.

use axum::http::HeaderMap;

use crate::hostile::{self, Hostile};

/// Every override key. As a header, `_` is written `-` (`x-mock-chunk-delay-ms`).
pub const KEYS: &[&str] = &[
    "reply",
    "reply_b64",
    "chunks",
    "delay_ms",
    "chunk_delay_ms",
    "status",
    "retry_after",
    "retry_after_ms",
    "garbage",
    "truncate",
    "stream_error",
    "fail_times",
    "fail_id",
    "hold_after",
    "gate",
    "tool_call",
    "tool_args",
    "tool_args_b64",
    "stop_reason",
];

/// How a stream (or body) is cut short on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Truncate {
    #[default]
    No,
    /// End the body cleanly after half the chunks, without the end-of-stream marker.
    Clean,
    /// Abort the connection after half the chunks (the body never terminates properly).
    Abort,
}

#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Explicit reply text; `@echo` replies with the received system and user text.
    pub reply: Option<String>,
    pub chunks: usize,
    pub delay_ms: u64,
    pub chunk_delay_ms: u64,
    pub status: Option<u16>,
    pub retry_after: Option<u64>,
    pub retry_after_ms: Option<u64>,
    pub garbage: bool,
    pub truncate: Truncate,
    pub stream_error: bool,
    /// With `status`: fail only the first this-many requests that carry the same `fail_id`,
    /// then answer normally (a transient failure that a retry gets past).
    pub fail_times: Option<u64>,
    /// Groups requests for `fail_times`; requests without one share the empty id.
    pub fail_id: String,
    /// Send this many text chunks of a stream, then hold it open, sending nothing more, until
    /// the client goes away (a stream that is cancelled mid-way, deterministically).
    pub hold_after: Option<usize>,
    /// Send this many text chunks of a stream, then wait for `POST /mock/release` (one made
    /// after the request arrived) before sending the rest: a stream that stays in flight until
    /// the test says otherwise.
    pub gate: Option<usize>,
    /// Answer with a call of this tool (which must be in the request's tools) instead of
    /// text, unless the request carries tool results.
    pub tool_call: Option<String>,
    /// The arguments of `tool_call`, JSON object text (default `{}`).
    pub tool_args: Option<String>,
    /// The stop reason to report: `max_tokens`, `stop_sequence` or `refusal`, each in the
    /// provider's own spelling.
    pub stop_reason: Option<String>,
    /// Behaviours of a hostile upstream (see `hostile.rs`).
    pub hostile: Hostile,
}

fn base64_text(value: &str) -> Result<String, String> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|e| format!("not base64: {e}"))
        .and_then(|b| String::from_utf8(b).map_err(|e| format!("not UTF-8: {e}")))
}

pub fn flag(value: &str) -> Result<bool, String> {
    match value {
        "" | "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("expected a boolean, got `{value}`")),
    }
}

pub fn number<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("expected a number, got `{value}`"))
}

impl Behaviour {
    /// Apply one override; an unknown key or a bad value is an error (the mock answers 400).
    pub fn apply(&mut self, key: &str, value: &str) -> Result<(), String> {
        let key = key.trim().to_ascii_lowercase().replace('-', "_");
        let res = match key.as_str() {
            "reply" => {
                self.reply = Some(value.to_string());
                Ok(())
            }
            "reply_b64" => base64_text(value).map(|text| self.reply = Some(text)),
            "tool_call" => {
                self.tool_call = Some(value.to_string());
                Ok(())
            }
            "tool_args" => {
                self.tool_args = Some(value.to_string());
                Ok(())
            }
            "tool_args_b64" => base64_text(value).map(|text| self.tool_args = Some(text)),
            "stop_reason" => match value {
                "max_tokens" | "stop_sequence" | "refusal" => {
                    self.stop_reason = Some(value.to_string());
                    Ok(())
                }
                _ => Err("expected max_tokens, stop_sequence or refusal".to_string()),
            },
            "chunks" => number(value).map(|n| self.chunks = n),
            "delay_ms" => number(value).map(|n| self.delay_ms = n),
            "chunk_delay_ms" => number(value).map(|n| self.chunk_delay_ms = n),
            "status" => number(value).map(|n| self.status = Some(n)),
            "retry_after" => number(value).map(|n| self.retry_after = Some(n)),
            "retry_after_ms" => number(value).map(|n| self.retry_after_ms = Some(n)),
            "garbage" => flag(value).map(|b| self.garbage = b),
            "stream_error" => flag(value).map(|b| self.stream_error = b),
            "fail_times" => number(value).map(|n| self.fail_times = Some(n)),
            "hold_after" => number(value).map(|n| self.hold_after = Some(n)),
            "gate" => number(value).map(|n| self.gate = Some(n)),
            "fail_id" => {
                self.fail_id = value.to_string();
                Ok(())
            }
            "truncate" => match value {
                "abort" => {
                    self.truncate = Truncate::Abort;
                    Ok(())
                }
                v => {
                    flag(v).map(|b| self.truncate = if b { Truncate::Clean } else { Truncate::No })
                }
            },
            other => self.hostile.apply(other, value).unwrap_or_else(|| {
                Err(format!(
                    "unknown override `{key}` (known: {}, {})",
                    KEYS.join(", "),
                    hostile::KEYS.join(", ")
                ))
            }),
        };
        res.map_err(|e| format!("mock override {key}: {e}"))
    }

    /// Apply the markers found in `texts`, then the `x-mock-*` headers.
    pub fn apply_request(&mut self, texts: &[&str], headers: &HeaderMap) -> Result<(), String> {
        for text in texts {
            for (k, v) in markers(text) {
                self.apply(&k, &v)?;
            }
        }
        for (name, value) in headers {
            if let Some(key) = name.as_str().strip_prefix("x-mock-") {
                let value = value
                    .to_str()
                    .map_err(|_| format!("header {name} is not text"))?;
                self.apply(key, value)?;
            }
        }
        Ok(())
    }
}

/// `[[mock:key=value,key2=value2]]` markers in `text`. A key without `=` means `key=1`.
/// Values end at `,` or `]]`, so a marker reply cannot contain either.
pub fn markers(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("[[mock:") {
        let after = &rest[start + "[[mock:".len()..];
        let Some(end) = after.find("]]") else { break };
        for pair in after[..end].split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, "1"));
            out.push((k.trim().to_string(), v.to_string()));
        }
        rest = &after[end + 2..];
    }
    out
}
