//! Turns a streaming HTTP body (SSE or NDJSON) into provider-neutral stream events.
//!
//! Each provider supplies a [`FrameDecoder`]; the driver here owns the HTTP body, so dropping
//! the returned stream drops the response and closes the upstream connection.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, Stream, StreamExt};

use super::error::ProviderError;
use super::lines::{LineDecoder, SseDecoder, TooLong};
use super::provider::{StreamEvent, Usage};

/// A boxed stream of answer pieces; see [`StreamEvent`] for the order of items.
pub type ChatStream = BoxStream<'static, Result<StreamEvent, ProviderError>>;

/// One unit of a streaming body: an SSE event, or one NDJSON line (with an empty `event`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub event: String,
    pub data: String,
}

/// What a decoder says after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Continue,
    /// The provider's terminator was seen; the answer is complete.
    Finished,
}

/// Provider-specific interpretation of frames.
pub(crate) trait FrameDecoder: Send + 'static {
    /// Decode one frame, pushing any text pieces onto `out`.
    fn decode(&mut self, frame: &Frame, out: &mut Vec<StreamEvent>) -> Result<Step, ProviderError>;
    /// Token counts gathered so far.
    fn usage(&self) -> Usage;
}

/// The most time spent reading a body after its terminator, in all, so the connection can be
/// reused; a provider that keeps sending after it does not hold the caller longer.
const DRAIN_TIME: Duration = Duration::from_secs(2);
/// The most bytes read from a body after its terminator, in all.
const DRAIN_BYTES: usize = 64 * 1024;

/// The largest SSE event or NDJSON line accepted from a provider, in bytes.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

type FrameStream = Pin<Box<dyn Stream<Item = Result<Frame, ProviderError>> + Send>>;

/// A response body as it arrives, with transport failures already classified.
pub(crate) type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, ProviderError>> + Send>>;

/// Bounds on reading one streamed body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    /// The longest wait for the next piece of the body.
    pub idle: Duration,
    /// When the whole body must have arrived.
    pub deadline: Instant,
    /// The most bytes the body may have.
    pub max_bytes: u64,
}

/// The body of `resp`, as a [`ByteStream`].
pub(crate) fn body_of(resp: reqwest::Response) -> ByteStream {
    resp.bytes_stream()
        .map(|r| r.map_err(|e| ProviderError::from_reqwest(&e)))
        .boxed()
}

/// `body` within `limits`: a silence longer than `idle` or a body still running at `deadline`
/// is a `Timeout`, a body longer than `max_bytes` a `BadResponse`; after an error the body is
/// dropped (closing the connection) and the stream ends.
pub(crate) fn bounded(body: ByteStream, limits: BodyLimits) -> ByteStream {
    struct State {
        body: Option<ByteStream>,
        read: u64,
    }
    let state = State {
        body: Some(body),
        read: 0,
    };
    stream::unfold(state, move |mut st| async move {
        let body = st.body.as_mut()?;
        let idle_end = Instant::now() + limits.idle;
        let until = idle_end.min(limits.deadline);
        let item = match tokio::time::timeout_at(until.into(), body.next()).await {
            Err(_) if until == limits.deadline => Err(ProviderError::Timeout {
                detail: "the provider's answer was still arriving at its deadline".to_owned(),
            }),
            Err(_) => Err(ProviderError::Timeout {
                detail: format!("the provider sent nothing for {:?}", limits.idle),
            }),
            Ok(None) => return None,
            Ok(Some(Ok(bytes))) => {
                st.read += bytes.len() as u64;
                if st.read > limits.max_bytes {
                    Err(too_large(limits.max_bytes))
                } else {
                    Ok(bytes)
                }
            }
            Ok(Some(Err(e))) => Err(e),
        };
        if item.is_err() {
            st.body = None;
        }
        Some((item, st))
    })
    .boxed()
}

/// The error for a body longer than `max` bytes.
pub(crate) fn too_large(max: u64) -> ProviderError {
    ProviderError::bad_response(format!(
        "the provider's answer is larger than the {max}-byte limit"
    ))
}

/// The whole of `body` (already [`bounded`]).
pub(crate) async fn collect(mut body: ByteStream) -> Result<Bytes, ProviderError> {
    let mut out = bytes::BytesMut::new();
    while let Some(piece) = body.next().await {
        out.extend_from_slice(&piece?);
    }
    Ok(out.freeze())
}

fn frame_too_long(e: TooLong) -> ProviderError {
    ProviderError::bad_response(e.to_string())
}

fn utf8(line: &[u8]) -> Result<&str, ProviderError> {
    std::str::from_utf8(line)
        .map_err(|e| ProviderError::bad_response(format!("invalid UTF-8: {e}")))
}

/// Frames of a body cut into lines: `on_line` turns each line (and `on_end` the end of the
/// body) into frames. Lines longer than [`MAX_FRAME_BYTES`] fail the stream.
fn framed<P>(body: ByteStream, parser: P) -> FrameStream
where
    P: FnMut(Option<&[u8]>, &mut VecDeque<Result<Frame, ProviderError>>) + Send + 'static,
{
    struct State<P> {
        body: Option<ByteStream>,
        lines: LineDecoder,
        parser: P,
        ready: VecDeque<Result<Frame, ProviderError>>,
    }
    let state = State {
        body: Some(body),
        lines: LineDecoder::new(MAX_FRAME_BYTES),
        parser,
        ready: VecDeque::new(),
    };
    stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.ready.pop_front() {
                if item.is_err() {
                    st.body = None;
                    st.ready.clear();
                }
                return Some((item, st));
            }
            let body = st.body.as_mut()?;
            match body.next().await {
                Some(Ok(chunk)) => {
                    st.lines.push(&chunk);
                    loop {
                        match st.lines.next_line() {
                            Ok(Some(line)) => (st.parser)(Some(line), &mut st.ready),
                            Ok(None) => break,
                            Err(e) => {
                                st.ready.push_back(Err(frame_too_long(e)));
                                break;
                            }
                        }
                    }
                }
                Some(Err(e)) => st.ready.push_back(Err(e)),
                None => {
                    st.body = None;
                    match st.lines.finish() {
                        Ok(line) => {
                            if let Some(line) = line {
                                (st.parser)(Some(line), &mut st.ready);
                            }
                            (st.parser)(None, &mut st.ready);
                        }
                        Err(e) => st.ready.push_back(Err(frame_too_long(e))),
                    }
                    return st.ready.pop_front().map(|item| (item, st));
                }
            }
        }
    })
    .boxed()
}

/// Frames of a `text/event-stream` body.
pub(crate) fn sse_frames(body: ByteStream) -> FrameStream {
    let mut events = SseDecoder::new(MAX_FRAME_BYTES);
    framed(body, move |line, out| {
        let event = match line {
            None => events.finish(),
            Some(line) => match utf8(line).and_then(|l| events.line(l).map_err(frame_too_long)) {
                Ok(event) => event,
                Err(e) => return out.push_back(Err(e)),
            },
        };
        if let Some(ev) = event {
            out.push_back(Ok(Frame {
                event: ev.event,
                data: ev.data,
            }));
        }
    })
}

/// Frames of a newline-delimited JSON body; blank lines are skipped.
pub(crate) fn ndjson_frames(body: ByteStream) -> FrameStream {
    framed(body, |line, out| {
        if let Some(frame) = line.and_then(line_frame) {
            out.push_back(frame);
        }
    })
}

fn line_frame(line: &[u8]) -> Option<Result<Frame, ProviderError>> {
    let text = match utf8(line) {
        Ok(t) => t.trim(),
        Err(e) => return Some(Err(e)),
    };
    (!text.is_empty()).then(|| {
        Ok(Frame {
            event: String::new(),
            data: text.to_string(),
        })
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the answer.
    Running,
    /// Terminator seen: drain the rest of the body (so the connection can be reused),
    /// ignoring what is in it.
    Draining,
    /// Nothing more will be yielded.
    Done,
}

/// Drive `frames` through `decoder`. Yields text pieces, then one `Usage`, then ends; or one
/// error, then ends. A body that ends before the terminator is a `BadResponse`.
pub(crate) fn decode<D: FrameDecoder>(frames: FrameStream, decoder: D) -> ChatStream {
    struct State<D> {
        frames: Option<FrameStream>,
        decoder: D,
        pending: VecDeque<Result<StreamEvent, ProviderError>>,
        phase: Phase,
        /// When draining must stop, and how many bytes it may still read.
        drain_until: Instant,
        drain_left: usize,
    }
    let state = State {
        frames: Some(frames),
        decoder,
        pending: VecDeque::new(),
        phase: Phase::Running,
        drain_until: Instant::now(),
        drain_left: DRAIN_BYTES,
    };
    stream::unfold(state, |mut st| async move {
        let mut out = Vec::new();
        loop {
            if let Some(item) = st.pending.pop_front() {
                return Some((item, st));
            }
            let frames = st.frames.as_mut()?;
            let next = if st.phase == Phase::Draining {
                // A provider that keeps the body open (or keeps sending) after its terminator
                // must not hold the caller: the drain has one budget of time and bytes in all.
                tokio::time::timeout_at(st.drain_until.into(), frames.next())
                    .await
                    .unwrap_or(None)
            } else {
                frames.next().await
            };
            match (st.phase, next) {
                (Phase::Running, Some(Ok(frame))) => match st.decoder.decode(&frame, &mut out) {
                    Ok(step) => {
                        st.pending.extend(out.drain(..).map(Ok));
                        if step == Step::Finished {
                            st.pending
                                .push_back(Ok(StreamEvent::Usage(st.decoder.usage())));
                            st.phase = Phase::Draining;
                            st.drain_until = Instant::now() + DRAIN_TIME;
                        }
                    }
                    Err(e) => {
                        st.pending.extend(out.drain(..).map(Ok));
                        st.pending.push_back(Err(e));
                        st.phase = Phase::Done;
                        st.frames = None;
                    }
                },
                (Phase::Running, Some(Err(e))) => {
                    st.pending.push_back(Err(e));
                    st.phase = Phase::Done;
                    st.frames = None;
                }
                (Phase::Running, None) => {
                    st.pending.push_back(Err(ProviderError::bad_response(
                        "stream ended before the provider's end-of-stream marker",
                    )));
                    st.phase = Phase::Done;
                    st.frames = None;
                }
                (Phase::Draining, Some(Ok(frame)))
                    if frame.data.len() + frame.event.len() < st.drain_left =>
                {
                    st.drain_left -= frame.data.len() + frame.event.len() + 1;
                }
                (_, _) => {
                    st.phase = Phase::Done;
                    st.frames = None;
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A limit no test reaches.
    const LONG: Duration = Duration::from_secs(600);

    struct Counting {
        stop_at: &'static str,
    }

    impl FrameDecoder for Counting {
        fn decode(
            &mut self,
            frame: &Frame,
            out: &mut Vec<StreamEvent>,
        ) -> Result<Step, ProviderError> {
            if frame.data == self.stop_at {
                return Ok(Step::Finished);
            }
            if frame.data == "bad" {
                return Err(ProviderError::bad_response("bad frame"));
            }
            out.push(StreamEvent::Text(frame.data.clone()));
            Ok(Step::Continue)
        }
        fn usage(&self) -> Usage {
            Usage {
                input_tokens: Some(1),
                output_tokens: Some(2),
            }
        }
    }

    fn body(chunks: &[&'static str]) -> ByteStream {
        let items: Vec<Result<Bytes, ProviderError>> = chunks
            .iter()
            .map(|c| Ok(Bytes::from_static(c.as_bytes())))
            .collect();
        stream::iter(items).boxed()
    }

    async fn run(chunks: &[&'static str]) -> Vec<Result<StreamEvent, ProviderError>> {
        decode(ndjson_frames(body(chunks)), Counting { stop_at: "end" })
            .collect()
            .await
    }

    #[tokio::test]
    async fn lines_split_across_chunks() {
        let items = run(&["a\n\nb", "c\n", "end\nignored\n"]).await;
        assert_eq!(
            items,
            vec![
                Ok(StreamEvent::Text("a".into())),
                Ok(StreamEvent::Text("bc".into())),
                Ok(StreamEvent::Usage(Usage {
                    input_tokens: Some(1),
                    output_tokens: Some(2)
                })),
            ]
        );
    }

    #[tokio::test]
    async fn missing_terminator_is_bad_response() {
        let items = run(&["a\n", "b"]).await;
        assert_eq!(items.len(), 3);
        assert!(matches!(
            items.last(),
            Some(Err(ProviderError::BadResponse { .. }))
        ));
    }

    fn limits(idle: Duration, max_bytes: u64) -> BodyLimits {
        BodyLimits {
            idle,
            deadline: Instant::now() + Duration::from_secs(600),
            max_bytes,
        }
    }

    #[tokio::test]
    async fn a_body_past_the_cap_is_refused() {
        let items: Vec<_> = bounded(body(&["0123456789"; 3]), limits(LONG, 25))
            .collect()
            .await;
        assert_eq!(items.len(), 3);
        assert!(items[..2].iter().all(Result::is_ok));
        assert!(matches!(items[2], Err(ProviderError::BadResponse { .. })));
    }

    #[tokio::test]
    async fn a_silent_body_is_a_timeout() {
        let silent = stream::pending().boxed();
        let items: Vec<_> = bounded(silent, limits(Duration::from_millis(10), 100))
            .collect()
            .await;
        assert!(
            matches!(items[..], [Err(ProviderError::Timeout { .. })]),
            "{items:?}"
        );
    }

    #[tokio::test]
    async fn frames_after_the_terminator_stop_at_the_drain_budget() {
        // An endless body after `end`: only the total drain budget ends the stream.
        let endless = stream::iter([Ok(Bytes::from_static(b"a\nend\n"))])
            .chain(stream::repeat_with(|| Ok(Bytes::from_static(b"more\n"))))
            .boxed();
        let items: Vec<_> = decode(ndjson_frames(endless), Counting { stop_at: "end" })
            .collect()
            .await;
        assert_eq!(items.len(), 2, "{items:?}");
    }

    #[tokio::test]
    async fn an_endless_line_fails_at_the_frame_cap() {
        let piece = Bytes::from(vec![b'x'; 64 * 1024]);
        let endless = stream::repeat_with(move || Ok(piece.clone())).boxed();
        let items: Vec<_> = ndjson_frames(endless).collect().await;
        assert!(
            matches!(items[..], [Err(ProviderError::BadResponse { .. })]),
            "{items:?}"
        );
    }

    #[tokio::test]
    async fn decoder_error_ends_the_stream() {
        let items = run(&["a\nbad\nc\nend\n"]).await;
        assert_eq!(items.len(), 2);
        assert!(matches!(items[1], Err(ProviderError::BadResponse { .. })));
    }
}
