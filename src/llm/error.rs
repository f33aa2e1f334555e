//! Upstream provider failures, classified by what a caller can do about them.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// Longest provider error text kept in a message, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// Why a call to an upstream provider failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider rejected the API key (HTTP 401/403).
    #[error("provider rejected the credentials (HTTP {status}): {message}")]
    Auth { status: u16, message: String },
    /// The model or endpoint does not exist (HTTP 404).
    #[error("provider has no such model or endpoint: {message}")]
    NotFound { message: String },
    /// Too many requests (HTTP 429); `retry_after` is the provider's hint, if it gave one.
    #[error("provider rate limit reached{}: {message}", fmt_retry(.retry_after))]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// The provider is temporarily over capacity (HTTP 529 or 503).
    #[error("provider is overloaded: {message}")]
    Overloaded { message: String },
    /// Any other server-side failure (HTTP 5xx, or an error event in a stream).
    #[error("provider failed (HTTP {status}): {message}")]
    Server { status: u16, message: String },
    /// No answer within the connect, read or total timeout.
    #[error("provider timed out: {detail}")]
    Timeout { detail: String },
    /// The provider could not be reached or the connection broke before an answer.
    #[error("cannot connect to provider: {detail}")]
    Connect { detail: String },
    /// The answer could not be understood: invalid JSON, missing fields, or a stream that
    /// ended before its terminator.
    #[error("provider sent a bad response: {detail}")]
    BadResponse { detail: String },
    /// The provider refused the request as malformed (HTTP 400, 413, 422, other 4xx).
    #[error("provider rejected the request (HTTP {status}): {message}")]
    BadRequest { status: u16, message: String },
    /// The client itself is misconfigured (bad base URL, TLS setup failed).
    #[error("provider client misconfigured: {detail}")]
    Config { detail: String },
}

fn fmt_retry(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(" (retry after {} ms)", d.as_millis()),
        None => String::new(),
    }
}

impl ProviderError {
    /// A stable short code for logs, metrics labels and wire errors.
    pub fn code(&self) -> &'static str {
        match self {
            ProviderError::Auth { .. } => "auth",
            ProviderError::NotFound { .. } => "not_found",
            ProviderError::RateLimited { .. } => "rate_limited",
            ProviderError::Overloaded { .. } => "overloaded",
            ProviderError::Server { .. } => "server_error",
            ProviderError::Timeout { .. } => "timeout",
            ProviderError::Connect { .. } => "connect",
            ProviderError::BadResponse { .. } => "bad_response",
            ProviderError::BadRequest { .. } => "bad_request",
            ProviderError::Config { .. } => "config",
        }
    }

    /// Whether the same request may succeed if sent again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            ProviderError::RateLimited { .. }
            | ProviderError::Overloaded { .. }
            | ProviderError::Timeout { .. }
            | ProviderError::Connect { .. } => true,
            ProviderError::Server { status, .. } => *status != 501,
            ProviderError::Auth { .. }
            | ProviderError::NotFound { .. }
            | ProviderError::BadResponse { .. }
            | ProviderError::BadRequest { .. }
            | ProviderError::Config { .. } => false,
        }
    }

    /// The provider's hint for how long to wait before retrying, if it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn bad_response(detail: impl Into<String>) -> Self {
        ProviderError::BadResponse {
            detail: detail.into(),
        }
    }

    /// Classify a non-success HTTP answer from its status, headers and body.
    pub(crate) fn from_status(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let message = error_message(body).unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("no error message")
                .to_string()
        });
        let code = status.as_u16();
        match code {
            401 | 403 => ProviderError::Auth {
                status: code,
                message,
            },
            404 => ProviderError::NotFound { message },
            408 => ProviderError::Timeout { detail: message },
            429 => ProviderError::RateLimited {
                retry_after: retry_after(headers),
                message,
            },
            503 | 529 => ProviderError::Overloaded { message },
            500..=599 => ProviderError::Server {
                status: code,
                message,
            },
            400..=499 => ProviderError::BadRequest {
                status: code,
                message,
            },
            _ => ProviderError::BadResponse {
                detail: format!("unexpected HTTP status {code}: {message}"),
            },
        }
    }

    /// Classify a transport failure.
    pub(crate) fn from_reqwest(err: &reqwest::Error) -> Self {
        let detail = error_chain(err);
        if err.is_timeout() {
            ProviderError::Timeout { detail }
        } else if err.is_connect() {
            ProviderError::Connect { detail }
        } else if err.is_decode() || err.is_body() {
            ProviderError::BadResponse { detail }
        } else if err.is_builder() {
            ProviderError::Config { detail }
        } else {
            ProviderError::Connect { detail }
        }
    }

    /// Classify an error object a provider sent inside a stream or an error body:
    /// `type` is the provider's error type (`overloaded_error`, `rate_limit_error`, ...).
    pub(crate) fn from_error_type(kind: &str, message: String) -> Self {
        match kind {
            "authentication_error" | "permission_error" | "invalid_api_key" => {
                ProviderError::Auth {
                    status: 401,
                    message,
                }
            }
            "not_found_error" | "model_not_found" => ProviderError::NotFound { message },
            "rate_limit_error" | "rate_limit_exceeded" => ProviderError::RateLimited {
                retry_after: None,
                message,
            },
            "overloaded_error" | "server_overloaded" => ProviderError::Overloaded { message },
            "invalid_request_error" | "request_too_large" => ProviderError::BadRequest {
                status: 400,
                message,
            },
            _ => ProviderError::Server {
                status: 500,
                message,
            },
        }
    }
}

/// The human text of a provider error body: `{"error":{"message":..}}` (Anthropic, OpenAI),
/// `{"error":".."}` (Ollama) or `{"message":..}`; else the start of the raw body.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let text = match v.get("error") {
            Some(serde_json::Value::String(s)) => Some(s.as_str()),
            Some(e) => e.get("message").and_then(|m| m.as_str()),
            None => v.get("message").and_then(|m| m.as_str()),
        };
        if let Some(text) = text {
            return Some(truncate(text));
        }
    }
    let raw = String::from_utf8_lossy(body);
    let raw = raw.trim();
    (!raw.is_empty()).then(|| truncate(raw))
}

/// The error type inside a provider error object, if present.
pub(crate) fn error_type(error: &serde_json::Value) -> Option<&str> {
    error
        .get("type")
        .and_then(|t| t.as_str())
        .or_else(|| error.get("code").and_then(|c| c.as_str()))
}

pub(crate) fn truncate(s: &str) -> String {
    match s.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_string(),
    }
}

/// The longest wait a `retry-after` or `retry-after-ms` header is read as; a longer (or
/// absurd) hint is clamped to it, so every caller can do arithmetic on the result.
pub const RETRY_AFTER_CEILING: Duration = Duration::from_secs(3600);

/// `retry-after-ms` (milliseconds, sent by Anthropic and OpenAI) or `retry-after` (seconds or
/// an HTTP date). The one reading of these headers: every caller gets it through
/// [`ProviderError::retry_after`].
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name)?.to_str().ok();
    if let Some(ms) = text("retry-after-ms").and_then(parse_retry_after_ms) {
        return Some(ms);
    }
    parse_retry_after(text("retry-after")?, std::time::SystemTime::now())
}

/// A number of `unit`s (`1.0` for seconds, `0.001` for milliseconds) as a wait, clamped to
/// [`RETRY_AFTER_CEILING`]; `None` for text that is not a finite, non-negative number.
fn clamped_number(value: &str, unit: f64) -> Option<Duration> {
    let n = value.trim().parse::<f64>().ok()?;
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let secs = (n * unit).min(RETRY_AFTER_CEILING.as_secs_f64());
    // `secs` is finite and within 0..=ceiling, so this never panics.
    Some(
        Duration::try_from_secs_f64(secs)
            .map_or(RETRY_AFTER_CEILING, |d| d.min(RETRY_AFTER_CEILING)),
    )
}

/// A `retry-after-ms` value.
pub(crate) fn parse_retry_after_ms(value: &str) -> Option<Duration> {
    clamped_number(value, 0.001)
}

/// A `retry-after` value: delay seconds or an HTTP date (a date in the past is no wait), read
/// against `now` and clamped to [`RETRY_AFTER_CEILING`]. Never panics.
pub(crate) fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    if let Some(d) = clamped_number(value, 1.0) {
        return Some(d);
    }
    let when = httpdate::parse_http_date(value.trim()).ok()?;
    Some(
        when.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(RETRY_AFTER_CEILING),
    )
}

/// The error and its sources on one line, so "connection refused" is not hidden behind
/// "error sending request".
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("valid header"));
        }
        h
    }

    #[test]
    fn status_maps_to_kind() {
        let none = HeaderMap::new();
        let cases = [
            (401, "auth"),
            (403, "auth"),
            (404, "not_found"),
            (429, "rate_limited"),
            (529, "overloaded"),
            (503, "overloaded"),
            (500, "server_error"),
            (502, "server_error"),
            (400, "bad_request"),
            (422, "bad_request"),
        ];
        for (status, code) in cases {
            let status = StatusCode::from_u16(status).expect("valid status");
            assert_eq!(ProviderError::from_status(status, &none, b"").code(), code);
        }
    }

    #[test]
    fn retry_after_prefers_milliseconds() {
        assert_eq!(
            retry_after(&headers(&[
                ("retry-after", "2"),
                ("retry-after-ms", "1500")
            ])),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "3")])),
            Some(Duration::from_secs(3))
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "-1")])), None);
    }

    #[test]
    fn retry_after_is_clamped_and_reads_dates() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        for huge in ["1e20", "1e308", "18446744073709551616", "inf"] {
            let got = parse_retry_after(huge, now);
            assert!(
                got.is_none() || got == Some(RETRY_AFTER_CEILING),
                "{huge}: {got:?}"
            );
        }
        assert_eq!(parse_retry_after("1e20", now), Some(RETRY_AFTER_CEILING));
        assert_eq!(parse_retry_after("NaN", now), None);
        assert_eq!(parse_retry_after("-0.5", now), None);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(90))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after_ms("1e300"), Some(RETRY_AFTER_CEILING));
    }

    proptest::proptest! {
        #[test]
        fn retry_after_never_panics_and_stays_under_the_ceiling(value in "\\PC{0,40}", secs in proptest::num::f64::ANY) {
            let now = std::time::SystemTime::now();
            for text in [value.clone(), secs.to_string(), format!("{secs:e}")] {
                if let Some(d) = parse_retry_after(&text, now) {
                    proptest::prop_assert!(d <= RETRY_AFTER_CEILING);
                }
                if let Some(d) = parse_retry_after_ms(&text) {
                    proptest::prop_assert!(d <= RETRY_AFTER_CEILING);
                }
            }
        }
    }

    #[test]
    fn error_message_reads_each_provider_shape() {
        let anthropic =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(error_message(anthropic).as_deref(), Some("Overloaded"));
        let ollama = br#"{"error":"model 'x' not found"}"#;
        assert_eq!(
            error_message(ollama).as_deref(),
            Some("model 'x' not found")
        );
        assert_eq!(
            error_message(b"  plain text ").as_deref(),
            Some("plain text")
        );
        assert_eq!(error_message(b""), None);
        let long = "x".repeat(1000);
        assert!(error_message(long.as_bytes()).is_some_and(|m| m.len() < 400));
    }

    #[test]
    fn retryable_kinds() {
        let retryable = ProviderError::Overloaded {
            message: String::new(),
        };
        assert!(retryable.is_retryable());
        let not = ProviderError::Auth {
            status: 401,
            message: String::new(),
        };
        assert!(!not.is_retryable());
        let rl = ProviderError::from_status(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("retry-after", "2")]),
            b"{}",
        );
        assert_eq!(rl.retry_after(), Some(Duration::from_secs(2)));
        assert!(rl.to_string().contains("retry after 2000 ms"));
    }
}
