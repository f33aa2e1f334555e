//! Where the value of a YAML `key: value` line ends: inline, quoted over several lines, plain
//! with continuation lines, or a `|`/`>` block scalar.

/// The value of a `key:` whose text after the colon starts at `at` on a line ending at `eol`.
pub(super) struct Value {
    /// The bytes of the value (inside the quotes of a quoted one); `None` when there is none.
    pub span: Option<(usize, usize)>,
    /// The key has no inline value: a nested mapping or sequence may follow.
    pub nested: bool,
    /// The end of the last line that belongs to this value.
    pub next: usize,
}

/// Reads the value of a key at column `key_col`: continuation and block lines are the following
/// lines indented deeper than the key (blank lines inside a block included).
pub(super) fn yaml_value(b: &[u8], key_col: usize, at: usize, eol: usize) -> Value {
    let (s, e) = trim(b, at, eol);
    let none = |nested| Value {
        span: None,
        nested,
        next: eol,
    };
    let Some(&first) = b.get(s).filter(|_| s < e) else {
        return none(true);
    };
    match first {
        b'#' => none(true),
        b'&' | b'!' if !b[s..e].contains(&b' ') => none(true),
        b'{' | b'[' | b'&' | b'!' | b'*' => none(false),
        b'|' | b'>' if block_indicator(&b[s..e]) => block(b, key_col, eol),
        b'"' | b'\'' => quoted(b, key_col, s, e, eol),
        _ => {
            let (mut end, mut next) = (e, eol);
            let mut lines = Lines { b, at: eol };
            while let Some((ls, le)) = lines.next_line() {
                let (cs, ce) = trim(b, ls, le);
                if cs == ce || cs - ls <= key_col || !plain_continuation(&b[cs..ce]) {
                    break;
                }
                end = ce;
                next = le;
            }
            Value {
                span: Some((s, end)),
                nested: false,
                next,
            }
        }
    }
}

/// Whether a deeper line can go on a plain scalar: not a sequence item, not a `key: value`
/// (neither is valid YAML there; in `describe` output such a line is not part of the value).
fn plain_continuation(line: &[u8]) -> bool {
    !(line.starts_with(b"- ")
        || line == b"-"
        || line.ends_with(b":")
        || line.windows(2).any(|w| w == b": "))
}

/// `|`, `>-`, `|2+` and the like, optionally followed by a comment.
fn block_indicator(v: &[u8]) -> bool {
    let rest = v[1..]
        .iter()
        .position(|c| !matches!(c, b'0'..=b'9' | b'+' | b'-'))
        .map_or(&[][..], |i| &v[1 + i..]);
    rest.is_empty() || rest[0] == b' ' && rest.iter().find(|&&c| c != b' ') == Some(&b'#')
}

fn block(b: &[u8], key_col: usize, eol: usize) -> Value {
    let mut span: Option<(usize, usize)> = None;
    let mut next = eol;
    let mut lines = Lines { b, at: eol };
    while let Some((ls, le)) = lines.next_line() {
        let (cs, ce) = trim(b, ls, le);
        if cs == ce {
            continue;
        }
        if cs - ls <= key_col {
            break;
        }
        span = Some((span.map_or(cs, |s| s.0), ce));
        next = le;
    }
    Value {
        span,
        nested: false,
        next,
    }
}

fn quoted(b: &[u8], key_col: usize, s: usize, e: usize, eol: usize) -> Value {
    let q = b[s];
    let mut i = s + 1;
    let mut line_end = eol;
    let mut lines = Lines { b, at: eol };
    loop {
        while i < line_end {
            if b[i] == b'\\' && q == b'"' {
                i += 2;
                continue;
            }
            if b[i] == q {
                if q == b'\'' && b.get(i + 1) == Some(&b'\'') {
                    i += 2;
                    continue;
                }
                return Value {
                    span: Some((s + 1, i)),
                    nested: false,
                    next: line_end,
                };
            }
            i += 1;
        }
        // Not closed on this line: it goes on if the next line is indented deeper.
        match lines.next_line() {
            Some((ls, le)) if trim(b, ls, le).0 - ls > key_col && trim(b, ls, le).0 < le => {
                i = ls;
                line_end = le;
            }
            _ => {
                return Value {
                    span: Some((s + 1, line_end.max(e))),
                    nested: false,
                    next: line_end,
                };
            }
        }
    }
}

/// `s..e` without spaces, tabs and a `\r` at either end.
pub(super) fn trim(b: &[u8], mut s: usize, mut e: usize) -> (usize, usize) {
    while s < e && matches!(b[s], b' ' | b'\t') {
        s += 1;
    }
    while e > s && matches!(b[e - 1], b' ' | b'\t' | b'\r') {
        e -= 1;
    }
    (s, e)
}

/// The lines after position `at` (which is a line end or the end of the text).
struct Lines<'a> {
    b: &'a [u8],
    at: usize,
}

impl Lines<'_> {
    /// The next line's start and end (without its `\n`).
    fn next_line(&mut self) -> Option<(usize, usize)> {
        if self.at >= self.b.len() {
            return None;
        }
        let start = self.at + 1;
        let end = line_end(self.b, start);
        self.at = end;
        Some((start, end))
    }
}

/// The position of the `\n` ending the line at `from`, or the end of the text.
pub(super) fn line_end(b: &[u8], from: usize) -> usize {
    b[from.min(b.len())..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |i| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the first line's `key:` of `text`, and the rest after it.
    fn value(text: &str) -> (Option<&str>, bool, &str) {
        let b = text.as_bytes();
        let eol = line_end(b, 0);
        let colon = text.find(':').expect("a key");
        let key_col = text.len() - text.trim_start().len();
        let v = yaml_value(b, key_col, colon + 1, eol);
        (v.span.map(|(s, e)| &text[s..e]), v.nested, &text[v.next..])
    }

    #[test]
    fn inline_plain_and_quoted() {
        assert_eq!(
            value("  a: hunter2  \n  b: x"),
            (Some("hunter2"), false, "\n  b: x")
        );
        assert_eq!(
            value("a: \"x\\\"y\" # c\nb"),
            (Some("x\\\"y"), false, "\nb")
        );
        assert_eq!(value("a: 'it''s'\nb"), (Some("it''s"), false, "\nb"));
        assert_eq!(value("a:\n  b: c"), (None, true, "\n  b: c"));
        assert_eq!(value("a: {}\nb"), (None, false, "\nb"));
        assert_eq!(value("a: &x\n  b: c"), (None, true, "\n  b: c"));
    }

    #[test]
    fn continuation_lines() {
        let text = "  message: 'a long\n    message'\n  next: x";
        assert_eq!(
            value(text),
            (Some("a long\n    message"), false, "\n  next: x")
        );
        let text = "  m: plain\n    more words\n  next: x";
        assert_eq!(
            value(text),
            (Some("plain\n    more words"), false, "\n  next: x")
        );
        let text = "  m: plain\n    - item\n";
        assert_eq!(value(text), (Some("plain"), false, "\n    - item\n"));
        let text = "  m: plain\n    k: v\n";
        assert_eq!(value(text), (Some("plain"), false, "\n    k: v\n"));
    }

    #[test]
    fn block_scalars() {
        let text = "  key: |-\n    line one\n\n    line two\n\n  next: x";
        assert_eq!(
            value(text),
            (Some("line one\n\n    line two"), false, "\n\n  next: x")
        );
        assert_eq!(value("  key: >\n  next: x"), (None, false, "\n  next: x"));
        let text = "- k: | # comment\n    v\n";
        assert_eq!(value(text), (Some("v"), false, "\n"));
    }
}
