//! Hostile upstream behaviours, for tests of the bounds a client keeps: a head that never comes,
//! a body that trickles, a huge body, an SSE line that never ends, events after the end marker,
//! an absurd `retry-after`, and an error body that echoes the caller's credentials.
//!
//! Every endless body is still bounded here, by [`MAX_PIECES`] pieces or [`MAX_BYTES`] bytes,
//! so a client that never lets go cannot make the mock loop forever.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use futures_util::stream;

use crate::wire::Format;

/// The most pieces any hostile body sends.
const MAX_PIECES: u64 = 1_000_000;
/// The most bytes any hostile body sends.
const MAX_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// The size of one piece of a huge body or an endless line.
const PIECE: usize = 64 * 1024;
/// What stands in for the reply in a huge answer before it is cut out and padded.
pub const PAD_MARK: &str = "@@mock-pad@@";

/// The hostile overrides of one request.
#[derive(Debug, Clone, Default)]
pub struct Hostile {
    /// Never send the response head (until the client goes away).
    pub hang: bool,
    /// After the head, send one filler byte (a space, or an SSE comment line) every this
    /// many milliseconds, and never finish.
    pub trickle_ms: Option<u64>,
    /// A whole answer whose reply is this many MiB long.
    pub huge_mb: Option<u64>,
    /// A stream whose first line never ends.
    pub endless_line: bool,
    /// A stream that keeps sending a frame every this many milliseconds after its end marker.
    pub after_done_ms: Option<u64>,
    /// With `status`: this exact `retry-after` header value.
    pub retry_after_raw: Option<String>,
    /// With `status`: put the request's `authorization` and `x-api-key` in the error message.
    pub echo_auth: bool,
}

/// The hostile override keys, as in [`crate::overrides::KEYS`].
pub const KEYS: &[&str] = &[
    "hang",
    "trickle_ms",
    "huge_mb",
    "endless_line",
    "after_done_ms",
    "retry_after_raw",
    "echo_auth",
];

impl Hostile {
    /// Apply one hostile override; `None` when `key` is not one of [`KEYS`].
    pub fn apply(&mut self, key: &str, value: &str) -> Option<Result<(), String>> {
        let flag = |v: &str| crate::overrides::flag(v);
        let number = |v: &str| crate::overrides::number::<u64>(v);
        Some(match key {
            "hang" => flag(value).map(|b| self.hang = b),
            "trickle_ms" => number(value).map(|n| self.trickle_ms = Some(n.max(1))),
            "huge_mb" => number(value).map(|n| self.huge_mb = Some(n)),
            "endless_line" => flag(value).map(|b| self.endless_line = b),
            "after_done_ms" => number(value).map(|n| self.after_done_ms = Some(n.max(1))),
            "retry_after_raw" => {
                self.retry_after_raw = Some(value.to_owned());
                Ok(())
            }
            "echo_auth" => flag(value).map(|b| self.echo_auth = b),
            _ => return None,
        })
    }

    /// The error message of an injected failure, with the credentials echoed if asked.
    pub fn error_message(&self, base: String, headers: &HeaderMap) -> String {
        if !self.echo_auth {
            return base;
        }
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        format!(
            "{base}; you sent authorization: {} and x-api-key: {}",
            get("authorization"),
            get("x-api-key")
        )
    }
}

/// A body sent piece by piece: `next(n)` gives piece `n`, waiting `every` before each piece
/// after the first `now` ones; it ends at `None`, [`MAX_PIECES`] or [`MAX_BYTES`].
fn paced<F>(now: Vec<Bytes>, every: Duration, mut next: F) -> Body
where
    F: FnMut(u64) -> Option<Bytes> + Send + 'static,
{
    let state = (now.into_iter(), 0u64, 0u64);
    Body::from_stream(stream::unfold(state, move |(mut first, n, sent)| {
        let piece = match first.next() {
            Some(b) => Some((b, false)),
            None if n >= MAX_PIECES || sent >= MAX_BYTES => None,
            None => next(n).map(|b| (b, true)),
        };
        async move {
            let (bytes, wait) = piece?;
            // The hostile pace itself (a trickle, frames after done), not a synchronisation.
            if wait && !every.is_zero() {
                tokio::time::sleep(every).await;
            }
            let len = bytes.len() as u64;
            let n = n + u64::from(wait);
            Some((Ok::<_, std::io::Error>(bytes), (first, n, sent + len)))
        }
    }))
}

/// A body of one filler byte every `ms` milliseconds, after `start`.
pub fn trickle(format: Format, stream: bool, start: Vec<Bytes>, ms: u64) -> Body {
    let filler: &'static [u8] = match (stream, format) {
        (false, _) => b" ",
        (true, Format::Ollama) => b"\n",
        (true, _) => b":\n",
    };
    paced(start, Duration::from_millis(ms), move |_| {
        Some(Bytes::from_static(filler))
    })
}

/// A whole answer `body` (with [`PAD_MARK`] as its reply) whose reply is `mb` MiB of `x`.
pub fn huge(body: &str, mb: u64) -> Body {
    let (head, tail) = body.split_once(PAD_MARK).unwrap_or((body, ""));
    let pieces = (mb * 1024 * 1024).div_ceil(PIECE as u64);
    let pad = Bytes::from(vec![b'x'; PIECE]);
    let tail = Bytes::from(tail.to_owned());
    paced(
        vec![Bytes::from(head.to_owned())],
        Duration::ZERO,
        move |n| match n {
            n if n < pieces => Some(pad.clone()),
            n if n == pieces => Some(tail.clone()),
            _ => None,
        },
    )
}

/// A stream whose first line never ends: `data: xxxx...` (SSE) or `xxxx...` (NDJSON).
pub fn endless_line(format: Format, start: Vec<Bytes>) -> Body {
    let mut start = start;
    if format != Format::Ollama {
        start.push(Bytes::from_static(b"data: "));
    }
    let pad = Bytes::from(vec![b'x'; PIECE]);
    paced(start, Duration::ZERO, move |_| Some(pad.clone()))
}

/// A whole stream (`frames`, end marker included), then a frame every `ms` milliseconds.
pub fn after_done(format: Format, frames: Vec<Bytes>, ms: u64) -> Body {
    let extra: &'static [u8] = match format {
        Format::Ollama => b"{\"after\":\"done\"}\n",
        _ => b"data: {\"after\":\"done\"}\n\n",
    };
    paced(frames, Duration::from_millis(ms), move |_| {
        Some(Bytes::from_static(extra))
    })
}
