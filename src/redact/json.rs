//! Kubernetes objects in JSON, also single-line and escaped inside a JSON or YAML string (the
//! `last-applied-configuration` annotation): Secret `data`/`stringData` values, env entries
//! whose `name` says secret, kubeconfig user credentials, GCP service-account keys.
//!
//! A tolerant tokenizer: it starts at any `{`, gives up on what does not parse (a string that
//! reaches the end of a line, a bracket that does not match) and starts again at the next `{`.

use super::span::Span;
use super::yaml::{KUBECONFIG_CREDENTIALS, resolve};
use super::{Kind, keys};

/// Longest key or short value kept decoded (`kind`, `name`, `type` and keys are short).
const MAX_DECODED: usize = 256;

pub(super) fn find(text: &str, out: &mut Vec<Span>) {
    let b = text.as_bytes();
    let Some(first) = b.iter().position(|&c| c == b'{') else {
        return;
    };
    Scanner::new(text, Plain { b, i: first }).run(out);
    let mut from = 0;
    while let Some(i) = text[from..].find("{\\\"") {
        let start = from + i;
        let stop = Scanner::new(text, Escaped { b, i: start }).run(out);
        from = stop.max(start + 1);
    }
}

/// Bytes of JSON text with their byte range in the input.
trait Source {
    fn next(&mut self) -> Option<(u8, usize, usize)>;
    fn pos(&self) -> usize;
    /// Moves to the next `{` when no object is open; false when there is none (or the
    /// source cannot skip).
    fn skip_to_open(&mut self) -> bool;
}

/// JSON as it stands in the input.
struct Plain<'a> {
    b: &'a [u8],
    i: usize,
}

impl Source for Plain<'_> {
    fn next(&mut self) -> Option<(u8, usize, usize)> {
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some((c, self.i - 1, self.i))
    }
    fn pos(&self) -> usize {
        self.i
    }
    fn skip_to_open(&mut self) -> bool {
        match self.b[self.i.min(self.b.len())..]
            .iter()
            .position(|&c| c == b'{')
        {
            Some(j) => {
                self.i += j;
                true
            }
            None => false,
        }
    }
}

/// JSON escaped inside a string (`{\"kind\":\"Secret\"}`): decodes one level of escapes and
/// ends at the string's closing quote or the end of the line.
struct Escaped<'a> {
    b: &'a [u8],
    i: usize,
}

impl Source for Escaped<'_> {
    fn next(&mut self) -> Option<(u8, usize, usize)> {
        let start = self.i;
        let c = *self.b.get(start)?;
        if c == b'"' || c == b'\n' {
            return None;
        }
        if c != b'\\' {
            self.i += 1;
            return Some((c, start, self.i));
        }
        let d = *self.b.get(start + 1)?;
        let (decoded, len) = match d {
            b'n' | b't' | b'r' => (b' ', 2),
            b'u' => (b'u', 6),
            other => (other, 2),
        };
        self.i = (start + len).min(self.b.len());
        Some((decoded, start, self.i))
    }
    fn pos(&self) -> usize {
        self.i
    }
    fn skip_to_open(&mut self) -> bool {
        false
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Opener {
    Data,
    User,
    Config,
    AuthProvider,
    Other,
}

impl Opener {
    fn of(key: &[u8]) -> Opener {
        match key {
            b"data" | b"stringData" => Opener::Data,
            b"user" => Opener::User,
            b"config" => Opener::Config,
            b"auth-provider" => Opener::AuthProvider,
            _ => Opener::Other,
        }
    }
}

struct Frame {
    array: bool,
    opener: Opener,
    is_secret: Option<bool>,
    name_kind: Option<Kind>,
    value: Option<(usize, usize)>,
    service_account: bool,
    gcp: Vec<(usize, usize)>,
    pending: Vec<(usize, usize)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Key,
    Colon,
    Value,
    Comma,
}

struct Scanner<'a, S> {
    text: &'a str,
    src: S,
    stack: Vec<Frame>,
    expect: Expect,
    key: Vec<u8>,
}

impl<'a, S: Source> Scanner<'a, S> {
    fn new(text: &'a str, src: S) -> Self {
        Scanner {
            text,
            src,
            stack: Vec::new(),
            expect: Expect::Value,
            key: Vec::new(),
        }
    }

    /// Scans to the end of the source; returns where it stopped.
    fn run(mut self, out: &mut Vec<Span>) -> usize {
        while let Some((c, _, _)) = self.src.next() {
            match c {
                b'{' | b'[' if self.expect == Expect::Value || self.stack.is_empty() => {
                    self.open(c == b'[')
                }
                b'}' | b']' => self.close(c == b']', out),
                b':' if self.expect == Expect::Colon => self.expect = Expect::Value,
                b',' => {
                    self.expect = match self.stack.last() {
                        Some(f) if !f.array => Expect::Key,
                        _ => Expect::Value,
                    }
                }
                b'"' => {
                    // Not a match guard: reading the string has effects, and a guard that
                    // failed would fall through to the arms below.
                    let whole = self.string(out);
                    if !whole {
                        self.reset();
                    }
                }
                c if c.is_ascii_whitespace() => {}
                _ if self.expect == Expect::Value => self.expect = Expect::Comma,
                _ => {}
            }
            if self.stack.is_empty() && !self.src.skip_to_open() {
                break;
            }
        }
        self.src.pos()
    }

    fn open(&mut self, array: bool) {
        let opener = match self.stack.last() {
            Some(f) if f.array => f.opener,
            Some(_) => Opener::of(&self.key),
            None => Opener::Other,
        };
        self.stack.push(Frame {
            array,
            opener,
            is_secret: None,
            name_kind: None,
            value: None,
            service_account: false,
            gcp: Vec::new(),
            pending: Vec::new(),
        });
        self.expect = if array { Expect::Value } else { Expect::Key };
    }

    fn close(&mut self, array: bool, out: &mut Vec<Span>) {
        let Some(mut f) = self.stack.pop() else {
            return;
        };
        if f.array != array {
            self.reset();
            return;
        }
        if f.service_account {
            out.extend(
                f.gcp
                    .iter()
                    .map(|&(s, e)| Span::new(s, e, Kind::GcpServiceAccount)),
            );
        }
        let parent = self.stack.last_mut().map(|p| &mut p.pending);
        resolve(
            f.is_secret,
            f.name_kind,
            f.value,
            &mut f.pending,
            parent,
            out,
        );
        self.expect = Expect::Comma;
    }

    fn reset(&mut self) {
        self.stack.clear();
        self.expect = Expect::Value;
    }

    /// Reads a string whose opening quote was just read; false if it runs off its line.
    fn string(&mut self, out: &mut Vec<Span>) -> bool {
        let mut decoded = Vec::new();
        let mut start = None;
        let mut end = self.src.pos();
        loop {
            let Some((c, s, e)) = self.src.next() else {
                return false;
            };
            match c {
                b'"' => break,
                b'\n' => return false,
                b'\\' => {
                    let Some((d, _, e2)) = self.src.next() else {
                        return false;
                    };
                    start.get_or_insert(s);
                    end = e2;
                    if decoded.len() < MAX_DECODED {
                        decoded.push(d);
                    }
                }
                _ => {
                    start.get_or_insert(s);
                    end = e;
                    if decoded.len() < MAX_DECODED {
                        decoded.push(c);
                    }
                }
            }
        }
        match self.expect {
            Expect::Key if self.stack.last().is_some_and(|f| !f.array) => {
                self.key = decoded;
                self.expect = Expect::Colon;
            }
            Expect::Value => {
                if let Some(s) = start {
                    self.on_value(s, end, &decoded, out);
                }
                self.expect = Expect::Comma;
            }
            _ => {}
        }
        true
    }

    fn on_value(&mut self, s: usize, e: usize, decoded: &[u8], out: &mut Vec<Span>) {
        let n = self.stack.len();
        let grand = n.checked_sub(2).map(|i| self.stack[i].opener);
        let Some(f) = self.stack.last_mut() else {
            return;
        };
        if f.array {
            return;
        }
        if f.opener == Opener::Data {
            f.pending.push((s, e));
            return;
        }
        match self.key.as_slice() {
            b"kind" => f.is_secret = Some(decoded == b"Secret"),
            b"name" => f.name_kind = std::str::from_utf8(decoded).ok().and_then(keys::classify),
            b"value" => f.value = Some((s, e)),
            b"type" => f.service_account = decoded == b"service_account",
            b"private_key" | b"private_key_id" => f.gcp.push((s, e)),
            _ => {}
        }
        let in_user = f.opener == Opener::User
            || (f.opener == Opener::Config && grand == Some(Opener::AuthProvider));
        let key = std::str::from_utf8(&self.key).unwrap_or("");
        if in_user && KUBECONFIG_CREDENTIALS.contains(&key) && !keys::not_a_secret(&self.text[s..e])
        {
            out.push(Span::new(s, e, Kind::KubeconfigCredential));
        }
    }
}
