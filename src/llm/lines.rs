//! Bounded decoders for streamed bodies: [`LineDecoder`] splits bytes into lines, scanning each
//! byte once and failing once a line grows past its cap; [`SseDecoder`] assembles
//! `text/event-stream` events from those lines under the same cap.

/// A line or event longer than the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a line of the provider's stream is longer than {max} bytes")]
pub(crate) struct TooLong {
    pub max: usize,
}

/// Splits a byte stream into lines ended by `\n` (a `\r` before it is dropped).
///
/// Bytes already searched for a newline are not searched again: `scanned` remembers where the
/// search stopped, so a long line arriving in many small pieces costs time linear in its length.
#[derive(Debug)]
pub(crate) struct LineDecoder {
    buf: Vec<u8>,
    /// Where the unreturned data starts in `buf`.
    start: usize,
    /// `buf[start..scanned]` holds no newline.
    scanned: usize,
    max: usize,
}

impl LineDecoder {
    /// A decoder that fails on a line longer than `max` bytes.
    pub(crate) fn new(max: usize) -> LineDecoder {
        LineDecoder {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            max,
        }
    }

    /// Append the next piece of the body.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        // Returned lines are dropped from the front once they are at least half the buffer,
        // so compaction costs amortised O(1) per byte.
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete line, `None` when more bytes are needed, or an error once the line
    /// being read is longer than the cap.
    pub(crate) fn next_line(&mut self) -> Result<Option<&[u8]>, TooLong> {
        match self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                let end = self.scanned + i;
                let line_start = self.start;
                self.start = end + 1;
                self.scanned = self.start;
                if end - line_start > self.max {
                    return Err(TooLong { max: self.max });
                }
                let line = &self.buf[line_start..end];
                Ok(Some(line.strip_suffix(b"\r").unwrap_or(line)))
            }
            None => {
                self.scanned = self.buf.len();
                if self.buf.len() - self.start > self.max {
                    return Err(TooLong { max: self.max });
                }
                Ok(None)
            }
        }
    }

    /// At the end of the body: the last line if it had no newline.
    pub(crate) fn finish(&mut self) -> Result<Option<&[u8]>, TooLong> {
        if self.start >= self.buf.len() {
            return Ok(None);
        }
        if self.buf.len() - self.start > self.max {
            return Err(TooLong { max: self.max });
        }
        let line = &self.buf[self.start..];
        self.start = self.buf.len();
        self.scanned = self.start;
        Ok(Some(line.strip_suffix(b"\r").unwrap_or(line)))
    }
}

/// One server-sent event: its type (empty for the default `message`) and its data lines
/// joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Event {
    pub event: String,
    pub data: String,
}

/// Assembles server-sent events from lines; an event (type and data) larger than the cap fails.
#[derive(Debug)]
pub(crate) struct SseDecoder {
    current: Event,
    has_data: bool,
    max: usize,
}

impl SseDecoder {
    pub(crate) fn new(max: usize) -> SseDecoder {
        SseDecoder {
            current: Event::default(),
            has_data: false,
            max,
        }
    }

    /// Feed one line (without its newline); a blank line yields the event it completes.
    pub(crate) fn line(&mut self, line: &str) -> Result<Option<Event>, TooLong> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => {
                self.current.event.clear();
                self.current.event.push_str(value);
            }
            "data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
        if self.current.event.len() + self.current.data.len() > self.max {
            return Err(TooLong { max: self.max });
        }
        Ok(None)
    }

    /// At the end of the body: an event that was not followed by a blank line.
    pub(crate) fn finish(&mut self) -> Option<Event> {
        self.dispatch()
    }

    fn dispatch(&mut self) -> Option<Event> {
        let event = std::mem::take(&mut self.current);
        std::mem::replace(&mut self.has_data, false).then_some(event)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// All lines of `pieces` fed in order, then the rest.
    fn lines_of(pieces: &[Vec<u8>], max: usize) -> Result<Vec<Vec<u8>>, TooLong> {
        let mut d = LineDecoder::new(max);
        let mut out = Vec::new();
        for p in pieces {
            d.push(p);
            while let Some(line) = d.next_line()? {
                out.push(line.to_vec());
            }
        }
        if let Some(rest) = d.finish()? {
            out.push(rest.to_vec());
        }
        Ok(out)
    }

    #[test]
    fn splits_lines_across_pieces_and_drops_carriage_returns() {
        let pieces = [b"a\r\nb".to_vec(), b"c\n\nd".to_vec()];
        let got = lines_of(&pieces, 10).expect("short lines");
        assert_eq!(
            got,
            vec![b"a".to_vec(), b"bc".to_vec(), b"".to_vec(), b"d".to_vec()]
        );
    }

    #[test]
    fn an_endless_line_fails_at_the_cap() {
        let mut d = LineDecoder::new(1000);
        let piece = [b'x'; 100];
        let mut fed = 0;
        let err = loop {
            d.push(&piece);
            fed += piece.len();
            match d.next_line() {
                Ok(None) => assert!(fed <= 1000, "no error after {fed} bytes"),
                Ok(Some(_)) => panic!("no newline was sent"),
                Err(e) => break e,
            }
        };
        assert_eq!(err, TooLong { max: 1000 });
        assert!(fed <= 1100);
    }

    #[test]
    fn sse_events_join_data_lines_and_skip_comments() {
        let mut d = SseDecoder::new(100);
        let mut out = Vec::new();
        for line in [": ping", "event: delta", "data: a", "data:b", "id: 1", ""] {
            out.extend(d.line(line).expect("small"));
        }
        assert_eq!(
            out,
            vec![Event {
                event: "delta".into(),
                data: "a\nb".into()
            }]
        );
        assert!(d.line("").expect("blank").is_none(), "no data, no event");
        let big = "x".repeat(60);
        assert!(d.line(&format!("data: {big}")).is_ok());
        assert_eq!(d.line(&format!("data: {big}")), Err(TooLong { max: 100 }));
    }

    proptest! {
        /// However the body is cut into pieces, the lines are those of the whole body, and a
        /// line longer than the cap is an error.
        #[test]
        fn lines_do_not_depend_on_how_the_body_is_cut(
            lines in proptest::collection::vec("[a-z\r]{0,12}", 0..12),
            cuts in proptest::collection::vec(0usize..200, 0..8),
            max in 0usize..14,
        ) {
            let body = lines.iter().map(|l| format!("{l}\n")).collect::<String>().into_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut at = 0;
            for c in cuts.into_iter().chain([body.len()]) {
                pieces.push(body[at..c].to_vec());
                at = c;
            }
            let expected: Vec<Vec<u8>> = lines
                .iter()
                .map(|l| l.strip_suffix('\r').unwrap_or(l).as_bytes().to_vec())
                .collect();
            let too_long = lines.iter().any(|l| l.len() > max);
            match lines_of(&pieces, max) {
                Ok(got) => {
                    prop_assert!(!too_long);
                    prop_assert_eq!(got, expected);
                }
                Err(e) => {
                    prop_assert!(too_long);
                    prop_assert_eq!(e, TooLong { max });
                }
            }
        }
    }
}
