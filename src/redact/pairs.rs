//! Values labelled by a secret-looking name: `name=value` anywhere, `name: value` at the start
//! of a line (YAML, `kubectl describe`), `"name": "value"` (JSON, also escaped inside a JSON
//! string) and flags (`--password x`, one argument per line as `describe` prints them).

use std::sync::LazyLock;

use regex::Regex;

use super::keys;
use super::scalar::{self, line_end};
use super::span::Span;

/// The words a secret-looking name contains; each hit is checked by `keys::classify`.
static HIT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)pass|pwd|secret|token|key").expect("a valid pattern"));

pub(super) fn find(text: &str, out: &mut Vec<Span>) {
    let b = text.as_bytes();
    // Nothing before `done` is looked at again: a name's other hits, a value already taken.
    let mut done = 0;
    for m in HIT.find_iter(text) {
        if m.start() < done {
            continue;
        }
        let ks = b[..m.start()]
            .iter()
            .rposition(|&c| !is_name_byte(c))
            .map_or(0, |i| i + 1);
        let ke = b[m.end()..]
            .iter()
            .position(|&c| !is_name_byte(c))
            .map_or(b.len(), |i| m.end() + i);
        done = ke;
        let Some(kind) = keys::classify(&text[ks..ke]) else {
            continue;
        };
        if let Some((s, e, next)) = value_after(b, ks, ke)
            && !keys::not_a_secret(&text[s..e])
        {
            out.push(Span::new(s, e, kind));
            done = done.max(next);
        }
    }
}

fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

/// The value stored under the name at `ks..ke`, and where scanning may go on.
fn value_after(b: &[u8], ks: usize, ke: usize) -> Option<(usize, usize, usize)> {
    let mut p = ke;
    let quote = quote_before(b, ks);
    let quoted = quote.is_some_and(|q| b[p..].starts_with(q));
    if let (true, Some(q)) = (quoted, quote) {
        p += q.len();
    }
    let q = skip_blank(b, p);
    if b.get(q) == Some(&b'=') && b.get(q + 1) != Some(&b'=') {
        let v = skip_blank(b, q + 1);
        return bare_or_quoted(b, v);
    }
    if b.get(p) == Some(&b':') {
        if quoted {
            return json_string(b, skip_blank(b, p + 1));
        }
        let (ls, at_line_start) = indentation_start(b, ks);
        let spaced = b
            .get(p + 1)
            .is_none_or(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'));
        if at_line_start && spaced {
            let v = scalar::yaml_value(b, ks - ls, p + 1, line_end(b, p));
            return v.span.map(|(s, e)| (s, e, v.next));
        }
        return None;
    }
    if b[ks..].starts_with(b"--") {
        return flag_value(b, ks, p);
    }
    None
}

/// Where the indentation (spaces, tabs, `- ` markers) before `ks` starts, and whether it starts
/// its line. Only the indentation is read, so each call is short however long the line.
fn indentation_start(b: &[u8], ks: usize) -> (usize, bool) {
    let mut i = ks;
    while i > 0 && matches!(b[i - 1], b' ' | b'\t' | b'-') {
        i -= 1;
    }
    (i, i == 0 || b[i - 1] == b'\n')
}

/// The quote a name is in (`"`, `'` or `\"` inside a JSON string), if any.
fn quote_before(b: &[u8], ks: usize) -> Option<&'static [u8]> {
    match ks.checked_sub(1).map(|i| b[i]) {
        Some(b'"') if ks >= 2 && b[ks - 2] == b'\\' => Some(b"\\\""),
        Some(b'"') => Some(b"\""),
        Some(b'\'') => Some(b"'"),
        _ => None,
    }
}

fn skip_blank(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| matches!(c, b' ' | b'\t')) {
        i += 1;
    }
    i
}

/// A value after `=`: a quoted string on this line, or everything up to a space, `&`, `;`, a
/// quote, a backslash or an angle bracket.
fn bare_or_quoted(b: &[u8], v: usize) -> Option<(usize, usize, usize)> {
    match b.get(v) {
        Some(b'"' | b'\'' | b'\\') => json_string(b, v),
        Some(_) => {
            let e = b[v..]
                .iter()
                .position(|&c| {
                    c.is_ascii_whitespace()
                        || matches!(c, b'&' | b';' | b'"' | b'\'' | b'`' | b'<' | b'>' | b'\\')
                })
                .map_or(b.len(), |i| v + i);
            (e > v).then_some((v, e, e))
        }
        None => None,
    }
}

/// The inside of a `"..."`, `'...'` or `\"...\"` string starting at `v`, on one line.
fn json_string(b: &[u8], v: usize) -> Option<(usize, usize, usize)> {
    let (close, s): (&[u8], usize) = match b.get(v)? {
        b'\\' if b.get(v + 1) == Some(&b'"') => (b"\\\"", v + 2),
        b'"' => (b"\"", v + 1),
        b'\'' => (b"'", v + 1),
        _ => return None,
    };
    let mut i = s;
    while i < b.len() && b[i] != b'\n' {
        if b[i..].starts_with(close) {
            return Some((s, i, i + close.len()));
        }
        i += if b[i] == b'\\' && close == b"\"" {
            2
        } else {
            1
        };
    }
    None
}

/// The argument after a flag with no `=`: on the same line (`--password x`), the next item of
/// a JSON array (`"--password", "x"`), or the next line at the same indentation (`describe`
/// prints one argument per line; YAML prints `- --password` then `- x`).
fn flag_value(b: &[u8], ks: usize, p: usize) -> Option<(usize, usize, usize)> {
    let mut q = p;
    if matches!(b.get(q), Some(b'"' | b'\'')) {
        q += 1;
    }
    q = skip_blank(b, q);
    let v = match b.get(q)? {
        b',' => {
            let mut i = q + 1;
            while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
                i += 1;
            }
            i
        }
        b'\n' | b'\r' => {
            let (ls, at_line_start) = indentation_start(b, ks);
            if !at_line_start {
                return None;
            }
            let prefix = &b[ls..ks];
            let next = q + if b[q] == b'\r' { 2 } else { 1 };
            if !b.get(next..)?.starts_with(prefix) {
                return None;
            }
            next + prefix.len()
        }
        _ if q > p => q,
        _ => return None,
    };
    if matches!(b.get(v), Some(b'-') | None) {
        return None;
    }
    bare_or_quoted(b, v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::Kind;

    fn spans(text: &str) -> Vec<(&str, Kind)> {
        let mut out = Vec::new();
        find(text, &mut out);
        out.iter()
            .map(|s| (&text[s.start..s.end], s.kind))
            .collect()
    }

    #[test]
    fn equals_pairs_in_env_args_and_urls() {
        let text = "DB_PASSWORD=hunter2 --token=abc123 https://x/?api_key=k3y&b=1 \
                    aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n\
                    Password=p@ss;Server=db; \"--client-secret=cs1\"";
        assert_eq!(
            spans(text),
            vec![
                ("hunter2", Kind::Password),
                ("abc123", Kind::Password),
                ("k3y", Kind::Password),
                (
                    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                    Kind::AwsSecretKey
                ),
                ("p@ss", Kind::Password),
                ("cs1", Kind::Password),
            ]
        );
    }

    #[test]
    fn colon_pairs_at_line_start_and_in_json() {
        let text = "      DB_PASSWORD:  hunter2\n      API_TOKEN:    <set to the key 'token' in secret 'api'>  Optional: false\n\
                    password: |\n  multi\n  line\nx: {\"apiKey\": \"k-1\", \"token\": null}\n\
                    {\\\"password\\\":\\\"esc\\\"}\nlevel=info msg=\"bearer token: nope\"";
        assert_eq!(
            spans(text),
            vec![
                ("hunter2", Kind::Password),
                ("multi\n  line", Kind::Password),
                ("k-1", Kind::Password),
                ("esc", Kind::Password),
            ]
        );
    }

    #[test]
    fn flags_on_one_line_in_json_and_one_per_line() {
        let text = "kubectl --token abc123 get pods\n\"args\": [\"--password\", \"hunter2\"]\n    Args:\n      --db-password\n      s3cret\n      --verbose\n\
                    args:\n    - --api-key\n    - k3y\n    - --token-file\n    - /var/run/token\n--use-token --next";
        assert_eq!(
            spans(text),
            vec![
                ("abc123", Kind::Password),
                ("hunter2", Kind::Password),
                ("s3cret", Kind::Password),
                ("k3y", Kind::Password),
            ]
        );
    }

    #[test]
    fn names_and_values_that_are_not_secrets() {
        let text = "secretName: db\n  tokenSecretRef:\n    key: token\nType: kubernetes.io/service-account-token\n\
                    token:      953 bytes\nautomountServiceAccountToken: false\n  - name: DB_PASSWORD\n\
                    Mountable secrets:   default-token-x\nsecret=true\nif token == x\nMountVolume.SetUp failed for volume \"token\" : x\n\
                    password:\n  description: The password.\n  type: string\npassword: {type: string}";
        assert_eq!(spans(text), vec![]);
    }
}
