//! Turns a streaming HTTP body (SSE or NDJSON) into provider-neutral stream events.
//!
//! Each provider supplies a [`FrameDecoder`]; the driver here owns the HTTP body, so dropping
//! the returned stream drops the response and closes the upstream connection.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::{EventStreamError, Eventsource};
use futures_util::stream::{self, BoxStream, Stream, StreamExt};

use super::error::ProviderError;
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

/// How long to keep reading a body after its terminator, so the connection can be reused.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

type FrameStream = Pin<Box<dyn Stream<Item = Result<Frame, ProviderError>> + Send>>;

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

/// Frames of a `text/event-stream` body.
pub(crate) fn sse_frames(resp: reqwest::Response) -> FrameStream {
    resp.bytes_stream()
        .eventsource()
        .map(|item| match item {
            Ok(ev) => Ok(Frame {
                event: ev.event,
                data: ev.data,
            }),
            Err(EventStreamError::Transport(e)) => Err(ProviderError::from_reqwest(&e)),
            Err(e) => Err(ProviderError::bad_response(format!(
                "invalid event stream: {e}"
            ))),
        })
        .boxed()
}

/// Frames of a newline-delimited JSON body; blank lines are skipped.
pub(crate) fn ndjson_frames(resp: reqwest::Response) -> FrameStream {
    lines(resp.bytes_stream().boxed())
}

fn lines(body: ByteStream) -> FrameStream {
    struct State {
        body: ByteStream,
        buf: Vec<u8>,
        eof: bool,
    }
    let state = State {
        body,
        buf: Vec::new(),
        eof: false,
    };
    stream::unfold(state, |mut st| async move {
        loop {
            if let Some(pos) = st.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = st.buf.drain(..=pos).collect();
                match line_frame(&line) {
                    Some(frame) => return Some((frame, st)),
                    None => continue,
                }
            }
            if st.eof {
                let rest = std::mem::take(&mut st.buf);
                return line_frame(&rest).map(|frame| (frame, st));
            }
            match st.body.next().await {
                Some(Ok(chunk)) => st.buf.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    st.eof = true;
                    st.buf.clear();
                    return Some((Err(ProviderError::from_reqwest(&e)), st));
                }
                None => st.eof = true,
            }
        }
    })
    .boxed()
}

fn line_frame(line: &[u8]) -> Option<Result<Frame, ProviderError>> {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t.trim(),
        Err(e) => {
            return Some(Err(ProviderError::bad_response(format!(
                "invalid UTF-8: {e}"
            ))));
        }
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
    }
    let state = State {
        frames: Some(frames),
        decoder,
        pending: VecDeque::new(),
        phase: Phase::Running,
    };
    stream::unfold(state, |mut st| async move {
        let mut out = Vec::new();
        loop {
            if let Some(item) = st.pending.pop_front() {
                return Some((item, st));
            }
            let frames = st.frames.as_mut()?;
            let next = if st.phase == Phase::Draining {
                // A provider that keeps the body open after its terminator must not hold
                // the caller: give up on connection reuse after a short wait.
                tokio::time::timeout(DRAIN_LIMIT, frames.next())
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
                (Phase::Draining, Some(Ok(_))) => {}
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
        let items: Vec<Result<Bytes, reqwest::Error>> = chunks
            .iter()
            .map(|c| Ok(Bytes::from_static(c.as_bytes())))
            .collect();
        stream::iter(items).boxed()
    }

    async fn run(chunks: &[&'static str]) -> Vec<Result<StreamEvent, ProviderError>> {
        decode(lines(body(chunks)), Counting { stop_at: "end" })
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

    #[tokio::test]
    async fn decoder_error_ends_the_stream() {
        let items = run(&["a\nbad\nc\nend\n"]).await;
        assert_eq!(items.len(), 2);
        assert!(matches!(items[1], Err(ProviderError::BadResponse { .. })));
    }
}
